/**
 * What the command line and the README say about each option of a command: its flag, kind, choices, default and help
 * text, read from the command's schema as JSON Schema (zod's z.toJSONSchema).
 */
import { z } from 'zod';
import { COMMAND_SCHEMAS, type CommandName } from './commands.js';

export interface OptionInfo {
  name: string;
  flag: string;
  kind: 'boolean' | 'number' | 'string' | 'enum';
  choices?: readonly string[];
  defaultValue?: unknown;
  /** The flag may be given without a value (`--resume` alone means `true`). */
  valueOptional: boolean;
  /** The flag may be given several times (its schema also takes a list): `--from a --from b`. */
  repeatable: boolean;
  help: string;
}

export function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

type JsonSchema = z.core.JSONSchema.JSONSchema;

function describeOption(name: string, json: JsonSchema): OptionInfo {
  const variants = json.anyOf ?? [];
  const isNumber = json.type === 'number' || json.type === 'integer';
  return {
    name,
    flag: `--${kebab(name)}`,
    kind: json.enum ? 'enum' : json.type === 'boolean' ? 'boolean' : isNumber ? 'number' : 'string',
    choices: json.enum?.map(String),
    defaultValue: json.default,
    valueOptional: variants.some((v) => v.const === true),
    repeatable: variants.some((v) => v.type === 'array'),
    help: json.description ?? '',
  };
}

const described = new Map<CommandName, readonly OptionInfo[]>();

/** The options of a command, in its schema's order. */
export function commandOptions(command: CommandName): readonly OptionInfo[] {
  let options = described.get(command);
  if (!options) {
    const properties = z.toJSONSchema(COMMAND_SCHEMAS[command]).properties ?? {};
    options = Object.entries(properties).map(([name, json]) => describeOption(name, typeof json === 'object' ? json : {}));
    described.set(command, options);
  }
  return options;
}

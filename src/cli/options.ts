/**
 * Turns a command's params schema into commander options and commander's parse result (plus --config) into that
 * command's validated params, with one-line errors.
 */
import * as fs from 'node:fs';
import { Command, Option } from 'commander';
import { z } from 'zod';
import {
  ALL_OPTION_NAMES,
  COMMAND_SCHEMAS,
  parseParams,
  type CommandName,
  type CommandParams,
  type OptionName,
} from '../params/commands.js';
import { commandOptions, kebab } from '../params/option_info.js';
import { UsageError } from '../errors.js';

export interface ParsedParams<C extends CommandName> {
  params: CommandParams[C];
  /** Options the user set (on the command line or in --config), as opposed to defaults. */
  given: Set<OptionName<C>>;
}

export function addSchemaOptions(cmd: Command, command: CommandName): Command {
  for (const info of commandOptions(command)) {
    const defaultText = info.defaultValue !== undefined ? ` (default: ${JSON.stringify(info.defaultValue)})` : '';
    if (info.kind === 'boolean') {
      cmd.addOption(new Option(info.flag, info.help + defaultText));
      if (info.name !== 'quiet' && info.name !== 'verbose') cmd.addOption(new Option(`--no-${kebab(info.name)}`, `turn ${info.flag} off`));
      continue;
    }
    const value = info.kind === 'number' ? 'n' : 'value';
    const opt = new Option(info.valueOptional ? `${info.flag} [${value}]` : `${info.flag} <${value}>`, info.help + defaultText);
    if (info.choices) opt.choices(info.choices);
    // A repeatable flag given once stays a single value; given again, its values make a list.
    if (info.repeatable) opt.argParser((v: string, prev: unknown) => (prev === undefined ? v : [...[prev as string | string[]].flat(), v]));
    cmd.addOption(opt);
  }
  cmd.addOption(new Option('--config <file>', 'JSON file with option values (same names as the flags); flags win'));
  return cmd;
}

const CAMEL = (s: string) => s.replace(/[-_]+([a-zA-Z0-9])/g, (_, c: string) => c.toUpperCase());

/** Reads a --config JSON file; keys may be camelCase, kebab-case or snake_case. */
export function readConfigFile(file: string, command: CommandName): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf-8');
  } catch (e) {
    throw new UsageError(`--config ${file}: cannot read the file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`--config ${file}: not valid JSON (${(e as Error).message})`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json))
    throw new UsageError(`--config ${file}: expected a JSON object of option values`);
  const allowed = new Set(Object.keys(COMMAND_SCHEMAS[command].shape));
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(json as Record<string, unknown>)) {
    const name = CAMEL(key);
    if (!allowed.has(name)) {
      const known = ALL_OPTION_NAMES.has(name);
      throw new UsageError(`--config ${file}: "${key}" is ${known ? `not an option of ${command}` : 'not a known option'}`);
    }
    out[name] = value;
  }
  return out;
}

/** Merges defaults < --config < command line, validates, and reports the first problem as one line. */
export function resolveParams<C extends CommandName>(cmd: Command, command: C): ParsedParams<C> {
  const opts = cmd.opts() as Record<string, unknown>;
  const raw: Record<string, unknown> = {};
  const given = new Set<OptionName<C>>();
  // Both sources hold only this command's option names: readConfigFile refuses any other key.
  const give = (name: string, value: unknown) => {
    raw[name] = value;
    given.add(name as OptionName<C>);
  };
  if (typeof opts.config === 'string') {
    for (const [name, value] of Object.entries(readConfigFile(opts.config, command))) give(name, value);
  }
  for (const { name } of commandOptions(command)) {
    if (opts[name] !== undefined && cmd.getOptionValueSource(name) === 'cli') give(name, opts[name]);
  }
  try {
    return { params: parseParams(command, raw), given };
  } catch (e) {
    if (e instanceof z.ZodError) {
      // A ZodError holds at least one issue.
      const issue = e.issues[0]!;
      const name = String(issue.path[0] ?? '');
      const value = raw[name];
      throw new UsageError(
        `${name ? `--${kebab(name)}` : 'options'}: ${describeIssue(issue, value)}${value !== undefined ? ` (got ${JSON.stringify(value)})` : ''}`,
      );
    }
    throw e;
  }
}

/** zod's issue in the words t5cls has always used (the value itself is shown beside it). */
function describeIssue(issue: z.core.$ZodIssue, value: unknown): string {
  if (issue.code === 'too_small' && issue.origin === 'number') return `expected a number ≥ ${issue.minimum}`;
  if (issue.code === 'too_big' && issue.origin === 'number') return `expected a number ≤ ${issue.maximum}`;
  if (issue.code === 'invalid_value') {
    // A value that is no string at all is told the choices as a type.
    return typeof value === 'string'
      ? `expected one of ${issue.values.join(', ')}`
      : `expected ${issue.values.map((v) => `'${String(v)}'`).join(' | ')}`;
  }
  if (issue.code === 'invalid_type' && (issue.expected === 'string' || issue.expected === 'boolean')) return `expected ${issue.expected}`;
  return issue.message;
}

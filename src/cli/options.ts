/**
 * Turns the params schema into commander options and commander's parse result (plus --config) into validated
 * Params, with one-line errors.
 */
import * as fs from 'node:fs';
import { Command, Option } from 'commander';
import { z } from 'zod';
import { COMMAND_PARAMS, kebab, optionInfo, ParamsSchema, parseParams, type CommandName, type ParamName, type Params } from '../params.js';
import { UsageError } from '../errors.js';

export interface ParsedParams {
  params: Params;
  /** Options the user set (on the command line or in --config), as opposed to defaults. */
  given: Set<ParamName>;
}

export function addSchemaOptions(cmd: Command, command: CommandName): Command {
  for (const name of COMMAND_PARAMS[command]) {
    const info = optionInfo(name);
    const defaultText = info.defaultValue !== undefined ? ` (default: ${JSON.stringify(info.defaultValue)})` : '';
    if (info.kind === 'boolean') {
      cmd.addOption(new Option(info.flag, info.help + defaultText));
      if (name !== 'quiet' && name !== 'verbose') cmd.addOption(new Option(`--no-${kebab(name)}`, `turn ${info.flag} off`));
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
  const allowed = new Set<string>(COMMAND_PARAMS[command]);
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(json as Record<string, unknown>)) {
    const name = CAMEL(key);
    if (!allowed.has(name)) {
      const known = name in ParamsSchema.shape;
      throw new UsageError(`--config ${file}: "${key}" is ${known ? `not an option of ${command}` : 'not a known option'}`);
    }
    out[name] = value;
  }
  return out;
}

/** Merges defaults < --config < command line, validates, and reports the first problem as one line. */
export function resolveParams(cmd: Command, command: CommandName): ParsedParams {
  const opts = cmd.opts() as Record<string, unknown>;
  const raw: Record<string, unknown> = {};
  const given = new Set<ParamName>();
  if (typeof opts.config === 'string') {
    for (const [k, v] of Object.entries(readConfigFile(opts.config, command))) {
      raw[k] = v;
      given.add(k as ParamName);
    }
  }
  for (const name of COMMAND_PARAMS[command]) {
    if (opts[name] !== undefined && cmd.getOptionValueSource(name) === 'cli') {
      raw[name] = opts[name];
      given.add(name);
    }
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
        `${name ? `--${kebab(name)}` : 'options'}: ${describeIssue(issue)}${value !== undefined ? ` (got ${JSON.stringify(value)})` : ''}`,
      );
    }
    throw e;
  }
}

function describeIssue(issue: z.ZodIssue): string {
  if (issue.code === 'too_small' && issue.type === 'number') return `expected a number ≥ ${issue.minimum}`;
  if (issue.code === 'too_big' && issue.type === 'number') return `expected a number ≤ ${issue.maximum}`;
  if (issue.code === 'invalid_enum_value') return `expected one of ${issue.options.join(', ')}`;
  if (issue.code === 'invalid_type')
    return `expected ${issue.expected === 'number' ? 'a number' : issue.expected === 'integer' ? 'an integer' : issue.expected}`;
  return issue.message;
}

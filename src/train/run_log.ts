import * as fs from 'node:fs';
import * as path from 'node:path';
import { FormatError } from '../errors.js';

/** Metrics of one epoch. The named fields are written first, in this order; further numeric fields follow. */
export interface EpochMetrics {
  learning_rate?: number;
  train_loss?: number;
  train_accuracy?: number;
  dev_accuracy?: number;
  dev_macro_f1?: number;
  dev_micro_f1?: number;
  dev_weighted_f1?: number;
  [name: string]: number | undefined;
}

/** The per-epoch figures, in the order the log and TensorBoard list them. */
export const EPOCH_FIELDS = [
  'learning_rate',
  'train_loss',
  'train_accuracy',
  'dev_accuracy',
  'dev_macro_f1',
  'dev_micro_f1',
  'dev_weighted_f1',
] as const;

export interface RunLogEpoch {
  epoch: number;
  /** ISO 8601 time the block was written, when present. */
  time?: string;
  metrics: EpochMetrics;
}

export interface ParsedRunLog {
  /** Option values as text (strings unquoted); all options blocks merged, a later value winning. */
  options: Record<string, string>;
  /** One entry per epoch number, ascending; when an epoch was logged twice (a resumed run), the later block wins. */
  epochs: RunLogEpoch[];
  /** Lines written with `line()`, in order (blank lines left out). */
  lines: string[];
}

const HEADER = /^\[(options|epoch (\d+))\](?: (\S+))?$/;
const FIELD = /^([^:]+):(?: (.*))?$/;
const NAME = /^[^\s:[\]][^:\r\n]*$/;

/**
 * Text log of a training run, meant to be read by people and by `parseRunLog`:
 *
 * ```
 * [options] 2024-05-01T12:00:00.000Z
 * model: t5-small
 * learning_rate: 0.0003
 *
 * [epoch 1] 2024-05-01T12:10:00.000Z
 * learning_rate: 0.0003
 * train_loss: 0.4231
 * ...
 *
 * free text written with line()
 * ```
 *
 * Every call appends to the file and fsyncs it before returning, so the log survives a crash up to the last call.
 * Numbers are written in full precision, so parsing gives back exactly the values logged.
 */
export class RunLog {
  constructor(
    readonly file: string,
    private readonly now: () => Date = () => new Date(),
  ) {
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  }

  /**
   * Writes every option as a `name: value` line. Strings are written as they are, or as a JSON string literal when
   * that would be ambiguous (empty, surrounding blanks, line breaks, a leading quote); numbers and booleans as text;
   * arrays and objects as JSON; undefined as an empty value.
   */
  options(record: Record<string, unknown>): void {
    const lines = [`[options] ${this.now().toISOString()}`];
    for (const [name, value] of Object.entries(record)) {
      checkName(name);
      lines.push(`${name}: ${formatOption(value)}`);
    }
    this.append(lines.join('\n') + '\n\n');
  }

  /** Writes one block with the epoch's metrics (`epoch` is a non-negative integer; undefined fields are left out). */
  epoch(n: number, metrics: EpochMetrics): void {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`RunLog.epoch: epoch must be a non-negative integer, got ${n}`);
    const names = [
      ...EPOCH_FIELDS.filter((f) => f in metrics),
      ...Object.keys(metrics).filter((f) => !(EPOCH_FIELDS as readonly string[]).includes(f)),
    ];
    const lines = [`[epoch ${n}] ${this.now().toISOString()}`];
    for (const name of names) {
      const value = metrics[name];
      if (value === undefined) continue;
      checkName(name);
      if (typeof value !== 'number') throw new TypeError(`RunLog.epoch: ${name} must be a number, got ${typeof value}`);
      lines.push(`${name}: ${String(value)}`);
    }
    this.append(lines.join('\n') + '\n\n');
  }

  /** Writes free text (one or more lines). A line may not look like a block header (`[options]`, `[epoch N]`). */
  line(text: string): void {
    for (const l of text.split('\n')) {
      if (HEADER.test(l)) throw new RangeError(`RunLog.line: "${l}" would read as a block header`);
    }
    this.append(text + '\n');
  }

  private append(text: string): void {
    const fd = fs.openSync(this.file, 'a');
    try {
      const data = Buffer.from(text, 'utf-8');
      let off = 0;
      while (off < data.length) off += fs.writeSync(fd, data, off, data.length - off);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }
}

function checkName(name: string): void {
  if (!NAME.test(name) || name !== name.trimEnd()) {
    throw new RangeError(`RunLog: "${name}" cannot be a field name (no colons, line breaks, brackets first, or surrounding blanks)`);
  }
}

function formatOption(value: unknown): string {
  if (value === undefined) return '';
  if (typeof value === 'string') {
    const ambiguous = value === '' || value !== value.trim() || value.startsWith('"') || /[\x00-\x1f\x7f]/.test(value);
    return ambiguous ? JSON.stringify(value) : value;
  }
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  return JSON.stringify(value) ?? String(value);
}

/** Reads a log written by `RunLog`. `source` names the file in error messages. */
export function parseRunLog(text: string, source = 'run log'): ParsedRunLog {
  const options: Record<string, string> = {};
  const epochs = new Map<number, RunLogEpoch>();
  const lines: string[] = [];
  let block: { kind: 'options' } | { kind: 'epoch'; entry: RunLogEpoch } | undefined;

  const rows = text.split('\n');
  if (rows.at(-1) === '') rows.pop();
  rows.forEach((raw, i) => {
    const row = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    const where = `${source}:${i + 1}`;
    const header = HEADER.exec(row);
    if (header) {
      const time = header[3];
      if (header[1] === 'options') {
        block = { kind: 'options' };
      } else {
        const entry: RunLogEpoch = { epoch: Number(header[2]), metrics: {} };
        if (time !== undefined) entry.time = time;
        epochs.delete(entry.epoch);
        epochs.set(entry.epoch, entry);
        block = { kind: 'epoch', entry };
      }
      return;
    }
    if (row === '') {
      block = undefined;
      return;
    }
    if (block === undefined) {
      lines.push(row);
      return;
    }
    const field = FIELD.exec(row);
    if (!field) throw new FormatError(`${where}: expected "name: value" inside a block, got "${row}"`);
    const name = field[1]!;
    const value = field[2] ?? '';
    if (block.kind === 'options') {
      options[name] = value.startsWith('"') ? parseQuoted(value, where) : value;
    } else {
      const num = Number(value);
      if (value.trim() === '' || (Number.isNaN(num) && value !== 'NaN')) {
        throw new FormatError(`${where}: ${name} must be a number, got "${value}"`);
      }
      block.entry.metrics[name] = num;
    }
  });

  return { options, epochs: [...epochs.values()].sort((a, b) => a.epoch - b.epoch), lines };
}

export function readRunLog(file: string): ParsedRunLog {
  return parseRunLog(fs.readFileSync(file, 'utf-8'), file);
}

function parseQuoted(value: string, where: string): string {
  try {
    const parsed: unknown = JSON.parse(value);
    if (typeof parsed === 'string') return parsed;
  } catch {
    // reported below
  }
  throw new FormatError(`${where}: a value starting with a quote must be a JSON string, got ${value}`);
}

/**
 * The text format of a training run's log (see RunLog in train/run_log.ts, which writes it): `[options]` and
 * `[epoch N]` blocks of `name: value` lines, and free text between them. Reading it lives here, below both the
 * training that writes the log and the report that reads it.
 */
import * as fs from 'node:fs';
import { FormatError } from './errors.js';

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

/** A block's first line: `[options]` or `[epoch N]`, then the time it was written. */
export const RUN_LOG_HEADER = /^\[(options|epoch (\d+))\](?: (\S+))?$/;
const FIELD = /^([^:]+):(?: (.*))?$/;
/** What a field name may be: no colon or line break, and no blank or bracket first. */
export const RUN_LOG_FIELD_NAME = /^[^\s:[\]][^:\r\n]*$/;

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
    const header = RUN_LOG_HEADER.exec(row);
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

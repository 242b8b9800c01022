import * as fs from 'node:fs';
import * as path from 'node:path';
import { EPOCH_FIELDS, RUN_LOG_FIELD_NAME, RUN_LOG_HEADER, type EpochMetrics } from '../run_log_format.js';

/**
 * Text log of a training run, meant to be read by people and by `parseRunLog` (run_log_format.ts):
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
      if (RUN_LOG_HEADER.test(l)) throw new RangeError(`RunLog.line: "${l}" would read as a block header`);
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
  if (!RUN_LOG_FIELD_NAME.test(name) || name !== name.trimEnd()) {
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

/** Where progress goes: `process.stderr` or anything with `write` (and `isTTY` / `columns` when it is a terminal). */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  label: string;
  /** Number of items expected; without it no bar, percentage or ETA is shown. */
  total?: number;
  stream?: ProgressStream;
  /** Print nothing at all. */
  quiet?: boolean;
  /** Seconds between plain lines when the stream is not a terminal (default 5). */
  interval?: number;
  /** Width of the bar in characters on a terminal (default 20). */
  barWidth?: number;
  /** Clock in milliseconds (default `Date.now`). */
  now?: () => number;
}

/** Shortest time between two redraws of the bar on a terminal. */
const REDRAW_MS = 100;

/**
 * Progress of a loop. On a terminal one line is redrawn in place:
 * `label [#####---------------] 120/500 24% 35.1 it/s ETA 0:11 loss=0.4231`.
 * Elsewhere (CI logs, pipes) a plain line is printed every `interval` seconds and once more by `done()`:
 * `label 120/500 24% 35.1 it/s ETA 0:11 loss=0.4231` ... `label 500/500 100% 35.2 it/s in 0:14 loss=0.3010`.
 * The rate is the average since the start; below 1 it/s it is shown as seconds per item (`2.50 s/it`).
 */
export class Progress {
  private readonly label: string;
  private readonly total: number | undefined;
  private readonly stream: ProgressStream;
  private readonly quiet: boolean;
  private readonly tty: boolean;
  private readonly intervalMs: number;
  private readonly barWidth: number;
  private readonly now: () => number;
  private readonly start: number;
  private current = 0;
  private info: Record<string, string | number> = {};
  private lastOutput: number;
  private drawnWidth = 0;
  private finished = false;

  constructor(options: ProgressOptions) {
    this.label = options.label;
    if (options.total !== undefined && (!Number.isFinite(options.total) || options.total < 0)) {
      throw new RangeError(`Progress: total must be a non-negative number, got ${options.total}`);
    }
    this.total = options.total;
    this.stream = options.stream ?? process.stderr;
    this.quiet = options.quiet ?? false;
    this.tty = this.stream.isTTY === true;
    this.intervalMs = (options.interval ?? 5) * 1000;
    this.barWidth = options.barWidth ?? 20;
    this.now = options.now ?? Date.now;
    this.start = this.now();
    this.lastOutput = this.start;
    if (this.tty && !this.quiet) this.draw();
  }

  /** Records `n` more items done; `info` values (e.g. the running loss) are shown after the counters. */
  tick(n = 1, info?: Record<string, string | number>): void {
    if (this.finished) return;
    this.current += n;
    if (info) this.info = { ...this.info, ...info };
    if (this.quiet) return;
    const t = this.now();
    if (this.tty) {
      if (t - this.lastOutput >= REDRAW_MS || (this.total !== undefined && this.current >= this.total)) {
        this.lastOutput = t;
        this.draw();
      }
    } else if (t - this.lastOutput >= this.intervalMs) {
      this.lastOutput = t;
      this.stream.write(this.format(t, false) + '\n');
    }
  }

  /** Prints the final state (with the elapsed time) and ends the line. Calling it again does nothing. */
  done(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.quiet) return;
    const line = this.format(this.now(), true);
    if (this.tty) this.redraw(line + '\n');
    else this.stream.write(line + '\n');
  }

  /** The line as it would be printed now. */
  format(at = this.now(), final = false): string {
    const elapsed = Math.max(0, at - this.start) / 1000;
    const rate = elapsed > 0 ? this.current / elapsed : undefined;
    const parts = [this.label];
    if (this.total !== undefined) {
      const fraction = this.total > 0 ? Math.min(1, this.current / this.total) : 1;
      if (this.tty) {
        const filled = Math.floor(fraction * this.barWidth);
        parts.push(`[${'#'.repeat(filled)}${'-'.repeat(this.barWidth - filled)}]`);
      }
      parts.push(`${this.current}/${this.total}`, `${Math.floor(fraction * 100)}%`);
    } else {
      parts.push(String(this.current));
    }
    parts.push(formatRate(rate));
    if (final || this.total === undefined) {
      parts.push(`in ${formatDuration(elapsed)}`);
    } else {
      const remaining = Math.max(0, this.total - this.current);
      parts.push(`ETA ${rate !== undefined && rate > 0 ? formatDuration(remaining / rate) : '?'}`);
    }
    for (const [key, value] of Object.entries(this.info)) parts.push(`${key}=${formatValue(value)}`);
    return parts.join(' ');
  }

  private draw(): void {
    this.redraw(this.format(this.now(), false));
  }

  private redraw(line: string): void {
    const columns = this.stream.columns;
    let text = line.endsWith('\n') ? line.slice(0, -1) : line;
    // A line longer than the terminal wraps, and '\r' would then only return to the start of the last row.
    if (columns !== undefined && columns > 1 && text.length >= columns) text = text.slice(0, columns - 1);
    const pad = Math.max(0, this.drawnWidth - text.length);
    this.drawnWidth = text.length;
    this.stream.write('\r' + text + ' '.repeat(pad) + (line.endsWith('\n') ? '\n' : ''));
  }
}

export function formatRate(perSecond: number | undefined): string {
  if (perSecond === undefined || !Number.isFinite(perSecond)) return '? it/s';
  if (perSecond > 0 && perSecond < 1) return `${(1 / perSecond).toFixed(2)} s/it`;
  return `${perSecond.toFixed(1)} it/s`;
}

/** `M:SS`, or `H:MM:SS` from one hour on; seconds are rounded. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const total = Math.round(seconds);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const ss = String(s).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** Integers as they are, other numbers with 4 decimals, or in exponent form when tiny or huge (a learning rate). */
export function formatValue(value: string | number): string {
  if (typeof value === 'string') return value;
  if (Number.isInteger(value) || !Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  return abs >= 1e-3 && abs < 1e6 ? value.toFixed(4) : value.toExponential(3);
}

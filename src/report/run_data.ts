/**
 * Finds a training run's files (text log, TensorBoard events, checkpoints, test metrics) and gathers what the report
 * shows into one JSON-able object.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UsageError, FormatError } from '../errors.js';
import { readRunLog, type ParsedRunLog } from '../run_log_format.js';
import { CHECKPOINT_META, readCheckpointMeta, type CheckpointMeta } from '../checkpoint_meta.js';
import { readEventFile } from './events.js';

export interface RunLocations {
  /** Run name (`<model>_<time>`), a log file, a runs/ folder or a checkpoint folder; default: the newest run. */
  run?: string;
  /** Default `logs`. */
  logsDir?: string;
  /** Default `runs`. */
  runsDir?: string;
  /** Checkpoints folder (the `--save-weights-path` of training); default `weights`. */
  weightsDir?: string;
}

export interface ResolvedRun {
  name: string;
  logFile?: string;
  eventsDir?: string;
  eventFiles: string[];
  weightsDirs: string[];
}

export interface ScalarSeries {
  steps: number[];
  values: (number | null)[];
}

export interface ReportCheckpoint {
  dir: string;
  epoch: number;
  step: number;
  metrics: Record<string, number | null>;
}

export interface ReportTest {
  file: string;
  split?: string;
  decode?: string;
  examples?: number;
  classes: string[];
  accuracy: number | null;
  macro_f1: number | null;
  micro_f1: number | null;
  weighted_f1: number | null;
  invalid_outputs: number;
  per_class: { name: string; precision: number | null; recall: number | null; f1: number | null; support: number }[];
  /** Rows: true class; columns: predicted class, plus a last column of invalid outputs when there were any. */
  confusion_matrix: number[][];
  created_at?: string;
}

/** Everything the page shows; embedded in it as JSON. Non-finite numbers become null. */
export interface RunReportData {
  format: 't5cls-report';
  version: 1;
  run: string;
  generatedAt: string;
  sources: { log?: string; events: string[]; checkpoint?: string; metrics?: string };
  /** Training options as written at the top of the log (text values). */
  options: Record<string, string>;
  /** Per-epoch metrics, from the log (full precision) or else from the event file (float32). */
  epochs: { epoch: number; time?: string; metrics: Record<string, number | null> }[];
  /** `train/loss_step` per optimizer step. */
  lossPerStep: ScalarSeries;
  checkpoints: ReportCheckpoint[];
  bestCheckpoint?: string;
  test?: ReportTest;
  /** Things the report could not find, for the reader. */
  notes: string[];
}

const EVENTS_PREFIX = 'events.out.tfevents.';
const LOSS_TAG = 'train/loss_step';

function eventFilesIn(dir: string): string[] {
  if (!isDir(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => f.startsWith(EVENTS_PREFIX))
    .sort()
    .map((f) => path.join(dir, f));
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/** Start time of a run in ms: the log's first `[options]` time, else the first event file's name, else mtime. */
function runStartMs(logFile: string | undefined, eventsDir: string | undefined): number {
  if (logFile) {
    const head = readHead(logFile);
    const m = /^\[options\] (\S+)/.exec(head);
    const t = m ? Date.parse(m[1]!) : NaN;
    if (Number.isFinite(t)) return t;
  }
  if (eventsDir) {
    const first = eventFilesIn(eventsDir)[0];
    const m = first ? /^events\.out\.tfevents\.(\d+)\./.exec(path.basename(first)) : null;
    if (m) return Number(m[1]) * 1000;
  }
  const p = logFile ?? eventsDir;
  return p ? fs.statSync(p).mtimeMs : 0;
}

function readHead(file: string): string {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(200);
    const n = fs.readSync(fd, buf, 0, buf.length, 0);
    return buf.subarray(0, n).toString('utf-8');
  } finally {
    fs.closeSync(fd);
  }
}

/** Names of the runs under the logs and runs folders. */
export function listRuns(logsDir: string, runsDir: string): string[] {
  const names = new Set<string>();
  if (isDir(logsDir)) {
    for (const f of fs.readdirSync(logsDir)) if (f.endsWith('.txt') && isFile(path.join(logsDir, f))) names.add(f.slice(0, -4));
  }
  if (isDir(runsDir)) {
    for (const d of fs.readdirSync(runsDir)) if (eventFilesIn(path.join(runsDir, d)).length) names.add(d);
  }
  return [...names];
}

/**
 * The training folder a relative option (`logsDir: logs`) was resolved against, given where that folder turned out
 * to be: lets the report find the runs and weights folders of a log file passed from anywhere.
 */
function trainingRoot(actualDir: string, optionValue: string | undefined): string | undefined {
  if (!optionValue || path.isAbsolute(optionValue)) return undefined;
  const rel = path.normalize(optionValue);
  if (rel.split(path.sep).includes('..')) return undefined;
  let root = path.resolve(actualDir);
  for (const part of rel.split(path.sep)) if (part && part !== '.') root = path.dirname(root);
  return path.resolve(root, rel) === path.resolve(actualDir) ? root : undefined;
}

function unique(paths: (string | undefined)[]): string[] {
  return [...new Set(paths.filter((p): p is string => !!p).map((p) => path.resolve(p)))];
}

/** Finds the files of one run. Throws a UsageError when nothing of it exists. */
export function resolveRun(loc: RunLocations = {}): ResolvedRun {
  const logsDir = path.resolve(loc.logsDir ?? 'logs');
  const runsDir = path.resolve(loc.runsDir ?? 'runs');
  const weightsDir = path.resolve(loc.weightsDir ?? 'weights');
  let name: string;
  let logFile: string | undefined;
  let eventsDir: string | undefined;
  let checkpointDir: string | undefined;

  if (loc.run === undefined || loc.run === '') {
    const runs = listRuns(logsDir, runsDir);
    if (!runs.length)
      throw new UsageError(
        `no training run under ${logsDir} or ${runsDir}; train first, or name the run, its log file or its runs/ folder`,
      );
    const starts = runs.map((r) => {
      const lf = path.join(logsDir, `${r}.txt`);
      const ed = path.join(runsDir, r);
      return { r, t: runStartMs(isFile(lf) ? lf : undefined, isDir(ed) ? ed : undefined) };
    });
    starts.sort((a, b) => b.t - a.t || (a.r < b.r ? 1 : -1));
    name = starts[0]!.r;
  } else if (isFile(loc.run)) {
    logFile = path.resolve(loc.run);
    const base = path.basename(logFile);
    if (base === CHECKPOINT_META || base.startsWith(EVENTS_PREFIX)) return resolveRun({ ...loc, run: path.dirname(logFile) });
    name = path.basename(logFile).replace(/\.txt$/, '');
  } else if (isDir(loc.run)) {
    const dir = path.resolve(loc.run);
    const meta = readCheckpointMeta(dir);
    if (meta) {
      name = meta.runName;
      checkpointDir = dir;
    } else if (eventFilesIn(dir).length) {
      eventsDir = dir;
      name = path.basename(dir);
    } else {
      throw new UsageError(
        `${loc.run}: neither a runs/ folder with events.out.tfevents.* files nor a checkpoint folder with ${CHECKPOINT_META}`,
      );
    }
  } else {
    name = loc.run;
    if (/[/\\]/.test(name) || name === '.' || name === '..') throw new UsageError(`${loc.run}: no such log file or folder`);
  }

  logFile ??= firstFile([
    path.join(logsDir, `${name}.txt`),
    eventsDir && path.join(path.dirname(path.dirname(eventsDir)), 'logs', `${name}.txt`),
  ]);
  let log: ParsedRunLog | undefined;
  if (logFile) log = readRunLog(logFile);
  const logRoot = logFile && log ? trainingRoot(path.dirname(logFile), log.options.logsDir) : undefined;
  const ckptOptions = checkpointDir ? (readCheckpointMeta(checkpointDir)?.options ?? {}) : {};
  const ckptRoot = checkpointDir ? trainingRoot(path.dirname(checkpointDir), stringOption(ckptOptions.saveWeightsPath)) : undefined;
  const root = logRoot ?? ckptRoot;
  if (!logFile && ckptRoot) {
    logFile = firstFile([path.resolve(ckptRoot, stringOption(ckptOptions.logsDir) ?? 'logs', `${name}.txt`)]);
    if (logFile) log = readRunLog(logFile);
  }
  eventsDir ??= unique([
    path.join(runsDir, name),
    root && log?.options.runsDir ? path.resolve(root, log.options.runsDir, name) : undefined,
    root ? path.resolve(root, 'runs', name) : undefined,
  ]).find((d) => eventFilesIn(d).length);
  const weightsDirs = unique([
    weightsDir,
    checkpointDir && path.dirname(checkpointDir),
    root && log?.options.saveWeightsPath ? path.resolve(root, log.options.saveWeightsPath) : undefined,
    root ? path.resolve(root, 'weights') : undefined,
  ]).filter(isDir);

  if (!logFile && !eventsDir) {
    const known = listRuns(logsDir, runsDir);
    const hint = known.length ? `; runs there: ${known.slice(0, 5).join(', ')}${known.length > 5 ? ', …' : ''}` : '';
    throw new UsageError(
      `run "${name}": no log ${path.join(logsDir, `${name}.txt`)} and no event files in ${path.join(runsDir, name)}${hint}`,
    );
  }
  return { name, logFile, eventsDir, eventFiles: eventsDir ? eventFilesIn(eventsDir) : [], weightsDirs };
}

function stringOption(v: unknown): string | undefined {
  return typeof v === 'string' && v ? v : undefined;
}

function firstFile(candidates: (string | undefined)[]): string | undefined {
  return unique(candidates).find(isFile);
}

function finite(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function cleanMetrics(m: Record<string, unknown>): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  for (const [k, v] of Object.entries(m)) if (typeof v === 'number') out[k] = finite(v);
  return out;
}

function checkpointsOf(run: string, weightsDirs: string[]): { dir: string; meta: CheckpointMeta }[] {
  const found: { dir: string; meta: CheckpointMeta }[] = [];
  for (const wd of weightsDirs) {
    for (const entry of fs.readdirSync(wd, { withFileTypes: true })) {
      if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
      const dir = path.join(wd, entry.name);
      let meta: CheckpointMeta | undefined;
      try {
        meta = readCheckpointMeta(dir);
      } catch {
        continue; // another run's damaged checkpoint must not stop this report
      }
      if (meta && meta.runName === run) found.push({ dir, meta });
    }
  }
  return found.sort((a, b) => a.meta.epoch - b.meta.epoch);
}

function readTestMetrics(file: string): ReportTest {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf-8')) as Record<string, unknown>;
  } catch (e) {
    throw new FormatError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  const classes = raw.classes;
  const confusion = raw.confusion_matrix;
  const perClass = raw.per_class as Record<string, Record<string, unknown>> | undefined;
  if (!Array.isArray(classes) || !classes.every((c) => typeof c === 'string'))
    throw new FormatError(`${file}: "classes" must be an array of class names`);
  const n = classes.length;
  if (
    !Array.isArray(confusion) ||
    confusion.length !== n ||
    !confusion.every(
      (row) => Array.isArray(row) && (row.length === n || row.length === n + 1) && row.every((v) => Number.isInteger(v) && v >= 0),
    )
  ) {
    throw new FormatError(`${file}: "confusion_matrix" must be ${n} rows of ${n} (or ${n + 1}) counts, one per class in "classes"`);
  }
  if (!perClass || typeof perClass !== 'object')
    throw new FormatError(`${file}: "per_class" must be an object {class: {precision, recall, f1, support}}`);
  return {
    file,
    split: typeof raw.split === 'string' ? raw.split : undefined,
    decode: typeof raw.decode === 'string' ? raw.decode : undefined,
    examples: typeof raw.examples === 'number' ? raw.examples : undefined,
    classes: classes as string[],
    accuracy: finite(raw.accuracy),
    macro_f1: finite(raw.macro_f1),
    micro_f1: finite(raw.micro_f1),
    weighted_f1: finite(raw.weighted_f1),
    invalid_outputs: typeof raw.invalid_outputs === 'number' ? raw.invalid_outputs : 0,
    per_class: (classes as string[]).map((name) => {
      const c = perClass[name];
      if (!c) throw new FormatError(`${file}: "per_class" has no entry for class "${name}"`);
      return {
        name,
        precision: finite(c.precision),
        recall: finite(c.recall),
        f1: finite(c.f1),
        support: typeof c.support === 'number' ? c.support : 0,
      };
    }),
    confusion_matrix: confusion as number[][],
    created_at: typeof raw.created_at === 'string' ? raw.created_at : undefined,
  };
}

function purgeFrom(byTag: Map<string, Map<number, number>>, step: number): void {
  for (const series of byTag.values()) for (const s of [...series.keys()]) if (s >= step) series.delete(s);
}

/** Reads a run's files into the report's data. */
export function collectRunData(resolved: ResolvedRun, now: Date = new Date()): RunReportData {
  const notes: string[] = [];
  const log = resolved.logFile ? readRunLog(resolved.logFile) : undefined;
  if (!log) notes.push(`no text log (logs/${resolved.name}.txt) was found: per-epoch values come from the TensorBoard events`);

  const byTag = new Map<string, Map<number, number>>();
  for (const file of resolved.eventFiles) {
    const contents = readEventFile(file);
    if (contents.truncated)
      notes.push(`${path.basename(file)} ends inside a record (the run was interrupted while writing); its complete records are shown`);
    const restarts = [...contents.restarts];
    contents.scalars.forEach((s, i) => {
      // A resumed run's writer supersedes what was logged at its first step and later, as TensorBoard purges it.
      while (restarts.length && restarts[0]!.at <= i) purgeFrom(byTag, restarts.shift()!.step);
      let series = byTag.get(s.tag);
      if (!series) byTag.set(s.tag, (series = new Map()));
      series.set(s.step, s.value);
    });
    for (const r of restarts) purgeFrom(byTag, r.step);
  }
  if (!resolved.eventFiles.length) notes.push('no TensorBoard event file was found: the loss per step is not available');
  const scalars: Record<string, ScalarSeries> = {};
  for (const tag of [...byTag.keys()].sort()) {
    const entries = [...byTag.get(tag)!.entries()].sort((a, b) => a[0] - b[0]);
    scalars[tag] = { steps: entries.map((e) => e[0]), values: entries.map((e) => finite(e[1])) };
  }

  let epochs: RunReportData['epochs'];
  if (log) {
    epochs = log.epochs.map((e) => ({ epoch: e.epoch, ...(e.time ? { time: e.time } : {}), metrics: cleanMetrics(e.metrics) }));
  } else {
    const map = new Map<number, Record<string, number | null>>();
    for (const [tag, series] of Object.entries(scalars)) {
      if (tag === LOSS_TAG) continue;
      series.steps.forEach((epoch, i) => {
        if (!map.has(epoch)) map.set(epoch, {});
        map.get(epoch)![tag] = series.values[i]!;
      });
    }
    epochs = [...map.entries()].sort((a, b) => a[0] - b[0]).map(([epoch, metrics]) => ({ epoch, metrics }));
  }

  const found = checkpointsOf(resolved.name, resolved.weightsDirs);
  if (!found.length && log) {
    // checkpoints moved or the weights folder not given: the log names the folders it saved
    for (const line of log.lines) {
      const m = /^saved checkpoint (.+)$/.exec(line);
      const meta = m && isDir(m[1]!) ? readCheckpointMeta(m[1]!) : undefined;
      if (meta && meta.runName === resolved.name) found.push({ dir: m![1]!, meta });
    }
  }
  const checkpoints: ReportCheckpoint[] = found.map(({ dir, meta }) => ({
    dir,
    epoch: meta.epoch,
    step: meta.step,
    metrics: cleanMetrics(meta.metrics ?? {}),
  }));
  const best = [...found].sort(
    (a, b) => (b.meta.metrics?.dev_macro_f1 ?? -Infinity) - (a.meta.metrics?.dev_macro_f1 ?? -Infinity) || b.meta.epoch - a.meta.epoch,
  )[0];
  let test: ReportTest | undefined;
  if (!best) {
    notes.push(
      `no checkpoint of this run was found in ${resolved.weightsDirs.length ? resolved.weightsDirs.join(', ') : 'the weights folder'}`,
    );
  } else {
    const metricsFile = path.join(best.dir, 'metrics.json');
    if (isFile(metricsFile)) test = readTestMetrics(metricsFile);
    else
      notes.push(
        `no test results yet: run "t5cls test --weights-name ${path.basename(best.dir)}" to add the confusion matrix and per-class scores`,
      );
  }

  return {
    format: 't5cls-report',
    version: 1,
    run: resolved.name,
    generatedAt: now.toISOString(),
    sources: {
      ...(resolved.logFile ? { log: resolved.logFile } : {}),
      events: resolved.eventFiles,
      ...(best ? { checkpoint: best.dir } : {}),
      ...(test ? { metrics: test.file } : {}),
    },
    options: log?.options ?? {},
    epochs,
    lossPerStep: scalars[LOSS_TAG] ?? { steps: [], values: [] },
    checkpoints,
    ...(best ? { bestCheckpoint: best.dir } : {}),
    ...(test ? { test } : {}),
    notes,
  };
}

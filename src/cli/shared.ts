/** What several commands share: output, data and model locations, checkpoint lookup. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { downloadModel, TOKENIZER_FILES } from '../hub/index.js';
import { readClassesMap, readSplit } from '../data/index.js';
import { longestRow, type Example } from '../data/batches.js';
import { T5clsError, UsageError } from '../errors.js';
import { assertSafeName } from '../train/checkpoint.js';
import { findLatestBestCheckpoint, readCheckpointMeta, type CheckpointMeta } from '../checkpoint_meta.js';
import { Progress } from '../progress.js';
import type { OptionName } from '../params/commands.js';
import type { CheckpointParams } from '../params/checkpoint.js';
import type { EngineParams } from '../params/engine.js';
import { kebab } from '../params/option_info.js';
import { readModelConfig } from '../model/pretrained_config.js';
import { checkJobMemory } from './job_memory.js';
import { initBackend, type BackendInfo } from '../engine/init.js';

/** Prints a line on stderr unless --quiet (stdout is kept for results). */
export function sayer(quiet: boolean): (line: string) => void {
  return quiet ? () => {} : (line) => process.stderr.write(line + '\n');
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `Nov25_14-03-59`: the local start time of a run, as in TensorBoard's default run names. */
export function runTimestamp(d: Date): string {
  const two = (n: number) => String(n).padStart(2, '0');
  return `${MONTHS[d.getMonth()]}${two(d.getDate())}_${two(d.getHours())}-${two(d.getMinutes())}-${two(d.getSeconds())}`;
}

/**
 * Claims a run name `<model>_<time>` by creating its TensorBoard folder (an atomic mkdir): a second run started in
 * the same second gets `<time>-2`, and so on, so concurrent runs never share a log, event or checkpoint name.
 */
export function claimRunName(runsDir: string, modelName: string, start: Date): { runTime: string; runName: string } {
  const base = runTimestamp(start);
  for (let i = 1; ; i++) {
    const runTime = i === 1 ? base : `${base}-${i}`;
    const runName = `${modelName}_${runTime}`;
    const dir = path.join(runsDir, runName);
    try {
      fs.mkdirSync(runsDir, { recursive: true });
      fs.mkdirSync(dir);
      return { runTime, runName };
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST') throw new T5clsError(`cannot create the run folder ${dir}: ${code ?? (e as Error).message}`, 1, { cause: e });
    }
  }
}

/**
 * The processed data folder: --data-dir, else the one folder load-dataset wrote under ./datasets (the newest one
 * when there are several).
 */
export function resolveDataDir(dataDir: string | undefined): string {
  if (dataDir) {
    const dir = path.resolve(dataDir);
    if (!fs.existsSync(dir)) throw new UsageError(`--data-dir ${dataDir}: no such folder`);
    return dir;
  }
  const root = path.resolve('datasets');
  const candidates = fs.existsSync(root)
    ? fs
        .readdirSync(root, { withFileTypes: true })
        .filter((e) => e.isDirectory() && e.name.endsWith('_processed'))
        .map((e) => path.join(root, e.name))
    : [];
  if (!candidates.length) throw new UsageError(`no processed data set under ${root}; run "t5cls load-dataset" first or pass --data-dir`);
  candidates.sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs);
  return candidates[0]!;
}

export type SplitName = 'train' | 'validation' | 'test';

/** Reads the classes map and the requested splits (validated record by record). */
export function loadSplits(
  dataDir: string,
  classesMap: string | Record<string, number>,
  names: SplitName[],
): { classNames: string[]; splits: Record<SplitName, Example[]> } {
  const map = typeof classesMap === 'string' ? readClassesMap(classesMap) : classesMap;
  const classNames: string[] = [];
  for (const [name, id] of Object.entries(map)) classNames[id] = name;
  const splits = {} as Record<SplitName, Example[]>;
  for (const name of names) {
    const file = path.join(dataDir, `${name}.json`);
    if (!fs.existsSync(file)) throw new UsageError(`${file}: no such file (expected the ${name} split written by "t5cls load-dataset")`);
    splits[name] = readSplit(file, map);
    if (!splits[name].length) throw new UsageError(`${file}: the ${name} split has no examples`);
  }
  return { classNames, splits };
}

/** A local model folder as given, or the Hub snapshot folder of a model id (downloaded once into the cache). */
export async function resolveModelDir(
  model: string,
  revision: string,
  say: (l: string) => void,
  opts: { tokenizerOnly?: boolean } = {},
): Promise<string> {
  const local = path.resolve(model);
  if (fs.existsSync(local) && fs.statSync(local).isDirectory()) return local;
  if (model.startsWith('.') || model.startsWith('/') || model.includes('\\')) throw new UsageError(`--model ${model}: no such folder`);
  say(`fetching ${model} from the Hugging Face Hub (cached after the first time)`);
  let bar: Progress | undefined;
  let last = 0;
  const dir = await downloadModel(model, {
    revision,
    ...(opts.tokenizerOnly ? { files: [], optionalFiles: TOKENIZER_FILES } : {}),
    log: say,
    onProgress: (done, total) => {
      bar ??= new Progress({ label: `download ${model}`, total });
      bar.tick(done - last);
      last = done;
    },
  });
  bar?.done();
  return dir;
}

/** The checkpoint `test`/`predict` use: --weights, --weights-name, else the best one of the newest run. */
export function resolveCheckpoint(p: CheckpointParams): { dir: string; meta?: CheckpointMeta } {
  let dir: string;
  if (p.weights) {
    dir = path.resolve(p.weights);
  } else if (p.weightsName) {
    assertSafeName(p.weightsName, '--weights-name');
    dir = path.resolve(p.saveWeightsPath, p.weightsName);
  } else {
    const found = findLatestBestCheckpoint(path.resolve(p.saveWeightsPath));
    if (!found)
      throw new UsageError(`no checkpoint under ${path.resolve(p.saveWeightsPath)}; train first or pass --weights-name / --weights`);
    dir = found;
  }
  if (!fs.existsSync(dir)) throw new UsageError(`checkpoint ${dir}: no such folder`);
  return { dir, meta: readCheckpointMeta(dir) };
}

/**
 * What evaluating a checkpoint needs (its weights, a batch's activations for the longest input and class name);
 * throws, in one line, when this machine cannot hold it.
 */
export function inferenceTensorBytes(checkpointDir: string, batchSize: number, inputs: number[][], targets: number[][]): number {
  const config = readModelConfig(checkpointDir);
  const job = {
    batchSize: Math.min(batchSize, Math.max(1, inputs.length)),
    sourceLength: longestRow(inputs),
    targetLength: longestRow(targets),
  };
  return checkJobMemory(config, job, path.basename(checkpointDir)).tensorBytes;
}

/** Options whose values are paths: the same file however the command spelled it. */
const PATH_OPTIONS = new Set<OptionName>(['dataDir', 'classesMap', 'saveWeightsPath', 'logsDir', 'tokenizer', 'from']);

function sameOptionValue(name: OptionName, now: unknown, recorded: unknown): boolean {
  if (PATH_OPTIONS.has(name)) {
    // A repeatable path option (--from) given once is the list of that one path.
    const resolve = (v: unknown) =>
      Array.isArray(v) || name === 'from'
        ? [v].flat().map((x) => (typeof x === 'string' ? path.resolve(x) : x))
        : typeof v === 'string'
          ? path.resolve(v)
          : v;
    return JSON.stringify(resolve(now)) === JSON.stringify(resolve(recorded));
  }
  return JSON.stringify(now) === JSON.stringify(recorded);
}

/**
 * Options that may differ when a run is resumed, per command; every other one is the run's own. Both may run
 * longer (`--epochs`; pretraining also `--steps`, `--max-minutes`), save on another schedule, and run elsewhere.
 */
export const RESUME_MAY_CHANGE: { train: readonly OptionName<'train'>[]; pretrain: readonly OptionName<'pretrain'>[] } = {
  train: ['resume', 'epochs', 'saveEverySteps', 'runsDir', 'backend', 'device', 'threads', 'quiet', 'verbose'],
  pretrain: ['resume', 'epochs', 'steps', 'maxMinutes', 'saveEverySteps', 'runsDir', 'backend', 'device', 'threads', 'quiet', 'verbose'],
};

/**
 * `--resume` continues a run with the options it was started with: the command that started it, with --resume
 * added, is accepted, and so are changes to `mayChange`; any other option given with another value is refused.
 */
export function refuseChangedOptions<Name extends OptionName>(
  p: { [K in Name]?: unknown },
  given: Set<Name>,
  recorded: Record<string, unknown>,
  mayChange: readonly Name[],
): void {
  const changed = [...given].filter((name) => !mayChange.includes(name) && !sameOptionValue(name, p[name], recorded[name]));
  if (changed.length === 0) return;
  const show = (v: unknown) => (v === undefined ? 'not set' : JSON.stringify(v));
  const differences = changed.map((n) => `--${kebab(n)} was ${show(recorded[n])} in that run, not ${show(p[n])}`).join('; ');
  const free = mayChange
    .filter((n) => n !== 'resume')
    .map((n) => `--${kebab(n)}`)
    .join(', ');
  throw new UsageError(`--resume continues a run with the options it was started with; ${differences} (options that may change: ${free})`);
}

/**
 * Starts the backend for a resumed run: the backend, threads and device the run started with unless given again,
 * sized for the job (`tensorBytes`); says so when the run goes on on another backend than it started on.
 */
export async function startResumedBackend(
  p: EngineParams,
  given: ReadonlySet<string>,
  recorded: Record<string, unknown>,
  tensorBytes: number,
  say: (line: string) => void,
): Promise<BackendInfo> {
  const backend = await initBackend(given.has('backend') ? p.backend : (recorded.backend as EngineParams['backend']), {
    threads: given.has('threads') ? p.threads : (recorded.threads as number | undefined),
    device: given.has('device') ? p.device : (recorded.device as EngineParams['device']),
    log: say,
    tensorBytes,
  });
  if (backend.name !== recorded.backend) {
    say(
      `note: the run started on the ${String(recorded.backend)} backend and goes on on ${backend.name}; its numbers may ` +
        `differ slightly from an uninterrupted run`,
    );
  }
  return backend;
}

/**
 * The resumable state of a training run, kept in the run's folder beside its TensorBoard events,
 * `<runs-dir>/<run name>/state/`:
 *
 * ```
 * tokenizer/                 written once when the run starts
 * snapshot-000007/           the newest complete state (older ones are removed once a newer one is complete)
 *   config.json, generation_config.json, model.safetensors    the model, in HF layout (a LoRA run: its adapter,
 *                            adapter_config.json and adapter_model.safetensors, whose config names the frozen base)
 *   optimizer.safetensors    optimizer state keyed `<HF parameter name>/<slot>` plus `iter`
 *   state.json               everything else (TrainStateFile): position, sampler/RNG, dropout, metrics, options
 * .snapshot-000008.partial-<pid>/   a snapshot being written; never read
 * ```
 *
 * A snapshot is written into a temp folder (every file fsynced) and renamed into place when complete, so a crash or
 * a kill at any moment leaves the previous snapshot valid.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tf } from '../tf.js';
import { FormatError, T5clsError, UsageError } from '../errors.js';
import { removeQuietly, writeFolderAtomic, writeJsonAtomic } from '../fsutil.js';
import { readSafetensorsFile, saveSafetensors } from '../safetensors.js';
import type { T5ForConditionalGeneration } from '../model/modeling_t5.js';
import { writeAdapterFiles } from '../model/lora/index.js';
import type { Example } from '../data/batches.js';
import type { RngState } from '../random.js';
import type { SavableTokenizer } from './checkpoint.js';
import type { EpochResult, TrainOptions } from './types.js';

export const STATE_DIR = 'state';
export const STATE_FILE = 'state.json';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const TOKENIZER_DIR = 'tokenizer';
const SNAPSHOT = /^snapshot-(\d+)$/;
const PARTIAL = /^\.(snapshot-\d+|tokenizer)\.partial-\d+$/;

/** Where the training loop stands; enough to continue exactly. */
export interface TrainProgress {
  /** The epoch in progress, or the next one to start when `order` is null. */
  epoch: number;
  /** This epoch's example order (indices into the training set); null when the epoch has not started. */
  order: number[] | null;
  /** Index of the next batch of `order` to train on (the number of batches done). */
  nextBatch: number;
  /** Optimizer steps done in the whole run. */
  steps: number;
  /** This epoch's sums so far: loss × examples, examples, exact matches, examples seen. */
  lossSum: number;
  lossCount: number;
  correct: number;
  seen: number;
  /** Learning rate of the last step. */
  currentLr: number;
  bestMacroF1: number;
  epochsWithoutGain: number;
  bestCheckpoint?: string;
  epochs: EpochResult[];
  stoppedEarly: boolean;
}

export interface RunPaths {
  runName: string;
  modelName: string;
  runTime: string;
  weightsDir: string;
  logFile: string;
  tensorboardDir: string;
}

/**
 * Why a state was written: every N steps, at the end of an epoch, on SIGINT/SIGTERM, or after the last step of a
 * step or time budget (pretraining's; a training run ends at the end of an epoch).
 */
export type SaveReason = 'steps' | 'epoch' | 'interrupt' | 'end';

export interface TrainStateFile {
  format: 't5cls-train-state';
  version: 1;
  /** Number of the snapshot; grows by one with every save of the run. */
  seq: number;
  savedAt: string;
  reason: SaveReason;
  run: RunPaths;
  /** Every option of the command, as logged. */
  record: Record<string, unknown>;
  options: TrainOptions;
  classNames: string[];
  /** sha256 of the class names and the training and validation examples the run uses. */
  dataFingerprint: string;
  /** The sampler's generator as it is now (after drawing the order of the epoch in progress). */
  rng: RngState;
  dropout: { seed: number; counter: number };
  optimizer: {
    kind: 'adamw' | 'adafactor';
    /** HF names of the parameters in the optimizer's state order (the order its reported learning rate depends on). */
    order: string[];
  };
  progress: TrainProgress;
}

/** What `train` saves (through the loop, or `saveTrainState`): the file less what is filled in when writing. */
export type TrainStateToSave = Omit<TrainStateFile, 'seq' | 'optimizer'> & { optimizer: { kind: TrainStateFile['optimizer']['kind'] } };

/** What every kind of run state has (train's, pretrain's): a format, and the fields the snapshot writer fills in. */
export interface RunStateBase {
  format: string;
  version: 1;
  seq: number;
  savedAt: string;
  optimizer: { kind: 'adamw' | 'adafactor'; order: string[] };
}

/** A run state to write: the file less the fields `saveRunState` fills in. */
export type RunStateToSave<S extends RunStateBase> = Omit<S, 'seq' | 'optimizer'> & { optimizer: { kind: S['optimizer']['kind'] } };

export interface NamedTensor {
  name: string;
  tensor: tf.Tensor;
}

export interface LoadedRunState<S extends RunStateBase> {
  state: S;
  stateDir: string;
  snapshotDir: string;
  /** Optimizer state keyed `<HF parameter name>/<slot>` and `iter`; the caller disposes the tensors. */
  optimizer: Map<string, tf.Tensor>;
}

export type LoadedTrainState = LoadedRunState<TrainStateFile>;

export const TRAIN_STATE_FORMAT = 't5cls-train-state';
const TRAIN_STATE_KEYS = ['run', 'record', 'options', 'classNames', 'rng', 'dropout', 'optimizer', 'progress'];

export function runStateDir(runsDir: string, runName: string): string {
  return path.join(runsDir, runName, STATE_DIR);
}

export function snapshotName(seq: number): string {
  return `snapshot-${String(seq).padStart(6, '0')}`;
}

/** Complete snapshots in a state folder, newest (highest number) first. */
export function listSnapshots(stateDir: string): { seq: number; dir: string }[] {
  if (!fs.existsSync(stateDir)) return [];
  const out: { seq: number; dir: string }[] = [];
  for (const name of fs.readdirSync(stateDir)) {
    const m = SNAPSHOT.exec(name);
    if (m && fs.existsSync(path.join(stateDir, name, STATE_FILE))) out.push({ seq: Number(m[1]), dir: path.join(stateDir, name) });
  }
  return out.sort((a, b) => b.seq - a.seq);
}

/** sha256 over the class names and examples, so a resumed run can tell that its data changed. */
export function dataFingerprint(classNames: string[], train: Example[], validation: Example[]): string {
  const h = createHash('sha256');
  h.update(JSON.stringify(classNames));
  for (const [name, split] of [
    ['train', train],
    ['validation', validation],
  ] as const) {
    h.update(`\n${name} ${split.length}\n`);
    for (const e of split) h.update(`${e.label}\t${JSON.stringify(e.text)}\n`);
  }
  return h.digest('hex');
}

function errorText(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  return err?.code && !String(err.message).includes(err.code) ? `${err.code}: ${err.message}` : String(err?.message ?? e);
}

/** Writes the tokenizer files of a run once (a later call finds them and does nothing). */
export async function saveRunTokenizer(stateDir: string, tokenizer: SavableTokenizer): Promise<void> {
  const dir = path.join(stateDir, TOKENIZER_DIR);
  if (fs.existsSync(dir)) return;
  try {
    await writeFolderAtomic(dir, (tmp) => tokenizer.savePretrained(tmp));
  } catch (e) {
    throw new T5clsError(`could not save the training state in ${stateDir}: ${errorText(e)}`, 1, { cause: e });
  }
}

/** Removes snapshots and tokenizer folders that a killed process left half-written. */
export function removePartials(stateDir: string): void {
  if (!fs.existsSync(stateDir)) return;
  for (const name of fs.readdirSync(stateDir)) {
    if (PARTIAL.test(name)) removeQuietly(path.join(stateDir, name));
  }
}

/**
 * Writes a new snapshot (numbered one past the newest there) and then removes the older ones. `state.seq` is set
 * here. On failure nothing but the temp folder is touched (and that is removed), and the error says what failed.
 * Returns the snapshot folder.
 */
export function saveTrainState(
  stateDir: string,
  state: TrainStateToSave,
  model: T5ForConditionalGeneration,
  optimizer: tf.Optimizer,
): Promise<string> {
  return saveRunState<TrainStateFile>(stateDir, state, model, optimizer);
}

/** `saveTrainState` for any kind of run state (see RunStateBase). */
export async function saveRunState<S extends RunStateBase>(
  stateDir: string,
  state: RunStateToSave<S>,
  model: T5ForConditionalGeneration,
  optimizer: tf.Optimizer,
): Promise<string> {
  const previous = listSnapshots(stateDir);
  const seq = (previous[0]?.seq ?? 0) + 1;
  const dir = path.join(stateDir, snapshotName(seq));
  const toHf = new Map([...model.trainableVariables()].map(([hf, v]) => [v.name, hf]));
  let weights: NamedTensor[] = [];
  try {
    weights = await optimizer.getWeights();
    const tensors = new Map<string, tf.Tensor>();
    const order: string[] = [];
    for (const { name, tensor } of weights) {
      if (name === 'iter') {
        tensors.set('iter', tensor);
        continue;
      }
      const cut = name.lastIndexOf('/');
      const hf = toHf.get(name.slice(0, cut));
      if (hf === undefined) throw new Error(`the optimizer holds state for "${name}", which is no parameter of the model`);
      if (order.at(-1) !== hf) order.push(hf);
      tensors.set(`${hf}/${name.slice(cut + 1)}`, tensor);
    }
    await writeFolderAtomic(dir, (tmp) => {
      // A LoRA run's snapshot holds its adapter only: the frozen base is the folder the adapter's config names.
      if (model.adapter) writeAdapterFiles(tmp, model.adapter);
      else model.savePretrained(tmp);
      saveSafetensors(path.join(tmp, OPTIMIZER_FILE), tensors, { format: 't5cls-optimizer', optimizer: state.optimizer.kind });
      writeJsonAtomic(path.join(tmp, STATE_FILE), { ...state, seq, optimizer: { kind: state.optimizer.kind, order } });
    });
  } catch (e) {
    const kept = previous[0] ? `; the previous state ${previous[0].dir} is intact` : '';
    throw new T5clsError(`could not save the training state ${dir}: ${errorText(e)}${kept}`, 1, { cause: e });
  } finally {
    tf.dispose(weights.map((w) => w.tensor));
  }
  // The new snapshot is complete; an older one that cannot be removed is only wasted space.
  for (const old of previous) removeQuietly(old.dir);
  return dir;
}

/** Reads a snapshot folder, or the newest complete snapshot of a run folder. */
export function loadTrainState(target: string): LoadedTrainState {
  return loadRunState<TrainStateFile>(target, TRAIN_STATE_FORMAT, TRAIN_STATE_KEYS);
}

/** `loadTrainState` for any kind of run state: `format` is the one expected, `keys` the fields it must have. */
export function loadRunState<S extends RunStateBase>(target: string, format: string, keys: readonly string[]): LoadedRunState<S> {
  let snapshotDir = target;
  if (!fs.existsSync(path.join(target, STATE_FILE))) {
    const newest = listSnapshots(target)[0];
    if (!newest)
      throw new UsageError(`${target}: no saved training state (expected ${snapshotName(1).replace(/\d+$/, 'N')}/${STATE_FILE} inside)`);
    snapshotDir = newest.dir;
  }
  const file = path.join(snapshotDir, STATE_FILE);
  let state: S;
  try {
    state = JSON.parse(fs.readFileSync(file, 'utf-8')) as S;
  } catch (e) {
    throw new FormatError(`${file}: cannot read the training state (${errorText(e)})`);
  }
  if (state?.format !== format) throw new FormatError(`${file}: "format" is ${JSON.stringify(state?.format)}, expected "${format}"`);
  if (state.version !== 1) throw new FormatError(`${file}: "version" is ${JSON.stringify(state.version)}, expected 1`);
  for (const key of keys) {
    const value = (state as unknown as Record<string, unknown>)[key];
    if (value === undefined || value === null) throw new FormatError(`${file}: "${key}" is missing`);
  }
  const optimizer = new Map<string, tf.Tensor>();
  for (const [name, t] of readSafetensorsFile(path.join(snapshotDir, OPTIMIZER_FILE)).tensors) {
    optimizer.set(name, t.data instanceof Float32Array ? tf.tensor(t.data, t.shape, 'float32') : tf.tensor(t.data, t.shape, 'int32'));
  }
  return { state, stateDir: path.dirname(snapshotDir), snapshotDir, optimizer };
}

/**
 * Puts saved optimizer state (keyed by the name of the trained tensor: HF parameter name, or PEFT's name of a LoRA
 * tensor) into an optimizer for `model`, whose variables may have other tf names than those of the run that saved
 * it. The saved state order is kept.
 */
export async function restoreOptimizerState(
  optimizer: tf.Optimizer,
  saved: Map<string, tf.Tensor>,
  order: string[],
  model: T5ForConditionalGeneration,
  source: string,
): Promise<void> {
  const params = model.trainableVariables();
  const bySlot = new Map<string, { slot: string; tensor: tf.Tensor }[]>();
  for (const [name, tensor] of saved) {
    if (name === 'iter') continue;
    const cut = name.lastIndexOf('/');
    const hf = name.slice(0, cut);
    if (!params.has(hf)) throw new FormatError(`${source}: optimizer state for "${hf}", which is no parameter of the model`);
    let slots = bySlot.get(hf);
    if (!slots) bySlot.set(hf, (slots = []));
    slots.push({ slot: name.slice(cut + 1), tensor });
  }
  const weights: NamedTensor[] = [];
  const iter = saved.get('iter');
  if (iter) weights.push({ name: 'iter', tensor: iter });
  for (const hf of order) {
    const slots = bySlot.get(hf);
    if (!slots) throw new FormatError(`${source}: no optimizer state for "${hf}"`);
    for (const { slot, tensor } of slots) weights.push({ name: `${params.get(hf)!.name}/${slot}`, tensor });
  }
  if (bySlot.size !== order.length)
    throw new FormatError(`${source}: optimizer state for ${bySlot.size} parameters, but the state order names ${order.length}`);
  await optimizer.setWeights(weights);
}

/** The state folder of the run under `runsDir` (of states in `format`) whose newest state was saved last. */
export function findLatestRunState(runsDir: string, format = TRAIN_STATE_FORMAT): string | undefined {
  if (!fs.existsSync(runsDir)) return undefined;
  let best: { dir: string; savedAt: string } | undefined;
  for (const entry of fs.readdirSync(runsDir, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const dir = path.join(runsDir, entry.name, STATE_DIR);
    const newest = listSnapshots(dir)[0];
    if (!newest) continue;
    let savedAt = '';
    try {
      const file = JSON.parse(fs.readFileSync(path.join(newest.dir, STATE_FILE), 'utf-8')) as RunStateBase;
      if (file.format !== format) continue;
      savedAt = String(file.savedAt ?? '');
    } catch {
      continue;
    }
    if (!best || savedAt > best.savedAt) best = { dir, savedAt };
  }
  return best?.dir;
}

/**
 * What `--resume` names, as a folder `loadTrainState` reads: true or "latest" = the newest run under `runsDir`;
 * otherwise a run folder (`<runs-dir>/<run>`), its `state` folder, a snapshot folder, or a run name under `runsDir`.
 */
export function resolveResumeTarget(resume: true | string, runsDir: string, format = TRAIN_STATE_FORMAT): string {
  if (resume === true || resume === 'latest') {
    const found = findLatestRunState(runsDir, format);
    if (!found)
      throw new UsageError(
        `--resume: no saved ${format === TRAIN_STATE_FORMAT ? 'training' : 'pretraining'} state under ${runsDir}; pass the run's folder`,
      );
    return found;
  }
  const asPath = path.resolve(resume);
  const asName = path.join(runsDir, resume);
  const dir = fs.existsSync(asPath) ? asPath : !/[/\\]/.test(resume) && fs.existsSync(asName) ? asName : undefined;
  if (dir === undefined) throw new UsageError(`--resume ${resume}: no such folder, and no run of that name under ${runsDir}`);
  return fs.existsSync(path.join(dir, STATE_DIR)) ? path.join(dir, STATE_DIR) : dir;
}

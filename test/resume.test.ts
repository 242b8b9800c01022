/**
 * Interrupting and resuming training. The real CLI (bin/t5cls.js over dist/: run `npm run build` first) trains a
 * tiny random T5 (dropout on) in temp folders; runs that are killed, interrupted or stopped and then resumed must end
 * exactly like an uninterrupted run with the same seed. In-process tests cover the state files, the optimizer state
 * moving into a new model instance, failed writes and the non-finite gradient check.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO_ROOT, TOKENIZER_DIR, TWEETEVAL_SLICE, maxAbsDiff } from './helpers/fixtures.js';
import { readSafetensorsFile } from '../src/safetensors.js';
import { readEventFile, resolveRun } from '../src/report/index.js';
import { collectRunData } from '../src/report/run_data.js';
import { parseRunLog, type ParsedRunLog } from '../src/run_log_format.js';
import { tf } from '../src/tf.js';
import { initBackend } from '../src/engine/init.js';
import { T5Config, NAMED_CONFIGS } from '../src/model/config.js';
import { T5ForConditionalGeneration, type ForwardArgs, type ForwardOutput } from '../src/model/modeling_t5.js';
import { T5Tokenizer } from '../src/tokenizer/index.js';
import { Adafactor, AdamW } from '../src/train/optimizers/index.js';
import { runTraining, type TrainOptions } from '../src/train/trainer.js';
import { globalNorm } from '../src/train/step.js';
import { HOLD_ENV, stepHoldFromEnv } from '../src/train/hold.js';
import {
  listSnapshots,
  loadTrainState,
  restoreOptimizerState,
  resolveResumeTarget,
  saveTrainState,
  snapshotName,
  STATE_DIR,
  STATE_FILE,
  type TrainStateFile,
  type TrainStateToSave,
} from '../src/train/state.js';
import { PRETRAIN_STATE_FORMAT } from '../src/train/pretrain.js';

const CLI = path.join(REPO_ROOT, 'bin/t5cls.js');
let work: string;
let dataDir: string;
let classesMap: string;

interface Proc {
  child: ChildProcess;
  stderr: () => string;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

/** Runs the CLI in `cwd`; `holdAfterStep` makes the run wait at that step for a signal (src/train/hold.ts). */
function start(cwd: string, args: string[], holdAfterStep?: string): Proc {
  fs.mkdirSync(cwd, { recursive: true });
  const env = holdAfterStep === undefined ? process.env : { ...process.env, [HOLD_ENV]: holdAfterStep };
  const child = spawn(process.execPath, [CLI, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return { child, stderr: () => stderr, done };
}

const cli = (cwd: string, args: string[]) => start(cwd, args).done;

/** 24 examples in batches of 4: 6 batches per epoch, 2 epochs, dropout 0.1 (the tiny shape's default). */
function trainArgs(extra: string[]): string[] {
  return [
    'train', '--init', 'random', '--model-config', 'tiny', '--tokenizer', TOKENIZER_DIR, '--data-dir', dataDir,
    '--classes-map', classesMap, '--max-train-examples', '24', '--max-eval-examples', '8', '--batch-size', '4',
    '--epochs', '2', '--seed', '3', ...extra,
  ];
}
/** AdamW with a 5-step warm-up (most of the first epoch), state every 2 steps. */
const RUN_A = ['--learning-rate', '1e-2', '--lr-warmup-steps', '5', '--save-every-steps', '2'];
/** Adafactor's own schedule, the weighted sampler and 2 batches per step: 3 steps per epoch, state every step. */
const RUN_B = ['--use-adafactor-schedule', '--use-weighted-random-sampler', '--gradient-accumulation-steps', '2', '--save-every-steps', '1'];

function runDirOf(cwd: string): string | undefined {
  const root = path.join(cwd, 'runs');
  if (!fs.existsSync(root)) return undefined;
  const runs = fs.readdirSync(root);
  assert.ok(runs.length <= 1, `one run per folder: ${runs}`);
  return runs.length ? path.join(root, runs[0], 'state') : undefined;
}

/** The newest complete snapshot's state.json, or undefined (none yet, or it was replaced while being read). */
function newestState(cwd: string): { dir: string; state: TrainStateFile } | undefined {
  const runDir = runDirOf(cwd);
  const newest = runDir ? listSnapshots(runDir)[0] : undefined;
  if (!newest) return undefined;
  try {
    return { dir: newest.dir, state: JSON.parse(fs.readFileSync(path.join(newest.dir, STATE_FILE), 'utf-8')) };
  } catch {
    return undefined;
  }
}

async function waitFor<T>(proc: Proc, what: string, probe: () => T | undefined, timeoutMs = 60_000): Promise<T> {
  let exited = false;
  void proc.done.then(() => (exited = true));
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (exited) throw new Error(`the run ended before ${what}:\n${proc.stderr()}`);
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}:\n${proc.stderr()}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const waitForHold = (proc: Proc, step: number) =>
  waitFor(proc, `the hold at step ${step}`, () => (proc.stderr().includes(`holding after step ${step} `) ? true : undefined));

interface RunOutcome {
  log: ParsedRunLog;
  state: TrainStateFile;
  weights: Map<string, Float32Array | Int32Array>;
  checkpoints: Map<string, Map<string, Float32Array | Int32Array>>;
}

function outcome(cwd: string): RunOutcome {
  const logs = fs.readdirSync(path.join(cwd, 'logs'));
  assert.equal(logs.length, 1, 'a resumed run goes on writing the same log');
  const final = newestState(cwd)!;
  const read = (file: string) => new Map([...readSafetensorsFile(file).tensors].map(([k, t]) => [k, t.data]));
  const checkpoints = new Map<string, Map<string, Float32Array | Int32Array>>();
  for (const name of fs.readdirSync(path.join(cwd, 'weights'))) {
    if (name.startsWith('.')) continue;
    checkpoints.set(/-epoch\d+$/.exec(name)![0], read(path.join(cwd, 'weights', name, 'model.safetensors')));
  }
  return {
    log: parseRunLog(fs.readFileSync(path.join(cwd, 'logs', logs[0]), 'utf-8')),
    state: final.state,
    weights: read(path.join(final.dir, 'model.safetensors')),
    checkpoints,
  };
}

function assertSameWeights(a: Map<string, ArrayLike<number>>, b: Map<string, ArrayLike<number>>, what: string): void {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort(), what);
  for (const [k, v] of a) assert.ok(maxAbsDiff(v, b.get(k)!) <= 1e-6, `${what}: ${k} differs by ${maxAbsDiff(v, b.get(k)!)}`);
}

function assertSameRun(resumed: RunOutcome, reference: RunOutcome): void {
  assertSameWeights(resumed.weights, reference.weights, 'final weights');
  assert.deepEqual([...resumed.checkpoints.keys()].sort(), [...reference.checkpoints.keys()].sort(), 'checkpoints');
  for (const [epoch, w] of reference.checkpoints) assertSameWeights(resumed.checkpoints.get(epoch)!, w, `checkpoint ${epoch}`);
  assert.deepEqual(resumed.log.epochs.map((e) => e.epoch), [1, 2]);
  for (const [i, e] of reference.log.epochs.entries()) {
    const got = resumed.log.epochs[i].metrics;
    for (const [name, value] of Object.entries(e.metrics)) {
      assert.ok(Math.abs(got[name]! - value!) <= 1e-9, `epoch ${e.epoch} ${name}: ${got[name]} vs ${value}`);
    }
  }
  assert.equal(resumed.state.progress.steps, reference.state.progress.steps);
  assert.equal(resumed.state.dropout.counter, reference.state.dropout.counter);
  assert.deepEqual(resumed.state.rng, reference.state.rng);
}

let runA: RunOutcome;
let runB: RunOutcome;
let baseB: ReturnType<typeof cli>;

before(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 't5cls-resume-'));
  dataDir = path.join(work, 'data');
  const load = await cli(work, ['load-dataset', '--from', path.join(TWEETEVAL_SLICE, 'emotion'), '--out', dataDir]);
  assert.equal(load.code, 0, load.stderr);
  classesMap = path.join(work, 'classes_map.json');
  await initBackend('wasm');
});

after(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

test('an uninterrupted run keeps one state, written every N steps and after every epoch', { timeout: 120_000 }, async () => {
  const cwd = path.join(work, 'a');
  // The reference run for the Adafactor test below, alongside.
  baseB = cli(path.join(work, 'b'), trainArgs(RUN_B));
  const proc = start(cwd, trainArgs(RUN_A));
  const seen = new Set<number>();
  void waitFor(proc, 'the end', () => {
    const s = newestState(cwd);
    if (s) seen.add(s.state.progress.steps);
    return undefined;
  }).catch(() => {});
  const r = await proc.done;
  assert.equal(r.code, 0, r.stderr);
  runA = outcome(cwd);
  const s = runA.state;
  // 6 steps per epoch; states at steps 2 and 4, and after each epoch (step 6 and 12): 6 snapshots in all.
  assert.equal(s.seq, 6);
  assert.equal(s.reason, 'epoch');
  assert.deepEqual({ epoch: s.progress.epoch, order: s.progress.order, steps: s.progress.steps }, { epoch: 3, order: null, steps: 12 });
  assert.ok(s.dropout.counter > 0, 'dropout is on in training');
  assert.ok([...seen].every((n) => [2, 4, 6, 8, 10, 12].includes(n)), `states seen at steps ${[...seen]}`);
  const runDir = runDirOf(cwd)!;
  assert.deepEqual(fs.readdirSync(runDir).sort(), ['snapshot-000006', 'tokenizer']);
  // Optimizer state: per parameter step, exp_avg and exp_avg_sq, keyed by HF name, and the iteration count.
  const opt = readSafetensorsFile(path.join(runDir, 'snapshot-000006/optimizer.safetensors')).tensors;
  assert.deepEqual([...opt.get('encoder.final_layer_norm.weight/step')!.data], [12]);
  assert.deepEqual([...opt.get('iter')!.data], [12]);
  assert.deepEqual(opt.get('shared.weight/exp_avg_sq')!.shape, [32128, 64]);
});

test('SIGKILL mid-epoch, then --resume <run name>: same weights and log as the uninterrupted run', { timeout: 120_000 }, async () => {
  const cwd = path.join(work, 'kill');
  // Killed after step 3: the newest state is step 2's, in the middle of epoch 1.
  const proc = start(cwd, trainArgs(RUN_A), '3');
  await waitForHold(proc, 3);
  proc.child.kill('SIGKILL');
  const killed = await proc.done;
  assert.equal(killed.signal, 'SIGKILL');
  const at = newestState(cwd)!.state;
  assert.deepEqual({ epoch: at.progress.epoch, steps: at.progress.steps, nextBatch: at.progress.nextBatch }, { epoch: 1, steps: 2, nextBatch: 2 });
  assert.notEqual(at.progress.order, null);

  const resumed = await cli(cwd, ['train', '--resume', at.run.runName]);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, new RegExp(`resuming ${at.run.runName} from .*snapshot-\\d+: epoch 1, step ${at.progress.steps}`));
  assertSameRun(outcome(cwd), runA);
  assert.ok(outcome(cwd).log.lines.some((l) => l.startsWith('resumed from ')));
  // TensorBoard: the resumed writer starts with a restart at the step after the saved state, so the loss curve
  // has each step once, with the uninterrupted run's values.
  const events = (dir: string) => collectRunData(resolveRun({ logsDir: path.join(dir, 'logs'), runsDir: path.join(dir, 'runs') }));
  // (One file when the resumed run started within the same second as the killed one: it appends to it.)
  const files = resolveRun({ logsDir: path.join(cwd, 'logs'), runsDir: path.join(cwd, 'runs') }).eventFiles;
  assert.deepEqual(files.flatMap((f) => readEventFile(f).restarts.map((r) => r.step)), [at.progress.steps + 1]);
  const got = events(cwd).lossPerStep;
  const want = events(path.join(work, 'a')).lossPerStep;
  assert.deepEqual(got.steps, want.steps);
  assert.ok(maxAbsDiff(got.values as number[], want.values as number[]) <= 1e-5, 'loss per step');
});

test('SIGTERM: finishes the step, saves, exits 143; --resume latest ends like the uninterrupted run', { timeout: 120_000 }, async () => {
  const cwd = path.join(work, 'term');
  // Step 8 is the second step of epoch 2.
  const proc = start(cwd, trainArgs(RUN_A), '8');
  await waitForHold(proc, 8);
  proc.child.kill('SIGTERM');
  const r = await proc.done;
  assert.equal(r.code, 143, r.stderr);
  assert.match(r.stderr, /stopped by SIGTERM after step \d+ \(epoch 2\); the state is saved in .*snapshot-\d+\. Resume with: t5cls train --resume \S+/);
  const at = newestState(cwd)!.state;
  assert.equal(at.reason, 'interrupt');
  assert.deepEqual({ epoch: at.progress.epoch, steps: at.progress.steps, nextBatch: at.progress.nextBatch }, { epoch: 2, steps: 8, nextBatch: 2 });

  const resumed = await cli(cwd, ['train', '--resume', 'latest']);
  assert.equal(resumed.code, 0, resumed.stderr);
  assertSameRun(outcome(cwd), runA);
});

test('Adafactor schedule, weighted sampler, accumulation: SIGINT exits 130 and the printed command resumes exactly', { timeout: 150_000 }, async () => {
  const base = await baseB;
  assert.equal(base.code, 0, base.stderr);
  runB = outcome(path.join(work, 'b'));
  assert.equal(runB.state.progress.steps, 6);

  const cwd = path.join(work, 'int');
  // 3 steps per epoch: step 4 is the first of epoch 2.
  const proc = start(cwd, trainArgs(RUN_B), '4');
  await waitForHold(proc, 4);
  proc.child.kill('SIGINT');
  const r = await proc.done;
  assert.equal(r.code, 130, r.stderr);
  assert.match(r.stderr, /SIGINT: finishing the current step and saving the state/);
  const command = /Resume with: t5cls (train --resume \S+)/.exec(r.stderr)![1].split(' ');
  const at = newestState(cwd)!.state;
  assert.equal(at.reason, 'interrupt');
  assert.deepEqual({ epoch: at.progress.epoch, steps: at.progress.steps, nextBatch: at.progress.nextBatch }, { epoch: 2, steps: 4, nextBatch: 2 });

  const resumed = await cli(os.tmpdir(), command);
  assert.equal(resumed.code, 0, resumed.stderr);
  assertSameRun(outcome(cwd), runB);
});

test('a second SIGINT ends the process at once; the state on disk still loads', { timeout: 120_000 }, async () => {
  const cwd = path.join(work, 'int2');
  // The run is still busy at step 2 (it holds there, as a long step would) when the second SIGINT comes.
  const proc = start(cwd, trainArgs(['--save-every-steps', '1', '--learning-rate', '1e-3']), '2:until-killed');
  await waitForHold(proc, 2);
  proc.child.kill('SIGINT');
  await waitFor(proc, 'the SIGINT notice', () => (/SIGINT: finishing/.test(proc.stderr()) ? true : undefined));
  proc.child.kill('SIGINT');
  const r = await proc.done;
  // Ended by the signal itself (a process that finished its step first would exit with a code instead).
  assert.equal(r.signal, 'SIGINT', `killed by the second SIGINT (exit ${r.code}):\n${r.stderr}`);
  const loaded = loadTrainState(runDirOf(cwd)!);
  try {
    assert.equal(loaded.state.progress.steps, 1);
    const weights = readSafetensorsFile(path.join(loaded.snapshotDir, 'model.safetensors')).tensors;
    assert.deepEqual(weights.get('shared.weight')!.shape, [32128, 64]);
  } finally {
    tf.dispose([...loaded.optimizer.values()]);
  }
});

test('--resume refuses changed training options and finished runs', { timeout: 60_000 }, async () => {
  const cwd = path.join(work, 'a');
  const changed = await cli(cwd, ['train', '--resume', 'latest', '--learning-rate', '1']);
  assert.equal(changed.code, 2);
  assert.match(changed.stderr, /--resume continues a run with the options it was started with; --learning-rate was 0\.01 in that run, not 1 \(options that may change: /);
  const finished = await cli(cwd, ['train', '--resume', 'latest']);
  assert.equal(finished.code, 2);
  assert.match(finished.stderr, /the run t5-tiny-scratch_\S+ has finished \(2 epochs, 12 steps\); nothing to resume/);
  // The command that started the run with --resume appended: its options are the run's own, so they pass (and the
  // finished run is what stops it); a changed one among them is named with both values.
  const again = await cli(cwd, [...trainArgs(RUN_A), '--resume', 'latest']);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /has finished \(2 epochs, 12 steps\); nothing to resume/);
  const oneChanged = await cli(cwd, [...trainArgs(RUN_A), '--seed', '4', '--resume', 'latest']);
  assert.match(oneChanged.stderr, /--seed was 3 in that run, not 4/);
  assert.doesNotMatch(oneChanged.stderr, /--batch-size|--learning-rate was/);
  const missing = await cli(cwd, ['train', '--resume', 'no-such-run']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /--resume no-such-run: no such folder/);
});

test('a failed state write names what failed and leaves the previous state intact', { timeout: 120_000 }, async () => {
  const cwd = path.join(work, 'blocked');
  // Held after step 3 (step 2's state is saved); SIGTERM then makes it save step 3's state.
  const proc = start(cwd, trainArgs(RUN_A), '3');
  await waitForHold(proc, 3);
  const first = newestState(cwd)!;
  // A file where the next snapshot folder must go: the rename into place fails (root ignores permissions).
  fs.writeFileSync(path.join(path.dirname(first.dir), 'snapshot-000002'), 'in the way');
  proc.child.kill('SIGTERM');
  const r = await proc.done;
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /could not save the training state \S+snapshot-000002: ENOTDIR.*; the previous state \S+snapshot-000001 is intact/);
  const left = fs.readdirSync(path.dirname(first.dir)).sort();
  assert.deepEqual(left, ['snapshot-000001', 'snapshot-000002', 'tokenizer'], 'no partial folder left');
  const loaded = loadTrainState(path.dirname(first.dir));
  tf.dispose([...loaded.optimizer.values()]);
  assert.equal(loaded.state.progress.steps, 2);

  fs.writeFileSync(path.join(work, 'a-file'), '');
  const noDir = await cli(path.join(work, 'blocked2'), trainArgs(['--runs-dir', path.join(work, 'a-file/runs')]));
  assert.equal(noDir.code, 1);
  assert.match(noDir.stderr, /cannot create the run folder \S+a-file\/runs\/t5-tiny-scratch_\S+: ENOTDIR/);
});

// ---- in process ----

test('globalNorm is the square root of the sum of all squared entries', () => {
  const grads = [tf.tensor1d([3, 4]), tf.tensor2d([[12]]), tf.tensor1d([])];
  assert.equal(globalNorm(grads), 13);
  assert.equal(globalNorm([tf.tensor1d([1, NaN])]), NaN);
  assert.equal(globalNorm([tf.tensor1d([1, Infinity])]), Infinity);
  tf.dispose(grads);
});

function smallModel(seed: number): T5ForConditionalGeneration {
  return new T5ForConditionalGeneration(new T5Config({ ...NAMED_CONFIGS.tiny, vocab_size: 64, dropout_rate: 0 }), { seed });
}

function sgdStep(model: T5ForConditionalGeneration, optimizer: tf.Optimizer, k: number): void {
  const ids = [[5 + k, 9, 13, 1], [7, 11 + k, 1, 0]];
  const { value, grads } = tf.variableGrads(
    () => model.forward({ inputIds: ids, attentionMask: [[1, 1, 1, 1], [1, 1, 1, 0]], labels: [[20 + k, 1], [30, 1]] }).loss!,
    [...model.namedParameters().values()],
  );
  optimizer.applyGradients(grads);
  tf.dispose([value, ...Object.values(grads)]);
}

function stateToSave(): TrainStateToSave {
  const progress = { epoch: 1, order: null, nextBatch: 0, steps: 2, lossSum: 0, lossCount: 0, correct: 0, seen: 0, currentLr: 0, bestMacroF1: -1, epochsWithoutGain: 0, epochs: [], stoppedEarly: false };
  return {
    format: 't5cls-train-state', version: 1, savedAt: new Date().toISOString(), reason: 'steps',
    run: { runName: 'r', modelName: 'm', runTime: 't', weightsDir: '.', logFile: 'l', tensorboardDir: 'tb' },
    record: {}, options: {} as TrainOptions, classNames: ['a'], dataFingerprint: '', rng: { algorithm: 'xoshiro128**', s: [1, 2, 3, 4] },
    dropout: { seed: 1, counter: 0 }, optimizer: { kind: 'adamw' }, progress,
  };
}

for (const kind of ['adamw', 'adafactor'] as const) {
  test(`${kind} state moves into a new model instance and continues exactly`, async () => {
    const dir = fs.mkdtempSync(path.join(work, 'opt-'));
    const make = () => (kind === 'adamw' ? new AdamW({ lr: 1e-2, weightDecay: 0.01 }) : new Adafactor({ lr: null, warmupInit: true }));
    const original = smallModel(11);
    const opt1 = make();
    sgdStep(original, opt1, 0);
    sgdStep(original, opt1, 1);
    await saveTrainState(dir, { ...stateToSave(), optimizer: { kind } }, original, opt1);
    const loaded = loadTrainState(dir);
    const copy = T5ForConditionalGeneration.fromPretrained(loaded.snapshotDir);
    const opt2 = make();
    await restoreOptimizerState(opt2, loaded.optimizer, loaded.state.optimizer.order, copy, dir);
    tf.dispose([...loaded.optimizer.values()]);
    const a = original.namedParameters();
    const b = copy.namedParameters();
    assert.notEqual(a.get('shared.weight')!.name, b.get('shared.weight')!.name, 'the copy has its own variable names');
    assert.deepEqual(loaded.state.optimizer.order, [...a.keys()], 'state order: first-update order');
    sgdStep(original, opt1, 2);
    sgdStep(copy, opt2, 2);
    for (const [name, v] of a) assert.equal(maxAbsDiff(v.dataSync(), b.get(name)!.dataSync()), 0, name);
    if (opt1 instanceof Adafactor && opt2 instanceof Adafactor) {
      assert.equal(opt2.lastLr, opt1.lastLr);
      assert.equal(opt2.stepOf(b.get('shared.weight')!.name), 3);
    }
    for (const x of [original, copy, opt1, opt2]) x.dispose();
  });
}

test('saveTrainState: a write that fails keeps the previous snapshot and removes its temp folder', async () => {
  const dir = fs.mkdtempSync(path.join(work, 'st-'));
  const model = smallModel(3);
  const opt = new AdamW({ lr: 1e-3 });
  sgdStep(model, opt, 0);
  const first = await saveTrainState(dir, stateToSave(), model, opt);
  assert.equal(path.basename(first), 'snapshot-000001');
  const before = fs.readFileSync(path.join(first, 'model.safetensors'));
  fs.mkdirSync(path.join(dir, 'snapshot-000002'));
  fs.writeFileSync(path.join(dir, 'snapshot-000002/keep'), 'not empty');
  await assert.rejects(saveTrainState(dir, stateToSave(), model, opt), (e: Error) =>
    /could not save the training state \S+snapshot-000002: ENOTEMPTY.*; the previous state \S+snapshot-000001 is intact/.test(e.message),
  );
  assert.deepEqual(fs.readdirSync(dir).sort(), ['snapshot-000001', 'snapshot-000002']);
  assert.ok(before.equals(fs.readFileSync(path.join(first, 'model.safetensors'))));
  fs.rmSync(path.join(dir, 'snapshot-000002'), { recursive: true });
  const next = await saveTrainState(dir, stateToSave(), model, opt);
  assert.equal(path.basename(next), 'snapshot-000002');
  assert.deepEqual(fs.readdirSync(dir), ['snapshot-000002'], 'the older snapshot goes once the new one is complete');
  model.dispose();
  opt.dispose();
});

/** sqrt at 0 has an infinite derivative: added as 0·Σ sqrt(w − w), the loss is unchanged and its gradient is NaN. */
class NanGradientFrom extends T5ForConditionalGeneration {
  private calls = 0;
  constructor(config: T5Config, private readonly fromCall: number) {
    super(config, { seed: 1 });
  }
  override forward(args: ForwardArgs): ForwardOutput {
    const out = super.forward(args);
    if (++this.calls < this.fromCall || !out.loss) return out;
    const w = this.namedParameters().get('decoder.final_layer_norm.weight')!;
    return { ...out, loss: tf.add(out.loss, tf.mul(tf.sum(tf.sqrt(tf.sub(w, w))), 0)) as tf.Scalar };
  }
}

test('a non-finite gradient with a finite loss stops training, naming the step, the checkpoint and the state', { timeout: 120_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(work, 'nangrad-'));
  const read = (split: string, n: number) => {
    const texts = fs.readFileSync(path.join(TWEETEVAL_SLICE, `emotion/${split}_text.txt`), 'utf-8').split('\n').slice(0, n);
    const labels = fs.readFileSync(path.join(TWEETEVAL_SLICE, `emotion/${split}_labels.txt`), 'utf-8').split('\n').slice(0, n).map(Number);
    return texts.map((text, i) => ({ text, label: labels[i] }));
  };
  const tokenizer = await T5Tokenizer.fromPretrained(TOKENIZER_DIR);
  const model = new NanGradientFrom(new T5Config({ ...NAMED_CONFIGS.tiny, vocab_size: 32128 }), 7);
  const stateDir = path.join(dir, 'tb/state');
  const options: TrainOptions = {
    epochs: 2, batchSize: 4, evalBatchSize: 8, learningRate: 1e-2, lrWarmupSteps: 0, weightDecay: 0, useAdafactor: false,
    useAdafactorSchedule: false, useWeightedRandomSampler: false, gradientAccumulationSteps: 1, saveEverySteps: 2, seed: 1,
    prefixText: 'emotion: ', maxSourceLength: 64, quiet: true,
  };
  await assert.rejects(
    runTraining({
      model, tokenizer, train: read('train', 16), validation: read('val', 4), classNames: ['anger', 'joy', 'optimism', 'sadness'], options,
      modelName: 'm', runTime: 't', weightsDir: path.join(dir, 'weights'), logFile: path.join(dir, 'log.txt'),
      tensorboardDir: path.join(dir, 'tb'), record: { seed: 1 }, stateDir, say: () => {},
    }),
    (e: Error) => {
      // 4 steps per epoch; states after steps 2, 4 (epoch end) and 6; forward call 7 is step 7.
      assert.match(e.message, /^training stopped: the gradient norm is NaN at epoch 2, step 7; the last good checkpoint is \S+\/weights\/m-t-epoch1; the last saved state is \S+snapshot-000003$/);
      return true;
    },
  );
  const loaded = loadTrainState(stateDir);
  tf.dispose([...loaded.optimizer.values()]);
  assert.equal(loaded.state.progress.steps, 6);
  for (const [name, t] of readSafetensorsFile(path.join(loaded.snapshotDir, 'model.safetensors')).tensors) {
    assert.ok(t.data.every(Number.isFinite), `${name} is finite`);
  }
  assert.ok(fs.existsSync(path.join(dir, 'weights/m-t-epoch1/model.safetensors')));
  model.dispose();
});

test(`${HOLD_ENV}: a step number, optionally ":until-killed"; anything else is refused naming the variable`, () => {
  assert.equal(stepHoldFromEnv({}), undefined);
  assert.deepEqual(stepHoldFromEnv({ [HOLD_ENV]: '12' }), { step: 12, untilKilled: false });
  assert.deepEqual(stepHoldFromEnv({ [HOLD_ENV]: '3:until-killed' }), { step: 3, untilKilled: true });
  for (const bad of ['0', 'x', '3:forever', '-1']) {
    assert.throws(() => stepHoldFromEnv({ [HOLD_ENV]: bad }), new RegExp(`^UsageError: ${HOLD_ENV}="${bad}": expected a step number`));
  }
});

test('--resume latest finds the newest run of its own kind: train never picks a pretraining run, nor pretrain a training run', () => {
  const runsDir = fs.mkdtempSync(path.join(os.tmpdir(), 't5cls-kinds-'));
  const write = (run: string, format: string, savedAt: string) => {
    const dir = path.join(runsDir, run, STATE_DIR, snapshotName(1));
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, STATE_FILE), JSON.stringify({ format, version: 1, savedAt }));
  };
  write('train-old', 't5cls-train-state', '2030-01-01T00:00:00.000Z');
  write('pretrain-new', PRETRAIN_STATE_FORMAT, '2030-01-02T00:00:00.000Z');
  assert.equal(resolveResumeTarget(true, runsDir), path.join(runsDir, 'train-old', STATE_DIR));
  assert.equal(resolveResumeTarget('latest', runsDir, PRETRAIN_STATE_FORMAT), path.join(runsDir, 'pretrain-new', STATE_DIR));
  fs.rmSync(path.join(runsDir, 'train-old'), { recursive: true });
  assert.throws(() => resolveResumeTarget(true, runsDir), /^UsageError: --resume: no saved training state under /);
  fs.rmSync(runsDir, { recursive: true, force: true });
});

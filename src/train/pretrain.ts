/**
 * Continued pretraining on unlabeled text with T5's span-corruption objective (src/data/span_corruption.ts): one
 * visible loop of corrupt → forward → backward → optimizer step, a held-out denoising loss and span-token accuracy
 * every N steps, and an HF-layout checkpoint at the end (or when stopped by Ctrl-C / SIGTERM) that `train --model`
 * loads. A resumable state (train/state.ts, in the run's folder) is written every `saveEverySteps` steps, after
 * each epoch and when stopped; a resumed run continues exactly as if it had never stopped.
 */
import { DropoutStream } from '../model/dropout_stream.js';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tf } from '../tf.js';
import type { T5ForConditionalGeneration } from '../model/modeling_t5.js';
import type { T5Tokenizer } from '../tokenizer/index.js';
import {
  corruptSpans,
  packSequences,
  randomSpansNoiseMask,
  spanCorruptionLengths,
  type CorruptedExample,
  type SpanCorruptionOptions,
} from '../data/span_corruption.js';
import { chunk } from '../data/batches.js';
import { Progress } from '../progress.js';
import { T5clsError, UsageError } from '../errors.js';
import { Rng, type RngState } from '../random.js';
import { randomPermutation } from './sampler.js';
import { removePartials, restoreOptimizerState, saveRunState, saveRunTokenizer, type LoadedRunState, type RunStateBase } from './state.js';
import { holdAtStep, stepHoldFromEnv } from './hold.js';
import { RunLog } from './run_log.js';
import { SummaryWriter } from './tensorboard.js';
import { saveCheckpoint } from './checkpoint.js';
import { makeOptimizer, optimizerStep } from './step.js';
import { shellQuote, TrainingInterrupted, watchStopSignals } from './stop_signals.js';
import type { TrainOptions } from './types.js';

/** The training options pretraining shares with `train`, plus its own. */
export interface PretrainOptions
  extends
    SpanCorruptionOptions,
    Pick<
      TrainOptions,
      | 'maxSteps'
      | 'batchSize'
      | 'evalBatchSize'
      | 'learningRate'
      | 'lrWarmupSteps'
      | 'weightDecay'
      | 'useAdafactor'
      | 'adafactorScaleParameter'
      | 'seed'
      | 'quiet'
    > {
  /** Tokens of every corrupted input (EOS included). */
  inputLength: number;
  /** Passes over the texts; undefined: as many as `maxSteps` takes (HF's max_steps without num_train_epochs), else one. */
  epochs?: number;
  maxMinutes?: number;
  /** Evaluate on the held-out sequences every N optimizer steps (and after the last step). */
  evalEverySteps: number;
  /** Share of the texts held out for evaluation (at least one sequence's worth). */
  heldOutShare: number;
  /** Also write the resumable state every N optimizer steps (it is always written after each epoch and when stopped). */
  saveEverySteps?: number;
}

export const PRETRAIN_STATE_FORMAT = 't5cls-pretrain-state';
export const PRETRAIN_STATE_KEYS = ['run', 'record', 'options', 'textsFingerprint', 'dropout', 'optimizer', 'progress'];

/** Where a pretraining run stands; enough to continue exactly. */
export interface PretrainProgress {
  /** The epoch in progress (its order and masking are drawn again from `rng`). */
  epoch: number;
  /** Batches of that epoch already trained on. */
  nextBatch: number;
  /** Optimizer steps done in the whole run. */
  steps: number;
  /** The generator as it was when the epoch in progress drew its order and masking. */
  rng: RngState;
  heldOut?: HeldOutMetrics;
}

export interface PretrainStateFile extends RunStateBase {
  format: typeof PRETRAIN_STATE_FORMAT;
  reason: 'steps' | 'epoch' | 'interrupt' | 'end';
  run: { runName: string; modelName: string; runTime: string; checkpointDir: string; logFile: string; tensorboardDir: string };
  /** Every option of the command, as logged. */
  record: Record<string, unknown>;
  options: PretrainOptions;
  /** sha256 of the texts, so a resumed run can tell that its text changed. */
  textsFingerprint: string;
  dropout: { seed: number; counter: number };
  progress: PretrainProgress;
}

export interface PretrainJob {
  model: T5ForConditionalGeneration;
  tokenizer: T5Tokenizer;
  texts: string[];
  options: PretrainOptions;
  modelName: string;
  runName: string;
  checkpointDir: string;
  logFile: string;
  tensorboardDir: string;
  record: Record<string, unknown>;
  runTime: string;
  /** Where the resumable state goes (`<runs-dir>/<run>/state`). */
  stateDir: string;
  /** The state to continue from. */
  resume?: LoadedRunState<PretrainStateFile>;
  say: (line: string) => void;
}

export function textsFingerprint(texts: string[]): string {
  const h = createHash('sha256');
  h.update(`${texts.length}\n`);
  for (const t of texts) h.update(`${JSON.stringify(t)}\n`);
  return h.digest('hex');
}

export interface HeldOutMetrics {
  loss: number;
  /** Share of the corrupted spans' tokens (not sentinels or EOS) that are the argmax under teacher forcing. */
  tokenAccuracy: number;
}

export interface PretrainResult {
  steps: number;
  checkpoint: string;
  heldOut: HeldOutMetrics | undefined;
}

/** Texts → packed raw sequences, split into training and held-out ones (whole texts held out, the last ones). */
export function pretrainSequences(
  tokenizer: T5Tokenizer,
  texts: string[],
  o: PretrainOptions,
): { train: number[][]; heldOut: number[][]; rawLength: number; targetLength: number } {
  const { rawLength, targetLength } = spanCorruptionLengths(o.inputLength, o);
  const ids = texts.map((t) => tokenizer.encode(t));
  const total = ids.reduce((n, t) => n + t.length, 0);
  let heldOutTexts = 0;
  let heldOutTokens = 0;
  const wanted = Math.max(rawLength, Math.round(total * o.heldOutShare));
  while (heldOutTokens < wanted && heldOutTexts < ids.length - 1) heldOutTokens += ids[ids.length - 1 - heldOutTexts++]!.length;
  const train = packSequences(ids.slice(0, ids.length - heldOutTexts), rawLength);
  const heldOut = packSequences(ids.slice(ids.length - heldOutTexts), rawLength);
  if (train.length === 0 || heldOut.length === 0) {
    throw new UsageError(
      `too little text: ${total} tokens in ${texts.length} texts make ${train.length} training and ${heldOut.length} held-out ` +
        `sequences of ${rawLength} tokens ` +
        `(--max-source-length ${o.inputLength}); give more text or a smaller --max-source-length`,
    );
  }
  return { train, heldOut, rawLength, targetLength };
}

function corruptRows(rows: number[][], o: PretrainOptions, tokenizer: T5Tokenizer, rng: Rng): CorruptedExample[] {
  return rows.map((row) =>
    corruptSpans(row, randomSpansNoiseMask(row.length, o, rng), (k) => tokenizer.sentinelId(k), tokenizer.eosTokenId),
  );
}

function batchTensors(examples: CorruptedExample[]): { inputIds: tf.Tensor2D; labels: tf.Tensor2D } {
  return {
    inputIds: tf.tensor2d(
      examples.map((e) => e.inputIds),
      undefined,
      'int32',
    ),
    labels: tf.tensor2d(
      examples.map((e) => e.labels),
      undefined,
      'int32',
    ),
  };
}

/**
 * Mean denoising loss (over all target tokens) and span-token accuracy over held-out examples, dropout off.
 * `isSpanToken` tells the spans' own tokens from sentinels and EOS.
 */
export function evaluateDenoising(
  model: T5ForConditionalGeneration,
  examples: CorruptedExample[],
  batchSize: number,
  isSpanToken: (id: number) => boolean,
): HeldOutMetrics {
  let lossSum = 0;
  let targetTokens = 0;
  let hits = 0;
  let spanTokens = 0;
  for (const batch of chunk(examples, batchSize)) {
    const t = batchTensors(batch);
    const [loss, predicted] = tf.tidy(() => {
      const out = model.forward({ inputIds: t.inputIds, labels: t.labels });
      return [out.loss!, tf.cast(tf.argMax(out.logits, -1), 'int32')];
    });
    lossSum += loss.dataSync()[0]! * t.labels.size;
    targetTokens += t.labels.size;
    const pred = predicted.dataSync();
    batch
      .flatMap((e) => e.labels)
      .forEach((id, i) => {
        if (!isSpanToken(id)) return;
        spanTokens++;
        if (pred[i] === id) hits++;
      });
    tf.dispose([loss, predicted, t.inputIds, t.labels]);
  }
  return { loss: lossSum / targetTokens, tokenAccuracy: spanTokens ? hits / spanTokens : 0 };
}

export async function runPretraining(job: PretrainJob): Promise<PretrainResult> {
  const { model, tokenizer, options: o, say } = job;
  const { train, heldOut, rawLength, targetLength } = pretrainSequences(tokenizer, job.texts, o);
  const fingerprint = textsFingerprint(job.texts);
  const rng = new Rng(o.seed);
  // The held-out masking is drawn once, from its own seed, so evaluations are comparable across steps.
  const heldOutExamples = corruptRows(heldOut, o, tokenizer, new Rng(o.seed + 1));
  const firstSentinel = tokenizer.vocabSize - tokenizer.extraIds;
  const isSpanToken = (id: number) => id !== tokenizer.eosTokenId && id < firstSentinel;
  const { optimizer, baseLr } = makeOptimizer({ ...o, useAdafactorSchedule: false });
  const params = [...model.namedParameters().values()];
  const stepsPerEpoch = Math.ceil(train.length / o.batchSize);
  const epochs = o.epochs ?? (o.maxSteps !== undefined ? Math.ceil(o.maxSteps / stepsPerEpoch) : 1);
  const totalSteps = Math.min(o.maxSteps ?? Infinity, stepsPerEpoch * epochs);
  const deadline = o.maxMinutes !== undefined ? Date.now() + o.maxMinutes * 60_000 : Infinity;
  const hold = stepHoldFromEnv();
  let at: PretrainProgress = { epoch: 1, nextBatch: 0, steps: 0, rng: rng.getState() };
  let dropout: DropoutStream;
  if (job.resume) {
    const { state, snapshotDir } = job.resume;
    if (state.textsFingerprint !== fingerprint)
      throw new UsageError(
        `--resume ${snapshotDir}: the text differs from the text the run started with (${[state.record.from].flat().join(', ')})`,
      );
    await restoreOptimizerState(optimizer, job.resume.optimizer, state.optimizer.order, model, snapshotDir);
    dropout = new DropoutStream(state.dropout.seed, state.dropout.counter);
    at = state.progress;
    removePartials(job.stateDir);
  } else {
    dropout = new DropoutStream(o.seed);
  }
  const log = new RunLog(job.logFile);
  // A resumed run logs again from the step after its saved state: TensorBoard drops what the stopped run logged there.
  const tb = new SummaryWriter(job.tensorboardDir, job.resume ? { purgeStep: at.steps + 1 } : {});
  const stop = watchStopSignals(say);
  let lastState: string | undefined;
  const saveState = async (reason: PretrainStateFile['reason'], progress: PretrainProgress) => {
    await saveRunTokenizer(job.stateDir, tokenizer);
    lastState = await saveRunState<PretrainStateFile>(
      job.stateDir,
      {
        format: PRETRAIN_STATE_FORMAT,
        version: 1,
        savedAt: new Date().toISOString(),
        reason,
        run: {
          runName: job.runName,
          modelName: job.modelName,
          runTime: job.runTime,
          checkpointDir: job.checkpointDir,
          logFile: job.logFile,
          tensorboardDir: job.tensorboardDir,
        },
        record: job.record,
        options: o,
        textsFingerprint: fingerprint,
        dropout: dropout.state(),
        optimizer: { kind: o.useAdafactor ? 'adafactor' : 'adamw' },
        progress,
      },
      model,
      optimizer,
    );
  };
  if (job.resume) log.line(`resumed from ${job.resume.snapshotDir}: epoch ${at.epoch}, step ${at.steps}`);
  else log.options(job.record);
  say(
    `pretraining ${job.modelName}: ${train.length} sequences of ${rawLength} tokens → inputs of ${o.inputLength}, targets of ` +
      `${targetLength}; ` +
      `${heldOut.length} held out; ${stepsPerEpoch} steps per epoch`,
  );
  let steps = at.steps;
  let heldOutMetrics = at.heldOut;
  const failNonFinite = (what: string, value: number): never => {
    const kept = lastState ? `; the last state is ${lastState}` : '; nothing of this run was saved';
    throw new T5clsError(`pretraining stopped: the ${what} is ${value} at step ${steps + 1}${kept}`, 1);
  };
  const evaluate = () => {
    heldOutMetrics = evaluateDenoising(model, heldOutExamples, o.evalBatchSize, isSpanToken);
    tb.addScalar('heldout/loss', heldOutMetrics.loss, steps);
    tb.addScalar('heldout/token_accuracy', heldOutMetrics.tokenAccuracy, steps);
    const line =
      `step ${steps}: held-out loss ${heldOutMetrics.loss.toFixed(4)}, span-token accuracy ` + `${heldOutMetrics.tokenAccuracy.toFixed(4)}`;
    log.line(line);
    say(line);
  };
  let stoppedBy: 'SIGINT' | 'SIGTERM' | undefined;
  try {
    if (steps < totalSteps) {
      rng.setState(at.rng);
      outer: for (let epoch = at.epoch; epoch <= epochs; epoch++) {
        // A new order and a new masking every epoch, drawn from the generator as it stands at the epoch's start.
        const epochRng = rng.getState();
        const order = randomPermutation(train.length, rng);
        const batches = chunk(
          corruptRows(
            order.map((i) => train[i]!),
            o,
            tokenizer,
            rng,
          ),
          o.batchSize,
        );
        const first = epoch === at.epoch ? at.nextBatch : 0;
        const bar = new Progress({
          label: `pretrain epoch ${epoch}/${epochs}`,
          total: Math.min(batches.length - first, totalSteps - steps),
          quiet: o.quiet,
        });
        for (let b = first; b < batches.length; b++) {
          const t = batchTensors(batches[b]!);
          const { value, grads } = tf.variableGrads(
            () => model.forward({ inputIds: t.inputIds, labels: t.labels, training: dropout }).loss!,
            params,
          );
          const loss = value.dataSync()[0]!;
          tf.dispose([value, t.inputIds, t.labels]);
          if (!Number.isFinite(loss)) {
            tf.dispose(Object.values(grads));
            failNonFinite('loss', loss);
          }
          const { gradNorm, lr } = optimizerStep(optimizer, baseLr, o.lrWarmupSteps, grads, steps, failNonFinite);
          steps++;
          tb.addScalar('train/loss_step', loss, steps);
          tb.addScalar('train/grad_norm', gradNorm, steps);
          if (lr !== undefined) tb.addScalar('train/learning_rate', lr, steps);
          bar.tick(1, { loss });
          await new Promise<void>((resolve) => setImmediate(resolve));
          await holdAtStep(hold, steps, () => stop.signal !== undefined, say);
          const last = steps >= totalSteps || Date.now() >= deadline || stop.signal !== undefined;
          if (steps % o.evalEverySteps === 0 || last) evaluate();
          const here: PretrainProgress = { epoch, nextBatch: b + 1, steps, rng: epochRng, heldOut: heldOutMetrics };
          if (b + 1 === batches.length) {
            // The epoch is done: the next one starts from the generator as it is now.
            await saveState(last ? (stop.signal ? 'interrupt' : 'end') : 'epoch', {
              ...here,
              epoch: epoch + 1,
              nextBatch: 0,
              rng: rng.getState(),
            });
          } else if (last) {
            await saveState(stop.signal ? 'interrupt' : 'end', here);
          } else if (o.saveEverySteps !== undefined && steps % o.saveEverySteps === 0) {
            await saveState('steps', here);
          }
          if (stop.signal) stoppedBy = stop.signal;
          if (last) {
            bar.done();
            break outer;
          }
        }
        bar.done();
      }
    }
    const meta = {
      format: 't5cls-checkpoint' as const,
      version: 1 as const,
      baseModel: job.modelName,
      runName: job.runName,
      epoch: Math.ceil(steps / stepsPerEpoch),
      step: steps,
      prefixText: '',
      maxSourceLength: o.inputLength,
      classesMap: {},
      options: { objective: 'span-corruption', ...job.record },
      metrics: (heldOutMetrics
        ? { heldout_loss: heldOutMetrics.loss, heldout_token_accuracy: heldOutMetrics.tokenAccuracy }
        : {}) as Record<string, number>,
      createdAt: new Date().toISOString(),
    };
    // The finished run's model takes the run's checkpoint name; a stopped run's (and one a later session of the run
    // finishes, when that name is taken) carries its step, so that no checkpoint is ever overwritten.
    const finished = stoppedBy === undefined && steps >= totalSteps;
    const atStep = `${job.checkpointDir}-step${steps}`;
    const checkpoint = finished && !fs.existsSync(job.checkpointDir) ? job.checkpointDir : atStep;
    await saveCheckpoint(checkpoint, model, tokenizer, meta);
    log.line(`saved checkpoint ${checkpoint} after step ${steps}`);
    say(`saved checkpoint ${checkpoint} (step ${steps}); fine-tune it with: t5cls train --model ${checkpoint}`);
    if (stoppedBy) {
      const command = `t5cls pretrain --resume ${shellQuote(job.stateDir)}`;
      log.line(`stopped by ${stoppedBy} after step ${steps}; resume with: ${command}`);
      throw new TrainingInterrupted(
        stoppedBy,
        checkpoint,
        `stopped by ${stoppedBy} after step ${steps}; the model is saved in ${checkpoint} and the state in ${lastState}. ` +
          `Resume with: ${command}`,
      );
    }
    return { steps, checkpoint, heldOut: heldOutMetrics };
  } finally {
    stop.dispose();
    tb.close();
    optimizer.dispose();
  }
}

/** Where a pretraining run's checkpoint goes: `<weights>/<model>-pretrained-<time>`. */
export function pretrainCheckpointDir(weightsDir: string, modelName: string, runTime: string): string {
  return path.join(weightsDir, `${modelName}-pretrained-${runTime}`);
}

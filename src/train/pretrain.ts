/**
 * Continued pretraining on unlabeled text with T5's span-corruption objective (src/data/span_corruption.ts): one
 * visible loop of corrupt → forward → backward → optimizer step, a held-out denoising loss and span-token accuracy
 * every N steps, and an HF-layout checkpoint at the end (or when stopped by Ctrl-C / SIGTERM) that `train --model`
 * loads.
 */
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
import { randomPermutation, Rng } from './sampler.js';
import { RunLog } from './run_log.js';
import { SummaryWriter } from './tensorboard.js';
import { saveCheckpoint } from './checkpoint.js';
import { globalNorm, makeOptimizer, scheduledLr, TrainingInterrupted, watchStopSignals } from './trainer.js';
import type { TrainOptions } from './types.js';

/** The training options pretraining shares with `train`, plus its own. */
export interface PretrainOptions
  extends SpanCorruptionOptions,
    Pick<TrainOptions, 'epochs' | 'maxSteps' | 'batchSize' | 'evalBatchSize' | 'learningRate' | 'lrWarmupSteps' | 'weightDecay' | 'useAdafactor' | 'seed' | 'quiet'> {
  /** Tokens of every corrupted input (EOS included). */
  inputLength: number;
  maxMinutes?: number;
  /** Evaluate on the held-out sequences every N optimizer steps (and after the last step). */
  evalEverySteps: number;
  /** Share of the texts held out for evaluation (at least one sequence's worth). */
  heldOutShare: number;
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
  say: (line: string) => void;
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
export function pretrainSequences(tokenizer: T5Tokenizer, texts: string[], o: PretrainOptions): { train: number[][]; heldOut: number[][]; rawLength: number; targetLength: number } {
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
      `too little text: ${total} tokens in ${texts.length} texts make ${train.length} training and ${heldOut.length} held-out sequences of ${rawLength} tokens ` +
        `(--max-source-length ${o.inputLength}); give more text or a smaller --max-source-length`,
    );
  }
  return { train, heldOut, rawLength, targetLength };
}

function corruptRows(rows: number[][], o: PretrainOptions, tokenizer: T5Tokenizer, rng: Rng): CorruptedExample[] {
  return rows.map((row) => corruptSpans(row, randomSpansNoiseMask(row.length, o, rng), (k) => tokenizer.sentinelId(k), tokenizer.eosTokenId));
}

function batchTensors(examples: CorruptedExample[]): { inputIds: tf.Tensor2D; labels: tf.Tensor2D } {
  return {
    inputIds: tf.tensor2d(examples.map((e) => e.inputIds), undefined, 'int32'),
    labels: tf.tensor2d(examples.map((e) => e.labels), undefined, 'int32'),
  };
}

/**
 * Mean denoising loss (over all target tokens) and span-token accuracy over held-out examples, dropout off.
 * `isSpanToken` tells the spans' own tokens from sentinels and EOS.
 */
export function evaluateDenoising(model: T5ForConditionalGeneration, examples: CorruptedExample[], batchSize: number, isSpanToken: (id: number) => boolean): HeldOutMetrics {
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
    batch.flatMap((e) => e.labels).forEach((id, i) => {
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
  const rng = new Rng(o.seed);
  // The held-out masking is drawn once, from its own seed, so evaluations are comparable across steps.
  const heldOutExamples = corruptRows(heldOut, o, tokenizer, new Rng(o.seed + 1));
  const firstSentinel = tokenizer.vocabSize - tokenizer.extraIds;
  const isSpanToken = (id: number) => id !== tokenizer.eosTokenId && id < firstSentinel;
  const { optimizer, baseLr } = makeOptimizer({ ...o, useAdafactorSchedule: false });
  const params = [...model.namedParameters().values()];
  const stepsPerEpoch = Math.ceil(train.length / o.batchSize);
  const totalSteps = Math.min(o.maxSteps ?? Infinity, stepsPerEpoch * o.epochs);
  const deadline = o.maxMinutes !== undefined ? Date.now() + o.maxMinutes * 60_000 : Infinity;
  const log = new RunLog(job.logFile);
  const tb = new SummaryWriter(job.tensorboardDir);
  const stop = watchStopSignals(say);
  log.options(job.record);
  say(
    `pretraining ${job.modelName}: ${train.length} sequences of ${rawLength} tokens → inputs of ${o.inputLength}, targets of ${targetLength}; ` +
      `${heldOut.length} held out; ${stepsPerEpoch} steps per epoch`,
  );
  let steps = 0;
  let heldOutMetrics: HeldOutMetrics | undefined;
  const evaluate = () => {
    heldOutMetrics = evaluateDenoising(model, heldOutExamples, o.evalBatchSize, isSpanToken);
    tb.addScalar('heldout/loss', heldOutMetrics.loss, steps);
    tb.addScalar('heldout/token_accuracy', heldOutMetrics.tokenAccuracy, steps);
    const line = `step ${steps}: held-out loss ${heldOutMetrics.loss.toFixed(4)}, span-token accuracy ${heldOutMetrics.tokenAccuracy.toFixed(4)}`;
    log.line(line);
    say(line);
  };
  let stoppedBy: 'SIGINT' | 'SIGTERM' | undefined;
  try {
    outer: for (let epoch = 1; epoch <= o.epochs; epoch++) {
      // A new order and a new masking every epoch.
      const order = randomPermutation(train.length, rng);
      const examples = corruptRows(order.map((i) => train[i]!), o, tokenizer, rng);
      const bar = new Progress({ label: `pretrain epoch ${epoch}/${o.epochs}`, total: Math.min(stepsPerEpoch, totalSteps - steps), quiet: o.quiet });
      for (const batch of chunk(examples, o.batchSize)) {
        if (baseLr !== undefined) optimizer.lr = scheduledLr(baseLr, steps, o.lrWarmupSteps);
        const t = batchTensors(batch);
        const { value, grads } = tf.variableGrads(() => model.forward({ inputIds: t.inputIds, labels: t.labels, training: true }).loss!, params);
        const loss = value.dataSync()[0]!;
        const gradNorm = globalNorm(Object.values(grads));
        if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
          tf.dispose([value, t.inputIds, t.labels, ...Object.values(grads)]);
          throw new T5clsError(`pretraining stopped: the ${Number.isFinite(loss) ? 'gradient norm' : 'loss'} is ${Number.isFinite(loss) ? gradNorm : loss} at step ${steps + 1}; nothing of this run was saved`, 1);
        }
        optimizer.applyGradients(grads);
        tf.dispose([value, t.inputIds, t.labels, ...Object.values(grads)]);
        steps++;
        tb.addScalar('train/loss_step', loss, steps);
        tb.addScalar('train/grad_norm', gradNorm, steps);
        bar.tick(1, { loss });
        await new Promise<void>((resolve) => setImmediate(resolve));
        const last = steps >= totalSteps || Date.now() >= deadline || stop.signal !== undefined;
        if (steps % o.evalEverySteps === 0 || last) evaluate();
        if (stop.signal) stoppedBy = stop.signal;
        if (last) {
          bar.done();
          break outer;
        }
      }
      bar.done();
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
      metrics: (heldOutMetrics ? { heldout_loss: heldOutMetrics.loss, heldout_token_accuracy: heldOutMetrics.tokenAccuracy } : {}) as Record<string, number>,
      createdAt: new Date().toISOString(),
    };
    await saveCheckpoint(job.checkpointDir, model, tokenizer, meta);
    log.line(`saved checkpoint ${job.checkpointDir} after step ${steps}`);
    say(`saved checkpoint ${job.checkpointDir} (step ${steps}); fine-tune it with: t5cls train --model ${job.checkpointDir}`);
    if (stoppedBy) throw new TrainingInterrupted(stoppedBy, job.checkpointDir, `stopped by ${stoppedBy} after step ${steps}; the model is saved in ${job.checkpointDir}`);
    return { steps, checkpoint: job.checkpointDir, heldOut: heldOutMetrics };
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

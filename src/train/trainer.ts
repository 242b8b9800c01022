/**
 * The training loop: one visible loop over epochs and batches (forward, loss, backward, optimizer step), then
 * validation with greedy decoding, logging, and a checkpoint whenever dev macro-F1 improves.
 */
import * as path from 'node:path';
import { tf } from '../tf.js';
import type { T5ForConditionalGeneration } from '../model/modeling_t5.js';
import { chunk, disposeBatch, encodeClassNames, encodeExamples, trainBatch, type Example, type TokenizerLike } from '../data/batches.js';
import { predictGenerate } from '../eval/decoding.js';
import { classificationMetrics } from '../eval/metrics.js';
import { Progress } from '../progress.js';
import { Adafactor, AdamW } from './optimizers/index.js';
import { Rng, randomPermutation, weightedRandomSampler } from './sampler.js';
import { RunLog } from './run_log.js';
import { SummaryWriter } from './tensorboard.js';
import { saveCheckpoint, type SavableTokenizer } from './checkpoint.js';
import { T5clsError } from '../errors.js';

export interface TrainOptions {
  epochs: number;
  batchSize: number;
  evalBatchSize: number;
  learningRate?: number;
  lrWarmupSteps: number;
  weightDecay: number;
  useAdafactor: boolean;
  useAdafactorSchedule: boolean;
  useWeightedRandomSampler: boolean;
  gradientAccumulationSteps: number;
  earlyStoppingPatience?: number;
  maxSteps?: number;
  seed: number;
  prefixText: string;
  maxSourceLength: number;
  quiet: boolean;
}

export interface TrainJob {
  model: T5ForConditionalGeneration;
  tokenizer: TokenizerLike & SavableTokenizer;
  train: Example[];
  validation: Example[];
  classNames: string[];
  options: TrainOptions;
  /** Name of the base model (`t5-small`, a folder name, `t5-tiny-scratch`). */
  modelName: string;
  /** `<Mon DD_HH-MM-SS>` of the run's start: with the model name it names the log, TensorBoard folder and checkpoints. */
  runTime: string;
  weightsDir: string;
  logFile: string;
  tensorboardDir: string;
  /** Every option of the command, written at the top of the log and into each checkpoint. */
  record: Record<string, unknown>;
  say: (line: string) => void;
}

export interface EpochResult {
  epoch: number;
  learning_rate: number;
  train_loss: number;
  train_accuracy: number;
  dev_accuracy: number;
  dev_macro_f1: number;
  dev_micro_f1: number;
  dev_weighted_f1: number;
  dev_invalid: number;
}

export interface TrainResult {
  epochs: EpochResult[];
  bestCheckpoint?: string;
  bestMacroF1: number;
  steps: number;
  stoppedEarly: boolean;
}

export function defaultLearningRate(useAdafactor: boolean): number {
  return useAdafactor ? 1e-3 : 1e-4;
}

export function makeOptimizer(o: TrainOptions): { optimizer: Adafactor | AdamW; baseLr: number | undefined } {
  if (o.useAdafactorSchedule) {
    if (o.learningRate !== undefined) throw new T5clsError('--learning-rate cannot be combined with --use-adafactor-schedule (Adafactor sets its own rate)', 2);
    return { optimizer: new Adafactor({ lr: null, scaleParameter: true, relativeStep: true, warmupInit: true, weightDecay: o.weightDecay }), baseLr: undefined };
  }
  const lr = o.learningRate ?? defaultLearningRate(o.useAdafactor);
  if (o.useAdafactor) {
    return { optimizer: new Adafactor({ lr, scaleParameter: false, relativeStep: false, warmupInit: false, weightDecay: o.weightDecay }), baseLr: lr };
  }
  return { optimizer: new AdamW({ lr, weightDecay: o.weightDecay }), baseLr: lr };
}

/** Linear warm-up from 0 to the base rate over `warmup` steps, constant afterwards. */
export function scheduledLr(baseLr: number, step: number, warmup: number): number {
  return warmup > 0 && step < warmup ? (baseLr * (step + 1)) / warmup : baseLr;
}

export async function runTraining(job: TrainJob): Promise<TrainResult> {
  const { model, tokenizer, options: o, say } = job;
  const rng = new Rng(o.seed);
  model.dropoutSeed = o.seed;
  const classTokens = encodeClassNames(tokenizer, job.classNames);
  const trainSet = encodeExamples(tokenizer, job.train, o.prefixText, o.maxSourceLength);
  const devInputs = encodeExamples(tokenizer, job.validation, o.prefixText, o.maxSourceLength).map((e) => e.inputIds);
  const trainLabels = trainSet.map((e) => e.label);
  const { optimizer, baseLr } = makeOptimizer(o);
  const params = [...model.namedParameters().values()];
  const log = new RunLog(job.logFile);
  log.options(job.record);
  const tb = new SummaryWriter(job.tensorboardDir);
  const result: TrainResult = { epochs: [], bestMacroF1: -1, steps: 0, stoppedEarly: false };
  let epochsWithoutGain = 0;
  let currentLr = baseLr ?? 0;
  try {
    for (let epoch = 1; epoch <= o.epochs; epoch++) {
      const order = o.useWeightedRandomSampler ? weightedRandomSampler(trainLabels, rng) : randomPermutation(trainSet.length, rng);
      const batches = chunk(order, o.batchSize);
      const bar = new Progress({ label: `epoch ${epoch}/${o.epochs}`, total: order.length, quiet: o.quiet });
      let lossSum = 0;
      let lossCount = 0;
      let correct = 0;
      let seen = 0;
      let accumulated: tf.NamedTensorMap | undefined;
      let accumulatedBatches = 0;
      for (let bi = 0; bi < batches.length; bi++) {
        const batch = trainBatch(batches[bi].map((i) => trainSet[i]), classTokens, model.config.pad_token_id);
        const scale = 1 / o.gradientAccumulationSteps;
        let exact: tf.Tensor | undefined;
        const { value, grads } = tf.variableGrads(() => {
          const out = model.forward({ inputIds: batch.inputIds, attentionMask: batch.attentionMask, labels: batch.labels, training: true });
          exact = tf.keep(sequenceExactMatches(out.logits, batch.labels));
          return tf.mul(out.loss!, scale) as tf.Scalar;
        }, params);
        const loss = value.dataSync()[0] / scale;
        correct += exact!.dataSync()[0];
        tf.dispose([value, exact!]);
        disposeBatch(batch);
        if (!Number.isFinite(loss)) {
          tf.dispose(Object.values(grads));
          throw new T5clsError(
            `training stopped: the loss is ${loss} at epoch ${epoch}, step ${result.steps + 1}` +
              (result.bestCheckpoint ? `; the last good checkpoint is ${result.bestCheckpoint}` : '; no checkpoint was saved yet'),
          );
        }
        if (accumulated) {
          const sum: tf.NamedTensorMap = {};
          for (const k of Object.keys(grads)) sum[k] = tf.add(accumulated[k], grads[k]);
          tf.dispose([...Object.values(accumulated), ...Object.values(grads)]);
          accumulated = sum;
        } else accumulated = grads;
        accumulatedBatches++;
        if (accumulatedBatches === o.gradientAccumulationSteps || bi === batches.length - 1) {
          if (baseLr !== undefined) {
            currentLr = scheduledLr(baseLr, result.steps, o.lrWarmupSteps);
            optimizer.lr = currentLr;
          }
          optimizer.applyGradients(accumulated);
          tf.dispose(Object.values(accumulated));
          accumulated = undefined;
          accumulatedBatches = 0;
          result.steps++;
          if (optimizer instanceof Adafactor && baseLr === undefined) currentLr = optimizer.lastLr ?? currentLr;
          tb.addScalar('train/loss_step', loss, result.steps);
        }
        lossSum += loss * batches[bi].length;
        lossCount += batches[bi].length;
        seen += batches[bi].length;
        bar.tick(batches[bi].length, { loss: lossSum / lossCount });
        if (o.maxSteps !== undefined && result.steps >= o.maxSteps) break;
      }
      bar.done();

      const devBar = new Progress({ label: `validation ${epoch}/${o.epochs}`, total: devInputs.length, quiet: o.quiet });
      let devDone = 0;
      const preds = predictGenerate(model, tokenizer, devInputs, job.classNames, classTokens, o.evalBatchSize, (d) => {
        devBar.tick(d - devDone);
        devDone = d;
      });
      devBar.done();
      const m = classificationMetrics(job.validation.map((e) => e.label), preds.labels, job.classNames.length);
      const r: EpochResult = {
        epoch,
        learning_rate: currentLr,
        train_loss: lossSum / Math.max(1, lossCount),
        train_accuracy: correct / Math.max(1, seen),
        dev_accuracy: m.accuracy,
        dev_macro_f1: m.macroF1,
        dev_micro_f1: m.microF1,
        dev_weighted_f1: m.weightedF1,
        dev_invalid: m.invalid,
      };
      result.epochs.push(r);
      log.epoch(epoch, { ...r });
      for (const key of ['learning_rate', 'train_loss', 'train_accuracy', 'dev_accuracy', 'dev_macro_f1', 'dev_micro_f1', 'dev_weighted_f1'] as const) {
        tb.addScalar(key, r[key], epoch);
      }
      tb.flush();
      say(
        `epoch ${epoch}: train_loss ${r.train_loss.toFixed(4)} train_acc ${r.train_accuracy.toFixed(4)} dev_acc ${r.dev_accuracy.toFixed(4)} ` +
          `dev_macro_f1 ${r.dev_macro_f1.toFixed(4)} (invalid outputs: ${m.invalid})`,
      );
      if (r.dev_macro_f1 > result.bestMacroF1) {
        result.bestMacroF1 = r.dev_macro_f1;
        epochsWithoutGain = 0;
        const dir = path.join(job.weightsDir, `${job.modelName}-${job.runTime}-epoch${epoch}`);
        await saveCheckpoint(dir, model, tokenizer, {
          format: 't5cls-checkpoint',
          version: 1,
          baseModel: job.modelName,
          runName: `${job.modelName}_${job.runTime}`,
          epoch,
          step: result.steps,
          prefixText: o.prefixText,
          maxSourceLength: o.maxSourceLength,
          classesMap: Object.fromEntries(job.classNames.map((n, i) => [n, i])),
          options: job.record,
          metrics: { ...r },
          createdAt: new Date().toISOString(),
        });
        result.bestCheckpoint = dir;
        log.line(`saved checkpoint ${dir}`);
        say(`saved checkpoint ${dir}`);
      } else {
        epochsWithoutGain++;
        if (o.earlyStoppingPatience !== undefined && epochsWithoutGain >= o.earlyStoppingPatience) {
          result.stoppedEarly = true;
          log.line(`early stopping: no better dev macro-F1 for ${epochsWithoutGain} epochs`);
          say(`early stopping after epoch ${epoch}: no better dev macro-F1 for ${epochsWithoutGain} epochs`);
          break;
        }
      }
      if (o.maxSteps !== undefined && result.steps >= o.maxSteps) break;
    }
  } finally {
    tb.close();
    optimizer.dispose();
  }
  return result;
}

/**
 * Examples whose every label token is the argmax under teacher forcing: exactly those for which greedy decoding
 * would produce the target class, so training accuracy comes free with the forward pass.
 */
export function sequenceExactMatches(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const valid = tf.notEqual(labels, -100);
    const hit = tf.logicalOr(tf.logicalNot(valid), tf.equal(tf.cast(tf.argMax(logits, -1), 'int32'), labels));
    return tf.sum(tf.cast(tf.all(hit, -1), 'float32')) as tf.Scalar;
  });
}

/**
 * One training step's parts, which the shared loop (loop.ts) puts together: the optimizer the options describe and its
 * learning-rate schedule, forward and backward on a batch, gradient accumulation, and the update with its non-finite
 * check.
 */
import type { DropoutStream } from '../model/dropout_stream.js';
import { tf } from '../tf.js';
import type { T5ForConditionalGeneration } from '../model/modeling_t5.js';
import { IGNORE_INDEX } from '../labels.js';
import { T5clsError } from '../errors.js';
import { Adafactor, AdamW } from './optimizers/index.js';
import type { TrainOptions } from './types.js';

export function defaultLearningRate(useAdafactor: boolean, scaleParameter = false): number {
  if (!useAdafactor) return 1e-4;
  return scaleParameter ? 1e-2 : 1e-3;
}

/** The optimizer options describe (train and pretrain build theirs here). */
export function makeOptimizer(
  o: Pick<TrainOptions, 'learningRate' | 'useAdafactor' | 'useAdafactorSchedule' | 'adafactorScaleParameter' | 'weightDecay'>,
): {
  optimizer: Adafactor | AdamW;
  baseLr: number | undefined;
} {
  if (o.useAdafactorSchedule) {
    if (o.learningRate !== undefined)
      throw new T5clsError('--learning-rate cannot be combined with --use-adafactor-schedule (Adafactor sets its own rate)', 2);
    return {
      optimizer: new Adafactor({
        lr: null,
        scaleParameter: true,
        relativeStep: true,
        warmupInit: true,
        weightDecay: o.weightDecay,
        inPlaceParameters: true,
      }),
      baseLr: undefined,
    };
  }
  // A run saved before the option existed has none: it ran unscaled.
  const scaleParameter = o.adafactorScaleParameter ?? false;
  const lr = o.learningRate ?? defaultLearningRate(o.useAdafactor, scaleParameter);
  if (o.useAdafactor) {
    return {
      optimizer: new Adafactor({
        lr,
        scaleParameter,
        relativeStep: false,
        warmupInit: false,
        weightDecay: o.weightDecay,
        inPlaceParameters: true,
      }),
      baseLr: lr,
    };
  }
  return { optimizer: new AdamW({ lr, weightDecay: o.weightDecay, inPlaceParameters: true }), baseLr: lr };
}

/** Linear warm-up from 0 to the base rate over `warmup` steps, constant afterwards. */
export function scheduledLr(baseLr: number, step: number, warmup: number): number {
  return warmup > 0 && step < warmup ? (baseLr * (step + 1)) / warmup : baseLr;
}

/** A batch as the model trains on it (pretraining's packed sequences need no attention mask). */
export interface ModelBatch {
  inputIds: tf.Tensor2D;
  attentionMask?: tf.Tensor2D;
  labels: tf.Tensor2D;
}

/**
 * Forward and backward on one batch: its loss, its gradients (scaled by `scale`, 1/accumulation steps) and, with
 * `exactMatches`, how many of its examples the model gets exactly right (train's accuracy: an argmax and a read
 * that pretraining goes without).
 */
export function batchGradients(
  model: T5ForConditionalGeneration,
  params: tf.Variable[],
  batch: ModelBatch,
  dropout: DropoutStream,
  { scale, exactMatches }: { scale: number; exactMatches: boolean },
): { loss: number; correct: number | undefined; grads: tf.NamedTensorMap } {
  let exact: tf.Tensor | undefined;
  const { value, grads } = tf.variableGrads(() => {
    const out = model.forward({ inputIds: batch.inputIds, attentionMask: batch.attentionMask, labels: batch.labels, training: dropout });
    if (exactMatches) exact = tf.keep(sequenceExactMatches(out.logits, batch.labels));
    // × 1 changes no bit of the loss or the gradients: it is left out.
    return scale === 1 ? out.loss! : (tf.mul(out.loss!, scale) as tf.Scalar);
  }, params);
  const loss = scale === 1 ? value.dataSync()[0]! : value.dataSync()[0]! / scale;
  const correct = exact?.dataSync()[0];
  tf.dispose(exact ? [value, exact] : [value]);
  return { loss, correct, grads };
}

/** `sum + grads` per variable (gradient accumulation); both maps are disposed. */
export function addGradients(sum: tf.NamedTensorMap | undefined, grads: tf.NamedTensorMap): tf.NamedTensorMap {
  if (!sum) return grads;
  const out: tf.NamedTensorMap = {};
  for (const k of Object.keys(grads)) out[k] = tf.add(sum[k]!, grads[k]!);
  tf.dispose([...Object.values(sum), ...Object.values(grads)]);
  return out;
}

/**
 * Optimizer step number `step` (0-based) on the accumulated gradients (disposed here): the non-finite check on their
 * global norm, the learning-rate schedule, the update. Returns the norm and the rate the step used (undefined while
 * relative-step Adafactor has not reported one).
 */
export function optimizerStep(
  optimizer: Adafactor | AdamW,
  baseLr: number | undefined,
  warmupSteps: number,
  gradients: tf.NamedTensorMap,
  step: number,
  failNonFinite: (what: string, value: number) => never,
): { gradNorm: number; lr: number | undefined } {
  const gradNorm = globalNorm(Object.values(gradients));
  if (!Number.isFinite(gradNorm)) {
    tf.dispose(Object.values(gradients));
    failNonFinite('gradient norm', gradNorm);
  }
  const scheduled = baseLr !== undefined ? scheduledLr(baseLr, step, warmupSteps) : undefined;
  if (scheduled !== undefined) optimizer.lr = scheduled;
  optimizer.applyGradients(gradients);
  tf.dispose(Object.values(gradients));
  return { gradNorm, lr: scheduled ?? (optimizer instanceof Adafactor ? optimizer.lastLr : undefined) };
}

/** sqrt(Σ g²) over all gradients: one number per step, to log and to catch a non-finite gradient cheaply. */
export function globalNorm(grads: tf.Tensor[]): number {
  if (!grads.length) return 0;
  return tf.tidy(() => tf.sqrt(tf.addN(grads.map((g) => tf.sum(tf.square(g))))).dataSync()[0]!);
}

/**
 * Examples whose every label token is the argmax under teacher forcing: exactly those for which greedy decoding
 * would produce the target class, so training accuracy comes free with the forward pass.
 */
export function sequenceExactMatches(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const valid = tf.notEqual(labels, IGNORE_INDEX);
    const hit = tf.logicalOr(tf.logicalNot(valid), tf.equal(tf.cast(tf.argMax(logits, -1), 'int32'), labels));
    return tf.sum(tf.cast(tf.all(hit, -1), 'float32')) as tf.Scalar;
  });
}

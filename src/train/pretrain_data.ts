/**
 * Pretraining's data: texts packed into raw sequences (training and held-out ones), span-corrupted into batches, and
 * the held-out evaluation (denoising loss and span-token accuracy).
 */
import { createHash } from 'node:crypto';
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
import { UsageError } from '../errors.js';
import type { Rng } from '../random.js';

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

/** Texts → packed raw sequences, split into training and held-out ones (whole texts held out, the last ones). */
export function pretrainSequences(
  tokenizer: T5Tokenizer,
  texts: string[],
  o: SpanCorruptionOptions & { inputLength: number; heldOutShare: number },
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

export function corruptRows(rows: number[][], o: SpanCorruptionOptions, tokenizer: T5Tokenizer, rng: Rng): CorruptedExample[] {
  return rows.map((row) =>
    corruptSpans(row, randomSpansNoiseMask(row.length, o, rng), (k) => tokenizer.sentinelId(k), tokenizer.eosTokenId),
  );
}

export function batchTensors(examples: CorruptedExample[]): { inputIds: tf.Tensor2D; labels: tf.Tensor2D } {
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

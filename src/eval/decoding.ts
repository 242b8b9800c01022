/**
 * Turning a T5 into a classifier: greedy generation mapped back to a class name (an output that is no class is
 * INVALID_PREDICTION), or rank classification (score every class name's token sequence, take the most likely).
 */
import { tf } from '../tf.js';
import type { T5ForConditionalGeneration } from '../model/modeling_t5.js';
import { tokenNll } from '../model/loss.js';
import { IGNORE_INDEX } from '../model/loss.js';
import { lengthSortedBatches, padRows, type TokenizerLike } from '../data/batches.js';
import { INVALID_PREDICTION } from './metrics.js';

export interface Predictions {
  /** Class id per input, INVALID_PREDICTION where the generated text is no class name. */
  labels: number[];
  /** The generated text per input (generate), or the chosen class name (rank). */
  texts: string[];
  /** Rank decoding: the probability of every class per input (softmax over sequence log-likelihoods). */
  probabilities?: number[][];
}

export type ProgressFn = (done: number) => void;

/** Maps generated text to a class id: exact name first, then ignoring case and surrounding spaces. */
export function textToClass(text: string, classNames: string[]): number {
  const exact = classNames.indexOf(text);
  if (exact >= 0) return exact;
  const norm = text.trim().toLowerCase();
  const loose = classNames.findIndex((n) => n.trim().toLowerCase() === norm);
  return loose >= 0 ? loose : INVALID_PREDICTION;
}

export function predictGenerate(
  model: T5ForConditionalGeneration,
  tokenizer: TokenizerLike,
  inputs: number[][],
  classNames: string[],
  classTokens: number[][],
  batchSize: number,
  onProgress?: ProgressFn,
): Predictions {
  const maxNewTokens = Math.max(...classTokens.map((t) => t.length));
  const labels = new Array<number>(inputs.length);
  const texts = new Array<string>(inputs.length);
  let done = 0;
  for (const batch of lengthSortedBatches(inputs.map((r) => r.length), batchSize)) {
    const { ids, mask } = padRows(batch.map((i) => inputs[i]), model.config.pad_token_id);
    const sequences = model.generate({ inputIds: ids, attentionMask: mask, maxNewTokens });
    tf.dispose([ids, mask]);
    sequences.forEach((seq, j) => {
      const eos = seq.indexOf(model.config.eos_token_id, 1);
      const text = tokenizer.decode(seq.slice(1, eos < 0 ? undefined : eos));
      texts[batch[j]] = text;
      labels[batch[j]] = textToClass(text, classNames);
    });
    done += batch.length;
    onProgress?.(done);
  }
  return { labels, texts };
}

/**
 * Rank classification: one encoder pass per batch, then one decoder pass over every (input, class) pair, whose
 * cross-attention keys/values are gathered from the batch's instead of re-encoding.
 */
export function predictRank(
  model: T5ForConditionalGeneration,
  inputs: number[][],
  classNames: string[],
  classTokens: number[][],
  batchSize: number,
  onProgress?: ProgressFn,
): Predictions {
  const k = classTokens.length;
  const labels = new Array<number>(inputs.length);
  const texts = new Array<string>(inputs.length);
  const probabilities = new Array<number[]>(inputs.length);
  let done = 0;
  for (const batch of lengthSortedBatches(inputs.map((r) => r.length), batchSize)) {
    const logLik = tf.tidy(() => {
      const b = batch.length;
      const { ids, mask } = padRows(batch.map((i) => inputs[i]), model.config.pad_token_id);
      const cross = model.crossKeyValues(model.encode(ids, mask, false));
      const pairIndex = tf.tensor1d(Array.from({ length: b * k }, (_, r) => Math.floor(r / k)), 'int32');
      const pairCross = cross.map((kv) => ({ key: tf.gather(kv.key, pairIndex) as tf.Tensor4D, value: tf.gather(kv.value, pairIndex) as tf.Tensor4D }));
      const pairMask = tf.gather(mask, pairIndex);
      const targetRows = Array.from({ length: b * k }, (_, r) => classTokens[r % k]);
      const target = padRows(targetRows, IGNORE_INDEX).ids;
      const decoderInput = padRows(targetRows.map((t) => [model.config.decoder_start_token_id, ...t.slice(0, -1)]), model.config.pad_token_id).ids;
      const logits = model.decode(decoderInput, pairMask, pairCross, false);
      return tf.reshape(tf.neg(tf.sum(tokenNll(logits, target), -1)), [b, k]);
    });
    const scores = logLik.arraySync() as number[][];
    logLik.dispose();
    scores.forEach((row, j) => {
      const best = row.indexOf(Math.max(...row));
      const max = row[best];
      const exp = row.map((s) => Math.exp(s - max));
      const total = exp.reduce((a, c) => a + c, 0);
      labels[batch[j]] = best;
      texts[batch[j]] = classNames[best];
      probabilities[batch[j]] = exp.map((e) => e / total);
    });
    done += batch.length;
    onProgress?.(done);
  }
  return { labels, texts, probabilities };
}

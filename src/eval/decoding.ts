/**
 * Turning a T5 into a classifier: greedy generation mapped back to a class name (an output that is no class is
 * INVALID_PREDICTION), or rank classification (score every class name's token sequence, take the most likely).
 * Inference runs through the model's runtime (model/t5_runtime.ts), which picks ONNX Runtime graphs or tfjs.
 */
import { tf } from '../tf.js';
import type { T5ForConditionalGeneration } from '../model/modeling_t5.js';
import { logProbsAt } from '../model/loss.js';
import { lengthSortedBatches, padRows, type TokenizerLike } from '../data/batches.js';
import { INVALID_PREDICTION } from './metrics.js';
import { classTree, decodeTree } from './tree_scoring.js';

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
  for (const batch of lengthSortedBatches(
    inputs.map((r) => r.length),
    batchSize,
  )) {
    const { ids, mask } = padRows(
      batch.map((i) => inputs[i]!),
      model.config.pad_token_id,
    );
    const sequences = model.generate({ inputIds: ids, attentionMask: mask, maxNewTokens });
    tf.dispose([ids, mask]);
    sequences.forEach((seq, j) => {
      const eos = seq.indexOf(model.config.eos_token_id, 1);
      const text = tokenizer.decode(seq.slice(1, eos < 0 ? undefined : eos));
      texts[batch[j]!] = text;
      labels[batch[j]!] = textToClass(text, classNames);
    });
    done += batch.length;
    onProgress?.(done);
  }
  return { labels, texts };
}

/**
 * Rank classification: one encoder pass per batch, then one decoder pass over the prefix tree of all class names
 * (shared prefixes, the decoder start token included, are decoded once; see tree_scoring.ts). Both go through the
 * model's runtime, which runs them as native graphs where it can.
 */
export function predictRank(
  model: T5ForConditionalGeneration,
  inputs: number[][],
  classNames: string[],
  classTokens: number[][],
  batchSize: number,
  onProgress?: ProgressFn,
): Predictions {
  const labels = new Array<number>(inputs.length);
  const texts = new Array<string>(inputs.length);
  const probabilities = new Array<number[]>(inputs.length);
  const tree = classTree(classTokens, model.config.decoder_start_token_id);
  const n = tree.tokens.length;
  let done = 0;
  for (const batch of lengthSortedBatches(
    inputs.map((r) => r.length),
    batchSize,
  )) {
    const b = batch.length;
    const logProbs = tf.tidy(() => {
      const { ids, mask } = padRows(
        batch.map((i) => inputs[i]!),
        model.config.pad_token_id,
      );
      const { cross } = model.runtime.encodeForDecoding(ids, mask);
      const logits = decodeTree(model, tree, mask, cross);
      const rows: number[] = [];
      const tokens: number[] = [];
      for (let j = 0; j < b; j++) {
        for (const steps of tree.steps) {
          for (const [position, token] of steps) {
            rows.push(j * n + position);
            tokens.push(token);
          }
        }
      }
      return logProbsAt(tf.reshape(logits, [b * n, model.config.vocab_size]) as tf.Tensor2D, rows, tokens);
    });
    const flat = logProbs.dataSync();
    logProbs.dispose();
    let at = 0;
    for (let j = 0; j < b; j++) {
      const row = tree.steps.map((steps) => {
        let sum = 0;
        for (let s = 0; s < steps.length; s++) sum += flat[at++]!;
        return sum;
      });
      const best = row.indexOf(Math.max(...row));
      const max = row[best]!;
      const exp = row.map((s) => Math.exp(s - max));
      const total = exp.reduce((a, c) => a + c, 0);
      const index = batch[j]!;
      labels[index] = best;
      texts[index] = classNames[best]!;
      probabilities[index] = exp.map((e) => e / total);
    }
    done += b;
    onProgress?.(done);
  }
  return { labels, texts, probabilities };
}

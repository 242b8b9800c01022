/**
 * From examples to model inputs: prefix + text tokenized and truncated as HF's tokenizer does, class names as
 * target text, and batches padded to their own longest sequence (labels padded with -100).
 */
import { tf } from '../tf.js';
import type { Rng } from '../random.js';
import { IGNORE_INDEX } from '../labels.js';

export interface TokenizerLike {
  encode(text: string): number[];
  decode(ids: number[]): string;
}

export interface Example {
  text: string;
  label: number;
}

export interface EncodedExample {
  inputIds: number[];
  label: number;
}

/** HF `tokenizer(text, max_length=L, truncation=True)` for T5: the pieces are cut, the closing EOS is kept. */
export function encodeInput(tokenizer: TokenizerLike, text: string, prefix: string, maxLength: number): number[] {
  const ids = tokenizer.encode(prefix + text);
  if (ids.length <= maxLength) return ids;
  return [...ids.slice(0, maxLength - 1), ids[ids.length - 1]!];
}

export function encodeExamples(tokenizer: TokenizerLike, examples: Example[], prefix: string, maxLength: number): EncodedExample[] {
  return examples.map((e) => ({ inputIds: encodeInput(tokenizer, e.text, prefix, maxLength), label: e.label }));
}

/** Target token ids of every class (its name + EOS), indexed by class id. */
export function encodeClassNames(tokenizer: TokenizerLike, classNames: string[]): number[][] {
  return classNames.map((name) => tokenizer.encode(name));
}

/** Length of the longest row, at least 1 (a loop: spreading a whole data set into Math.max overflows the stack). */
export function longestRow(rows: readonly { length: number }[]): number {
  let longest = 1;
  for (const r of rows) if (r.length > longest) longest = r.length;
  return longest;
}

/** Pads rows to the longest one: [rows, longest] int32 ids and a 0/1 mask. */
export function padRows(rows: number[][], padValue: number): { ids: tf.Tensor2D; mask: tf.Tensor2D } {
  const longest = longestRow(rows);
  const ids = new Int32Array(rows.length * longest).fill(padValue);
  const mask = new Int32Array(rows.length * longest);
  rows.forEach((r, i) => {
    ids.set(r, i * longest);
    mask.fill(1, i * longest, i * longest + r.length);
  });
  return { ids: tf.tensor2d(ids, [rows.length, longest], 'int32'), mask: tf.tensor2d(mask, [rows.length, longest], 'int32') };
}

export interface TrainBatch {
  inputIds: tf.Tensor2D;
  attentionMask: tf.Tensor2D;
  labels: tf.Tensor2D;
  size: number;
}

/** A training batch: inputs padded with the pad id, labels (class name + EOS) padded with -100. */
export function trainBatch(examples: EncodedExample[], classTokens: number[][], padId: number): TrainBatch {
  const inputs = padRows(
    examples.map((e) => e.inputIds),
    padId,
  );
  const labels = padRows(
    examples.map((e) => classTokens[e.label]!),
    IGNORE_INDEX,
  );
  labels.mask.dispose();
  return { inputIds: inputs.ids, attentionMask: inputs.mask, labels: labels.ids, size: examples.length };
}

export function disposeBatch(b: TrainBatch): void {
  tf.dispose([b.inputIds, b.attentionMask, b.labels]);
}

/** Splits an index order into consecutive batches. */
export function chunk<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * Evaluation order: indices sorted by input length so each batch pads little; results are put back in the
 * original order by the caller using the returned indices.
 */
export function lengthSortedBatches(lengths: number[], batchSize: number): number[][] {
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[a]! - lengths[b]! || a - b);
  return chunk(order, batchSize);
}

/**
 * Training batches of similar lengths, still random: the shuffled order is cut into groups of `groupBatches`
 * batches, each group is sorted by length and cut into batches, and the batches are shuffled. Each batch is padded
 * only to its own longest example, so little compute goes to padding.
 */
export function lengthGroupedBatches(lengths: number[], batchSize: number, rng: Rng, order?: number[], groupBatches = 8): number[][] {
  const shuffled = order ?? rng.shuffle(lengths.map((_, i) => i));
  const batches: number[][] = [];
  for (const group of chunk(shuffled, batchSize * groupBatches)) {
    batches.push(
      ...chunk(
        [...group].sort((a, b) => lengths[a]! - lengths[b]!),
        batchSize,
      ),
    );
  }
  return rng.shuffle(batches);
}

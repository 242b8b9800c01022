/**
 * Scoring every class name in one decoder pass (rank decoding, decoding.ts): the class names' token sequences laid
 * out as one prefix tree of decoder positions, decoded together. Each position attends to itself and the positions
 * on its path, and its position in the sequence is its depth, so every class gets exactly the logits of decoding it
 * alone, while shared prefixes (the decoder start token included) are decoded once.
 */
import { tf } from '../tf.js';
import type { T5ForConditionalGeneration } from '../model/modeling_t5.js';
import { MASK_MIN, relativePositionBucket, type KeyValue } from '../model/layers.js';

/** Decoder positions forming a prefix tree: `parents[i]` is the position before position i (-1 for the first). */
export interface PrefixTree {
  tokens: number[];
  parents: number[];
}

/** The class names as a prefix tree; `steps[c]`: class c's (position, token) pairs, see classTree. */
export interface ClassTree extends PrefixTree {
  steps: [number, number][][];
}

/**
 * The class names' token sequences as one prefix tree of decoder positions: position 0 holds the decoder start token
 * and every other position one class token, after its prefix (`parents`). Class c's log-likelihood is the sum over
 * its steps of log p(token | position): `steps[c]` lists those (position, token) pairs.
 */
export function classTree(classTokens: number[][], startToken: number): ClassTree {
  const tokens = [startToken];
  const parents = [-1];
  const children = [new Map<number, number>()];
  const steps = classTokens.map((seq) => {
    let at = 0;
    return seq.map((token, k) => {
      const step: [number, number] = [at, token];
      if (k < seq.length - 1) {
        let next = children[at]!.get(token);
        if (next === undefined) {
          next = tokens.length;
          tokens.push(token);
          parents.push(at);
          children.push(new Map());
          children[at]!.set(token, next);
        }
        at = next;
      }
      return step;
    });
  });
  return { tokens, parents, steps };
}

/**
 * Decoder self-attention over positions that form a prefix tree (`parents[i]`: the position before i, -1 for the
 * first): bucket ids [n * n] of the relative position depth(j) - depth(i), and an additive mask [1, 1, n, n] that
 * lets position i see only itself and the positions on its path. A chain (parents[i] = i - 1) gives the causal case.
 */
export function treeAttention(parents: number[], numBuckets: number, maxDistance: number): { buckets: Int32Array; mask: tf.Tensor } {
  const n = parents.length;
  const depth = new Array<number>(n);
  parents.forEach((p, i) => {
    if (p >= i) throw new Error(`tree positions must come after their parent: position ${i} has parent ${p}`);
    depth[i] = p < 0 ? 0 : depth[p]! + 1;
  });
  const buckets = new Int32Array(n * n);
  const mask = new Float32Array(n * n).fill(MASK_MIN);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) buckets[i * n + j] = relativePositionBucket(depth[j]! - depth[i]!, false, numBuckets, maxDistance);
    for (let j = i; j >= 0; j = parents[j]!) mask[i * n + j] = 0;
  }
  return { buckets, mask: tf.tensor4d(mask, [1, 1, n, n]) };
}

/** The model's decoder self-attention bias [1, heads, n, n] for a prefix tree: position bias by depth + path mask. */
export function treeAttentionBias(model: T5ForConditionalGeneration, parents: number[]): tf.Tensor {
  const c = model.config;
  return tf.tidy(() => {
    const { buckets, mask } = treeAttention(parents, c.relative_attention_num_buckets, c.relative_attention_max_distance);
    return tf.add(model.relativePositionBias('decoder', buckets, parents.length, parents.length), mask);
  });
}

/**
 * Logits [batch, tree positions, vocab] of the tree's positions after each input (its encoder mask and cross-
 * attention keys/values), in one decoder pass through the model's runtime (one native graph where it can run).
 */
export function decodeTree(model: T5ForConditionalGeneration, tree: PrefixTree, encoderMask: tf.Tensor, cross: KeyValue[]): tf.Tensor3D {
  const batch = encoderMask.shape[0]!;
  const n = tree.tokens.length;
  const decoderInput = tf.tensor2d(
    Array.from({ length: batch }, () => tree.tokens),
    [batch, n],
    'int32',
  );
  const selfAttentionBias = treeAttentionBias(model, tree.parents);
  try {
    return model.runtime.decodeSequence(decoderInput, encoderMask, cross, selfAttentionBias);
  } finally {
    tf.dispose([decoderInput, selfAttentionBias]);
  }
}

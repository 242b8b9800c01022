/**
 * Greedy generation over a T5's runtime (t5_runtime.ts): encode once, then one new token per step for every row,
 * through a key/value cache, or for a few tokens by decoding the whole prefix again as one native graph (the
 * runtime says which).
 */
import { tf } from '../tf.js';
import type { KeyValue } from './layers.js';
import type { T5Runtime } from './t5_runtime.js';

export type IdsLike = tf.Tensor | number[][];

export interface GenerateArgs {
  inputIds: IdsLike;
  attentionMask?: IdsLike;
  maxNewTokens?: number;
  /** Token ids that may never be produced (their logits are set to -inf at every step). */
  suppressTokens?: number[];
}

export function toIds(x: IdsLike): tf.Tensor {
  if (x instanceof tf.Tensor) return x.dtype === 'int32' ? x : tf.cast(x, 'int32');
  return tf.tensor2d(x, undefined, 'int32');
}

/** Greedy decoding with a key/value cache, exactly as HF `generate(num_beams=1, do_sample=False)`. */
export function greedyGenerate(runtime: T5Runtime, args: GenerateArgs): number[][] {
  const c = runtime.config;
  const maxNewTokens = args.maxNewTokens ?? 20;
  const inputIds = toIds(args.inputIds);
  const attentionMask = args.attentionMask !== undefined ? toIds(args.attentionMask) : tf.onesLike(inputIds);
  const batch = inputIds.shape[0];
  const suppress = args.suppressTokens?.length
    ? tf.tidy(() => {
        const m = new Float32Array(c.vocab_size);
        for (const t of args.suppressTokens!) if (t >= 0 && t < c.vocab_size) m[t] = -Infinity;
        return tf.tensor1d(m);
      })
    : undefined;
  const cross = tf.tidy(() => {
    const { cross: kv } = runtime.encodeForDecoding(inputIds, attentionMask);
    return kv.flatMap((x) => [x.key, x.value]);
  });
  const crossKv: KeyValue[] = [];
  for (let i = 0; i < cross.length; i += 2) crossKv.push({ key: cross[i] as tf.Tensor4D, value: cross[i + 1] as tf.Tensor4D });
  let cache: KeyValue[] = [];
  const recompute = runtime.recomputesPrefix(maxNewTokens);
  const sequences = Array.from({ length: batch }, () => [c.decoder_start_token_id]);
  const unfinished = new Array<boolean>(batch).fill(true);
  try {
    for (let step = 0; step < maxNewTokens; step++) {
      const next = tf.tidy(() => {
        let logits: tf.Tensor;
        if (recompute) {
          const all = runtime.decodeSequence(tf.tensor2d(sequences, [batch, step + 1], 'int32'), attentionMask, crossKv);
          logits = tf.reshape(tf.slice(all, [0, step, 0], [-1, 1, -1]), [batch, c.vocab_size]);
        } else {
          const stepIds = tf.tensor2d(
            sequences.map((s) => [s[s.length - 1]!]),
            [batch, 1],
            'int32',
          );
          const decoded = runtime.decodeStep(stepIds, attentionMask, crossKv, cache);
          logits = tf.reshape(decoded.logits, [batch, c.vocab_size]);
          for (const kv of decoded.cache) {
            tf.keep(kv.key);
            tf.keep(kv.value);
          }
          for (const old of cache) {
            old.key.dispose();
            old.value.dispose();
          }
          cache = decoded.cache;
        }
        if (suppress) logits = tf.add(logits, suppress);
        return Array.from(tf.argMax(logits, -1).dataSync());
      });
      for (let b = 0; b < batch; b++) {
        const token = unfinished[b] ? next[b]! : c.pad_token_id;
        sequences[b]!.push(token);
        if (token === c.eos_token_id) unfinished[b] = false;
      }
      if (!unfinished.some(Boolean)) break;
    }
  } finally {
    for (const kv of cache) {
      kv.key.dispose();
      kv.value.dispose();
    }
    tf.dispose(cross);
    suppress?.dispose();
    if (!(args.inputIds instanceof tf.Tensor)) inputIds.dispose();
    if (!(args.attentionMask instanceof tf.Tensor)) attentionMask.dispose();
  }
  return sequences;
}

/**
 * The building blocks of T5 as plain functions over tensors (HF modeling_t5.py): RMS layer norm, bias-free
 * linear layers with HF's [out, in] weight layout, activations, dropout, relative position buckets and the additive
 * attention masks.
 */
import { tf } from '../tf.js';
import type { ActivationName } from './config.js';
import { fusedAvailable, fusedDropout, fusedGatedGelu, fusedReluDropout, fusedRmsNorm } from '../engine/ops.js';

/** Keys and values of one attention layer, [batch, heads, keys, d_kv]. */
export interface KeyValue {
  key: tf.Tensor4D;
  value: tf.Tensor4D;
}

/** The additive mask value HF uses (`torch.finfo(torch.float32).min`). */
export const MASK_MIN = -3.4028234663852886e38;

/** T5LayerNorm: scale only, no mean subtraction, no bias. */
export function rmsNorm(x: tf.Tensor, weight: tf.Tensor, eps: number): tf.Tensor {
  if (x.dtype === 'float32' && weight.rank === 1 && fusedAvailable()) return fusedRmsNorm(x, weight, eps);
  const variance = tf.mean(tf.square(x), -1, true);
  return tf.mul(weight, tf.mul(x, tf.rsqrt(tf.add(variance, eps))));
}

/** `x @ weight.T` for a torch `nn.Linear` weight of shape [out, in], over any leading dimensions of x. */
export function linear(x: tf.Tensor, weight: tf.Tensor): tf.Tensor {
  const inDim = x.shape[x.shape.length - 1]!;
  const lead = x.shape.slice(0, -1);
  const y = tf.matMul(tf.reshape(x, [-1, inDim]) as tf.Tensor2D, weight as tf.Tensor2D, false, true);
  return tf.reshape(y, [...lead, weight.shape[0]]);
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

export function activation(x: tf.Tensor, name: ActivationName): tf.Tensor {
  switch (name) {
    case 'relu':
      return tf.relu(x);
    case 'gelu_new':
    case 'gelu_pytorch_tanh': {
      // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), written with products since Pow is slow on some backends.
      const inner = tf.mul(SQRT_2_OVER_PI, tf.add(x, tf.mul(0.044715, tf.mul(x, tf.mul(x, x)))));
      return tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(inner)));
    }
    case 'gelu':
      return tf.mul(tf.mul(0.5, x), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))));
    case 'silu':
      return tf.mul(x, tf.sigmoid(x));
  }
}

/** T5 v1.1's gated activation, act(gate) · linear; gelu_new runs as one fused kernel where the backend has it. */
export function gatedActivation(gate: tf.Tensor, linear: tf.Tensor, name: ActivationName): tf.Tensor {
  const fused = name === 'gelu_new' || name === 'gelu_pytorch_tanh' ? fusedGatedGelu(gate, linear) : undefined;
  return fused ?? tf.mul(activation(gate, name), linear);
}

/**
 * Inverted dropout as torch does it: zero each element with probability `rate`, scale the rest by 1/(1-rate).
 * One random tensor and one multiply; the seed makes a run reproducible.
 */
export function dropout(x: tf.Tensor, rate: number, seed: number): tf.Tensor {
  // The fused kernel draws the same mask from the same seed.
  if (x.dtype === 'float32' && fusedAvailable()) return fusedDropout(x, rate, seed);
  const keepScale = tf.mul(tf.cast(tf.greaterEqual(tf.randomUniform(x.shape, 0, 1, 'float32', seed), rate), 'float32'), 1 / (1 - rate));
  return tf.mul(x, keepScale);
}

/** dropout(relu(x)) (T5's relu feed-forward block): one fused kernel where the backend has it. */
export function reluDropout(x: tf.Tensor, rate: number, seed: number): tf.Tensor {
  const fused = x.dtype === 'float32' && fusedAvailable() ? fusedReluDropout(x, rate, seed) : undefined;
  return fused ?? dropout(tf.relu(x), rate, seed);
}

/**
 * HF `_relative_position_bucket`, computed on the host. The float steps follow torch's float32 arithmetic so that
 * bucket boundaries land exactly where HF puts them.
 */
export function relativePositionBucket(relativePosition: number, bidirectional: boolean, numBuckets: number, maxDistance: number): number {
  let bucket = 0;
  let n = numBuckets;
  let rel = relativePosition;
  if (bidirectional) {
    n = Math.floor(n / 2);
    if (rel > 0) bucket += n;
    rel = Math.abs(rel);
  } else {
    rel = -Math.min(rel, 0);
  }
  const maxExact = Math.floor(n / 2);
  if (rel < maxExact) return bucket + rel;
  const f = Math.fround;
  const scaled = f(f(f(Math.log(f(f(rel) / maxExact))) / f(Math.log(maxDistance / maxExact))) * (n - maxExact));
  const large = Math.min(maxExact + Math.trunc(scaled), n - 1);
  return bucket + large;
}

/**
 * Bucket ids for query positions [queryOffset, queryOffset + queryLength) against key positions [0, keyLength),
 * as a flat int32 array of shape [queryLength * keyLength].
 */
export function relativeBuckets(
  queryLength: number,
  keyLength: number,
  queryOffset: number,
  bidirectional: boolean,
  numBuckets: number,
  maxDistance: number,
): Int32Array {
  const out = new Int32Array(queryLength * keyLength);
  for (let i = 0; i < queryLength; i++) {
    for (let j = 0; j < keyLength; j++) {
      out[i * keyLength + j] = relativePositionBucket(j - (i + queryOffset), bidirectional, numBuckets, maxDistance);
    }
  }
  return out;
}

/** Additive padding mask [batch, 1, 1, keys] from a 0/1 attention mask [batch, keys]. */
export function paddingMask(attentionMask: tf.Tensor): tf.Tensor {
  const [b, k] = attentionMask.shape as [number, number];
  return tf.reshape(tf.mul(tf.sub(1, tf.cast(attentionMask, 'float32')), MASK_MIN), [b, 1, 1, k]);
}

/** Additive causal mask [1, 1, queries, keys] for queries at positions offset … offset+queries-1. */
export function causalMask(queryLength: number, keyLength: number, queryOffset: number): tf.Tensor {
  const data = new Float32Array(queryLength * keyLength);
  for (let i = 0; i < queryLength; i++) {
    for (let j = i + queryOffset + 1; j < keyLength; j++) data[i * keyLength + j] = MASK_MIN;
  }
  return tf.tensor4d(data, [1, 1, queryLength, keyLength]);
}

/**
 * `T5clsTokenNll`, `T5clsTokenNllGrad`: per-token cross-entropy log-sum-exp(logits) - logits[label] (0 where the
 * label is -100) and its gradient, softmax - one-hot, without materializing a one-hot tensor.
 */
import type { GradConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs';

import { tf } from '../../tf.js';

import { laneSum, scratch, simdKernels } from './kernel_support.js';
import { storageFor } from '../tfjs_internals.js';
import type { CompiledKernel, ElementwiseSpec } from '../wasm/simd.js';
import { IGNORE_INDEX } from '../../labels.js';

const ROW_MAX: ElementwiseSpec = { outputs: 0, inputs: 1, scalars: 0, sums: 1, body: (k) => k.max4(0, k.input(0)) };

/** Lane sums of e^(x - m). */
const SUM_EXP: ElementwiseSpec = {
  outputs: 0,
  inputs: 1,
  scalars: 1,
  sums: 1,
  body: (k) => k.sum(0, k.exp(k.sub(k.input(0), k.scalar(0)))),
};

/** out = e^(x - m) · s */
const SCALED_EXP: ElementwiseSpec = {
  outputs: 1,
  inputs: 1,
  scalars: 2,
  body: (k) => k.output(0, k.mul(k.exp(k.sub(k.input(0), k.scalar(0))), k.scalar(1))),
};

function labelAt(labels: Float32Array | Int32Array | Uint8Array, i: number): number {
  return Math.trunc(labels[i]!);
}

/** log Σ exp over one row, in float64. */
function logSumExp(v: Float32Array, base: number, n: number): number {
  let max = -Infinity;
  for (let j = 0; j < n; j++) if (v[base + j]! > max) max = v[base + j]!;
  if (max === -Infinity || max === Infinity || Number.isNaN(max)) return max;
  let sum = 0;
  for (let j = 0; j < n; j++) sum += Math.exp(v[base + j]! - max);
  return max + Math.log(sum);
}

export const tokenNllKernel: KernelFunc = ({ inputs, backend }) => {
  const { logits, labels } = inputs as { logits: TensorInfo; labels: TensorInfo };
  const storage = storageFor(backend);
  const vocab = logits.shape[logits.shape.length - 1]!;
  const out = storage.alloc([...labels.shape], 'float32');
  const sums = scratch(storage, 4);
  const lv = storage.read(logits) as Float32Array;
  const ids = storage.read(labels);
  const ov = storage.read(out.info) as Float32Array;
  const lse = rowLogSumExp(backend, lv, vocab, storage.read(sums) as Float32Array);
  for (let r = 0; r < ov.length; r++) {
    const label = labelAt(ids, r);
    if (label === IGNORE_INDEX) {
      ov[r] = 0;
      continue;
    }
    const picked = label >= 0 && label < vocab ? lv[r * vocab + label]! : 0;
    ov[r] = lse(r) - picked;
  }
  storage.dispose(sums);
  return out.info;
};

/**
 * Row r's log Σ exp of `v` (rows of length n), as a function of r: SIMD on the wasm heap (max, then Σ e^(x - max)
 * in float32 lanes), else float64 in JavaScript. Also gives the max and the sum for the gradient.
 */
export function rowLogSumExp(
  backend: unknown,
  v: Float32Array,
  n: number,
  sums: Float32Array,
): ((r: number) => number) & { parts?: (r: number) => [number, number] } {
  const simd = n % 4 === 0 && n > 0 ? simdKernels(backend, [v, sums], [ROW_MAX, SUM_EXP]) : undefined;
  if (!simd) return (r: number) => logSumExp(v, r * n, n);
  const [rowMax, sumExp] = simd as [CompiledKernel, CompiledKernel];
  const parts = (r: number): [number, number] => {
    const off = v.byteOffset + 4 * r * n;
    rowMax(off, sums.byteOffset, 4 * n);
    const max = Math.max(sums[0]!, sums[1]!, sums[2]!, sums[3]!);
    if (!Number.isFinite(max)) return [max, 1];
    sumExp(off, sums.byteOffset, 4 * n, max);
    return [max, laneSum(sums, 0)];
  };
  const f = (r: number) => {
    const [max, sum] = parts(r);
    return max + Math.log(sum);
  };
  return Object.assign(f, { parts });
}

export const tokenNllGradKernel: KernelFunc = ({ inputs, backend }) => {
  const { dy, logits, labels } = inputs as { dy: TensorInfo; logits: TensorInfo; labels: TensorInfo };
  const storage = storageFor(backend);
  const vocab = logits.shape[logits.shape.length - 1]!;
  const out = storage.alloc([...logits.shape], 'float32');
  const sums = scratch(storage, 4);
  const dyv = storage.read(dy) as Float32Array;
  const lv = storage.read(logits) as Float32Array;
  const ids = storage.read(labels);
  const ov = storage.read(out.info) as Float32Array;
  const lse = rowLogSumExp(backend, lv, vocab, storage.read(sums) as Float32Array);
  const scaled = lse.parts ? simdKernels(backend, [lv, ov], [SCALED_EXP])?.[0] : undefined;
  const rows = dyv.length;
  for (let r = 0; r < rows; r++) {
    const base = r * vocab;
    const label = labelAt(ids, r);
    const g = dyv[r]!;
    if (label === IGNORE_INDEX || g === 0) {
      ov.fill(0, base, base + vocab);
      continue;
    }
    let pLabel: number;
    if (scaled && lse.parts) {
      // g · softmax = e^(x - max) · (g / Σ e^(x - max))
      const [max, sum] = lse.parts(r);
      scaled(ov.byteOffset + 4 * base, lv.byteOffset + 4 * base, 4 * vocab, max, g / sum);
      pLabel = label >= 0 && label < vocab ? Math.exp(lv[base + label]! - max) / sum : 0;
    } else {
      const l = lse(r);
      for (let j = 0; j < vocab; j++) ov[base + j] = g * Math.exp(lv[base + j]! - l);
      pLabel = label >= 0 && label < vocab ? Math.exp(lv[base + label]! - l) : 0;
    }
    if (label >= 0 && label < vocab) ov[base + label] = g * (pLabel - 1);
  }
  storage.dispose(sums);
  return out.info;
};

/** d/dlogits of `T5clsTokenNll` (labels get no gradient: they are ids, never on a path from a variable). */
export const tokenNllGradient: GradConfig = {
  kernelName: 'T5clsTokenNll',
  inputsToSave: ['logits', 'labels'],
  gradFunc: (dy, saved) => {
    const [logits, labels] = saved as [tf.Tensor, tf.Tensor];
    return {
      logits: () => tf.engine().runKernel('T5clsTokenNllGrad', { dy: dy as tf.Tensor, logits, labels }) as tf.Tensor,
      labels: () => tf.zerosLike(labels),
    };
  },
};

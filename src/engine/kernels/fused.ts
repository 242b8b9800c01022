/**
 * Fused kernels for T5's element-wise and row-wise pieces, registered on the embedded backends (cpu, wasm): each
 * replaces a chain of tfjs ops (and their full-size temporaries) by one pass over the data.
 *
 * - `T5clsDropout`: inverted dropout, the keep mask drawn from the same generator and seed as
 *   `tf.randomUniform(shape, 0, 1, 'float32', seed)`, so the masks are those of the unfused ops. Outputs the result
 *   and the mask (0 or 1/(1-rate)) that its gradient multiplies by.
 * - `T5clsRmsNorm`, `T5clsRmsNormGrad`: T5's scale-only layer norm and its gradient (dx and dweight).
 * - `T5clsTokenNll`, `T5clsTokenNllGrad`: per-token cross-entropy log-sum-exp(logits) - logits[label] (0 where the
 *   label is -100) and its gradient, softmax - one-hot, without materializing a one-hot tensor.
 * - `T5clsLogProbsAt`: log-softmax values at (row, token) pairs, each row's log-sum-exp computed once (scoring
 *   several continuations per row; no gradient).
 *
 * Sums run in float64; element results are rounded to float32 as tfjs's float32 kernels would.
 */
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs';

import { tf } from '../../tf.js';
import { aleaState, type AleaState } from './alea.js';
import { hostStorage } from '../host_update.js';
import { replaceKernel, storageFor, wasmMemoryOf } from '../tfjs_internals.js';
import { dropoutKernelFor, kernelFor, SUM_OF_SQUARES, type CompiledKernel, type ElementwiseSpec } from '../wasm/simd.js';
import { cpuEngineOrt, ORT_MIN_ELEMENTS } from '../cpu/kernels/elementwise.js';
import { ortRmsNorm, ortRmsNormGrad } from '../ort/rms_norm.js';
import type { OrtMatMul } from '../ort/runtime.js';

const f32 = Math.fround;

export const FUSED_KERNELS = [
  'T5clsDropout',
  'T5clsRmsNorm',
  'T5clsRmsNormGrad',
  'T5clsTokenNll',
  'T5clsTokenNllGrad',
  'T5clsLogProbsAt',
] as const;

/** Label id that does not count in the loss (torch CrossEntropyLoss's default ignore_index). */
export const IGNORE_INDEX = -100;

// Row kernels for the wasm heap (rows of a multiple of 4 elements); see wasm/simd.ts.


/** y = w · (x · scale) */
const RMS_APPLY: ElementwiseSpec = {
  outputs: 1,
  inputs: 2,
  scalars: 1,
  body: (k) => k.output(0, k.mul(k.input(1), k.mul(k.input(0), k.scalar(0)))),
};

/** Inputs dy, x, w: lane sums of x² and of dy·w·x. */
const RMS_GRAD_SUMS: ElementwiseSpec = {
  outputs: 0,
  inputs: 3,
  scalars: 0,
  sums: 2,
  body(k) {
    const x = k.input(1);
    k.sum(0, k.mul(x, x));
    k.sum(1, k.mul(k.mul(k.input(0), k.input(2)), x));
  },
};

/** Outputs dx, dwBlock; inputs dy, x, w, dwBlock; scalars scale, c: dx = w·dy·scale - x·c, dwBlock += dy·x·scale. */
const RMS_GRAD_APPLY: ElementwiseSpec = {
  outputs: 2,
  inputs: 4,
  scalars: 2,
  body(k) {
    const dy = k.input(0);
    const x = k.input(1);
    const scale = k.scalar(0);
    k.output(0, k.sub(k.mul(k.mul(k.input(2), dy), scale), k.mul(x, k.scalar(1))));
    k.output(1, k.add(k.input(3), k.mul(k.mul(dy, x), scale)));
  },
};

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

/** The SIMD kernels for `specs` when the backend is wasm and every array lies on its heap, else undefined. */
function simdKernels(backend: unknown, arrays: readonly Float32Array[], specs: readonly ElementwiseSpec[]): CompiledKernel[] | undefined {
  const memory = wasmMemoryOf(backend);
  if (!memory || arrays.some((a) => a.buffer !== memory.buffer)) return undefined;
  const kernels = specs.map((spec) => kernelFor(spec, memory));
  return kernels.every((k) => k !== undefined) ? (kernels as CompiledKernel[]) : undefined;
}

/** A scratch float32 buffer on the backend (allocate before taking other views); dispose with `storage.dispose`. */
function scratch(storage: ReturnType<typeof storageFor>, n: number): TensorInfo {
  return storage.alloc([n], 'float32').info;
}

const laneSum = (v: Float32Array, k: number): number => v[4 * k]! + v[4 * k + 1]! + v[4 * k + 2]! + v[4 * k + 3]!;

const dropoutKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x } = inputs as { x: TensorInfo };
  const { rate, seed } = attrs as unknown as { rate: number; seed: number };
  const storage = storageFor(backend);
  const y = storage.alloc([...x.shape], 'float32');
  const mask = storage.alloc([...x.shape], 'float32');
  const xv = storage.read(x) as Float32Array;
  const yv = storage.read(y.info) as Float32Array;
  const mv = storage.read(mask.info) as Float32Array;
  const state = aleaState(String(seed));
  const threshold = f32(rate);
  const scale = f32(1 / (1 - rate));
  const memory = wasmMemoryOf(backend);
  const kernel = memory && [xv, yv, mv].every((a) => a.buffer === memory.buffer) ? dropoutKernelFor(memory) : undefined;
  if (kernel) {
    kernel(xv.byteOffset, yv.byteOffset, mv.byteOffset, 4 * xv.length, state.s0 * 2 ** 32, state.s1 * 2 ** 32, state.s2 * 2 ** 32, threshold, scale);
  } else {
    dropoutLoop(xv, yv, mv, state, threshold, scale);
  }
  return [y.info, mask.info];
};

/** The keep mask from uniform draws u: u >= rate in float32 (as tfjs compares its float32 random tensor). */
function dropoutLoop(xv: Float32Array, yv: Float32Array, mv: Float32Array, st: AleaState, threshold: number, scale: number): void {
  // Alea stepped inline (see alea.ts).
  let { s0, s1, s2, c } = st;
  for (let i = 0; i < xv.length; i++) {
    const t = 2091639 * s0 + c * 2.3283064365386963e-10;
    s0 = s1;
    s1 = s2;
    c = t | 0;
    s2 = t - c;
    const m = f32(s2) >= threshold ? scale : 0;
    mv[i] = m;
    yv[i] = xv[i]! * m;
  }
}

/** 1/sqrt(mean(x²) + eps) of row `row` (length d), as float32. */
function rmsScale(xv: Float32Array, row: number, d: number, eps: number): number {
  let ss = 0;
  const base = row * d;
  for (let j = 0; j < d; j++) ss += xv[base + j]! * xv[base + j]!;
  return f32(1 / f32(Math.sqrt(f32(f32(ss / d) + eps))));
}

/** ONNX Runtime for a large tensor on the cpu engine (see ort/rms_norm.ts), else undefined. */
function ortFor(storage: ReturnType<typeof storageFor>, x: TensorInfo): OrtMatMul | undefined {
  const ort = cpuEngineOrt.ort;
  const n = x.shape.reduce((a, b) => a * b, 1);
  return storage.backendName === 'cpu' && ort && n > 0 && n >= ORT_MIN_ELEMENTS.value ? ort : undefined;
}

const rmsNormKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, weight } = inputs as { x: TensorInfo; weight: TensorInfo };
  const eps = f32((attrs as unknown as { eps: number }).eps);
  const storage = storageFor(backend);
  const d = x.shape[x.shape.length - 1]!;
  const y = storage.alloc([...x.shape], 'float32');
  const ort = ortFor(storage, x);
  if (ort) {
    ortRmsNorm(ort, storage.read(x) as Float32Array, storage.read(weight) as Float32Array, eps, y.data as Float32Array);
    return y.info;
  }
  const sums = scratch(storage, 4);
  const xv = storage.read(x) as Float32Array;
  const wv = storage.read(weight) as Float32Array;
  const yv = storage.read(y.info) as Float32Array;
  const sv = storage.read(sums) as Float32Array;
  const rows = d === 0 ? 0 : xv.length / d;
  const simd = d % 4 === 0 ? simdKernels(backend, [xv, wv, yv, sv], [SUM_OF_SQUARES, RMS_APPLY]) : undefined;
  if (simd) {
    const [sumSq, apply] = simd as [CompiledKernel, CompiledKernel];
    for (let r = 0; r < rows; r++) {
      const off = 4 * r * d;
      sumSq(xv.byteOffset + off, sv.byteOffset, 4 * d);
      const scale = f32(1 / f32(Math.sqrt(f32(f32(laneSum(sv, 0) / d) + eps))));
      apply(yv.byteOffset + off, xv.byteOffset + off, wv.byteOffset, 4 * d, scale);
    }
    storage.dispose(sums);
    return y.info;
  }
  storage.dispose(sums);
  for (let r = 0; r < rows; r++) {
    const scale = rmsScale(xv, r, d, eps);
    const base = r * d;
    for (let j = 0; j < d; j++) yv[base + j] = wv[j]! * f32(xv[base + j]! * scale);
  }
  return y.info;
};

const rmsNormGradKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const { dy, x, weight } = inputs as { dy: TensorInfo; x: TensorInfo; weight: TensorInfo };
  const eps = f32((attrs as unknown as { eps: number }).eps);
  const storage = storageFor(backend);
  const d = x.shape[x.shape.length - 1]!;
  const dx = storage.alloc([...x.shape], 'float32');
  const dw = storage.alloc([...weight.shape], 'float32');
  const ort = ortFor(storage, x);
  if (ort) {
    const [dyv, xv, wv] = [storage.read(dy), storage.read(x), storage.read(weight)] as Float32Array[];
    ortRmsNormGrad(ort, dyv!, xv!, wv!, eps, dx.data as Float32Array, dw.data as Float32Array);
    return [dx.info, dw.info];
  }
  const block = scratch(storage, d);
  const sums = scratch(storage, 8);
  const dyv = storage.read(dy) as Float32Array;
  const xv = storage.read(x) as Float32Array;
  const wv = storage.read(weight) as Float32Array;
  const dxv = storage.read(dx.info) as Float32Array;
  const dwv = storage.read(dw.info) as Float32Array;
  const bv = storage.read(block) as Float32Array;
  const sv = storage.read(sums) as Float32Array;
  const dwSum = new Float64Array(d);
  const rows = d === 0 ? 0 : xv.length / d;
  const simd = d % 4 === 0 ? simdKernels(backend, [dyv, xv, wv, dxv, bv, sv], [RMS_GRAD_SUMS, RMS_GRAD_APPLY]) : undefined;
  if (simd) {
    const [gradSums, apply] = simd as [CompiledKernel, CompiledKernel];
    // dweight sums run in float32 over blocks of rows, then in float64.
    const rowsPerBlock = 128;
    for (let r = 0; r < rows; r++) {
      if (r % rowsPerBlock === 0) bv.fill(0);
      const off = 4 * r * d;
      gradSums(dyv.byteOffset + off, xv.byteOffset + off, wv.byteOffset, sv.byteOffset, 4 * d);
      const scale = f32(1 / f32(Math.sqrt(f32(f32(laneSum(sv, 0) / d) + eps))));
      const c = (scale * scale * scale * laneSum(sv, 1)) / d;
      apply(dxv.byteOffset + off, bv.byteOffset, dyv.byteOffset + off, xv.byteOffset + off, wv.byteOffset, bv.byteOffset, 4 * d, scale, c);
      if (r % rowsPerBlock === rowsPerBlock - 1 || r === rows - 1) for (let j = 0; j < d; j++) dwSum[j]! += bv[j]!;
    }
    for (let j = 0; j < d; j++) dwv[j] = dwSum[j]!;
    storage.dispose(block);
    storage.dispose(sums);
    return [dx.info, dw.info];
  }
  storage.dispose(block);
  storage.dispose(sums);
  for (let r = 0; r < rows; r++) {
    const scale = rmsScale(xv, r, d, eps);
    const base = r * d;
    let dot = 0;
    for (let j = 0; j < d; j++) {
      const g = dyv[base + j]!;
      dot += g * wv[j]! * xv[base + j]!;
      dwSum[j]! += g * xv[base + j]! * scale;
    }
    // d/dx_j of w_j x_j s, s = (Σx²/d + eps)^-1/2: w_j dy_j s - x_j s³ (Σ_k dy_k w_k x_k) / d.
    const c = (scale * scale * scale * dot) / d;
    for (let j = 0; j < d; j++) dxv[base + j] = wv[j]! * dyv[base + j]! * scale - xv[base + j]! * c;
  }
  for (let j = 0; j < d; j++) dwv[j] = dwSum[j]!;
  return [dx.info, dw.info];
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

const tokenNllKernel: KernelFunc = ({ inputs, backend }) => {
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
function rowLogSumExp(backend: unknown, v: Float32Array, n: number, sums: Float32Array): ((r: number) => number) & { parts?: (r: number) => [number, number] } {
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

const tokenNllGradKernel: KernelFunc = ({ inputs, backend }) => {
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

const logProbsAtKernel: KernelFunc = ({ inputs, backend }) => {
  const { logits, rows, tokens } = inputs as { logits: TensorInfo; rows: TensorInfo; tokens: TensorInfo };
  const storage = storageFor(backend);
  const vocab = logits.shape[logits.shape.length - 1]!;
  const count = tf.util.sizeFromShape(rows.shape);
  const out = storage.alloc([count], 'float32');
  const sums = scratch(storage, 4);
  const lv = storage.read(logits) as Float32Array;
  const rv = storage.read(rows);
  const tv = storage.read(tokens);
  const ov = storage.read(out.info) as Float32Array;
  const lse = rowLogSumExp(backend, lv, vocab, storage.read(sums) as Float32Array);
  const numRows = vocab === 0 ? 0 : lv.length / vocab;
  const done = new Map<number, number>();
  for (let p = 0; p < count; p++) {
    const r = rv[p]!;
    const t = tv[p]!;
    if (r < 0 || r >= numRows || t < 0 || t >= vocab) {
      storage.dispose(sums);
      storage.dispose(out.info);
      throw new Error(`T5clsLogProbsAt: pair ${p} (row ${r}, token ${t}) is outside ${numRows} rows of ${vocab}`);
    }
    let l = done.get(r);
    if (l === undefined) done.set(r, (l = lse(r)));
    ov[p] = lv[r * vocab + t]! - l;
  }
  storage.dispose(sums);
  return out.info;
};

const KERNELS: Record<(typeof FUSED_KERNELS)[number], KernelFunc> = {
  T5clsLogProbsAt: logProbsAtKernel,
  T5clsDropout: dropoutKernel,
  T5clsRmsNorm: rmsNormKernel,
  T5clsRmsNormGrad: rmsNormGradKernel,
  T5clsTokenNll: tokenNllKernel,
  T5clsTokenNllGrad: tokenNllGradKernel,
};

/** Registers the fused kernels for `backendName`. */
export function installFusedKernels(backendName: 'cpu' | 'wasm'): void {
  for (const name of FUSED_KERNELS) replaceKernel(name, backendName, 'fused', KERNELS[name]);
}

/** Whether the fused kernels can run now: they are on, and registered for the backend in use. */
export function fusedAvailable(): boolean {
  return hostStorage() !== undefined && tf.getKernel('T5clsDropout', tf.getBackend()) !== undefined;
}

function run(name: string, inputs: Record<string, tf.Tensor>, attrs: Record<string, number> = {}): tf.Tensor | tf.Tensor[] {
  return tf.engine().runKernel(name, inputs as never, attrs as never) as tf.Tensor | tf.Tensor[];
}

type Forward = (inputs: tf.Tensor[], save: tf.GradSaveFunc) => {
  value: tf.Tensor;
  gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor | tf.Tensor[];
};

/** tf.customGrad over a list of tensor inputs. */
function withGradient(forward: Forward, inputs: tf.Tensor[]): tf.Tensor {
  const f = tf.customGrad(((...args: (tf.Tensor | tf.GradSaveFunc)[]) =>
    forward(args.slice(0, -1) as tf.Tensor[], args[args.length - 1] as tf.GradSaveFunc)) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(...inputs);
}

/** Inverted dropout through `T5clsDropout` (see dropout in model/layers.ts for the unfused ops). */
export function fusedDropout(x: tf.Tensor, rate: number, seed: number): tf.Tensor {
  return withGradient(([input], save) => {
    const [y, mask] = run('T5clsDropout', { x: input! }, { rate, seed }) as tf.Tensor[];
    save([mask!]);
    return { value: y!, gradFunc: (dy, saved) => tf.mul(dy, saved[0]!) };
  }, [x]);
}

/**
 * dropout(relu(x)) through `T5clsReluDropout` where the backend has it (the cpu engine), else undefined. Same masks
 * and values as `fusedDropout(relu(x))`; its gradient is one product with the kernel's keep · step(x).
 */
export function fusedReluDropout(x: tf.Tensor, rate: number, seed: number): tf.Tensor | undefined {
  if (!tf.getKernel('T5clsReluDropout', tf.getBackend())) return undefined;
  return withGradient(([input], save) => {
    const [y, factor] = run('T5clsReluDropout', { x: input! }, { rate, seed }) as tf.Tensor[];
    save([factor!]);
    return { value: y!, gradFunc: (dy, saved) => tf.mul(dy, saved[0]!) };
  }, [x]);
}

/**
 * gelu_new(a) · b through `T5clsGatedGelu` where the backend has it (the cpu engine with ONNX Runtime) and the
 * tensor is large enough to pay for the call, else undefined.
 */
export function fusedGatedGelu(a: tf.Tensor, b: tf.Tensor): tf.Tensor | undefined {
  if (!tf.getKernel('T5clsGatedGelu', tf.getBackend()) || a.size < ORT_MIN_ELEMENTS.value) return undefined;
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || !tf.util.arraysEqual(a.shape, b.shape)) return undefined;
  return withGradient(([ga, gb], save) => {
    save([ga!, gb!]);
    return {
      value: run('T5clsGatedGelu', { a: ga!, b: gb! }) as tf.Tensor,
      gradFunc: (dy, saved) => run('T5clsGatedGeluGrad', { dy, a: saved[0]!, b: saved[1]! }) as tf.Tensor[],
    };
  }, [a, b]);
}

/** T5LayerNorm through `T5clsRmsNorm` (gradient `T5clsRmsNormGrad`). */
export function fusedRmsNorm(x: tf.Tensor, weight: tf.Tensor, eps: number): tf.Tensor {
  return withGradient(([input, w], save) => {
    save([input!, w!]);
    return {
      value: run('T5clsRmsNorm', { x: input!, weight: w! }, { eps }) as tf.Tensor,
      gradFunc: (dy, saved) => run('T5clsRmsNormGrad', { dy, x: saved[0]!, weight: saved[1]! }, { eps }) as tf.Tensor[],
    };
  }, [x, weight]);
}

/** Token NLL through `T5clsTokenNll` (gradient `T5clsTokenNllGrad`); labels get a zero gradient. */
export function fusedTokenNll(logits: tf.Tensor, labels: tf.Tensor): tf.Tensor {
  return withGradient(([l, ids], save) => {
    save([l!, ids!]);
    return {
      value: run('T5clsTokenNll', { logits: l!, labels: ids! }) as tf.Tensor,
      gradFunc: (dy, saved) => [run('T5clsTokenNllGrad', { dy, logits: saved[0]!, labels: saved[1]! }) as tf.Tensor, tf.zerosLike(saved[1]!)],
    };
  }, [logits, labels]);
}

/** log softmax(logits[rows[p]])[tokens[p]] for every pair p, through `T5clsLogProbsAt`; logits [rows, vocab]. */
export function fusedLogProbsAt(logits: tf.Tensor, rows: tf.Tensor, tokens: tf.Tensor): tf.Tensor {
  return run('T5clsLogProbsAt', { logits, rows, tokens }) as tf.Tensor;
}

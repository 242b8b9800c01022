/**
 * `T5clsRmsNorm`, `T5clsRmsNormGrad`: T5's scale-only layer norm and its gradient (dx and dweight). Large tensors
 * on the cpu engine go to ONNX Runtime graphs; rows of a multiple of 4 on the wasm heap to SIMD kernels; the rest
 * to loops. Sums run in float64 (SIMD: float32 lanes), results are rounded to float32.
 */
import type { GradConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs';

import { tf } from '../../tf.js';

import { f32, laneSum, scratch, simdKernels } from './kernel_support.js';
import { storageFor } from '../tfjs_internals.js';
import { SUM_OF_SQUARES, type CompiledKernel, type ElementwiseSpec } from '../wasm/simd.js';
import { cpuEngineOrt, ORT_MIN_ELEMENTS } from './ort_route.js';
import { ortRmsNorm, ortRmsNormGrad } from '../ort/rms_norm.js';
import type { OrtMatMul } from '../ort/runtime.js';

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

export const rmsNormKernel: KernelFunc = ({ inputs, backend, attrs }) => {
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

export const rmsNormGradKernel: KernelFunc = ({ inputs, backend, attrs }) => {
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

/** d/dx and d/dweight of `T5clsRmsNorm`, both from one `T5clsRmsNormGrad` call. */
export const rmsNormGradient: GradConfig = {
  kernelName: 'T5clsRmsNorm',
  inputsToSave: ['x', 'weight'],
  gradFunc: (dy, saved, attrs) => {
    const [x, weight] = saved as [tf.Tensor, tf.Tensor];
    const [dx, dw] = tf.engine().runKernel('T5clsRmsNormGrad', { dy: dy as tf.Tensor, x, weight }, attrs as never) as tf.Tensor[];
    return { x: () => dx!, weight: () => dw! };
  },
};

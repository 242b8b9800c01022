/**
 * `BatchMatMul` and `_FusedMatMul` kernels for the embedded backends (cpu, wasm):
 *
 * - native: the product runs in ONNX Runtime (ort.ts).
 * - transpose-first (wasm only): the stock wasm kernel is fast only without transposes (about 20x slower with
 *   them), so transposed operands are materialized by the Transpose kernel first.
 *
 * In both, `_FusedMatMul` is that product followed by bias and activation as tfjs defines them (bias
 * broadcast-added, then linear | relu | relu6 | elu | leakyrelu | sigmoid | prelu).
 *
 * tfjs's autodiff needs no change: the gradients of a matmul are matmuls, which come back through these kernels.
 */
import type { KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs';

import { tf } from '../tf.js';
import { wasmMemoryOf } from './host.js';
import type { OrtMatMul } from './ort.js';
import { GEMM_PANEL, packB, wasmGemmFor } from './wasm_gemm.js';
import { replaceKernel, restoreKernel, stockKernel } from './registry.js';
import { storageFor, type TensorStorage } from './storage.js';

export const MATMUL_KERNELS = ['BatchMatMul', '_FusedMatMul'] as const;

/**
 * Below this many multiply-adds the stock kernel wins over the call into ONNX Runtime (measured: the call costs
 * some 30-50 µs; stock wasm is quick on small single products, stock cpu is slow at any size). Mutable so that
 * tests can send small products through the native path.
 */
export const NATIVE_MIN_MACS: Record<'cpu' | 'wasm', number> = { cpu: 16 * 16 * 16, wasm: 1 << 20 };

interface MatMulPlan {
  outShape: number[];
  m: number;
  n: number;
  k: number;
  batch: number;
}

/** Output shape of op(a)·op(b) as tfjs defines it; throws tfjs's own messages on a mismatch. */
export function planMatMul(
  aShape: readonly number[],
  bShape: readonly number[],
  transposeA: boolean,
  transposeB: boolean,
): MatMulPlan {
  const ar = aShape.length;
  const br = bShape.length;
  if (ar < 2 || br < 2) {
    throw new Error(`Error in matMul: inputs must have rank >= 2, got ranks ${ar} and ${br}.`);
  }
  const k = transposeA ? aShape[ar - 2]! : aShape[ar - 1]!;
  const kb = transposeB ? bShape[br - 1]! : bShape[br - 2]!;
  const m = transposeA ? aShape[ar - 1]! : aShape[ar - 2]!;
  const n = transposeB ? bShape[br - 2]! : bShape[br - 1]!;
  if (k !== kb) {
    throw new Error(
      `Error in matMul: inner shapes (${k}) and (${kb}) of Tensors with shapes ${aShape} and ${bShape} and ` +
        `transposeA=${transposeA} and transposeB=${transposeB} must match.`,
    );
  }
  const outer = tf.broadcast_util.assertAndGetBroadcastShape(aShape.slice(0, -2), bShape.slice(0, -2));
  return { outShape: [...outer, m, n], m, n, k, batch: tf.util.sizeFromShape(outer) };
}

function callKernel(
  name: string,
  backendName: string,
  inputs: Record<string, TensorInfo>,
  backend: unknown,
  attrs: NamedAttrMap = {},
): TensorInfo {
  const config = stockKernel(name, backendName) ?? tf.getKernel(name, backendName);
  if (!config) throw new Error(`kernel ${name} is not registered for backend ${backendName}`);
  return config.kernelFunc({ inputs, backend: backend as object, attrs }) as TensorInfo;
}

function transposeLast2(x: TensorInfo, backend: unknown, backendName: string): TensorInfo {
  const r = x.shape.length;
  const perm = [...Array(r - 2).keys(), r - 1, r - 2];
  return callKernel('Transpose', backendName, { x }, backend, { perm });
}

/** The stock kernel called with transposes already applied to the operands (wasm). */
function transposeFirst(kernelName: string, backendName: string): KernelFunc {
  const stock = stockKernel(kernelName, backendName);
  if (!stock) throw new Error(`backend ${backendName} has no ${kernelName} kernel`);
  return (args) => {
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const attrs = (args.attrs ?? {}) as { transposeA?: boolean; transposeB?: boolean };
    if (!attrs.transposeA && !attrs.transposeB) return stock.kernelFunc(args);
    const temps: TensorInfo[] = [];
    const at = attrs.transposeA ? transposeLast2(a, args.backend, backendName) : a;
    if (at !== a) temps.push(at);
    const bt = attrs.transposeB ? transposeLast2(b, args.backend, backendName) : b;
    if (bt !== b) temps.push(bt);
    try {
      return stock.kernelFunc({
        ...args,
        inputs: { ...args.inputs, a: at, b: bt },
        attrs: { ...attrs, transposeA: false, transposeB: false } as NamedAttrMap,
      });
    } finally {
      const storage = storageFor(args.backend);
      for (const t of temps) storage.dispose(t);
    }
  };
}

/**
 * Below this many multiply-adds, or with fewer output rows in a single product, the wasm path keeps XNNPACK
 * (packing B would dominate). Batched products always qualify: the stock kernel loops naively over them.
 */
export const WASM_GEMM_MIN = { macs: 1 << 20, rows: 32 };

/**
 * op(a)·op(b) by our WebAssembly product (wasm_gemm.ts) into a new output tensor, for a single right-hand matrix
 * (batch axes of a only) or equal batch shapes; undefined when the transpose-first path should do it.
 */
function wasmGemmProduct(
  args: Parameters<KernelFunc>[0],
  a: TensorInfo,
  b: TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
  threads: number,
): TensorInfo | undefined {
  if (a.dtype !== 'float32' || b.dtype !== 'float32') return undefined;
  const memory = wasmMemoryOf(args.backend);
  if (!memory) return undefined;
  const plan = planMatMul(a.shape, b.shape, transposeA, transposeB);
  const { m, n, k } = plan;
  const batchA = tf.util.sizeFromShape(a.shape.slice(0, -2));
  const batchB = tf.util.sizeFromShape(b.shape.slice(0, -2));
  const sameBatch = batchB > 1 && tf.util.arraysEqual(a.shape.slice(0, -2), b.shape.slice(0, -2));
  // One right-hand matrix: the batch of a becomes rows (a transposed a only when there is no batch).
  const single = batchB === 1 && (!transposeA || batchA === 1);
  if (!(single || sameBatch) || k === 0 || m * n === 0) return undefined;
  const batch = single ? 1 : batchB;
  const rows = single ? batchA * m : m;
  if (batch * rows * n * k < WASM_GEMM_MIN.macs || (single && rows < WASM_GEMM_MIN.rows)) return undefined;
  const gemm = wasmGemmFor(memory, threads);
  if (!gemm) return undefined;
  const panels = Math.ceil(n / GEMM_PANEL);
  const width = panels * GEMM_PANEL;
  const storage = storageFor(args.backend);
  const at = transposeA ? transposeLast2(a, args.backend, 'wasm') : a;
  const out = storage.alloc(plan.outShape, 'float32').info;
  const packed = storage.alloc([batch * k * width], 'float32').info;
  // Widths that are not a multiple of 16 go through a padded output first.
  const padded = width !== n ? storage.alloc([batch * rows * width], 'float32').info : undefined;
  try {
    // Views are taken after the allocations: they may have grown (and detached) the heap.
    const av = storage.read(at) as Float32Array;
    const bv = storage.read(b) as Float32Array;
    const pv = storage.read(packed) as Float32Array;
    for (let i = 0; i < batch; i++) {
      packB(bv.subarray(i * k * n, (i + 1) * k * n), k, n, transposeB, pv.subarray(i * k * width, (i + 1) * k * width));
    }
    const ov = storage.read(out) as Float32Array;
    const cv = padded ? (storage.read(padded) as Float32Array) : ov;
    gemm.run({
      batch,
      rows,
      k,
      a: av.byteOffset,
      lda: k,
      aStride: rows * k,
      bp: pv.byteOffset,
      panels,
      bpStride: k * width,
      c: cv.byteOffset,
      ldc: width,
      cStride: rows * width,
    });
    if (padded) {
      for (let r = 0; r < batch * rows; r++) ov.set(cv.subarray(r * width, r * width + n), r * n);
    }
  } catch (e) {
    storage.dispose(out);
    throw e;
  } finally {
    storage.dispose(packed);
    if (padded) storage.dispose(padded);
    if (at !== a) storage.dispose(at);
  }
  return out;
}

/** Our WebAssembly product where it applies, else `fallback` (wasm without ONNX Runtime). */
function wasmGemmBatchMatMul(threads: number, fallback: KernelFunc): KernelFunc {
  return (args) => {
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const attrs = (args.attrs ?? {}) as { transposeA?: boolean; transposeB?: boolean };
    return wasmGemmProduct(args, a, b, !!attrs.transposeA, !!attrs.transposeB, threads) ?? fallback(args);
  };
}

/**
 * op(a)·op(b) through ONNX Runtime into a new output tensor, or undefined when the stock kernel should do it
 * (non-float32 data, empty or tiny products).
 */
function nativeProduct(
  ort: OrtMatMul,
  storage: TensorStorage,
  a: TensorInfo,
  b: TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
): { info: TensorInfo; data: Float32Array } | undefined {
  if (a.dtype !== 'float32' || b.dtype !== 'float32') return undefined;
  const plan = planMatMul(a.shape, b.shape, transposeA, transposeB);
  const macs = plan.batch * plan.m * plan.n * plan.k;
  if (macs === 0 || macs < NATIVE_MIN_MACS[storage.backendName]) return undefined;
  try {
    storage.read(a);
    storage.read(b);
  } catch {
    return undefined;
  }
  const out = storage.alloc(plan.outShape, 'float32');
  // Views are taken after the allocation: it may have grown (and detached) the wasm heap.
  let av = storage.read(a) as Float32Array;
  let bv = storage.read(b) as Float32Array;
  let ov = out.data as Float32Array;
  if (storage.shared) {
    // The native binding rejects SharedArrayBuffer views (threaded wasm): go through private copies.
    av = av.slice();
    bv = bv.slice();
    ov = new Float32Array(ov.length);
  }
  ort.matMul(av, a.shape, bv, b.shape, transposeA, transposeB, ov, plan.outShape);
  if (ov !== out.data) {
    const dst = storage.read(out.info) as Float32Array;
    dst.set(ov);
    return { info: out.info, data: dst };
  }
  return { info: out.info, data: ov };
}

type Activation = 'linear' | 'relu' | 'relu6' | 'elu' | 'leakyrelu' | 'sigmoid' | 'prelu';

/** Bias whose broadcast runs along the last axis only: shape [n], [1], or [1, ..., 1, n | 1]. */
function isTrailingBias(bias: TensorInfo, n: number): boolean {
  const s = bias.shape;
  if (s.length === 0) return true;
  const last = s[s.length - 1]!;
  return (last === n || last === 1) && s.slice(0, -1).every((d) => d === 1);
}

/** Bias and activation applied in place on a fresh float32 output. */
function epilogueInPlace(
  out: Float32Array,
  n: number,
  bias: Float32Array | undefined,
  activation: Activation,
  leakyreluAlpha: number,
): void {
  if (bias) {
    if (bias.length === 1) {
      const c = bias[0]!;
      for (let i = 0; i < out.length; i++) out[i]! += c;
    } else {
      for (let i = 0; i < out.length; i += n) {
        for (let j = 0; j < n; j++) out[i + j]! += bias[j]!;
      }
    }
  }
  switch (activation) {
    case 'linear':
      return;
    case 'relu':
      for (let i = 0; i < out.length; i++) if (out[i]! < 0) out[i] = 0;
      return;
    case 'relu6':
      for (let i = 0; i < out.length; i++) out[i] = Math.min(Math.max(out[i]!, 0), 6);
      return;
    case 'elu':
      for (let i = 0; i < out.length; i++) if (out[i]! < 0) out[i] = Math.exp(out[i]!) - 1;
      return;
    case 'leakyrelu':
      for (let i = 0; i < out.length; i++) if (out[i]! < 0) out[i] = out[i]! * leakyreluAlpha;
      return;
    case 'sigmoid':
      for (let i = 0; i < out.length; i++) out[i] = 1 / (1 + Math.exp(-out[i]!));
      return;
    default:
      throw new Error(`unexpected activation ${activation}`);
  }
}

const ACTIVATION_KERNELS: Record<Exclude<Activation, 'linear'>, string> = {
  relu: 'Relu',
  relu6: 'Relu6',
  elu: 'Elu',
  leakyrelu: 'LeakyRelu',
  sigmoid: 'Sigmoid',
  prelu: 'Prelu',
};

function nativeBatchMatMul(ort: OrtMatMul, fallback: KernelFunc): KernelFunc {
  return (args) => {
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const attrs = (args.attrs ?? {}) as { transposeA?: boolean; transposeB?: boolean };
    const res = nativeProduct(ort, storageFor(args.backend), a, b, !!attrs.transposeA, !!attrs.transposeB);
    return res ? res.info : fallback(args);
  };
}

/**
 * `_FusedMatMul` as `product` (a BatchMatMul kernel) followed by bias and activation: in place for the usual
 * last-axis bias, through the backend's Add and activation kernels otherwise. The stock wasm `_FusedMatMul` is
 * not used: it accepts only rank-1 bias and adds it wrongly when the batch size is above 1 (tfjs 4.22).
 */
function fusedFromProduct(backendName: string, product: KernelFunc): KernelFunc {
  return (args) => {
    const { a, b, bias, preluActivationWeights } = args.inputs as Record<string, TensorInfo | undefined>;
    const attrs = (args.attrs ?? {}) as {
      transposeA?: boolean;
      transposeB?: boolean;
      activation?: Activation;
      leakyreluAlpha?: number;
    };
    const activation: Activation = attrs.activation ?? 'linear';
    if (activation !== 'linear' && !ACTIVATION_KERNELS[activation]) {
      throw new Error(`Activation ${activation} has not been implemented for the ${backendName} backend.`);
    }
    const alpha = attrs.leakyreluAlpha ?? 0.2;
    const storage = storageFor(args.backend);
    let current = product({
      inputs: { a: a!, b: b! },
      backend: args.backend,
      attrs: { transposeA: !!attrs.transposeA, transposeB: !!attrs.transposeB },
    }) as TensorInfo;
    const n = current.shape[current.shape.length - 1]!;
    if (
      current.dtype === 'float32' &&
      (!bias || (bias.dtype === 'float32' && isTrailingBias(bias, n))) &&
      activation !== 'prelu'
    ) {
      const out = storage.read(current) as Float32Array;
      const biasData = bias ? (storage.read(bias) as Float32Array) : undefined;
      epilogueInPlace(out, n, biasData, activation, alpha);
      return current;
    }
    if (bias) {
      const added = callKernel('Add', backendName, { a: current, b: bias }, args.backend);
      storage.dispose(current);
      current = added;
    }
    if (activation !== 'linear') {
      const inputs: Record<string, TensorInfo> =
        activation === 'prelu' ? { x: current, alpha: preluActivationWeights! } : { x: current };
      const kernelAttrs: NamedAttrMap = activation === 'leakyrelu' ? { alpha } : {};
      const activated = callKernel(ACTIVATION_KERNELS[activation], backendName, inputs, args.backend, kernelAttrs);
      storage.dispose(current);
      current = activated;
    }
    return current;
  };
}

export type MatMulMode = 'native' | 'wasm-gemm' | 'transpose-first' | 'stock';

/** Env var: `0` keeps the wasm backend's own matmul (XNNPACK) where ours would run. */
export const WASM_GEMM_ENV = 'T5CLS_WASM_GEMM';

/** Whether our WebAssembly product is installed on wasm without ONNX Runtime (read at install time). */
export const wasmGemm = { enabled: process.env[WASM_GEMM_ENV] !== '0' };

/**
 * Installs our matmul kernels on `backendName`: native through `ort` when given, else transpose-first on wasm,
 * else the stock kernels. Returns the mode in effect.
 */
export function installMatMulKernels(backendName: 'cpu' | 'wasm', ort: OrtMatMul | undefined, threads = 1): MatMulMode {
  const stockBmm = stockKernel('BatchMatMul', backendName);
  if (!stockBmm) throw new Error(`backend ${backendName} has no BatchMatMul kernel`);
  let bmm: KernelFunc | undefined;
  let mode: MatMulMode = 'stock';
  if (ort) {
    bmm = nativeBatchMatMul(ort, backendName === 'wasm' ? transposeFirst('BatchMatMul', backendName) : stockBmm.kernelFunc);
    mode = 'native';
  } else if (backendName === 'wasm' && wasmGemm.enabled) {
    bmm = wasmGemmBatchMatMul(threads, transposeFirst('BatchMatMul', backendName));
    mode = 'wasm-gemm';
  } else if (backendName === 'wasm') {
    bmm = transposeFirst('BatchMatMul', backendName);
    mode = 'transpose-first';
  }
  if (bmm) {
    replaceKernel('BatchMatMul', backendName, mode, bmm);
    replaceKernel('_FusedMatMul', backendName, mode, fusedFromProduct(backendName, bmm));
  } else {
    restoreMatMulKernels(backendName);
  }
  return mode;
}

/** Puts the stock matmul kernels back on `backendName`. */
export function restoreMatMulKernels(backendName: 'cpu' | 'wasm'): void {
  for (const name of MATMUL_KERNELS) restoreKernel(name, backendName);
}

/**
 * `BatchMatMul` and `_FusedMatMul` kernels for the embedded backends (cpu, wasm):
 *
 * - native: the product runs in a native library, a system BLAS or ONNX Runtime (native_product.ts, products.ts).
 * - wasm-gemm (wasm only): our WebAssembly product where it applies, else transpose-first (wasm/matmul.ts).
 * - transpose-first (wasm only): the stock wasm kernel is fast only without transposes (about 20x slower with
 *   them), so transposed operands are materialized by the Transpose kernel first (wasm/matmul.ts).
 *
 * In each, `_FusedMatMul` is that product followed by bias and activation as tfjs defines them (bias
 * broadcast-added, then linear | relu | relu6 | elu | leakyrelu | sigmoid | prelu).
 *
 * tfjs's autodiff needs no change: the gradients of a matmul are matmuls, which come back through these kernels.
 */
import type { KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs';

import { wasmGemm } from '../flags.js';
import type { MatrixProducts } from '../products.js';
import { callKernel, replaceKernel, restoreKernel, stockKernel, storageFor } from '../tfjs_internals.js';
import { transposeFirst, wasmGemmBatchMatMul } from '../wasm/matmul.js';
import { nativeBatchMatMul } from './native_product.js';

export const MATMUL_KERNELS = ['BatchMatMul', '_FusedMatMul'] as const;

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
    if (current.dtype === 'float32' && (!bias || (bias.dtype === 'float32' && isTrailingBias(bias, n))) && activation !== 'prelu') {
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
      const inputs: Record<string, TensorInfo> = activation === 'prelu' ? { x: current, alpha: preluActivationWeights! } : { x: current };
      const kernelAttrs: NamedAttrMap = activation === 'leakyrelu' ? { alpha } : {};
      const activated = callKernel(ACTIVATION_KERNELS[activation], backendName, inputs, args.backend, kernelAttrs);
      storage.dispose(current);
      current = activated;
    }
    return current;
  };
}

export type MatMulMode = 'native' | 'wasm-gemm' | 'transpose-first' | 'stock';

/**
 * The matmul kernels for `backendName` and the mode they implement: native through `products` when given, else our
 * wasm product or transpose-first on wasm; none (the stock kernels) on cpu without `products`.
 */
export function matMulKernelConfigs(
  backendName: 'cpu' | 'wasm',
  products: MatrixProducts | undefined,
  threads = 1,
): { mode: MatMulMode; configs: KernelConfig[] } {
  const stockBmm = stockKernel('BatchMatMul', backendName);
  if (!stockBmm) throw new Error(`backend ${backendName} has no BatchMatMul kernel`);
  let bmm: KernelFunc | undefined;
  let mode: MatMulMode = 'stock';
  if (products) {
    bmm = nativeBatchMatMul(products, backendName === 'wasm' ? transposeFirst('BatchMatMul', backendName) : stockBmm.kernelFunc);
    mode = 'native';
  } else if (backendName === 'wasm' && wasmGemm.enabled) {
    bmm = wasmGemmBatchMatMul(threads, transposeFirst('BatchMatMul', backendName));
    mode = 'wasm-gemm';
  } else if (backendName === 'wasm') {
    bmm = transposeFirst('BatchMatMul', backendName);
    mode = 'transpose-first';
  }
  if (!bmm) return { mode, configs: [] };
  return {
    mode,
    configs: [
      { kernelName: 'BatchMatMul', backendName, kernelFunc: bmm },
      { kernelName: '_FusedMatMul', backendName, kernelFunc: fusedFromProduct(backendName, bmm) },
    ],
  };
}

/** Registers `matMulKernelConfigs` on `backendName` (the stock kernels when there are none); returns the mode. */
export function installMatMulKernels(backendName: 'cpu' | 'wasm', products: MatrixProducts | undefined, threads = 1): MatMulMode {
  const { mode, configs } = matMulKernelConfigs(backendName, products, threads);
  if (configs.length === 0) restoreMatMulKernels(backendName);
  for (const k of configs) replaceKernel(k.kernelName, backendName, mode, k.kernelFunc);
  return mode;
}

/** Puts the stock matmul kernels back on `backendName`. */
export function restoreMatMulKernels(backendName: 'cpu' | 'wasm'): void {
  for (const name of MATMUL_KERNELS) restoreKernel(name, backendName);
}

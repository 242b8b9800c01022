/**
 * Matrix products of the embedded backends (cpu, wasm) in a native library (products.ts: a system BLAS or ONNX
 * Runtime): `BatchMatMul` that computes op(a)·op(b) natively, falling back to a given kernel where the stock one
 * should do it (kernels/matmul.ts installs it).
 */
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs';

import { planMatMul } from '../matmul_plan.js';
import { storageFor, type TensorStorage } from '../tfjs_internals.js';
import type { MatrixProducts } from '../products.js';

/**
 * Below this many multiply-adds the stock kernel wins over the call into the native library (measured: a call into
 * ONNX Runtime costs some 30-50 µs; stock wasm is quick on small single products, stock cpu is slow at any size).
 * Mutable so that tests can send small products through the native path.
 */
export const NATIVE_MIN_MACS: Record<'cpu' | 'wasm', number> = { cpu: 16 * 16 * 16, wasm: 1 << 20 };

/**
 * op(a)·op(b) through `products` into a new output tensor, or undefined when the stock kernel should do it
 * (non-float32 data, empty or tiny products).
 */
export function nativeProduct(
  products: MatrixProducts,
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
  if (storage.shared && !products.acceptsShared) {
    // ONNX Runtime's binding rejects SharedArrayBuffer views (threaded wasm): go through private copies.
    av = av.slice();
    bv = bv.slice();
    ov = new Float32Array(ov.length);
  }
  products.matMul(av, a.shape, bv, b.shape, transposeA, transposeB, ov, plan.outShape);
  if (ov !== out.data) {
    const dst = storage.read(out.info) as Float32Array;
    dst.set(ov);
    return { info: out.info, data: dst };
  }
  return { info: out.info, data: ov };
}

/** `BatchMatMul` through `products` where it applies, else `fallback`. */
export function nativeBatchMatMul(products: MatrixProducts, fallback: KernelFunc): KernelFunc {
  return (args) => {
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const attrs = (args.attrs ?? {}) as { transposeA?: boolean; transposeB?: boolean };
    const res = nativeProduct(products, storageFor(args.backend), a, b, !!attrs.transposeA, !!attrs.transposeB);
    return res ? res.info : fallback(args);
  };
}

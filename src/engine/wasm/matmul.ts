/**
 * Matrix products on the wasm backend without ONNX Runtime (kernels/matmul.ts installs them):
 *
 * - transpose-first: the stock wasm kernel is fast only without transposes (about 20x slower with them), so
 *   transposed operands are materialized by the Transpose kernel first.
 * - our WebAssembly product (gemm.ts) where it beats the stock kernel (XNNPACK), transpose-first elsewhere.
 */
import type { KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs';

import { tf } from '../../tf.js';
import { planMatMul } from '../matmul_plan.js';
import { callKernel, stockKernel, storageFor, wasmMemoryOf } from '../tfjs_internals.js';
import { GEMM_PANEL, packB, wasmGemmFor } from './gemm.js';

function transposeLast2(x: TensorInfo, backend: unknown, backendName: string): TensorInfo {
  const r = x.shape.length;
  const perm = [...Array(r - 2).keys(), r - 1, r - 2];
  return callKernel('Transpose', backendName, { x }, backend, { perm });
}

/** The stock kernel called with transposes already applied to the operands (wasm). */
export function transposeFirst(kernelName: string, backendName: string): KernelFunc {
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
 * op(a)·op(b) by our WebAssembly product (gemm.ts) into a new output tensor, for a single right-hand matrix
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
export function wasmGemmBatchMatMul(threads: number, fallback: KernelFunc): KernelFunc {
  return (args) => {
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const attrs = (args.attrs ?? {}) as { transposeA?: boolean; transposeB?: boolean };
    return wasmGemmProduct(args, a, b, !!attrs.transposeA, !!attrs.transposeB, threads) ?? fallback(args);
  };
}

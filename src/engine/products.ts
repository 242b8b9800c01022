/**
 * A native library that computes matrix products into caller-owned buffers: ONNX Runtime's MLAS (ort/runtime.ts) or
 * a system CBLAS such as OpenBLAS (blas/runtime.ts). The matmul kernels (kernels/native_product.ts) call one of them,
 * or `routeProducts` of both.
 */
import { planMatMul } from './matmul_plan.js';

export interface MatrixProducts {
  /** Products computed so far (lets tests and diagnostics see which library ran). */
  readonly calls: number;
  /** Whether `matMul` takes views of a SharedArrayBuffer (threaded wasm memory) without copies. */
  readonly acceptsShared: boolean;
  /**
   * out = op(a)·op(b) for float32 data, op = transpose of the last two axes where asked, batch axes broadcast as
   * in numpy. `out` must hold exactly the broadcast output shape `outShape`.
   */
  matMul(
    a: Float32Array,
    aShape: readonly number[],
    b: Float32Array,
    bShape: readonly number[],
    transposeA: boolean,
    transposeB: boolean,
    out: Float32Array,
    outShape: readonly number[],
  ): void;
}

/**
 * One small product with B transposed, checked against its known result, so that a library that loads but
 * computes wrongly fails when it is loaded, not in the middle of training.
 */
export function checkProducts(products: MatrixProducts): void {
  // [[1,2,3],[4,5,6]] · [[1,0],[0,1],[1,1]] = [[4,5],[10,11]]; with B given transposed.
  const a = new Float32Array([1, 2, 3, 4, 5, 6]);
  const bt = new Float32Array([1, 0, 1, 0, 1, 1]);
  const out = new Float32Array(4);
  products.matMul(a, [2, 3], bt, [2, 3], false, true, out, [2, 2]);
  if (out[0] !== 4 || out[1] !== 5 || out[2] !== 10 || out[3] !== 11) {
    throw new Error(`self-check gave [${Array.from(out).join(', ')}] instead of [4, 5, 10, 11]`);
  }
}

/**
 * From this many multiply-adds per matrix, a batch of products goes to the BLAS one matrix at a time; below it, to
 * ONNX Runtime, which spreads a batch of small products (attention heads) over its threads in one call while a
 * BLAS runs each small product on one thread (measured: 192 products of 64x64x64 take about as long either way,
 * 192 of 4x64x64 half as long in ONNX Runtime).
 */
export const BLAS_MIN_BATCHED_MACS = 1 << 20;

/** `blas` for single and large products, `ort` for batches of small ones. */
export function routeProducts(blas: MatrixProducts, ort: MatrixProducts): MatrixProducts {
  return {
    get calls() {
      return blas.calls + ort.calls;
    },
    acceptsShared: false,
    matMul(a, aShape, b, bShape, transposeA, transposeB, out, outShape) {
      const { batch, m, n, k } = planMatMul(aShape, bShape, transposeA, transposeB);
      const lib = batch === 1 || m * n * k >= BLAS_MIN_BATCHED_MACS ? blas : ort;
      lib.matMul(a, aShape, b, bShape, transposeA, transposeB, out, outShape);
    },
  };
}

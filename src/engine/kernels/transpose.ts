/**
 * `Transpose` by the identity permutation shares its input instead of copying it (the gradient of `gather` transposes
 * the whole embedding-sized gradient that way); on cpu, head split/merge permutations copy whole rows, and large
 * tensors of the cpu engine go to ONNX Runtime.
 */
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs';

import { tf } from '../../tf.js';
import { cpuEngineOrt, ORT_MIN_ELEMENTS } from './ort_route.js';
import { ortTranspose } from '../ort/elementwise.js';
import { storageFor } from '../tfjs_internals.js';

/**
 * Transpose: the identity permutation shares its input; with `copyRuns`, permutations that keep a trailing run of
 * axes in place (splitting and merging attention heads: [b, l, h, d] ↔ [b, h, l, d]) copy whole runs; others go to
 * the stock kernel.
 */
export function runTranspose(stock: KernelFunc, copyRuns: boolean): KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    const perm = (args.attrs as { perm: number[] }).perm;
    if (x.dtype === 'string' || x.dtype === 'complex64') return stock(args);
    const rank = perm.length;
    let kept = 0;
    while (kept < rank && perm[rank - 1 - kept] === rank - 1 - kept) kept++;
    if (kept === rank) {
      (args.backend as { incRef(dataId: object): void }).incRef(x.dataId);
      return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
    }
    const run = tf.util.sizeFromShape(x.shape.slice(rank - kept));
    const ort = cpuEngineOrt.ort;
    if (copyRuns && ort && x.dtype === 'float32' && tf.util.sizeFromShape(x.shape) >= ORT_MIN_ELEMENTS.value) {
      // The cpu engine's large tensors: ONNX Runtime's transpose, on two threads.
      const storage = storageFor(args.backend);
      const out = storage.alloc(
        perm.map((p) => x.shape[p]!),
        'float32',
      );
      ortTranspose(ort, storage.read(x) as Float32Array, x.shape, perm, out.data as Float32Array);
      return out.info;
    }
    // The stock wasm kernel is quicker than this loop; the stock cpu kernel is much slower.
    if (run < 8 || !copyRuns) return stock(args);
    const storage = storageFor(args.backend);
    const outShape = perm.map((p) => x.shape[p]!);
    const out = storage.alloc(outShape, x.dtype);
    const src = storage.read(x);
    const dst = storage.read(out.info);
    // Source strides of the moved (outer) axes, in output order.
    const outer = rank - kept;
    const srcStrides = new Array<number>(rank);
    srcStrides[rank - 1] = 1;
    for (let i = rank - 2; i >= 0; i--) srcStrides[i] = srcStrides[i + 1]! * x.shape[i + 1]!;
    const dims = outShape.slice(0, outer);
    const strides = perm.slice(0, outer).map((p) => srcStrides[p]!);
    const idx = new Array<number>(outer).fill(0);
    const total = tf.util.sizeFromShape(dims);
    let from = 0;
    for (let o = 0, to = 0; o < total; o++, to += run) {
      for (let j = 0; j < run; j++) dst[to + j] = src[from + j]!;
      // Odometer over the outer output axes.
      for (let a = outer - 1; a >= 0; a--) {
        idx[a]!++;
        from += strides[a]!;
        if (idx[a]! < dims[a]!) break;
        from -= strides[a]! * dims[a]!;
        idx[a] = 0;
      }
    }
    return out.info;
  };
}

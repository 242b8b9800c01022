/**
 * Kernels T5 training needs that the embedded backends lack or implement slowly:
 *
 * - `UnsortedSegmentSum` (the gradient of `gather`, i.e. of the embedding lookup): tfjs-backend-wasm 4.22 has
 *   none; the cpu backend's runs one masked full-size sum per segment (32128 of them for T5's vocabulary). Ours
 *   is one pass that adds each row into its segment, on both backends.
 * - `Identity` on wasm without a copy: tfjs clones every tensor it saves for the backward pass through Identity;
 *   the stock wasm kernel copies the data, ours shares it by reference count as the cpu backend does.
 * - `Transpose` by the identity permutation shares its input instead of copying it (the gradient of `gather`
 *   transposes the whole embedding-sized gradient that way); on cpu, head split/merge permutations copy whole rows.
 * - `GatherV2` as block copies on wasm (the stock kernel computes every element's index, some 10x slower).
 */
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs';

import { tf } from '../../tf.js';
import { cpuEngineOrt, ORT_MIN_ELEMENTS } from '../cpu/kernels/elementwise.js';
import { ortTranspose } from '../ort/elementwise.js';
import { replaceKernel, restoreKernel, stockKernel, storageFor, type WasmBackendLike } from '../tfjs_internals.js';

export const unsortedSegmentSum: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, segmentIds } = inputs as { x: TensorInfo; segmentIds: TensorInfo };
  const numSegments = (attrs as { numSegments: number }).numSegments;
  const idRank = segmentIds.shape.length;
  const segCount = tf.util.sizeFromShape(segmentIds.shape);
  if (x.shape.length < idRank || segmentIds.shape.some((d, i) => d !== x.shape[i])) {
    throw new Error(
      `UnsortedSegmentSum: segmentIds shape ${JSON.stringify(segmentIds.shape)} must be a prefix of ` +
        `x shape ${JSON.stringify(x.shape)}`,
    );
  }
  if (x.dtype !== 'float32' && x.dtype !== 'int32') {
    throw new Error(`UnsortedSegmentSum: x must be float32 or int32, got ${x.dtype}`);
  }
  const innerShape = x.shape.slice(idRank);
  const inner = tf.util.sizeFromShape(innerShape);
  const storage = storageFor(backend);
  const out = storage.alloc([numSegments, ...innerShape], x.dtype);
  const o = out.data as Float32Array | Int32Array;
  o.fill(0);
  const xv = storage.read(x) as Float32Array | Int32Array;
  const ids = storage.read(segmentIds);
  for (let s = 0; s < segCount; s++) {
    const id = ids[s]!;
    // Out-of-range ids are dropped, as in TensorFlow.
    if (id < 0 || id >= numSegments) continue;
    const src = s * inner;
    const dst = id * inner;
    for (let j = 0; j < inner; j++) o[dst + j]! += xv[src + j]!;
  }
  return out.info;
};

function zeroCopyIdentity(stock: KernelFunc): KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    if (x.dtype === 'string') return stock(args);
    (args.backend as WasmBackendLike).incRef(x.dataId);
    return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
  };
}

/**
 * Transpose: the identity permutation shares its input; with `copyRuns`, permutations that keep a trailing run of
 * axes in place (splitting and merging attention heads: [b, l, h, d] ↔ [b, h, l, d]) copy whole runs; others go to
 * the stock kernel.
 */
function runTranspose(stock: KernelFunc, copyRuns: boolean): KernelFunc {
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
      const out = storage.alloc(perm.map((p) => x.shape[p]!), 'float32');
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

/** GatherV2 (batchDims 0) copying whole inner blocks. */
function blockGather(stock: KernelFunc): KernelFunc {
  return (args) => {
    const { x, indices } = args.inputs as { x: TensorInfo; indices: TensorInfo };
    const attrs = args.attrs as { axis: number; batchDims?: number };
    if ((attrs.batchDims ?? 0) !== 0 || x.dtype === 'string' || x.dtype === 'complex64') return stock(args);
    const axis = tf.util.parseAxisParam(attrs.axis, x.shape)[0]!;
    const outer = tf.util.sizeFromShape(x.shape.slice(0, axis));
    const inner = tf.util.sizeFromShape(x.shape.slice(axis + 1));
    const n = x.shape[axis]!;
    const count = tf.util.sizeFromShape(indices.shape);
    const storage = storageFor(args.backend);
    const out = storage.alloc([...x.shape.slice(0, axis), ...indices.shape, ...x.shape.slice(axis + 1)], x.dtype);
    const xv = storage.read(x);
    const ids = storage.read(indices);
    const o = out.data.length === 0 ? out.data : storage.read(out.info);
    for (let k = 0; k < count; k++) {
      const id = ids[k]!;
      if (id < 0 || id >= n || !Number.isInteger(id)) {
        storage.dispose(out.info);
        throw new Error(`GatherV2: the index value ${id} is not in [0, ${n - 1}]`);
      }
    }
    for (let b = 0; b < outer; b++) {
      for (let k = 0; k < count; k++) {
        const src = (b * n + ids[k]!) * inner;
        const dst = (b * count + k) * inner;
        if (inner >= 16) o.set(xv.subarray(src, src + inner), dst);
        else for (let j = 0; j < inner; j++) o[dst + j] = xv[src + j]!;
      }
    }
    return out.info;
  };
}

export interface ExtraKernelOptions {
  /** Zero-copy Identity on wasm (default true). */
  zeroCopyIdentity?: boolean;
}

/** Registers our extra kernels for `backendName`; returns their names. */
export function installExtraKernels(backendName: 'cpu' | 'wasm', options: ExtraKernelOptions = {}): string[] {
  const names: string[] = [];
  replaceKernel('UnsortedSegmentSum', backendName, 'segment-sum', unsortedSegmentSum);
  names.push('UnsortedSegmentSum');
  if (backendName === 'wasm') {
    const stock = stockKernel('Identity', 'wasm');
    if (stock && options.zeroCopyIdentity !== false) {
      replaceKernel('Identity', 'wasm', 'zero-copy', zeroCopyIdentity(stock.kernelFunc));
      names.push('Identity');
    } else {
      restoreKernel('Identity', 'wasm');
    }
  }
  return names;
}

/**
 * Registers the kernels that only move data faster (Transpose; GatherV2 on wasm); returns their names. They compute
 * exactly what the stock kernels compute.
 */
export function installCopyAvoidingKernels(backendName: 'cpu' | 'wasm'): string[] {
  const names: string[] = [];
  const transpose = stockKernel('Transpose', backendName);
  if (transpose) {
    replaceKernel('Transpose', backendName, 'run-copy', runTranspose(transpose.kernelFunc, backendName === 'cpu'));
    names.push('Transpose');
  }
  const gather = backendName === 'wasm' ? stockKernel('GatherV2', 'wasm') : undefined;
  if (gather) {
    replaceKernel('GatherV2', 'wasm', 'block-copy', blockGather(gather.kernelFunc));
    names.push('GatherV2');
  }
  return names;
}

/** Puts the stock kernels back (UnsortedSegmentSum is removed again on wasm, which has none). */
export function restoreExtraKernels(backendName: 'cpu' | 'wasm'): void {
  restoreKernel('UnsortedSegmentSum', backendName);
  restoreKernel('Identity', backendName);
  restoreKernel('GatherV2', backendName);
  restoreKernel('Transpose', backendName);
}

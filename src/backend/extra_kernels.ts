/**
 * Kernels T5 training needs that the embedded backends lack or implement slowly:
 *
 * - `UnsortedSegmentSum` (the gradient of `gather`, i.e. of the embedding lookup): tfjs-backend-wasm 4.22 has
 *   none; the cpu backend's runs one masked full-size sum per segment (32128 of them for T5's vocabulary). Ours
 *   is one pass that adds each row into its segment, on both backends.
 * - `Identity` on wasm without a copy: tfjs clones every tensor it saves for the backward pass through Identity;
 *   the stock wasm kernel copies the data, ours shares it by reference count as the cpu backend does.
 */
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs';

import { tf } from '../tf.js';
import { replaceKernel, restoreKernel, stockKernel } from './registry.js';
import { storageFor, type WasmBackendLike } from './storage.js';

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

/** Puts the stock kernels back (UnsortedSegmentSum is removed again on wasm, which has none). */
export function restoreExtraKernels(backendName: 'cpu' | 'wasm'): void {
  restoreKernel('UnsortedSegmentSum', backendName);
  restoreKernel('Identity', backendName);
}

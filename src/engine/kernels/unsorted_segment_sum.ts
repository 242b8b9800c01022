/**
 * `UnsortedSegmentSum` (the gradient of `gather`, i.e. of the embedding lookup): tfjs-backend-wasm 4.22 has none; the
 * cpu backend's runs one masked full-size sum per segment (32128 of them for T5's vocabulary). Ours is one pass that
 * adds each row into its segment, on both backends.
 */
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs';

import { tf } from '../../tf.js';
import { storageFor } from '../tfjs_internals.js';

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

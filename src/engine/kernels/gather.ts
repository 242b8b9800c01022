/** `GatherV2` as block copies on wasm (the stock kernel computes every element's index, some 10x slower). */
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs';

import { tf } from '../../tf.js';
import { storageFor } from '../tfjs_internals.js';

/** GatherV2 (batchDims 0) copying whole inner blocks. */
export function blockGather(stock: KernelFunc): KernelFunc {
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

import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs';

import { tf } from '../../../tf.js';
import { stockKernel, storageFor } from '../../tfjs_internals.js';

/**
 * Sum of float32 over leading axes (a gradient's sum over the batch axes it was broadcast along) without the stock
 * kernel's transpose: each output element accumulates its column in float64, in the order the stock kernel adds
 * them, so the results are the same numbers. Other axes and dtypes go to the stock kernel.
 */
export const sumConfig: KernelConfig = {
  kernelName: 'Sum',
  backendName: 'cpu',
  kernelFunc: (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    const { axis, keepDims } = args.attrs as unknown as { axis: number | number[]; keepDims: boolean };
    const axes = tf.util.parseAxisParam(axis, x.shape).sort((a, b) => a - b);
    const leading = axes.length > 0 && axes.every((a, i) => a === i);
    if (x.dtype !== 'float32' || !leading || axes.length === x.shape.length) return stockKernel('Sum', 'cpu')!.kernelFunc(args);
    const outer = x.shape.slice(0, axes.length).reduce((a, b) => a * b, 1);
    const innerShape = x.shape.slice(axes.length);
    const storage = storageFor(args.backend);
    const out = storage.alloc(keepDims ? [...axes.map(() => 1), ...innerShape] : innerShape, 'float32');
    const xv = storage.read(x) as Float32Array;
    const ov = out.data as Float32Array;
    const inner = ov.length;
    const acc = new Float64Array(inner);
    for (let r = 0; r < outer; r++) {
      const base = r * inner;
      for (let i = 0; i < inner; i++) acc[i]! += xv[base + i]!;
    }
    ov.set(acc);
    return out.info;
  },
};

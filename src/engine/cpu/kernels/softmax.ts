import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs';

import { storageFor } from '../../tfjs_internals.js';
import { ortSoftmax } from '../../ort/elementwise.js';
import { cpuEngineOrt, ORT_MIN_ELEMENTS } from '../../kernels/ort_route.js';

/**
 * Softmax over the last axis in three passes over each row (maximum; exponentials and their sum; scaling), where
 * the stock kernel chains six kernels with a full-size temporary each. Large tensors (attention weights) go to
 * ONNX Runtime's softmax: some 8x faster, within a few units in the last place of these numbers.
 */
export const softmaxConfig: KernelConfig = {
  kernelName: 'Softmax',
  backendName: 'cpu',
  kernelFunc: ({ inputs, backend }) => {
    const { logits } = inputs as { logits: TensorInfo };
    const storage = storageFor(backend);
    const out = storage.alloc([...logits.shape], 'float32');
    const x = storage.read(logits) as Float32Array;
    const y = out.data as Float32Array;
    const n = logits.shape[logits.shape.length - 1] ?? 1;
    const ort = cpuEngineOrt.ort;
    if (ort && y.length >= ORT_MIN_ELEMENTS.value && logits.shape.length > 0) {
      ortSoftmax(ort, x, logits.shape, y);
      return out.info;
    }
    for (let r = 0; r < x.length; r += n) {
      let max = -Infinity;
      for (let j = r; j < r + n; j++) if (x[j]! > max) max = x[j]!;
      let sum = 0;
      for (let j = r; j < r + n; j++) {
        // Rounded at each step as the stock kernel's chain of float32 tensors (sub, exp, sum, div) rounds them.
        const e = Math.fround(Math.exp(Math.fround(x[j]! - max)));
        y[j] = e;
        sum += e;
      }
      const total = Math.fround(sum);
      for (let j = r; j < r + n; j++) y[j] = y[j]! / total;
    }
    return out.info;
  },
};

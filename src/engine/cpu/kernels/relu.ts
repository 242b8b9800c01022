import type { KernelConfig } from '@tensorflow/tfjs';

import { ortRelu } from '../../ort/elementwise.js';
import { unaryKernel } from './elementwise.js';
import { cpuEngineOrt, ORT_MIN_ELEMENTS } from '../../kernels/ort_route.js';

/** max(x, 0), NaN staying NaN (as the stock kernel's Math.max). */
export const reluConfig: KernelConfig = {
  kernelName: 'Relu',
  backendName: 'cpu',
  kernelFunc: unaryKernel('Relu', (x, y) => {
    const ort = cpuEngineOrt.ort;
    if (ort && x.length >= ORT_MIN_ELEMENTS.value) return ortRelu(ort, x, y);
    for (let i = 0; i < x.length; i++) {
      const v = x[i]!;
      y[i] = v > 0 || v !== v ? v : 0;
    }
  }),
};

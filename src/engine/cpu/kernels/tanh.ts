import type { KernelConfig } from '@tensorflow/tfjs';

import { unaryKernel } from './elementwise.js';

export const tanhConfig: KernelConfig = {
  kernelName: 'Tanh',
  backendName: 'cpu',
  kernelFunc: unaryKernel('Tanh', (x, y) => {
    for (let i = 0; i < x.length; i++) y[i] = Math.tanh(x[i]!);
  }),
};

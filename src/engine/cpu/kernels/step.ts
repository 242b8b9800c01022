import type { KernelConfig } from '@tensorflow/tfjs';

import { unaryKernel } from './elementwise.js';

/** 1 where x > 0, else alpha; NaN stays NaN (relu's gradient). */
export const stepConfig: KernelConfig = {
  kernelName: 'Step',
  backendName: 'cpu',
  kernelFunc: unaryKernel('Step', (x, y, attrs) => {
    const alpha = (attrs.alpha as number | undefined) ?? 0;
    for (let i = 0; i < x.length; i++) {
      const v = x[i]!;
      y[i] = v > 0 ? 1 : v === v ? alpha : NaN;
    }
  }),
};

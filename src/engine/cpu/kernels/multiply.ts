import type { KernelConfig } from '@tensorflow/tfjs';

import { binaryKernel } from './elementwise.js';

export const multiplyConfig: KernelConfig = { kernelName: 'Multiply', backendName: 'cpu', kernelFunc: binaryKernel('Multiply', 'mul') };

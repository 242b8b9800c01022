import type { KernelConfig } from '@tensorflow/tfjs';

import { binaryKernel } from './elementwise.js';

export const addConfig: KernelConfig = { kernelName: 'Add', backendName: 'cpu', kernelFunc: binaryKernel('Add', 'add') };

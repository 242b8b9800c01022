import type { KernelConfig } from '@tensorflow/tfjs';

import { binaryKernel } from './elementwise.js';

export const subConfig: KernelConfig = { kernelName: 'Sub', backendName: 'cpu', kernelFunc: binaryKernel('Sub', 'sub') };

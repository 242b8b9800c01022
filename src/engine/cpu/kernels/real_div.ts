import type { KernelConfig } from '@tensorflow/tfjs';

import { binaryKernel } from './elementwise.js';

export const realDivConfig: KernelConfig = { kernelName: 'RealDiv', backendName: 'cpu', kernelFunc: binaryKernel('RealDiv', 'div') };

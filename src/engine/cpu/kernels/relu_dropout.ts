import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs';

import { dropoutOutputs } from '../../kernels/dropout.js';

export const RELU_DROPOUT = 'T5clsReluDropout';

/**
 * dropout(relu(x)) in one pass, the keep mask drawn exactly as `T5clsDropout` draws it for the same seed. Its second
 * output is the gradient's factor, keep · step(x): backward is then one product instead of the dropout's product
 * followed by relu's gradient, and relu's output is never stored. (T5's feed-forward block, relu variant.)
 */
export const reluDropoutConfig: KernelConfig = {
  kernelName: RELU_DROPOUT,
  backendName: 'cpu',
  kernelFunc: ({ inputs, backend, attrs }) => {
    const { rate, seed } = attrs as unknown as { rate: number; seed: number };
    return dropoutOutputs(backend, (inputs as { x: TensorInfo }).x, rate, seed, true);
  },
};

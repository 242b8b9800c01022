/**
 * The gradient of `T5clsGatedGelu` (gelu_new(a) · b), registered with the fused kernels; the kernels themselves
 * exist only on the cpu engine with ONNX Runtime (cpu/kernels/gated_gelu.ts).
 */
import type { GradConfig } from '@tensorflow/tfjs';

import { tf } from '../../tf.js';

export const GATED_GELU = 'T5clsGatedGelu';
export const GATED_GELU_GRAD = 'T5clsGatedGeluGrad';

/** d/da and d/db of `T5clsGatedGelu`, both from one `T5clsGatedGeluGrad` call. */
export const gatedGeluGradient: GradConfig = {
  kernelName: GATED_GELU,
  inputsToSave: ['a', 'b'],
  gradFunc: (dy, saved) => {
    const [a, b] = saved as [tf.Tensor, tf.Tensor];
    const [da, db] = tf.engine().runKernel(GATED_GELU_GRAD, { dy: dy as tf.Tensor, a, b }) as tf.Tensor[];
    return { a: () => da!, b: () => db! };
  },
};

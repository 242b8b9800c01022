import type { GradConfig, KernelConfig, TensorInfo } from '@tensorflow/tfjs';

import { tf } from '../../../tf.js';
import { storageFor } from '../../tfjs_internals.js';

export const RELU_GRAD = 'T5clsReluGrad';

/** relu's gradient in one pass: dy · step(x), with step(NaN) = NaN as the stock Step kernel has it. */
export const reluGradConfig: KernelConfig = {
  kernelName: RELU_GRAD,
  backendName: 'cpu',
  kernelFunc: ({ inputs, backend }) => {
    const { dy, x } = inputs as { dy: TensorInfo; x: TensorInfo };
    const storage = storageFor(backend);
    const out = storage.alloc([...x.shape], 'float32');
    const [dv, xv, ov] = [storage.read(dy), storage.read(x), out.data] as Float32Array[];
    for (let i = 0; i < ov!.length; i++) {
      const v = xv![i]!;
      ov![i] = dv![i]! * (v > 0 ? 1 : v === v ? 0 : NaN);
    }
    return out.info;
  },
};

/**
 * Relu's gradient: the one-pass kernel where the backend has it (the cpu engine), else tfjs's own
 * `dy · cast(step(x))`, so every other backend computes exactly what it did.
 */
export const reluGradientConfig: GradConfig = {
  kernelName: 'Relu',
  inputsToSave: ['x'],
  gradFunc: (dy, saved) => {
    const [x] = saved as [tf.Tensor];
    const grad = dy as tf.Tensor;
    return {
      x: () =>
        x.dtype === 'float32' && grad.dtype === 'float32' && tf.getKernel(RELU_GRAD, tf.getBackend())
          ? (tf.engine().runKernel(RELU_GRAD, { dy: grad, x } as never) as tf.Tensor)
          : tf.mul(grad, tf.cast(tf.step(x), 'float32')),
    };
  },
};

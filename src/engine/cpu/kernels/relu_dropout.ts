import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs';

import { aleaState } from '../../kernels/alea.js';
import { storageFor } from '../../tfjs_internals.js';
import { dropoutState } from '../../kernels/dropout.js';
import { stagedDropout } from '../../wasm/dropout.js';

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
    const { x } = inputs as { x: TensorInfo };
    const { rate, seed } = attrs as unknown as { rate: number; seed: number };
    const storage = storageFor(backend);
    const y = storage.alloc([...x.shape], 'float32');
    const factor = storage.alloc([...x.shape], 'float32');
    const xv = storage.read(x) as Float32Array;
    const yv = y.data as Float32Array;
    const fv = factor.data as Float32Array;
    const threshold = Math.fround(rate);
    const scale = Math.fround(1 / (1 - rate));
    const state = aleaState(String(seed));
    if (stagedDropout(xv, yv, fv, dropoutState(state), threshold, scale, true)) return [y.info, factor.info];
    // Alea stepped inline, as in the dropout kernel (see alea.ts).
    let { s0, s1, s2, c } = state;
    for (let i = 0; i < xv.length; i++) {
      const t = 2091639 * s0 + c * 2.3283064365386963e-10;
      s0 = s1;
      s1 = s2;
      c = t | 0;
      s2 = t - c;
      const keep = Math.fround(s2) >= threshold ? scale : 0;
      const v = xv[i]!;
      if (v > 0) {
        fv[i] = keep;
        yv[i] = v * keep;
      } else {
        // relu keeps NaN, and NaN · keep is NaN in both outputs; everything else not above zero gives 0.
        const z = v === v ? 0 : NaN;
        fv[i] = z;
        yv[i] = z;
      }
    }
    return [y.info, factor.info];
  },
};

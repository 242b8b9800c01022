/**
 * `T5clsDropout`: inverted dropout, the keep mask drawn from the same generator and seed as
 * `tf.randomUniform(shape, 0, 1, 'float32', seed)`, so the masks are those of the unfused ops. Outputs the result and
 * the mask (0 or 1/(1-rate)) that its gradient multiplies by.
 */
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs';

import { aleaState, type AleaState } from './alea.js';
import { f32 } from './kernel_support.js';
import { storageFor, wasmMemoryOf } from '../tfjs_internals.js';
import { dropoutKernelFor, stagedDropout, type DropoutState } from '../wasm/dropout.js';

/**
 * Inverted dropout of `x` (with `relu`, of relu(x)): the result and the factor its gradient multiplies by (the mask,
 * times step(x) with relu). The wasm dropout function on the wasm heap, else on staged copies, else a loop.
 */
export function dropoutOutputs(backend: unknown, x: TensorInfo, rate: number, seed: number, relu: boolean): TensorInfo[] {
  const storage = storageFor(backend);
  const y = storage.alloc([...x.shape], 'float32');
  const mask = storage.alloc([...x.shape], 'float32');
  const xv = storage.read(x) as Float32Array;
  const yv = storage.read(y.info) as Float32Array;
  const mv = storage.read(mask.info) as Float32Array;
  const state = aleaState(String(seed));
  const threshold = f32(rate);
  const scale = f32(1 / (1 - rate));
  const memory = wasmMemoryOf(backend);
  const kernel = memory && [xv, yv, mv].every((a) => a.buffer === memory.buffer) ? dropoutKernelFor(memory) : undefined;
  if (kernel) {
    const k = dropoutState(state);
    kernel(xv.byteOffset, yv.byteOffset, mv.byteOffset, 4 * xv.length, k.k0, k.k1, k.k2, k.c, threshold, scale, 0, relu ? 1 : 0);
  } else if (!stagedDropout(xv, yv, mv, dropoutState(state), threshold, scale, relu)) {
    dropoutLoop(xv, yv, mv, state, threshold, scale, relu);
  }
  return [y.info, mask.info];
}

export const dropoutKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const { rate, seed } = attrs as unknown as { rate: number; seed: number };
  return dropoutOutputs(backend, (inputs as { x: TensorInfo }).x, rate, seed, false);
};

/** The keep mask from uniform draws u: u >= rate in float32 (as tfjs compares its float32 random tensor). */
function dropoutLoop(
  xv: Float32Array,
  yv: Float32Array,
  mv: Float32Array,
  st: AleaState,
  threshold: number,
  scale: number,
  relu: boolean,
): void {
  // Alea stepped inline (see alea.ts).
  let { s0, s1, s2, c } = st;
  for (let i = 0; i < xv.length; i++) {
    const t = 2091639 * s0 + c * 2.3283064365386963e-10;
    s0 = s1;
    s1 = s2;
    c = t | 0;
    s2 = t - c;
    const m = f32(s2) >= threshold ? scale : 0;
    const v = xv[i]!;
    if (!relu || v > 0) {
      mv[i] = m;
      yv[i] = v * m;
    } else {
      // relu keeps NaN, and NaN · keep is NaN in both outputs; everything else not above zero gives 0.
      const z = v === v ? 0 : NaN;
      mv[i] = z;
      yv[i] = z;
    }
  }
}

/** The generator's state as the wasm dropout function takes it (see wasm/simd.ts dropoutFunction). */
function dropoutState(st: AleaState): DropoutState {
  return { k0: st.s0 * 2 ** 32, k1: st.s1 * 2 ** 32, k2: st.s2 * 2 ** 32, c: st.c };
}

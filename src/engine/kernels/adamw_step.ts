/**
 * AdamW's step (train/optimizers/adamw.ts) as one in-place pass over parameter, moments and gradient on the
 * embedded backends: a SIMD kernel on the wasm heap, else a loop; the same float32 operations in the same order as
 * the optimizer's tensor ops.
 */
import type { tf } from '../../tf.js';
import { updateInPlace } from '../host_update.js';
import { runElementwise, type ElementwiseSpec, type Vec } from '../wasm/simd.js';

const f32 = Math.fround;

/** One step's scalars, float32-rounded: p·decay + negStepSize·m / (sqrt(v)/biasCorrection2Sqrt + eps). */
export interface AdamWScalars {
  decay: number;
  beta1: number;
  oneMinusBeta1: number;
  beta2: number;
  oneMinusBeta2: number;
  biasCorrection2Sqrt: number;
  eps: number;
  negStepSize: number;
}

/**
 * Updates `param`, `expAvg` and `expAvgSq` in place for `gradient`; false (nothing done) where the backend is not
 * cpu/wasm or fused kernels are off. The moments are the optimizer's own and always written in place; the
 * parameter too when `inPlaceParameters` (see AdamWOptions).
 */
export function fusedAdamWStep(
  param: tf.Variable,
  expAvg: tf.Variable,
  expAvgSq: tf.Variable,
  gradient: tf.Tensor,
  k: AdamWScalars,
  inPlaceParameters: boolean,
): boolean {
  const scalars = [k.decay, k.beta1, k.oneMinusBeta1, k.beta2, k.oneMinusBeta2, k.biasCorrection2Sqrt, k.eps, k.negStepSize];
  return updateInPlace(
    [param, expAvg, expAvgSq],
    [gradient],
    (outs, ins, memory) => {
      const n = outs[0]!.length;
      runElementwise(ADAMW_KERNEL, memory, outs, ins, scalars, n, (from) => adamwElements(from, outs, ins, k));
    },
    [],
    [inPlaceParameters, true, true],
  );
}

/**
 * adamwElements as a SIMD kernel: outputs p, m, v; inputs p, m, v, g; scalars decay, β1, 1-β1, β2, 1-β2,
 * sqrt(1-β2^t), eps, -stepSize.
 */
const ADAMW_KERNEL: ElementwiseSpec = {
  outputs: 3,
  inputs: 4,
  scalars: 8,
  body(k) {
    const [decay, b1, c1, b2, c2, bc2, eps, negStep] = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => k.scalar(i)) as Vec[];
    const g = k.input(3);
    const m = k.bind(k.add(k.mul(k.input(1), b1!), k.mul(g, c1!)));
    const v = k.bind(k.add(k.mul(k.input(2), b2!), k.mul(k.mul(c2!, g), g)));
    const denom = k.add(k.div(k.sqrt(v), bc2!), eps!);
    k.output(0, k.add(k.mul(k.input(0), decay!), k.div(k.mul(negStep!, m), denom)));
    k.output(1, m);
    k.output(2, v);
  },
};

/** One AdamW step from element `from` on: outs p, m, v (may be the inputs themselves); ins p, m, v, g. */
function adamwElements(from: number, outs: Float32Array[], ins: Float32Array[], k: AdamWScalars): void {
  const [pOut, mOut, vOut] = outs as [Float32Array, Float32Array, Float32Array];
  const [pIn, mIn, vIn, g] = ins as [Float32Array, Float32Array, Float32Array, Float32Array];
  const { decay, beta1: b1, oneMinusBeta1: c1, beta2: b2, oneMinusBeta2: c2, biasCorrection2Sqrt: bc2, eps, negStepSize } = k;
  const n = pOut.length;
  for (let i = from; i < n; i++) {
    const gi = g[i]!;
    const m = f32(f32(mIn[i]! * b1) + f32(gi * c1));
    const v = f32(f32(vIn[i]! * b2) + f32(f32(c2 * gi) * gi));
    const denom = f32(f32(f32(Math.sqrt(v)) / bc2) + eps);
    pOut[i] = f32(f32(pIn[i]! * decay) + f32(f32(negStepSize * m) / denom));
    mOut[i] = m;
    vOut[i] = v;
  }
}

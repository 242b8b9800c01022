/**
 * Adafactor's step (train/optimizers/adafactor.ts) as in-place passes over parameter, state and gradient on the
 * embedded backends: SIMD kernels on the wasm heap, SIMD on staged copies or loops for the cpu backend's arrays, and
 * for the cpu engine's large parameters the sums in ONNX Runtime graphs (adafactor_passes.ts, ort/adafactor_sums.ts).
 */
import type { tf } from '../../tf.js';
import { updateInPlace } from '../host_update.js';
import { cpuEngineOrt, ORT_MIN_ELEMENTS } from './ort_route.js';
import { ortFactoredSums, ortUpdateSumSq } from '../ort/adafactor_sums.js';
import {
  clipFactor,
  factoredApply,
  factoredSecondMoments,
  factoredSecondMomentsFromSums,
  factoredSimd,
  factoredUpdateSumSq,
  stagedApply,
  sumOfSquares,
  unfactoredApply,
  unfactoredSecondMoment,
  type AdafactorElementStep,
  type FactoredParameter,
} from './adafactor_passes.js';

const f32 = Math.fround;

/** A parameter and its Adafactor state: `row` and `col` (rank ≥ 2) or `full` second moments, `expAvg` with β1. */
export interface AdafactorSlots {
  param: tf.Variable;
  /** The parameter's RMS before the update, a float32 scalar (written). */
  rms: tf.Variable;
  row?: tf.Variable;
  col?: tf.Variable;
  full?: tf.Variable;
  expAvg?: tf.Variable;
}

/** One step's constants, float32-rounded, and the lr rule (HF's, from the parameter's RMS). */
export interface AdafactorStepScalars {
  eps1: number;
  /** β2t and 1 - β2t: the second moments' decay. */
  keep: number;
  take: number;
  clipThreshold: number;
  /** [β1, 1 - β1] when there is a first moment. */
  beta1?: [number, number];
  /** The lr and weight-decay factor for a parameter of RMS `rms`. */
  lrFor(rms: number): { lr: number; decay?: number };
}

/**
 * Updates the parameter and its state in place for `gradient`; false (nothing done) where the backend is not
 * cpu/wasm or fused kernels are off. The state is always written in place; the parameter too when
 * `inPlaceParameters` (see AdafactorOptions).
 */
export function fusedAdafactorStep(
  slots: AdafactorSlots,
  gradient: tf.Tensor,
  k: AdafactorStepScalars,
  inPlaceParameters: boolean,
): boolean {
  const { param } = slots;
  const shape = param.shape;
  const factored = slots.row !== undefined && slots.col !== undefined;
  const moments = factored ? [slots.row!, slots.col!] : [slots.full!];
  const targets = [param, slots.rms, ...moments, ...(slots.expAvg ? [slots.expAvg] : [])];
  const sqrtNumel = f32(Math.sqrt(param.size));
  const cols = shape[shape.length - 1]!;
  const rows = shape[shape.length - 2]!;
  // Scratch for the SIMD path: column factors, a block of column sums, the kernels' lane sums.
  const scratchSizes = factored && cols % 4 === 0 ? [param.size / rows, cols, 16] : [];
  return updateInPlace(
    targets,
    [gradient],
    (outs, ins, memory, scratch) => {
      const [pOut, rmsOut] = outs as [Float32Array, Float32Array];
      const [pIn] = ins as [Float32Array];
      const g = ins[targets.length]!;
      const last = targets.length - 1;
      const m = slots.expAvg ? { out: outs[last]!, in: ins[last]! } : undefined;
      // The cpu engine's large parameters: the sums in ONNX Runtime graphs on both threads.
      const ort = factored && !memory && param.size >= ORT_MIN_ELEMENTS.value ? cpuEngineOrt.ort : undefined;
      const sums = ort ? ortFactoredSums(ort, pIn, g, rows, cols, k.eps1) : undefined;
      const rms = f32(f32(Math.sqrt(f32(sums ? sums.paramSumSq : sumOfSquares(pIn, memory, scratch[2])))) / sqrtNumel);
      rmsOut[0] = rms;
      const { lr, decay } = k.lrFor(rms);
      const step: AdafactorElementStep = { lr, clip: 1, decay, beta1: k.beta1 };
      if (!factored) {
        const [vOut, vIn] = [outs[2]!, ins[2]!];
        step.clip = clipFactor(unfactoredSecondMoment(g, k.eps1, k.keep, k.take, vIn, vOut), sqrtNumel, k.clipThreshold);
        unfactoredApply(pOut, pIn, g, vOut, step, m);
        return;
      }
      const f: FactoredParameter = {
        p: { out: pOut, in: pIn },
        g,
        rows,
        cols,
        row: { out: outs[2]!, in: ins[2]! },
        col: { out: outs[3]!, in: ins[3]! },
        m,
        eps1: k.eps1,
        keep: k.keep,
        take: k.take,
        rFactor: new Float32Array(outs[2]!.length),
      };
      const clip = { sqrtNumel, threshold: k.clipThreshold };
      if (memory && scratch.length === 3 && factoredSimd(memory, f, scratch, clip, step)) return;
      const cFactor = new Float32Array(f.col.out.length);
      if (sums) factoredSecondMomentsFromSums(f, sums.rowSums, sums.colSums, cFactor);
      else factoredSecondMoments(f, cFactor);
      const updateSumSq = ort ? ortUpdateSumSq(ort, g, rows, cols, f.rFactor, cFactor) : factoredUpdateSumSq(f, cFactor);
      step.clip = clipFactor(updateSumSq, sqrtNumel, k.clipThreshold);
      // The cpu backend: the sums above in float64 (as torch accumulates on the CPU), the element-wise update in the
      // SIMD kernel on copies in a private wasm memory (the same float32 operations as factoredApply).
      if (!memory && cols % 4 === 0 && stagedApply(f, cFactor, step)) return;
      factoredApply(f, cFactor, step);
    },
    scratchSizes,
    targets.map((_, i) => i > 0 || inPlaceParameters),
  );
}

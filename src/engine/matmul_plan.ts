/**
 * The output shape of a matrix product as tfjs's `matMul` defines it, shared by our matmul kernels (ort/matmul.ts,
 * wasm/matmul.ts).
 */
import { tf } from '../tf.js';

interface MatMulPlan {
  outShape: number[];
  m: number;
  n: number;
  k: number;
  batch: number;
}

/** Output shape of op(a)·op(b) as tfjs defines it; throws tfjs's own messages on a mismatch. */
export function planMatMul(
  aShape: readonly number[],
  bShape: readonly number[],
  transposeA: boolean,
  transposeB: boolean,
): MatMulPlan {
  const ar = aShape.length;
  const br = bShape.length;
  if (ar < 2 || br < 2) {
    throw new Error(`Error in matMul: inputs must have rank >= 2, got ranks ${ar} and ${br}.`);
  }
  const k = transposeA ? aShape[ar - 2]! : aShape[ar - 1]!;
  const kb = transposeB ? bShape[br - 1]! : bShape[br - 2]!;
  const m = transposeA ? aShape[ar - 1]! : aShape[ar - 2]!;
  const n = transposeB ? bShape[br - 2]! : bShape[br - 1]!;
  if (k !== kb) {
    throw new Error(
      `Error in matMul: inner shapes (${k}) and (${kb}) of Tensors with shapes ${aShape} and ${bShape} and ` +
        `transposeA=${transposeA} and transposeB=${transposeB} must match.`,
    );
  }
  const outer = tf.broadcast_util.assertAndGetBroadcastShape(aShape.slice(0, -2), bShape.slice(0, -2));
  return { outShape: [...outer, m, n], m, n, k, batch: tf.util.sizeFromShape(outer) };
}

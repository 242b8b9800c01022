/**
 * The output shape of a matrix product as tfjs's `matMul` defines it, shared by our matmul kernels (kernels/native_product.ts,
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
export function planMatMul(aShape: readonly number[], bShape: readonly number[], transposeA: boolean, transposeB: boolean): MatMulPlan {
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

/**
 * For each matrix of the output's batch (row-major over `outShape`'s leading axes), the matrix of an operand of shape
 * `shape` it reads, with numpy broadcasting: axes of size 1, and missing leading axes, repeat.
 */
export function broadcastBatchIndex(shape: readonly number[], outShape: readonly number[]): Int32Array {
  const outer = outShape.slice(0, -2);
  const own = shape.slice(0, -2);
  const batch = tf.util.sizeFromShape(outer);
  const index = new Int32Array(batch);
  const pad = outer.length - own.length;
  const counter = new Array<number>(outer.length).fill(0);
  for (let i = 0; i < batch; i++) {
    let at = 0;
    for (let d = pad; d < outer.length; d++) at = at * own[d - pad]! + (own[d - pad] === 1 ? 0 : counter[d]!);
    index[i] = at;
    for (let d = outer.length - 1; d >= 0; d--) {
      if (++counter[d]! < outer[d]!) break;
      counter[d] = 0;
    }
  }
  return index;
}

/** The check a freshly started wasm backend must pass before t5cls trains on it. */
import { tf } from '../tf.js';

/**
 * A small forward and backward pass through the kernels training leans on, checked against values computed by
 * hand; returns what went wrong, or undefined.
 */
export function wasmSelfCheck(): string | undefined {
  try {
    return tf.tidy(() => {
      // y = sum(gather(W, [0, 0, 2]) · M); dy/dW row r = (times r is gathered) · (row sums of M).
      const w = tf.tensor2d([
        [1, 2],
        [3, 4],
        [5, 6],
      ]);
      const m = tf.tensor2d([
        [1, 2, 3],
        [4, 5, 6],
      ]);
      const ids = tf.tensor1d([0, 0, 2], 'int32');
      const { value, grad } = tf.valueAndGrad((x: tf.Tensor) => tf.sum(tf.matMul(tf.gather(x, ids), m)))(w);
      const y = value.dataSync()[0];
      const g = Array.from(grad.dataSync());
      // Rows [1,2], [1,2], [5,6] times M sum to 36, 36 and 120.
      if (y !== 192) return `forward gave ${y}, expected 192`;
      const want = [12, 30, 0, 0, 6, 15];
      if (g.some((v, i) => v !== want[i])) return `gradient gave [${g.join(', ')}], expected [${want.join(', ')}]`;
      return undefined;
    });
  } catch (e) {
    return (e as Error).message;
  }
}

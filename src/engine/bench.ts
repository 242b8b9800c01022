/**
 * Matrix-product throughput of the backend in use, for `t5cls doctor` and for comparing backends.
 */
import { tf } from '../tf.js';

export interface MatMulBench {
  m: number;
  k: number;
  n: number;
  transposeA: boolean;
  transposeB: boolean;
  /** Median milliseconds of one product (output allocation included). */
  ms: number;
  gflops: number;
}

/**
 * Times tf.matMul of an [m, k] by [k, n] product (operands stored transposed where asked) on the current
 * backend: one warm-up, then the median of `repeats` runs. The cpu, wasm and tensorflow backends run kernels
 * synchronously, so a product is done when tf.matMul returns.
 */
export function benchmarkMatMul(
  m = 1024,
  k = 512,
  n = 2048,
  opts: { transposeA?: boolean; transposeB?: boolean; repeats?: number } = {},
): MatMulBench {
  const ta = opts.transposeA ?? false;
  const tb = opts.transposeB ?? false;
  const repeats = Math.max(1, opts.repeats ?? 5);
  const a = tf.randomUniform(ta ? [k, m] : [m, k], -1, 1, 'float32', 1);
  const b = tf.randomUniform(tb ? [n, k] : [k, n], -1, 1, 'float32', 2);
  try {
    const once = (): number => {
      const t0 = performance.now();
      const y = tf.matMul(a, b, ta, tb);
      const dt = performance.now() - t0;
      y.dispose();
      return dt;
    };
    tf.tidy(() => tf.matMul(a, b, ta, tb).dataSync());
    const times = Array.from({ length: repeats }, once).sort((x, y) => x - y);
    const ms = times[Math.floor(times.length / 2)]!;
    return { m, k, n, transposeA: ta, transposeB: tb, ms, gflops: (2 * m * k * n) / (ms * 1e6) };
  } finally {
    a.dispose();
    b.dispose();
  }
}

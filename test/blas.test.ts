/**
 * Matrix products through the system BLAS (blas/runtime.ts): loading and its failures, thread count, and products
 * against a float64 reference in every operand layout and batch broadcast. CI installs OpenBLAS, so there a BLAS
 * that does not load fails the tests instead of skipping them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { initBackend } from '../src/engine/init.js';
import { blasWanted, defaultBlasLibraries, loadBlasMatMul } from '../src/engine/blas/runtime.js';
import { BLAS_ENV } from '../src/engine/flags.js';
import { broadcastBatchIndex, planMatMul } from '../src/engine/matmul_plan.js';
import { routeProducts, type MatrixProducts } from '../src/engine/products.js';
import { tf } from '../src/tf.js';
import { values } from './helpers/values.js';

const loaded = loadBlasMatMul(2);
const NO_BLAS = loaded.ok || process.env.CI === 'true' ? false : `no BLAS here: ${loaded.reason}`;

/** op(a)·op(b) with numpy batch broadcasting, summed in float64. */
function reference(a: Float32Array, aShape: number[], b: Float32Array, bShape: number[], ta: boolean, tb: boolean): Float64Array {
  const { m, n, k, outShape, batch } = planMatMul(aShape, bShape, ta, tb);
  const ai = broadcastBatchIndex(aShape, outShape);
  const bi = broadcastBatchIndex(bShape, outShape);
  const out = new Float64Array(batch * m * n);
  for (let t = 0; t < batch; t++) {
    const ao = ai[t]! * m * k;
    const bo = bi[t]! * k * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let sum = 0;
        for (let p = 0; p < k; p++) sum += a[ao + (ta ? p * m + i : i * k + p)]! * b[bo + (tb ? j * k + p : p * n + j)]!;
        out[t * m * n + i * n + j] = sum;
      }
    }
  }
  return out;
}

function checkProducts(products: MatrixProducts, what: string): void {
  const [m, k, n] = [37, 53, 29];
  for (const ta of [false, true]) {
    for (const tb of [false, true]) {
      const a2 = ta ? [k, m] : [m, k];
      const b2 = tb ? [n, k] : [k, n];
      const cases: [number[], number[]][] = [
        [a2, b2],
        [[3, ...a2], [3, ...b2]],
        [[1, ...a2], [4, ...b2]],
        [[2, 3, ...a2], b2],
        [[2, ...a2], [1, ...b2]],
        [[2, 1, ...a2], [1, ...b2]],
      ];
      for (const [aShape, bShape] of cases) {
        const a = values(tf.util.sizeFromShape(aShape), 7);
        const b = values(tf.util.sizeFromShape(bShape), 8);
        const { outShape } = planMatMul(aShape, bShape, ta, tb);
        const out = new Float32Array(tf.util.sizeFromShape(outShape)).fill(Number.NaN);
        products.matMul(a, aShape, b, bShape, ta, tb, out, outShape);
        const want = reference(a, aShape, b, bShape, ta, tb);
        for (let i = 0; i < want.length; i++) {
          assert.ok(Math.abs(out[i]! - want[i]!) <= 1e-5 * Math.max(1, Math.abs(want[i]!)), `${what} [${aShape}]·[${bShape}] ${ta}/${tb}: element ${i} is ${out[i]}, expected ${want[i]}`);
        }
      }
    }
  }
}

test('broadcastBatchIndex: the operand matrix each output matrix reads', () => {
  assert.deepEqual([...broadcastBatchIndex([3, 5, 7], [3, 5, 4])], [0, 1, 2]);
  assert.deepEqual([...broadcastBatchIndex([1, 5, 7], [4, 5, 4])], [0, 0, 0, 0]);
  assert.deepEqual([...broadcastBatchIndex([7, 4], [2, 3, 5, 4])], [0, 0, 0, 0, 0, 0]);
  // [2, 1] against an output batch of [2, 3]: row-major, the size-1 axis repeats.
  assert.deepEqual([...broadcastBatchIndex([2, 1, 5, 7], [2, 3, 5, 4])], [0, 0, 0, 1, 1, 1]);
  assert.deepEqual([...broadcastBatchIndex([3, 7, 4], [2, 3, 5, 4])], [0, 1, 2, 0, 1, 2]);
});

test('OpenBLAS loads (CI installs it) and reports its version and threads', { skip: NO_BLAS }, () => {
  assert.ok(loaded.ok, loaded.ok ? '' : loaded.reason);
  assert.match(loaded.blas.name, /^OpenBLAS \d+\.\d+\.\d+/);
  assert.ok(defaultBlasLibraries().includes(loaded.blas.library));
  // The thread count is the library's: the last load sets it, and the library reports it back.
  loadBlasMatMul(1);
  assert.equal(loaded.blas.threads, 1);
  loadBlasMatMul(2);
  assert.equal(loaded.blas.threads, 2);
});

test('BLAS products equal a float64 reference in every layout and batch broadcast', { skip: NO_BLAS }, () => {
  assert.ok(loaded.ok);
  const before = loaded.blas.calls;
  checkProducts(loaded.blas, 'blas');
  assert.equal(loaded.blas.calls - before, 24);
});

test('products routed between two libraries: single and large to the first, batches of small ones to the second', () => {
  const log: string[] = [];
  const fake = (name: string): MatrixProducts => ({
    calls: 0,
    acceptsShared: false,
    matMul(_a, aShape, _b, bShape) {
      log.push(`${name} [${aShape}]·[${bShape}]`);
    },
  });
  const routed = routeProducts(fake('blas'), fake('ort'));
  const out = new Float32Array(0);
  routed.matMul(out, [4, 64], out, [64, 4], false, false, out, [4, 4]);
  routed.matMul(out, [192, 64, 64], out, [192, 64, 64], false, true, out, [192, 64, 64]);
  routed.matMul(out, [2, 128, 64], out, [2, 64, 64], false, false, out, [2, 128, 64]);
  // 128·128·64 multiply-adds a matrix: BLAS_MIN_BATCHED_MACS exactly.
  routed.matMul(out, [2, 128, 128], out, [2, 128, 64], false, false, out, [2, 128, 64]);
  assert.deepEqual(log, [
    'blas [4,64]·[64,4]',
    'ort [192,64,64]·[192,64,64]',
    'ort [2,128,64]·[2,64,64]',
    'blas [2,128,128]·[2,128,64]',
  ]);
});

test(`${BLAS_ENV}: 0 turns the BLAS off, a name or path picks the library, a bad one says why in one line`, () => {
  assert.equal(blasWanted('0'), 'off');
  assert.equal(blasWanted(''), undefined);
  assert.equal(blasWanted(undefined), undefined);
  assert.equal(blasWanted(' /opt/mkl/lib/libmkl_rt.so '), '/opt/mkl/lib/libmkl_rt.so');
  const missing = loadBlasMatMul(1, '/nonexistent/libopenblas.so.0');
  assert.equal(missing.ok, false);
  if (!missing.ok) {
    assert.match(missing.reason, /^T5CLS_BLAS=\/nonexistent\/libopenblas\.so\.0: /);
    assert.doesNotMatch(missing.reason, /\n/);
  }
});

test('a library without cblas_sgemm is refused, naming the function', { skip: process.platform !== 'linux' || NO_BLAS }, () => {
  const libm = loadBlasMatMul(1, 'libm.so.6');
  assert.equal(libm.ok, false);
  if (!libm.ok) assert.match(libm.reason, /^libm\.so\.6 loaded but cannot be used: .*cblas_sgemm/);
});

test('the engine falls back to ONNX Runtime products when the BLAS named does not load, and says so', async () => {
  const saved = process.env[BLAS_ENV];
  process.env[BLAS_ENV] = '/nonexistent/libopenblas.so.0';
  try {
    const info = await initBackend('cpu', { threads: 1 });
    assert.notEqual(info.matmul, 'blas');
    assert.equal(info.blas, undefined);
    assert.ok(info.skipped.some((s) => /^BLAS off: T5CLS_BLAS=\/nonexistent\/libopenblas\.so\.0: /.test(s)), info.skipped.join('; '));
    process.env[BLAS_ENV] = '0';
    const off = await initBackend('cpu', { threads: 1 });
    assert.ok(off.skipped.includes('BLAS off (T5CLS_BLAS=0)'), off.skipped.join('; '));
    assert.notEqual(off.matmul, 'blas');
  } finally {
    if (saved === undefined) delete process.env[BLAS_ENV];
    else process.env[BLAS_ENV] = saved;
  }
  const on = await initBackend('cpu', { threads: 1 });
  assert.equal(on.matmul, loaded.ok ? 'blas' : on.matmul);
  await tf.setBackend('cpu');
});

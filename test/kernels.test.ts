/**
 * Our kernels against tfjs's stock cpu kernels (the reference), on wasm and cpu, with the native matmul on and
 * off. The native cases run when onnxruntime-node loads (from node_modules, or the folder in T5CLS_ORT_PATH)
 * and are skipped, saying so, when it does not.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { tf } from '../src/tf.js';
import { initBackend } from '../src/engine/init.js';
import { restoreCpuKernels } from '../src/engine/cpu/register_all_kernels.js';
import { restoreExtraKernels, unsortedSegmentSum } from '../src/engine/kernels/extra.js';
import { restoreMatMulKernels } from '../src/engine/kernels/matmul.js';
import { planMatMul } from '../src/engine/matmul_plan.js';
import { NATIVE_MIN_MACS } from '../src/engine/kernels/native_product.js';
import { WASM_GEMM_MIN } from '../src/engine/wasm/matmul.js';
import { fusedKernels, wasmGemm } from '../src/engine/flags.js';
import { disposeWasmGemm, packB, wasmGemmFor } from '../src/engine/wasm/gemm.js';
import { loadOrtMatMul } from '../src/engine/ort/runtime.js';
import { loadBlasMatMul } from '../src/engine/blas/runtime.js';
import { replacementOf, wasmMemoryOf } from '../src/engine/tfjs_internals.js';
import { values } from './helpers/values.js';

const ort = loadOrtMatMul(2);
const NO_ORT = ort.ok ? false : `onnxruntime-node not loadable: ${ort.reason}`;
const blas = loadBlasMatMul(2);
const NO_BLAS = blas.ok ? false : `no BLAS: ${blas.reason}`;
const calls = () => ({ ort: ort.ok ? ort.ort.calls : 0, blas: blas.ok ? blas.blas.calls : 0 });

function size(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (!(Math.abs(a - e) <= rtol * Math.max(1, Math.abs(e)))) {
      assert.fail(`${what}: element ${i} is ${a}, expected ${e} (tolerance ${rtol} relative)`);
    }
  }
}

/** Pure stock tfjs cpu backend: none of our kernels. */
async function stockCpu(): Promise<void> {
  restoreMatMulKernels('cpu');
  restoreExtraKernels('cpu');
  restoreCpuKernels();
  await tf.setBackend('cpu');
}

interface MatMulCase {
  name: string;
  a: number[];
  b: number[];
  ta: boolean;
  tb: boolean;
  bias?: number[];
  activation?: 'linear' | 'relu' | 'relu6' | 'elu' | 'leakyrelu' | 'sigmoid' | 'prelu';
  prelu?: number[];
}

const CASES: MatMulCase[] = [];
for (const ta of [false, true]) {
  for (const tb of [false, true]) {
    // Above the size under which wasm keeps its stock kernel (2^20 multiply-adds).
    const m = 131;
    const k = 97;
    const n = 83;
    const a2 = ta ? [k, m] : [m, k];
    const b2 = tb ? [n, k] : [k, n];
    const t = `${ta ? 'T' : 'N'}${tb ? 'T' : 'N'}`;
    CASES.push({ name: `2d ${t}`, a: a2, b: b2, ta, tb });
    CASES.push({ name: `batched ${t}`, a: [3, ...a2], b: [3, ...b2], ta, tb });
    CASES.push({ name: `broadcast a [1,..] ${t}`, a: [1, ...a2], b: [4, ...b2], ta, tb });
    CASES.push({ name: `broadcast b rank 2 ${t}`, a: [2, 3, ...a2], b: b2, ta, tb });
    CASES.push({ name: `broadcast b [1,..] ${t}`, a: [2, ...a2], b: [1, ...b2], ta, tb });
    CASES.push({ name: `fused bias+relu ${t}`, a: [2, ...a2], b: [2, ...b2], ta, tb, bias: [n], activation: 'relu' });
  }
}
CASES.push({ name: 'fused bias only', a: [160, 96], b: [96, 120], ta: false, tb: false, bias: [120] });
CASES.push({ name: 'fused scalar bias, sigmoid', a: [160, 96], b: [120, 96], ta: false, tb: true, bias: [], activation: 'sigmoid' });
CASES.push({ name: 'fused [1,n] bias, elu', a: [160, 96], b: [120, 96], ta: false, tb: true, bias: [1, 120], activation: 'elu' });
CASES.push({ name: 'fused [m,n] bias, relu6', a: [160, 96], b: [96, 120], ta: false, tb: false, bias: [160, 120], activation: 'relu6' });
CASES.push({ name: 'fused leakyrelu, no bias', a: [96, 160], b: [96, 120], ta: true, tb: false, activation: 'leakyrelu' });
CASES.push({ name: 'fused prelu', a: [160, 96], b: [96, 120], ta: false, tb: false, bias: [120], activation: 'prelu', prelu: [120] });
// Many small products (attention heads): below BLAS_MIN_BATCHED_MACS each, so ONNX Runtime takes them where it loads.
CASES.push({ name: 'heads NT', a: [24, 64, 64], b: [24, 64, 64], ta: false, tb: true });
CASES.push({ name: 'tiny (stock path)', a: [2, 3], b: [3, 2], ta: false, tb: false });

function runCase(c: MatMulCase, seed: number): Float32Array {
  return tf.tidy(() => {
    const a = tf.tensor(values(size(c.a), seed), c.a);
    const b = tf.tensor(values(size(c.b), seed + 1), c.b);
    let y: tf.Tensor;
    if (c.bias !== undefined || c.activation !== undefined) {
      y = tf.fused.matMul({
        a,
        b,
        transposeA: c.ta,
        transposeB: c.tb,
        ...(c.bias ? { bias: tf.tensor(values(Math.max(1, size(c.bias)), seed + 2), c.bias) } : {}),
        ...(c.activation ? { activation: c.activation } : {}),
        ...(c.prelu ? { preluActivationWeights: tf.tensor(values(size(c.prelu), seed + 3), c.prelu) } : {}),
        leakyreluAlpha: 0.3,
      });
    } else {
      y = tf.matMul(a, b, c.ta, c.tb);
    }
    return y.dataSync() as Float32Array;
  });
}

/** Every case computed by the stock cpu kernel (once, shared by the suites below). */
const reference = new Map<string, Float32Array>();
async function computeReference(): Promise<void> {
  if (reference.size > 0) return;
  await stockCpu();
  CASES.forEach((c, i) => reference.set(c.name, runCase(c, 100 + i)));
}

describe('matmul kernels against the stock cpu kernel', () => {
  before(computeReference);

  test('the output shapes follow tfjs (and numpy batch broadcasting)', () => {
    assert.deepEqual(planMatMul([2, 3, 5, 7], [7, 4], false, false).outShape, [2, 3, 5, 4]);
    assert.deepEqual(planMatMul([1, 7, 5], [6, 4, 7], true, true).outShape, [6, 5, 4]);
    assert.throws(() => planMatMul([5, 7], [6, 4], false, false), /inner shapes \(7\) and \(6\)/);
    assert.throws(() => planMatMul([2, 5, 7], [3, 7, 4], false, false), /broadcast/i);
  });

  for (const [backend, native, withBlas] of [
    ['cpu', true, true],
    ['cpu', true, false],
    ['wasm', true, true],
    ['wasm', true, false],
    ['wasm', false, false],
  ] as const) {
    const label = `${backend}, native matmul ${native ? (withBlas ? 'on (BLAS and ONNX Runtime)' : 'on (ONNX Runtime)') : 'off'}`;
    test(label, { skip: (native && NO_ORT) || (withBlas && NO_BLAS) }, async () => {
      const info = await initBackend(backend, { nativeMatmul: native, blas: withBlas, threads: 2 });
      assert.equal(info.name, backend);
      assert.equal(info.nativeMatmul, native);
      assert.equal(info.matmul, native ? (withBlas ? 'blas' : 'onnxruntime') : 'wasm');
      assert.equal(replacementOf('BatchMatMul', backend), native ? 'native' : 'wasm-gemm');
      const before = calls();
      CASES.forEach((c, i) => assertClose(runCase(c, 100 + i), reference.get(c.name)!, 1e-4, `${backend} ${c.name}`));
      const after = calls();
      if (native) {
        // Every case but the tiny one went to a native library: the heads to ONNX Runtime, the rest to the BLAS.
        const toOrt = after.ort - before.ort;
        const toBlas = after.blas - before.blas;
        assert.equal(toOrt + toBlas, CASES.length - 1);
        assert.equal(toOrt, withBlas ? 1 : CASES.length - 1);
      }
    });
  }

  for (const withBlas of [false, true]) {
    const how = withBlas ? 'the BLAS reads it in place, ONNX Runtime through copies' : 'through copies';
    test(`native products on the threaded wasm build (shared memory): ${how}`, { skip: NO_ORT || (withBlas && NO_BLAS) }, async () => {
      const info = await initBackend('wasm', { wasmBuild: 'threaded-simd', threads: 2, nativeMatmul: true, blas: withBlas });
      assert.equal(info.wasmBuild, 'threaded-simd');
      assert.equal(info.nativeMatmul, true);
      const before = calls();
      for (const name of ['batched NT', 'fused bias+relu TN', 'fused prelu', 'heads NT']) {
        const i = CASES.findIndex((c) => c.name === name);
        assertClose(runCase(CASES[i]!, 100 + i), reference.get(name)!, 1e-4, `threaded ${name}`);
      }
      assert.equal(calls().blas - before.blas, withBlas ? 3 : 0);
    });
  }

  after(async () => {
    await tf.setBackend('cpu');
  });
});

describe('the WebAssembly matmul (wasm without ONNX Runtime)', () => {
  before(computeReference);

  test('packs B into zero-padded panels of 16 columns (hand-computed)', () => {
    // B = [[1, 2, …, 18], [19, …, 36]]: k = 2, n = 18 → 2 panels.
    const b = Float32Array.from({ length: 36 }, (_, i) => i + 1);
    const out = new Float32Array(2 * 32).fill(NaN);
    packB(b, 2, 18, false, out);
    const expected = [
      ...Array.from({ length: 16 }, (_, c) => c + 1),
      ...Array.from({ length: 16 }, (_, c) => c + 19),
      17, 18, ...new Array(14).fill(0),
      35, 36, ...new Array(14).fill(0),
    ];
    assert.deepEqual(Array.from(out), expected);
    // The same B given transposed ([n, k]) packs the same.
    const bt = Float32Array.from({ length: 36 }, (_, i) => b[(i % 2) * 18 + Math.floor(i / 2)]!);
    const out2 = new Float32Array(64).fill(NaN);
    packB(bt, 2, 18, true, out2);
    assert.deepEqual(Array.from(out2), expected);
  });

  for (const build of ['threaded-simd', 'simd'] as const) {
    test(`${build} build: every case against the stock cpu kernel, through our product where it applies`, async () => {
      const info = await initBackend('wasm', { nativeMatmul: false, wasmBuild: build, threads: 2 });
      assert.equal(info.wasmBuild, build);
      assert.equal(replacementOf('BatchMatMul', 'wasm'), 'wasm-gemm');
      const gemm = wasmGemmFor(wasmMemoryOf(tf.backend())!, 2)!;
      assert.equal(gemm.threads, build === 'threaded-simd' ? 2 : 1);
      const saved = { ...WASM_GEMM_MIN };
      Object.assign(WASM_GEMM_MIN, { macs: 0, rows: 1 });
      const before = gemm.calls;
      try {
        // Twice: the worker may still be starting during the first round (the calling thread then does it all).
        for (let round = 0; round < 2; round++) {
          CASES.forEach((c, i) => assertClose(runCase(c, 100 + i), reference.get(c.name)!, 1e-4, `${build} ${c.name}`));
        }
      } finally {
        Object.assign(WASM_GEMM_MIN, saved);
      }
      // Ours: one right-hand matrix (a transposed a only without batch), or equal batch shapes; the rest (a
      // broadcast over several b, a batched transposed a against one b) is left to the stock kernel.
      const ours = CASES.filter((c) => {
        const batchA = size(c.a.slice(0, -2));
        const batchB = size(c.b.slice(0, -2));
        return (batchB === 1 && (!c.ta || batchA === 1)) || (batchB > 1 && c.a.slice(0, -2).join() === c.b.slice(0, -2).join());
      }).length;
      assert.equal(ours, CASES.length - 8);
      assert.equal(gemm.calls - before, 2 * ours);
    });
  }

  test('switching wasm builds stops the previous heap\'s matmul worker; the new heap gets its own', async () => {
    await initBackend('wasm', { nativeMatmul: false, wasmBuild: 'threaded-simd', threads: 2 });
    const oldMemory = wasmMemoryOf(tf.backend())!;
    const old = wasmGemmFor(oldMemory, 2)!;
    assert.equal(old.threads, 2);
    await initBackend('wasm', { nativeMatmul: false, wasmBuild: 'simd', threads: 2 });
    // A new instance for the old heap: the one before was disposed when its backend was replaced.
    const again = wasmGemmFor(oldMemory, 2)!;
    assert.notEqual(again, old);
    disposeWasmGemm(oldMemory);
    const current = wasmGemmFor(wasmMemoryOf(tf.backend())!, 2)!;
    assert.equal(current.threads, 1);
    const i = CASES.findIndex((c) => c.name === 'batched NN');
    const saved = { ...WASM_GEMM_MIN };
    Object.assign(WASM_GEMM_MIN, { macs: 0, rows: 1 });
    try {
      assertClose(runCase(CASES[i]!, 100 + i), reference.get('batched NN')!, 1e-4, 'after switching builds');
    } finally {
      Object.assign(WASM_GEMM_MIN, saved);
    }
  });

  test('T5CLS_WASM_GEMM=0 (wasmGemm.enabled false) keeps the transpose-first stock path', async () => {
    wasmGemm.enabled = false;
    try {
      await initBackend('wasm', { nativeMatmul: false, threads: 2 });
      assert.equal(replacementOf('BatchMatMul', 'wasm'), 'transpose-first');
      const i = CASES.findIndex((c) => c.name === 'batched TT');
      assertClose(runCase(CASES[i]!, 100 + i), reference.get('batched TT')!, 1e-4, 'stock batched TT');
    } finally {
      wasmGemm.enabled = true;
    }
  });

  after(async () => {
    await tf.setBackend('cpu');
  });
});

describe('UnsortedSegmentSum', () => {
  test('sums rows into their segments, dropping out-of-range ids (hand-computed)', async () => {
    for (const backend of ['cpu', 'wasm'] as const) {
      await initBackend(backend, { nativeMatmul: false, threads: 1 });
      const y = tf.tidy(() =>
        tf
          .unsortedSegmentSum(
            tf.tensor2d([[1, 2], [3, 4], [5, 6], [7, 8], [9, 10]]),
            tf.tensor1d([2, 0, 2, -1, 5], 'int32'),
            3,
          )
          .arraySync(),
      );
      assert.deepEqual(y, [[3, 4], [0, 0], [6, 8]], backend);
      const yi = tf.tidy(() =>
        tf.unsortedSegmentSum(tf.tensor1d([1, 2, 3, 4], 'int32'), tf.tensor1d([1, 1, 0, 1], 'int32'), 2).arraySync(),
      );
      assert.deepEqual(yi, [3, 7], `${backend} int32`);
    }
  });

  test('matches the stock cpu kernel on random data (rank-3 values)', async () => {
    const ids = Array.from(values(64, 7), (v) => Math.floor((v + 1) * 10)); // 0..19, with repeats
    const x = values(64 * 3 * 5, 8);
    const run = (): Float32Array =>
      tf.tidy(() => tf.unsortedSegmentSum(tf.tensor3d(x, [64, 3, 5]), tf.tensor1d(ids, 'int32'), 20).dataSync() as Float32Array);
    await stockCpu();
    const expected = run();
    for (const backend of ['cpu', 'wasm'] as const) {
      await initBackend(backend, { nativeMatmul: false, threads: 1 });
      assertClose(run(), expected, 1e-6, backend);
    }
  });

  test('rejects segment ids that are not a prefix of the values shape', () => {
    assert.throws(
      () =>
        unsortedSegmentSum({
          inputs: {
            x: { dataId: {}, shape: [4, 2], dtype: 'float32' },
            segmentIds: { dataId: {}, shape: [3], dtype: 'int32' },
          },
          backend: {},
          attrs: { numSegments: 2 },
        }),
      /prefix/,
    );
  });
});

describe('zero-copy Identity on wasm', () => {
  test('clone shares memory, survives disposal of the original, and frees once both are gone', async () => {
    await initBackend('wasm', { nativeMatmul: false, threads: 1 });
    assert.equal(replacementOf('Identity', 'wasm'), 'zero-copy');
    const backend = tf.backend() as unknown as { getMemoryOffset(d: object): number; numDataIds(): number };
    const idsBefore = backend.numDataIds();
    const x = tf.tensor1d([1.5, -2, 3]);
    const y = tf.clone(x);
    assert.equal(backend.getMemoryOffset(y.dataId), backend.getMemoryOffset(x.dataId));
    assert.equal(backend.numDataIds(), idsBefore + 1);
    x.dispose();
    assert.deepEqual(Array.from(y.dataSync()), [1.5, -2, 3]);
    y.dispose();
    assert.equal(backend.numDataIds(), idsBefore);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// A small T5-shaped forward and backward pass using every op T5 training needs.

const B = 2;
const L = 5;
const D = 16;
const H = 2;
const DH = 8;
const V = 40;
const F = 32;
const NB = 8;

const SHAPES: Record<string, number[]> = {
  emb: [V, D],
  ln1: [D],
  wq: [D, H * DH],
  wk: [D, H * DH],
  wv: [D, H * DH],
  wo: [H * DH, D],
  relBias: [NB, H],
  ln2: [D],
  wi: [D, F],
  bi: [F],
  wg: [D, F],
  wo2: [F, D],
  ln3: [D],
};
const IDS = [
  [5, 17, 3, 3, 0],
  [9, 1, 38, 22, 7],
];
const LABELS = [
  [4, 4, 11, 0, 0],
  [2, 30, 39, 6, 1],
];

function rmsNorm(x: tf.Tensor, w: tf.Tensor): tf.Tensor {
  const variance = tf.mean(tf.square(x), -1, true);
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(variance, 1e-6))), w);
}

function geluNew(x: tf.Tensor): tf.Tensor {
  const inner = tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3))));
  return tf.mul(0.5, tf.mul(x, tf.add(1, tf.tanh(inner))));
}

/** T5's bidirectional relative-position buckets, built from abs/greater/log/floor/minimum/where. */
function positionBuckets(): tf.Tensor {
  const ctx = tf.reshape(tf.range(0, L, 1, 'int32'), [L, 1]);
  const mem = tf.reshape(tf.range(0, L, 1, 'int32'), [1, L]);
  const rel = tf.sub(mem, ctx);
  const nb = NB / 2;
  const maxExact = nb / 2;
  const int = (n: number) => tf.scalar(n, 'int32');
  const side = tf.mul(tf.cast(tf.greater(rel, 0), 'int32'), int(nb));
  const dist = tf.abs(rel);
  const isSmall = tf.less(dist, int(maxExact));
  const large = tf.add(
    int(maxExact),
    tf.cast(
      tf.floor(tf.mul(tf.div(tf.log(tf.div(tf.cast(tf.maximum(dist, int(1)), 'float32'), maxExact)), Math.log(16 / maxExact)), nb - maxExact)),
      'int32',
    ),
  );
  const largeCapped = tf.minimum(large, int(nb - 1));
  return tf.add(side, tf.where(isSmall, dist, largeCapped));
}

function forward(v: Record<string, tf.Variable>): tf.Scalar {
  const ids = tf.tensor2d(IDS, [B, L], 'int32');
  const labels = tf.tensor2d(LABELS, [B, L], 'int32');
  const x = tf.gather(v['emb']!, ids); // [B, L, D]
  const h = tf.reshape(rmsNorm(x, v['ln1']!), [B * L, D]);
  const heads = (w: tf.Tensor) => tf.transpose(tf.reshape(tf.matMul(h, w), [B, L, H, DH]), [0, 2, 1, 3]);
  const q = heads(v['wq']!);
  const k = heads(v['wk']!);
  const val = heads(v['wv']!);
  // concat + slice round trip on the head axis.
  const qk = tf.concat([q, k], 3);
  const q2 = tf.slice(qk, [0, 0, 0, 0], [B, H, L, DH]);
  const k2 = tf.slice(qk, [0, 0, 0, DH], [B, H, L, DH]);
  let scores = tf.matMul(q2, k2, false, true); // [B, H, L, L]
  const bias = tf.transpose(tf.gather(v['relBias']!, positionBuckets()), [2, 0, 1]); // [H, L, L]
  scores = tf.add(scores, tf.expandDims(bias, 0));
  const keyMask = tf.reshape(tf.equal(ids, 0), [B, 1, 1, L]);
  scores = tf.where(tf.tile(keyMask, [1, H, L, 1]), tf.fill([B, H, L, L], -1e9), scores);
  let probs = tf.softmax(scores);
  const keep = tf.greaterEqual(tf.randomUniform([B, H, L, L], 0, 1, 'float32', 1234), 0.1);
  probs = tf.where(keep, tf.div(probs, 0.9), tf.zerosLike(probs)); // dropout
  const ctxv = tf.matMul(probs, val); // [B, H, L, DH]
  const attn = tf.reshape(tf.transpose(ctxv, [0, 2, 1, 3]), [B * L, H * DH]);
  const x2 = tf.add(tf.reshape(x, [B * L, D]), tf.matMul(attn, v['wo']!));
  const h2 = rmsNorm(x2, v['ln2']!);
  const relu = tf.fused.matMul({ a: h2, b: v['wi']!, bias: v['bi']!, activation: 'relu' });
  const gated = tf.mul(relu, geluNew(tf.matMul(h2, v['wg']!)));
  const x3 = tf.add(x2, tf.matMul(gated, v['wo2']!));
  const h3 = tf.mul(rmsNorm(x3, v['ln3']!), D ** -0.5);
  const logits = tf.matMul(h3, v['emb']!, false, true); // tied embeddings, [B*L, V]
  const logp = tf.logSoftmax(logits);
  const flatLabels = tf.reshape(labels, [B * L]);
  const onehot = tf.cast(tf.oneHot(flatLabels, V), 'float32');
  const nll = tf.neg(tf.sum(tf.mul(onehot, logp), -1));
  const tokMask = tf.cast(tf.notEqual(flatLabels, 0), 'float32');
  const loss = tf.div(tf.sum(tf.mul(nll, tokMask)), tf.sum(tokMask));
  const extras = tf.addN([
    tf.mul(0.01, tf.mean(tf.abs(tf.minimum(tf.maximum(logits, -0.5), 0.5)))),
    tf.mul(0.01, tf.mean(tf.sqrt(tf.add(tf.square(h3), 1)))),
    tf.mul(0.01, tf.mean(tf.exp(tf.neg(tf.abs(x3))))),
    tf.mul(0.01, tf.mean(tf.erf(h2))),
    tf.mul(0.01, tf.mean(tf.sigmoid(x2))),
    tf.mul(0.001, tf.mean(tf.logSumExp(logits, -1))),
    tf.mul(0.001, tf.mean(tf.log(tf.add(tf.sub(tf.softmax(logits), 0), 1)))),
  ]);
  return tf.add(loss, extras) as tf.Scalar;
}

function trainStep(): { loss: number; grads: Record<string, Float32Array> } {
  const vars: Record<string, tf.Variable> = {};
  let seed = 1;
  const tag = `${tf.getBackend()}_${Math.random().toString(36).slice(2)}`;
  for (const [name, shape] of Object.entries(SHAPES)) {
    const init = values(size(shape), seed++);
    if (name.startsWith('ln')) init.forEach((x, i) => (init[i] = 1 + 0.1 * x));
    vars[name] = tf.variable(tf.tensor(init, shape), true, `kernels_test_${tag}_${name}`);
  }
  try {
    const { value, grads } = tf.variableGrads(() => forward(vars), Object.values(vars));
    const out: Record<string, Float32Array> = {};
    for (const [name, variable] of Object.entries(vars)) out[name] = grads[variable.name]!.dataSync() as Float32Array;
    const loss = value.dataSync()[0]!;
    tf.dispose([value, ...Object.values(grads)]);
    return { loss, grads: out };
  } finally {
    for (const v of Object.values(vars)) v.dispose();
  }
}

describe('T5-shaped forward + backward: every training op, cpu vs wasm', () => {
  let reference: { loss: number; grads: Record<string, Float32Array> };
  before(async () => {
    await stockCpu();
    // tfjs's own backward pass too: with fused kernels off, our lean backward pass steps aside.
    const saved = fusedKernels.enabled;
    fusedKernels.enabled = false;
    try {
      reference = trainStep();
    } finally {
      fusedKernels.enabled = saved;
    }
  });

  test('the reference is a real loss with non-zero gradients everywhere', () => {
    assert.ok(reference.loss > 1 && reference.loss < 10, `loss ${reference.loss}`);
    for (const [name, g] of Object.entries(reference.grads)) {
      assert.ok(g.some((x) => x !== 0), `${name} gradient is all zeros`);
      assert.ok(g.every((x) => Number.isFinite(x)), `${name} gradient not finite`);
    }
  });

  for (const [backend, native, withBlas] of [
    ['wasm', false, false],
    ['wasm', true, false],
    ['wasm', true, true],
    ['cpu', true, false],
    ['cpu', true, true],
  ] as const) {
    const label = `${backend}, native matmul ${native ? (withBlas ? 'on (BLAS and ONNX Runtime)' : 'on (ONNX Runtime)') : 'off'}`;
    test(`${label}: loss and all gradients within 1e-5`, { skip: (native && NO_ORT) || (withBlas && NO_BLAS) }, async () => {
      await initBackend(backend, { nativeMatmul: native, blas: withBlas, threads: 2 });
      const savedMin = NATIVE_MIN_MACS[backend];
      const savedWasm = { ...WASM_GEMM_MIN };
      // The products here are small: send them all to the native libraries when on, else to our wasm product.
      NATIVE_MIN_MACS[backend] = 0;
      Object.assign(WASM_GEMM_MIN, { macs: 0, rows: 1 });
      const before = calls();
      let got: ReturnType<typeof trainStep>;
      try {
        got = trainStep();
      } finally {
        NATIVE_MIN_MACS[backend] = savedMin;
        Object.assign(WASM_GEMM_MIN, savedWasm);
      }
      // 10 products forward, 2 for each backward (transposed operands), all native.
      const after = calls();
      if (native) {
        assert.equal(after.ort - before.ort + after.blas - before.blas, 30, 'native calls');
        if (withBlas) assert.ok(after.blas - before.blas >= 10, `BLAS calls ${after.blas - before.blas}`);
      }
      assertClose([got.loss], [reference.loss], 1e-5, 'loss');
      for (const name of Object.keys(SHAPES)) assertClose(got.grads[name]!, reference.grads[name]!, 1e-5, `d${name}`);
    });
  }

  after(async () => {
    await tf.setBackend('cpu');
  });
});

/**
 * The cpu engine (engine/cpu): its kernels against tfjs's stock cpu kernels (the reference) over broadcast
 * patterns, special values and gradients; and how `auto` chooses it for jobs the wasm heap cannot hold. The T5
 * fixture tests (model.test.ts, training.test.ts) run on this engine too, as the `cpu` test backend.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { tf } from '../src/tf.js';
import { initBackend } from '../src/engine/init.js';
import { registerCpuKernels, restoreCpuKernels } from '../src/engine/cpu/register_all_kernels.js';
import { ORT_MIN_ELEMENTS } from '../src/engine/kernels/ort_route.js';
import { installCopyAvoidingKernels, restoreExtraKernels } from '../src/engine/kernels/extra.js';
import { loadOrtMatMul } from '../src/engine/ort/runtime.js';
import { broadcastPlan } from '../src/engine/cpu/broadcast_binary.js';
import { arrayPoolOf } from '../src/engine/cpu/array_pool.js';
import { replacementOf } from '../src/engine/tfjs_internals.js';
import { WASM_TENSOR_BYTES } from '../src/engine/wasm/activate.js';
import { UsageError } from '../src/errors.js';
import { gatedActivation, reluDropout, rmsNorm } from '../src/model/layers.js';
import { RELU_DROPOUT } from '../src/engine/cpu/kernels/relu_dropout.js';

/** Deterministic values in [-2, 2) (a 32-bit LCG), some of them exactly zero. */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = i % 11 === 5 ? 0 : (s / 2 ** 31 - 1) * 2;
  }
  return out;
}

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

function assertIdentical(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    // The same number (NaN where NaN; the sign of a zero is not compared: ONNX Runtime's relu keeps -0).
    const same = actual[i] === expected[i] || (Number.isNaN(actual[i]) && Number.isNaN(expected[i]));
    if (!same) assert.fail(`${what}: element ${i} is ${actual[i]}, expected ${expected[i]}`);
  }
}

/** Equal within `rel` relative (1e-6: a few float32 units in the last place), or `abs` absolute near zero. */
function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, rel = 1e-6, abs = 1e-12): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const [a, e] = [actual[i]!, expected[i]!];
    if (Number.isNaN(a) && Number.isNaN(e)) continue;
    if (!(Math.abs(a - e) <= Math.max(rel * Math.abs(e), abs))) assert.fail(`${what}: element ${i} is ${a}, expected ${e}`);
  }
}

const ort = loadOrtMatMul(2);

/**
 * `f` computed by the stock cpu kernels and by the cpu engine's, on the cpu backend: with `viaOrt`, every tensor
 * of the engine's goes through ONNX Runtime (skipped when it cannot load), else through the JavaScript loops.
 */
async function bothWays<T>(f: () => T, viaOrt: boolean): Promise<{ stock: T; ours: T }> {
  await initBackend('cpu', { nativeMatmul: false, threads: 1 });
  restoreCpuKernels();
  restoreExtraKernels('cpu');
  const stock = f();
  installCopyAvoidingKernels('cpu');
  registerCpuKernels(viaOrt && ort.ok ? ort.ort : undefined);
  const saved = ORT_MIN_ELEMENTS.value;
  ORT_MIN_ELEMENTS.value = 0;
  try {
    return { stock, ours: f() };
  } finally {
    ORT_MIN_ELEMENTS.value = saved;
  }
}

/** Runs `f`, appending to `keys` the key of every ONNX Runtime graph it runs. */
function recordingGraphs<T>(keys: string[], f: () => T): T {
  if (!ort.ok) return f();
  const runtime = ort.ort;
  const runGraph = runtime.runGraph;
  runtime.runGraph = (key, ...rest) => (keys.push(key), runGraph.call(runtime, key, ...rest));
  try {
    return f();
  } finally {
    runtime.runGraph = runGraph;
  }
}

const PATHS = [
  { viaOrt: false, name: 'JavaScript loops', skip: false },
  { viaOrt: true, name: 'ONNX Runtime', skip: ort.ok ? false : `onnxruntime-node not loadable: ${ort.ok ? '' : ort.reason}` },
];

const BROADCASTS: [number[], number[]][] = [
  [[2, 3, 4], [2, 3, 4]],
  [[2, 3, 4], [4]],
  [[4], [2, 3, 4]],
  [[2, 3, 4], [3, 1]],
  [[1, 3, 1], [2, 1, 4]],
  [[16, 8, 5, 7], [1, 8, 5, 7]],
  [[16, 8, 5, 7], [16, 1, 1, 7]],
  [[16, 8, 5, 7], [16, 8, 5, 1]],
  [[], [2, 3]],
  [[2, 3], []],
  [[5, 1], [1, 6]],
  [[2, 1, 3, 1, 4], [1, 5, 1, 6, 4]],
  [[3, 1, 1], [1, 1, 1]],
  [[0, 3], [1, 3]],
];

for (const path of PATHS) describe(`cpu engine kernels (${path.name}) equal the stock cpu kernels`, () => {
  for (const [op, fn] of [
    ['Add', tf.add],
    ['Sub', tf.sub],
    ['Multiply', tf.mul],
    ['RealDiv', tf.div],
  ] as const) {
    test(`${op} over ${BROADCASTS.length} broadcast patterns, float32 and int32`, { skip: path.skip }, async () => {
      const run = () =>
        BROADCASTS.map(([as, bs], i) =>
          tf.tidy(() => fn(tf.tensor(values(size(as), 3 + i), as), tf.tensor(values(size(bs), 50 + i), bs)).dataSync()),
        );
      const ints = () => tf.tidy(() => fn(tf.tensor2d([[7, -3], [4, 9]], [2, 2], 'int32'), tf.tensor1d([2, -5], 'int32')).arraySync());
      const { stock, ours } = await bothWays(() => ({ floats: run(), ints: ints() }), path.viaOrt);
      assert.equal(replacementOf(op, 'cpu'), 'cpu-engine');
      BROADCASTS.forEach(([as, bs], i) => assertIdentical(ours.floats[i]!, stock.floats[i]!, `${op} [${as}] · [${bs}]`));
      assert.deepEqual(ours.ints, stock.ints);
    });
  }

  test('Softmax over rows with masked (-3.4e38, -Infinity) entries, and its gradient', { skip: path.skip }, async () => {
    const shapes = [[3, 7], [2, 3, 17], [4, 1], [2, 2, 64]];
    const masked = (shape: number[], seed: number) => {
      const v = values(size(shape), seed);
      for (let i = 0; i < v.length; i += 5) v[i] = -3.4028234663852886e38;
      if (v.length > 3) v[3] = -Infinity;
      return v;
    };
    const { stock, ours } = await bothWays(() =>
      shapes.map((s, i) =>
        tf.tidy(() => {
          const x = tf.tensor(masked(s, 9 + i), s);
          const dy = tf.tensor(values(size(s), 90 + i), s);
          const [y, dx] = [tf.softmax(x), tf.grad((t: tf.Tensor) => tf.softmax(t))(x, dy)];
          return [y.dataSync(), dx.dataSync()];
        }),
      ),
      path.viaOrt,
    );
    // ONNX Runtime's vectorised exponential: within a few units in the last place (the gradient's y·(dy - Σ dy·y)
    // cancels, so it is compared to 1e-5 there); the loops give the same numbers.
    shapes.forEach((s, i) => {
      if (!path.viaOrt) {
        assertIdentical(ours[i]![0]!, stock[i]![0]!, `softmax [${s}]`);
        assertIdentical(ours[i]![1]!, stock[i]![1]!, `softmax gradient [${s}]`);
      } else {
        assertClose(ours[i]![0]!, stock[i]![0]!, `softmax [${s}]`);
        assertClose(ours[i]![1]!, stock[i]![1]!, `softmax gradient [${s}]`, 1e-5, 1e-9);
      }
    });
  });

  test('Relu, Step (relu gradient), Tanh and transposes, with NaN, ±0 and ±Infinity', { skip: path.skip }, async () => {
    const special = new Float32Array([NaN, -0, 0, Infinity, -Infinity, 1e-30, -1e-30, 3.5, -2.25]);
    const x = new Float32Array([...special, ...values(300, 77)]);
    const dy = values(x.length, 78);
    const { stock, ours } = await bothWays(() =>
      tf.tidy(() => {
        const t = tf.tensor1d(x);
        return [
          tf.relu(t).dataSync(),
          tf.grad((v: tf.Tensor) => tf.relu(v))(t, tf.tensor1d(dy)).dataSync(),
          tf.tanh(t).dataSync(),
          tf.leakyRelu(t, 0.25).dataSync(),
          tf.transpose(tf.reshape(t.slice(0, 300), [5, 3, 4, 5]), [0, 2, 1, 3]).dataSync(),
          tf.transpose(tf.reshape(t.slice(0, 300), [5, 3, 4, 5]), [3, 1, 0, 2]).dataSync(),
        ];
      }),
      path.viaOrt,
    );
    ['relu', 'relu gradient', 'tanh', 'leaky relu', 'head transpose', 'general transpose'].forEach((name, i) =>
      assertIdentical(ours[i]!, stock[i]!, name),
    );
  });

  test('Sum over leading axes (and the cases left to the stock kernel) gives the same numbers', { skip: path.skip }, async () => {
    const cases: [number[], number | number[], boolean][] = [
      [[16, 3, 5, 7], 0, false],
      [[16, 3, 5, 7], [0], true],
      [[4, 3, 5, 7], [1, 0], false],
      [[4, 3, 5], [0, 1, 2], false],
      [[4, 3, 5], -1, true],
      [[4, 3, 5], 1, false],
      [[9, 1], 0, false],
    ];
    const { stock, ours } = await bothWays(
      () =>
        cases.map(([shape, axis, keep], i) =>
          tf.tidy(() => {
            // Magnitudes from 1e-8 to 1e8, so that a different order of addition would show.
            const v = values(size(shape), 40 + i).map((e, j) => e * 10 ** ((j % 17) - 8));
            const s = tf.sum(tf.tensor(v, shape), axis, keep);
            return { shape: s.shape, data: s.dataSync() };
          }),
        ),
      path.viaOrt,
    );
    cases.forEach(([shape, axis], i) => {
      assert.deepEqual(ours[i]!.shape, stock[i]!.shape);
      assertIdentical(ours[i]!.data, stock[i]!.data, `sum [${shape}] over ${axis}`);
    });
  });

  test('T5 layer norm and its gradient (x and weight): the same as the fused loops, to 1e-5 on ONNX Runtime', { skip: path.skip }, async () => {
    const graphs: string[] = [];
    const shapes = [[2, 3, 16], [37, 10], [4, 8, 64]];
    const { stock, ours } = await bothWays(() =>
      recordingGraphs(graphs, () =>
        shapes.map((s, i) =>
          tf.tidy(() => {
            const x = tf.tensor(values(size(s), 60 + i), s);
            const w = tf.tensor1d(values(s[s.length - 1]!, 70 + i).map((v) => v + 1));
            const dy = tf.tensor(values(size(s), 80 + i), s);
            const f = (a: tf.Tensor, b: tf.Tensor) => rmsNorm(a, b, 1e-6);
            const [dx, dw] = tf.grads(f)([x, w], dy);
            return [f(x, w).dataSync(), dx!.dataSync(), dw!.dataSync()];
          }),
        ),
      ),
      path.viaOrt,
    );
    assert.deepEqual([...new Set(graphs)].sort(), path.viaOrt ? ['rms_norm', 'rms_norm_grad'] : []);
    shapes.forEach((s, i) =>
      ['layer norm', 'dx', 'dweight'].forEach((what, k) => {
        if (path.viaOrt) assertClose(ours[i]![k]!, stock[i]![k]!, `${what} [${s}]`, 1e-5, 1e-6);
        else assertIdentical(ours[i]![k]!, stock[i]![k]!, `${what} [${s}]`);
      }),
    );
  });

  test('dropout(relu(x)) in one kernel: the same masks, values and gradient as relu then dropout', { skip: path.skip }, async () => {
    const special = new Float32Array([NaN, -0, 0, Infinity, -Infinity, 1e-30, -1e-30, 3.5, -2.25]);
    // Long enough to span several of the kernel's chunks (16384 elements), whose generator state carries over.
    const x = new Float32Array([...special, ...values(40000, 21)]);
    const dy = values(x.length, 22);
    const { stock, ours } = await bothWays(() =>
      tf.tidy(() => {
        const t = tf.tensor2d(x, [1, x.length]);
        const fusedHere = tf.getKernel(RELU_DROPOUT, 'cpu') !== undefined;
        return {
          fusedHere,
          y: reluDropout(t, 0.3, 1000003 * 5 + 2).dataSync(),
          dx: tf.grad((v: tf.Tensor) => reluDropout(v, 0.3, 1000003 * 5 + 2))(t, tf.tensor2d(dy, [1, x.length])).dataSync(),
        };
      }),
      path.viaOrt,
    );
    assert.equal(stock.fusedHere, false);
    assert.equal(ours.fusedHere, true);
    assertIdentical(ours.y, stock.y, 'dropout(relu(x))');
    assertIdentical(ours.dx, stock.dx, 'its gradient');
    const dropped = Array.from(ours.y.slice(special.length)).filter((v, i) => v === 0 && x[i + special.length]! > 0).length;
    const positive = Array.from(x.slice(special.length)).filter((v) => v > 0).length;
    assert.ok(Math.abs(dropped / positive - 0.3) < 0.05, `dropped ${dropped} of ${positive} positive values at rate 0.3`);
  });
});

test('gated gelu_new in one ONNX Runtime graph: values and both gradients within 1e-5 of the tfjs ops', { skip: PATHS[1]!.skip }, async () => {
  const graphs: string[] = [];
  const shapes = [[3, 5, 64], [7, 129]];
  const { stock, ours } = await bothWays(() =>
    recordingGraphs(graphs, () =>
      shapes.map((s, i) =>
        tf.tidy(() => {
          // Gate values from -8 to 8, where tanh saturates and where it does not.
          const a = tf.tensor(values(size(s), 30 + i).map((v) => v * 4), s);
          const b = tf.tensor(values(size(s), 40 + i), s);
          const dy = tf.tensor(values(size(s), 50 + i), s);
          const f = (x: tf.Tensor, y: tf.Tensor) => gatedActivation(x, y, 'gelu_new');
          const [da, db] = tf.grads(f)([a, b], dy);
          return [f(a, b).dataSync(), da!.dataSync(), db!.dataSync()];
        }),
      ),
    ),
    true,
  );
  assert.deepEqual([...new Set(graphs)].sort(), ['gated_gelu', 'gated_gelu_grad']);
  shapes.forEach((s, i) =>
    // Absolute 1e-5 on values up to ~10: where gelu_new' crosses zero (a ≈ -0.75) the relative error is large.
    ['gelu_new(a)·b', 'da', 'db'].forEach((what, k) => assertClose(ours[i]![k]!, stock[i]![k]!, `${what} [${s}]`, 1e-5, 1e-5)),
  );
});

describe('broadcast plan', () => {
  test('merges axes both operands walk alike, keeps the others', () => {
    // Attention scores + [batch, 1, 1, keys] padding mask: heads and queries merge (the mask stands still on both).
    assert.deepEqual(broadcastPlan([16, 8, 5, 7], [16, 1, 1, 7]), {
      outShape: [16, 8, 5, 7],
      dims: [16, 40, 7],
      aStrides: [280, 7, 1],
      bStrides: [7, 0, 1],
    });
    // Same shapes: one run over everything.
    assert.deepEqual(broadcastPlan([2, 3, 4], [2, 3, 4]).dims, [24]);
    // A column against a row: nothing merges.
    assert.deepEqual(broadcastPlan([5, 1], [1, 6]), { outShape: [5, 6], dims: [5, 6], aStrides: [1, 0], bStrides: [0, 1] });
    assert.throws(() => broadcastPlan([2, 3], [4]), /broadcast/i);
  });
});

describe('choosing the engine by what the job needs', () => {
  test('auto leaves wasm out when the tensors exceed its heap, and says so', async () => {
    const lines: string[] = [];
    const info = await initBackend('auto', { tensorBytes: WASM_TENSOR_BYTES + 1, threads: 1, log: (l) => lines.push(l) });
    // tfjs-node is not installed here; with it, auto would take it before either embedded backend.
    if (info.name === 'tensorflow') return;
    assert.equal(info.name, 'cpu');
    assert.ok(info.kernels.includes('Softmax'), info.kernels.join(', '));
    assert.match(lines[0]!, /wasm left out: the job's tensors need about 3\.2 GB, more than its heap holds/);
  });

  test('auto keeps wasm for a job its heap holds', async () => {
    const info = await initBackend('auto', { tensorBytes: 2 ** 30, threads: 1 });
    if (info.name === 'tensorflow') return;
    assert.equal(info.name, 'wasm');
  });

  test('--backend wasm refuses a job its heap cannot hold, in one line', async () => {
    await assert.rejects(
      initBackend('wasm', { tensorBytes: 5e9, threads: 1 }),
      (e: Error) => e instanceof UsageError && /^--backend wasm cannot hold this job: its tensors need about 5\.0 GB/.test(e.message),
    );
  });
});

describe('reusing the arrays of freed tensors', () => {
  const N = 1 << 16;

  test('arrays nothing can see are reused; dataSync results, caller arrays and slices of live tensors never are', async () => {
    await initBackend('cpu', { threads: 1 });
    const pool = arrayPoolOf(tf.backend())!;
    assert.ok(pool, 'the cpu engine pools arrays');
    const a = tf.tensor1d(values(N, 1));
    const b = tf.tensor1d(values(N, 2));
    // A result read with dataSync: its array belongs to the caller from then on.
    const read = tf.add(a, b);
    const seen = read.dataSync();
    const seenCopy = seen.slice();
    read.dispose();
    // The caller's own array given to tf.tensor.
    const own = values(N, 3);
    const ownCopy = own.slice();
    tf.tensor1d(own).dispose();
    // A slice shares its input's buffer on the cpu backend: the input freed first must not be reused.
    const parent = tf.mul(a, b);
    const slice = tf.slice(parent, [0], [N / 2]);
    const sliceCopy = slice.dataSync().slice();
    parent.dispose();
    // An intermediate nobody saw: freed, then reused by the next output of its size.
    const hits = pool.hits;
    tf.sub(a, b).dispose();
    const reused = tf.sub(b, a);
    assert.ok(pool.hits > hits, 'a freed intermediate was reused');
    for (let i = 0; i < 8; i++) tf.dispose([tf.add(a, b), tf.mul(a, a), tf.div(a, b)]);
    assert.deepEqual(seen, seenCopy);
    assert.deepEqual(own, ownCopy);
    assert.deepEqual(slice.dataSync(), sliceCopy);
    // And what a reused array now holds is the new result.
    const want = values(N, 2).map((v, i) => v - values(N, 1)[i]!);
    assert.deepEqual(reused.dataSync(), want);
    tf.dispose([a, b, slice, reused]);
  });
});

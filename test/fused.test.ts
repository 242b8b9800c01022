/**
 * The fused kernels and in-place optimizer steps (src/engine/kernels/{fused,alea}.ts, src/engine/host_update.ts,
 * src/engine/wasm/simd.ts) against the plain tfjs ops they replace (T5CLS_FUSED_KERNELS=0 behaviour), on cpu and
 * wasm: bit-identical where the arithmetic is the same sequence of float32 operations (dropout, AdamW), within
 * float32 rounding where sums are reordered.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { tf } from '../src/tf.js';
import { initBackend } from '../src/engine/init.js';
import { aleaState, alea } from '../src/engine/kernels/alea.js';
import { fusedKernels } from '../src/engine/flags.js';
import { wasmMemoryOf } from '../src/engine/tfjs_internals.js';
import { kernelFor, type ElementwiseSpec } from '../src/engine/wasm/simd.js';
import { restoreExtraKernels } from '../src/engine/kernels/extra.js';
import { dropout, rmsNorm } from '../src/model/layers.js';
import { logProbsAt, tokenNll } from '../src/model/loss.js';
import { T5ForConditionalGeneration } from '../src/model/modeling_t5.js';
import { DropoutStream } from '../src/model/dropout_stream.js';
import { classTree, decodeTree, treeAttention } from '../src/eval/tree_scoring.js';
import { nativeGraphAvailable } from '../src/engine/ort/graph_kernel.js';
import { loadOrtMatMul } from '../src/engine/ort/runtime.js';
import { fixtureDir, readJson } from './helpers/fixtures.js';
import { Adafactor, AdamW, type AdafactorOptions } from '../src/train/optimizers/index.js';
import { values } from './helpers/values.js';

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

function withFused<T>(on: boolean, f: () => T): T {
  const saved = fusedKernels.enabled;
  fusedKernels.enabled = on;
  try {
    return f();
  } finally {
    fusedKernels.enabled = saved;
  }
}

function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(got[i]! - want[i]!) <= tol * Math.max(1, Math.abs(want[i]!)))) {
      assert.fail(`${what}[${i}]: got ${got[i]}, expected ${want[i]} (tolerance ${tol})`);
    }
  }
}

function assertIdentical(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    if (!Object.is(got[i], want[i])) assert.fail(`${what}[${i}]: got ${got[i]}, expected ${want[i]}`);
  }
}

const BACKENDS = ['cpu', 'wasm'] as const;

test('alea reproduces tf.randomUniform (float32) for integer, large and fractional seeds', () => {
  for (const seed of [1, 42, 1000003 * 7 + 3, 123456789012, 0.5]) {
    const want = tf.tidy(() => tf.randomUniform([257], 0, 1, 'float32', seed).dataSync());
    const next = alea(String(seed));
    const got = Float32Array.from({ length: 257 }, () => next());
    assertIdentical(got, want, `seed ${seed}`);
    assert.deepEqual(aleaState(String(seed)), aleaState(String(seed)));
  }
});

for (const backend of BACKENDS) {
  describe(`fused layers on ${backend}`, () => {
    // The last shape spans several of the chunks the cpu backend's dropout works in (16384 elements).
    for (const [shape, rate, seed] of [[[3, 5, 7], 0.3, 77], [[40, 129], 0.1, 1000003 * 42 + 17], [[3, 16391], 0.2, 99]] as [number[], number, number][]) {
      test(`dropout ${shape} at ${rate}: same mask and values as the tfjs ops, gradient = mask`, async () => {
        await initBackend(backend, { nativeMatmul: false, threads: 1 });
        const x = tf.tensor(values(size(shape), 3), shape);
        const run = (on: boolean) =>
          withFused(on, () => {
            const y = tf.tidy(() => dropout(x, rate, seed).dataSync());
            const g = tf.tidy(() => tf.grad((t: tf.Tensor) => tf.sum(tf.mul(dropout(t, rate, seed), tf.range(0, size(shape)).reshape(shape))))(x).dataSync());
            return { y, g };
          });
        const fused = run(true);
        const plain = run(false);
        assertIdentical(fused.y, plain.y, 'dropout output');
        assertIdentical(fused.g, plain.g, 'dropout gradient');
        const dropped = Array.from(fused.y).filter((v) => v === 0).length / fused.y.length;
        assert.ok(Math.abs(dropped - rate) < 0.1, `dropped ${dropped}, rate ${rate}`);
        x.dispose();
      });
    }

    // Rows of 16 run the SIMD kernels on wasm, rows of 10 the JavaScript loops.
    for (const d of [10, 16]) test(`rmsNorm (rows of ${d}): values and gradients of x and weight match the tfjs ops`, async () => {
      await initBackend(backend, { nativeMatmul: false, threads: 1 });
      const x = tf.tensor(values(2 * 3 * d, 5, 3), [2, 3, d]);
      const w = tf.tensor(values(d, 6), [d]);
      const dy = tf.tensor(values(6 * d, 7), [2, 3, d]);
      const run = (on: boolean) =>
        withFused(on, () =>
          tf.tidy(() => {
            const y = rmsNorm(x, w, 1e-6);
            const [gx, gw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(rmsNorm(a, b, 1e-6), dy)))([x, w]);
            return [y, gx!, gw!].map((t) => t.dataSync());
          }),
        );
      const [y, gx, gw] = run(true);
      const [y0, gx0, gw0] = run(false);
      assertClose(y!, y0!, 2e-6, 'y');
      assertClose(gx!, gx0!, 2e-6, 'dx');
      assertClose(gw!, gw0!, 2e-6, 'dweight');
      tf.dispose([x, w, dy]);
    });

    for (const v of [11, 24]) test(`tokenNll (vocab ${v}): values and logits gradient match the tfjs ops; -100 and out-of-range labels`, async () => {
      await initBackend(backend, { nativeMatmul: false, threads: 1 });
      const logits = tf.tensor(values(2 * 3 * v, 9, 8), [2, 3, v]);
      const labels = tf.tensor2d([[3, -100, 10], [0, 7, v]], [2, 3], 'int32');
      const weights = tf.tensor2d([[1, 2, 3], [4, 5, 6]]);
      const run = (on: boolean) =>
        withFused(on, () =>
          tf.tidy(() => {
            const nll = tokenNll(logits, labels);
            const g = tf.grad((l: tf.Tensor) => tf.sum(tf.mul(tokenNll(l, labels), weights)))(logits);
            return [nll.dataSync(), g.dataSync()];
          }),
        );
      const [nll, g] = run(true);
      const [nll0, g0] = run(false);
      assertClose(nll!, nll0!, 2e-6, 'nll');
      assert.equal(nll![1], 0);
      assertClose(g!, g0!, 2e-6, 'dlogits');
      // By hand for one row: softmax - one-hot.
      const row = Array.from(logits.dataSync().slice(0, v));
      const max = Math.max(...row);
      const z = row.reduce((a, v) => a + Math.exp(v - max), 0);
      assert.ok(Math.abs(nll![0]! - (max + Math.log(z) - row[3]!)) < 1e-5);
      tf.dispose([logits, labels, weights]);
    });
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Optimizers: the in-place fused step (JS on cpu, SIMD on wasm) against the tensor-op path.

interface OptCase {
  shapes: number[][];
  make: () => tf.Optimizer;
}

let varId = 0;

/** Three steps; returns the parameters and the optimizer state, as plain arrays. */
async function runOptimizer(c: OptCase, fused: boolean): Promise<{ params: Float32Array[]; state: Map<string, Float32Array> }> {
  return withFused(fused, async () => {
    const tag = `fused_test_${varId++}`;
    const vars = c.shapes.map((s, i) => tf.tidy(() => tf.variable(tf.tensor(values(size(s), 100 + i, 0.5), s), true, `${tag}/${i}`)));
    const opt = c.make();
    for (let k = 0; k < 3; k++) {
      const grads: tf.NamedTensorMap = {};
      vars.forEach((v, i) => (grads[v.name] = tf.tensor(values(v.size, 1000 * k + i + 1, 0.1), v.shape)));
      opt.applyGradients(grads);
      tf.dispose(Object.values(grads));
    }
    const weights = await opt.getWeights();
    const state = new Map(weights.map((w) => [w.name.replace(`${tag}/`, ''), w.tensor.dataSync() as Float32Array]));
    tf.dispose(weights.map((w) => w.tensor));
    const params = vars.map((v) => v.dataSync() as Float32Array);
    opt.dispose();
    vars.forEach((v) => v.dispose());
    return { params, state };
  });
}

const SHAPES = [[6, 8], [9], [2, 3, 8], [5, 7], [1], [4, 4]];

for (const backend of BACKENDS) {
  describe(`fused optimizer steps on ${backend}`, () => {
    test('AdamW: bit-identical to the tensor ops (sizes of 1 to 48 elements, weight decay)', async () => {
      await initBackend(backend, { nativeMatmul: false, threads: 1 });
      const c: OptCase = { shapes: SHAPES, make: () => new AdamW({ lr: 1e-2, weightDecay: 0.1 }) };
      const a = await runOptimizer(c, true);
      const b = await runOptimizer(c, false);
      a.params.forEach((p, i) => assertIdentical(p, b.params[i]!, `param ${i}`));
      for (const [k, v] of b.state) assertIdentical(a.state.get(k)!, v, k);
    });

    for (const [label, options] of [
      ['fixed lr, β1, weight decay', { lr: 1e-2, relativeStep: false, scaleParameter: false, beta1: 0.9, weightDecay: 0.1 }],
      ['relative step, parameter scale', { lr: null, relativeStep: true, scaleParameter: true, warmupInit: true }],
    ] as [string, AdafactorOptions][]) {
      test(`Adafactor (${label}): matches the tensor ops within float32 rounding`, async () => {
        await initBackend(backend, { nativeMatmul: false, threads: 1 });
        const c: OptCase = { shapes: SHAPES, make: () => new Adafactor(options) };
        const a = await runOptimizer(c, true);
        const b = await runOptimizer(c, false);
        // The movement of each parameter, compared relative to how far the steps moved it (a few ulps of the value
        // for rounding): a learning rate off by any sizeable factor fails even when the movement is tiny.
        a.params.forEach((p, i) => {
          const p0 = values(size(SHAPES[i]!), 100 + i, 0.5);
          const moved = b.params[i]!.map((v, j) => v - p0[j]!);
          const most = Math.max(...moved.map(Math.abs));
          assert.ok(most > 0, `param ${i} moved`);
          for (let j = 0; j < p.length; j++) {
            const tol = 4 * 2 ** -23 * Math.abs(p0[j]!) + 0.01 * most;
            if (!(Math.abs(p[j]! - p0[j]! - moved[j]!) <= tol)) {
              assert.fail(`param ${i}[${j}]: moved by ${p[j]! - p0[j]!}, the tensor ops by ${moved[j]} (tolerance ${tol})`);
            }
          }
        });
        for (const [k, v] of b.state) assertClose(a.state.get(k)!, v, 1e-5, k);
      });
    }

    test('a clone taken before a step keeps its values (copy on write), and the variable moves', async () => {
      await initBackend(backend, { nativeMatmul: false, threads: 1 });
      const v = tf.tidy(() => tf.variable(tf.tensor(values(12, 5), [3, 4]), true, `fused_test_clone_${varId++}`));
      const before = tf.clone(v);
      const snapshot = v.dataSync().slice();
      const opt = new AdamW({ lr: 0.1 });
      const g = tf.onesLike(v);
      opt.applyGradients({ [v.name]: g });
      assertIdentical(before.dataSync(), snapshot, 'clone');
      assert.ok(v.dataSync().every((x, i) => x !== snapshot[i]), 'variable moved');
      tf.dispose([before, g, v]);
      opt.dispose();
    });
  });
}

test('wasm: a product with a weight updated in place uses the new values (XNNPACK caches dropped)', async () => {
  await initBackend('wasm', { nativeMatmul: false, threads: 1 });
  // Created in a tidy so that the variable holds the only reference to its memory (the step runs in place).
  const w = tf.tidy(() => tf.variable(tf.tensor2d([[1, 2], [3, 4]]), true, `fused_test_w_${varId++}`));
  const x = tf.tensor2d([[1, 1]]);
  // The stock wasm matmul packs its right-hand operand once per tensor id.
  const y0 = tf.tidy(() => tf.matMul(x, w).dataSync());
  assert.deepEqual(Array.from(y0), [4, 6]);
  const opt = new AdamW({ lr: 1, weightDecay: 0 });
  const g = tf.tensor2d([[1, 1], [1, 1]]);
  opt.applyGradients({ [w.name]: g });
  const wNow = w.dataSync();
  const y1 = tf.tidy(() => tf.matMul(x, w).dataSync());
  assertClose(y1, [wNow[0]! + wNow[2]!, wNow[1]! + wNow[3]!], 1e-6, 'product after the step');
  assert.ok(Math.abs(y1[0]! - 4) > 1, `product still uses the old weight: ${y1[0]}`);
  tf.dispose([w, x, g]);
  opt.dispose();
});

test('wasm: SIMD kernels compile against the heap, and their lane sums and element results are right', async () => {
  await initBackend('wasm', { nativeMatmul: false, threads: 1 });
  const memory = wasmMemoryOf(tf.backend());
  assert.ok(memory, 'wasm memory found');
  const spec: ElementwiseSpec = {
    outputs: 1,
    inputs: 2,
    scalars: 1,
    sums: 1,
    body(k) {
      const v = k.bind(k.div(k.add(k.input(0), k.scalar(0)), k.sqrt(k.input(1))));
      k.sum(0, v);
      k.output(0, k.selectGe(v, k.scalar(0), v, k.sub(k.max(v, k.input(0)), k.min(v, k.input(0)))));
    },
  };
  const kernel = kernelFor(spec, memory);
  assert.ok(kernel, 'kernel compiled');
  const a = tf.tensor1d([1, -2, 3, -4, 5, -6, 7, -8]);
  const b = tf.tensor1d([1, 4, 9, 16, 25, 36, 49, 64]);
  const out = tf.zeros([8]);
  const sums = tf.zeros([4]);
  const off = (t: tf.Tensor) => (tf.backend() as unknown as { getMemoryOffset(d: object): number }).getMemoryOffset(t.dataId);
  kernel!(off(out), off(a), off(b), off(sums), 32, 0.5);
  const heap = new Float32Array(memory!.buffer);
  const got = Array.from(heap.subarray(off(out) / 4, off(out) / 4 + 8));
  const f = Math.fround;
  const want = [1, -2, 3, -4, 5, -6, 7, -8].map((x, i) => {
    const v = f(f(x + 0.5) / Math.sqrt([1, 4, 9, 16, 25, 36, 49, 64][i]!));
    return v >= 0.5 ? v : f(Math.max(v, x) - Math.min(v, x));
  });
  assert.deepEqual(got, want);
  const laneSums = Array.from(heap.subarray(off(sums) / 4, off(sums) / 4 + 4));
  const vs = [1, -2, 3, -4, 5, -6, 7, -8].map((x, i) => f(f(x + 0.5) / Math.sqrt([1, 4, 9, 16, 25, 36, 49, 64][i]!)));
  assert.deepEqual(laneSums, [0, 1, 2, 3].map((l) => f(vs[l]! + vs[l + 4]!)));
  tf.dispose([a, b, out, sums]);
});

describe('copy-avoiding kernels', () => {
  test('wasm GatherV2 equals the stock cpu gather (axes 0 and 1) and rejects out-of-range ids', async () => {
    await initBackend('cpu', { nativeMatmul: false, threads: 1 });
    const x = values(4 * 5 * 6, 21);
    const ids = [3, 0, 0, 4, 2];
    const ref = [0, 1].map((axis) =>
      tf.tidy(() => tf.gather(tf.tensor(x, [4, 5, 6]), tf.tensor1d(ids.map((i) => i % (axis === 0 ? 4 : 5)), 'int32'), axis).dataSync()),
    );
    await initBackend('wasm', { nativeMatmul: false, threads: 1 });
    [0, 1].forEach((axis) => {
      const got = tf.tidy(() => tf.gather(tf.tensor(x, [4, 5, 6]), tf.tensor1d(ids.map((i) => i % (axis === 0 ? 4 : 5)), 'int32'), axis).dataSync());
      assertIdentical(got, ref[axis]!, `axis ${axis}`);
    });
    const ints = tf.tidy(() => tf.gather(tf.tensor2d([[1, 2], [3, 4]], [2, 2], 'int32'), [1, 1, 0]).arraySync());
    assert.deepEqual(ints, [[3, 4], [3, 4], [1, 2]]);
    assert.throws(() => tf.tidy(() => tf.gather(tf.tensor2d([[1, 2]]), [1])), /index value 1 is not in \[0, 0\]/);
  });

  test('Transpose by the identity permutation shares memory on wasm', async () => {
    await initBackend('wasm', { nativeMatmul: false, threads: 1 });
    const backend = tf.backend() as unknown as { getMemoryOffset(d: object): number };
    const x = tf.tensor2d([[1, 2, 3], [4, 5, 6]]);
    const same = tf.transpose(x, [0, 1]);
    const swapped = tf.transpose(x, [1, 0]);
    assert.equal(backend.getMemoryOffset(same.dataId), backend.getMemoryOffset(x.dataId));
    x.dispose();
    assert.deepEqual(same.arraySync(), [[1, 2, 3], [4, 5, 6]]);
    assert.deepEqual(swapped.arraySync(), [[1, 4], [2, 5], [3, 6]]);
    tf.dispose([same, swapped]);
  });

  test('cpu Transpose copying whole rows equals the stock kernel', async () => {
    await initBackend('cpu', { nativeMatmul: false, threads: 1 });
    const cases: [number[], number[]][] = [[[2, 5, 3, 8], [0, 2, 1, 3]], [[3, 2, 4, 16], [2, 0, 1, 3]], [[2, 3, 4, 5, 8], [4, 1, 0, 3, 2]]];
    const x = cases.map(([shape], i) => values(size(shape), 40 + i));
    const ours = cases.map(([shape, perm], i) => tf.tidy(() => tf.transpose(tf.tensor(x[i]!, shape), perm).dataSync()));
    restoreExtraKernels('cpu');
    cases.forEach(([shape, perm], i) => assertIdentical(ours[i]!, tf.tidy(() => tf.transpose(tf.tensor(x[i]!, shape), perm).dataSync()), `${perm}`));
  });
});

// ---------------------------------------------------------------------------------------------------------------
// The lean backward pass (engine/kernels/lean_gradients.ts).

describe('lean backward pass', () => {
  test('T5 training-mode gradients equal tfjs backward, no tensor left behind, user dy kept', async () => {
    await initBackend('wasm', { nativeMatmul: false, threads: 1 });
    const dir = fixtureDir('t5-tiny');
    const fx = readJson(`${dir}/fixture.json`);
    const model = T5ForConditionalGeneration.fromPretrained(dir);
    const params = [...model.namedParameters().values()];
    const run = (lean: boolean) =>
      withFused(lean, () => {
        const dropout = new DropoutStream(3);
        const before = tf.memory().numTensors;
        const { value, grads } = tf.variableGrads(
          () => model.forward({ inputIds: fx.inputs.input_ids, attentionMask: fx.inputs.attention_mask, labels: fx.inputs.labels, training: dropout }).loss!,
          params,
        );
        const out = params.map((p) => grads[p.name]!.dataSync());
        const loss = value.dataSync()[0]!;
        tf.dispose([value, ...Object.values(grads)]);
        assert.equal(tf.memory().numTensors, before, 'tensors left behind');
        return { loss, out };
      });
    const lean = run(true);
    const plain = run(false);
    // Without fused kernels the layers take the tfjs ops, so compare within float32 rounding.
    assert.ok(Math.abs(lean.loss - plain.loss) < 1e-5);
    lean.out.forEach((g, i) => assertClose(g, plain.out[i]!, 1e-5, params[i]!.name));
    // A caller's dy survives; second-order gradients still work.
    withFused(true, () => {
      const x = tf.tensor1d([1, 2, 3]);
      const dy = tf.tensor1d([1, 0.5, 2]);
      const g = tf.grad((t: tf.Tensor) => tf.mul(tf.square(t), t))(x, dy);
      assert.deepEqual(Array.from(g.dataSync()), [3, 6, 54]);
      assert.deepEqual(Array.from(dy.dataSync()), [1, 0.5, 2]);
      const g2 = tf.grad((t: tf.Tensor) => tf.grad((u: tf.Tensor) => tf.sum(tf.mul(tf.square(u), u)))(t))(x);
      assert.deepEqual(Array.from(g2.dataSync()), [6, 12, 18]);
      // One tensor used twice, and a gradient function that hands back its dy.
      const g3 = tf.grad((t: tf.Tensor) => tf.sum(tf.add(tf.mul(t, t), tf.reshape(t, [3]))))(x);
      assert.deepEqual(Array.from(g3.dataSync()), [3, 5, 7]);
      tf.dispose([x, dy, g, g2, g3]);
    });
    model.dispose();
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Rank classification over the prefix tree of the class names.

describe('class prefix tree', () => {
  test('classTree shares prefixes; treeAttention of a chain is the causal case', () => {
    const t = classTree([[5, 7, 1], [5, 8, 1], [9, 1], [5, 7, 2]], 0);
    assert.deepEqual(t.tokens, [0, 5, 7, 8, 9]);
    assert.deepEqual(t.parents, [-1, 0, 1, 1, 0]);
    assert.deepEqual(t.steps, [[[0, 5], [1, 7], [2, 1]], [[0, 5], [1, 8], [3, 1]], [[0, 9], [4, 1]], [[0, 5], [1, 7], [2, 2]]]);
    const chain = treeAttention([-1, 0, 1, 2], 32, 128);
    const mask = chain.mask.dataSync();
    for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) assert.equal(mask[i * 4 + j], j <= i ? 0 : -3.4028234663852886e38);
    // Relative positions j - i of the causal decoder: buckets 0 (same), 1, 2, 3 (1, 2, 3 back).
    assert.deepEqual(Array.from(chain.buckets.slice(12, 16)), [3, 2, 1, 0]);
    const branch = treeAttention([-1, 0, 0, 2], 32, 128);
    // Position 3 (depth 2) sees 0 and 2, not its sibling branch 1.
    assert.deepEqual(Array.from(branch.mask.dataSync().slice(12, 16)).map((v) => v === 0), [true, false, true, true]);
    tf.dispose([chain.mask, branch.mask]);
  });

  const ortLoads = loadOrtMatMul(1).ok;
  for (const [backend, native] of [...BACKENDS.map((b) => [b, false] as const), ['wasm', true], ['cpu', true]] as const) {
    const what = native ? 'native matmul and graphs' : 'tfjs ops';
    test(`${backend}, ${what}: tree decoding gives each class the log-likelihood of decoding it alone`, { skip: native && !ortLoads }, async () => {
      await initBackend(backend, { nativeMatmul: native, threads: 1 });
      assert.equal(nativeGraphAvailable(), native);
      const model = T5ForConditionalGeneration.fromPretrained(fixtureDir('t5-tiny-v11'));
      const vocab = model.config.vocab_size;
      const classes = [[5, 7, 1], [5, 8, 1], [9, 1], [5, 7, 1 + 1]].map((c) => c.map((t) => t % vocab));
      const input = [[3, 4, 5, 6, 1], [8, 9, 1, 0, 0]];
      const mask = [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]];
      // Reference: each (input, class) decoded as its own causal sequence.
      const want = input.map((ids, i) =>
        classes.map((c) =>
          tf.tidy(() => -tf.sum(tokenNll(model.forward({ inputIds: [ids], attentionMask: [mask[i]!], labels: [c] }).logits, tf.tensor2d([c], undefined, 'int32'))).dataSync()[0]!),
        ),
      );
      const t = classTree(classes, model.config.decoder_start_token_id);
      const got = tf.tidy(() => {
        const ids = tf.tensor2d(input, undefined, 'int32');
        const m = tf.tensor2d(mask, undefined, 'int32');
        const { cross } = model.runtime.encodeForDecoding(ids, m);
        const logits = decodeTree(model, t, m, cross);
        const rows: number[] = [];
        const tokens: number[] = [];
        for (let i = 0; i < 2; i++) for (const steps of t.steps) for (const [p, tok] of steps) (rows.push(i * t.tokens.length + p), tokens.push(tok));
        const lp = logProbsAt(tf.reshape(logits, [-1, vocab]) as tf.Tensor2D, rows, tokens).dataSync();
        let at = 0;
        return input.map(() => t.steps.map((steps) => steps.reduce((acc) => acc + lp[at++]!, 0)));
      });
      got.forEach((row, i) => assertClose(row, want[i]!, 1e-5, `input ${i}`));
      // logProbsAt without fused kernels (gather + tokenNll) agrees.
      const logits = tf.tensor2d(values(3 * 40, 77, 5), [3, 40]);
      const fused = tf.tidy(() => logProbsAt(logits, [0, 2, 2, 1], [4, 39, 0, 4]).dataSync());
      const plain = withFused(false, () => tf.tidy(() => logProbsAt(logits, [0, 2, 2, 1], [4, 39, 0, 4]).dataSync()));
      assertClose(fused, plain, 1e-6, 'logProbsAt');
      logits.dispose();
      model.dispose();
    });
  }
});

after(async () => {
  await tf.setBackend('cpu');
});

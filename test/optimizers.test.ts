import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tf } from '../src/tf.js';
import { readSafetensorsFile } from '../src/safetensors.js';
import { UsageError } from '../src/errors.js';
import { Adafactor, AdafactorSchedule, AdamW, type AdafactorOptions } from '../src/train/optimizers/index.js';
import { initBackend } from '../src/engine/init.js';
import { makeOptimizer } from '../src/train/step.js';
import { ORT_MIN_ELEMENTS } from '../src/engine/kernels/ort_route.js';
import { loadOrtMatMul } from '../src/engine/ort/runtime.js';
import { FIXTURES } from './helpers/fixtures.js';

let varCounter = 0;
/** Creates one tf.Variable per entry, under a prefix unique to this call. */
function makeVariables(params: Map<string, { shape: number[]; data: Float32Array }>): Map<string, tf.Variable> {
  const prefix = `opt_test_${varCounter++}/`;
  const out = new Map<string, tf.Variable>();
  for (const [name, p] of params) out.set(name, tf.variable(tf.tensor(p.data, p.shape, 'float32'), true, prefix + name));
  return out;
}

function disposeAll(vars: Map<string, tf.Variable>): void {
  for (const v of vars.values()) v.dispose();
}

/** The spacing of float32 values at magnitude |x|. */
function ulpOf(x: number): number {
  const a = Math.abs(Math.fround(x));
  return a < 2 ** -126 ? 2 ** -149 : 2 ** (Math.floor(Math.log2(a)) - 23);
}

interface Deviation {
  maxAbs: number;
  /** Largest deviation in float32 ulps of the value's magnitude (the larger of before/after where given). */
  maxUlps: number;
  worst: string;
  identical: number;
  total: number;
}

const newDeviation = (): Deviation => ({ maxAbs: 0, maxUlps: 0, worst: '', identical: 0, total: 0 });

/** Asserts |got - want| <= abs + rel·|want| for every element, and accumulates the deviation into `d`. */
function compare(got: ArrayLike<number>, want: ArrayLike<number>, what: string, abs: number, rel: number, d: Deviation, before?: ArrayLike<number>): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    const diff = Math.abs(got[i] - want[i]);
    if (!(diff <= abs + rel * Math.abs(want[i]))) {
      assert.fail(`${what}[${i}]: got ${got[i]}, expected ${want[i]} (diff ${diff})`);
    }
    d.total++;
    if (diff === 0) d.identical++;
    if (diff > d.maxAbs) {
      d.maxAbs = diff;
      d.worst = `${what}[${i}]`;
    }
    d.maxUlps = Math.max(d.maxUlps, diff / ulpOf(Math.max(Math.abs(want[i]), before ? Math.abs(before[i]) : 0)));
  }
}

const describe = (d: Deviation) =>
  `max |Δ| ${d.maxAbs.toExponential(3)}${d.worst ? ` (${d.worst})` : ''}, max ${d.maxUlps.toFixed(1)} ulp, ${d.identical}/${d.total} bit-identical`;

// ---------------------------------------------------------------------------------------------------------------
// Adafactor against the HF fixtures (one step from the fixture gradients).

const CASES = ['fixed_lr', 'relative_step_warmup', 'hf_constructor_defaults'] as const;

function optionsFromKwargs(kwargs: Record<string, unknown>): AdafactorOptions {
  const map: Record<string, keyof AdafactorOptions> = {
    lr: 'lr', eps: 'eps', clip_threshold: 'clipThreshold', decay_rate: 'decayRate', beta1: 'beta1',
    weight_decay: 'weightDecay', scale_parameter: 'scaleParameter', relative_step: 'relativeStep', warmup_init: 'warmupInit',
  };
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(kwargs)) {
    assert.ok(k in map, `unknown Adafactor kwarg ${k}`);
    out[map[k]] = v;
  }
  return out as AdafactorOptions;
}

for (const model of ['t5-tiny', 't5-tiny-v11', 't5-tiny-v11-hf5']) {
  const dir = path.join(FIXTURES, model);
  for (const caseName of CASES) {
    test(`Adafactor one step matches HF: ${model} ${caseName}`, (t) => {
      const fixture = JSON.parse(fs.readFileSync(path.join(dir, 'fixture.json'), 'utf8'));
      const names: string[] = fixture.named_parameters;
      const before = readSafetensorsFile(path.join(dir, 'model.safetensors')).tensors;
      const grads = readSafetensorsFile(path.join(dir, 'grads.safetensors')).tensors;
      const after = readSafetensorsFile(path.join(dir, `adafactor_${caseName}.safetensors`)).tensors;
      const spec = fixture.adafactor[caseName];

      const params = new Map<string, { shape: number[]; data: Float32Array }>();
      for (const name of names) {
        const p = before.get(name);
        assert.ok(p, `${name} missing from model.safetensors`);
        params.set(name, { shape: p.shape, data: p.data as Float32Array });
      }
      const vars = makeVariables(params);
      const opt = new Adafactor(optionsFromKwargs(spec.kwargs));
      const gradTensors = names.map((name) => {
        const g = grads.get(name);
        assert.ok(g, `${name} missing from grads.safetensors`);
        return { name: vars.get(name)!.name, tensor: tf.tensor(g.data, g.shape, 'float32') };
      });
      opt.applyGradients(gradTensors);
      tf.dispose(gradTensors.map((g) => g.tensor));

      const dev = newDeviation();
      let maxStep = 0;
      for (const name of names) {
        const want = after.get(name);
        assert.ok(want, `${name} missing from adafactor_${caseName}.safetensors`);
        assert.deepEqual(vars.get(name)!.shape, want.shape, name);
        const got = vars.get(name)!.dataSync();
        const b = params.get(name)!.data;
        compare(got, want.data, name, 1e-6, 1e-6, dev, b);
        for (let i = 0; i < b.length; i++) maxStep = Math.max(maxStep, Math.abs(want.data[i] - b[i]));
      }
      // Within a few ulps of each value's magnitude; what differs comes from torch's float32 summation order in its
      // mean/norm reductions.
      assert.ok(dev.maxUlps <= 16, `max deviation ${dev.maxUlps} ulp`);
      // The step moved the parameters far more than the deviation, so the comparison is not vacuous.
      assert.ok(maxStep > 1000 * dev.maxAbs, `step size ${maxStep} vs deviation ${dev.maxAbs}`);
      t.diagnostic(`${names.length} parameters vs HF: ${describe(dev)}; largest parameter change ${maxStep.toExponential(3)}`);

      // The lr HF used for decoder.final_layer_norm.weight.
      const lnName = vars.get('decoder.final_layer_norm.weight')!.name;
      assert.equal(opt.lastLrFor(lnName), spec['lr_used_for_decoder.final_layer_norm.weight']);

      // The schedule reports the first parameter's lr (shared.weight): scale · relative step, computed here in float64.
      const shared = params.get('shared.weight')!.data;
      let ss = 0;
      for (const x of shared) ss += x * x;
      const rms = Math.sqrt(ss / shared.length);
      const res = spec.resolved_defaults;
      const rel = res.relative_step ? Math.min(res.warmup_init ? 1e-6 : 1e-2, 1) : res.lr;
      const expectedLr = (res.scale_parameter ? Math.max(res.eps[1], rms) : 1) * rel;
      const schedule = new AdafactorSchedule(opt);
      assert.equal(schedule.getLr(), opt.lastLr);
      assert.ok(Math.abs(schedule.getLr() - expectedLr) <= 1e-6 * expectedLr, `schedule lr ${schedule.getLr()} vs ${expectedLr}`);

      opt.dispose();
      disposeAll(vars);
    });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Independent float64 references, written from the published algorithms.

/** Deterministic pseudo-random numbers in [-1, 1). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  };
}

function randomTensor(shape: number[], scale: number, r: () => number): { shape: number[]; data: Float32Array } {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = r() * scale;
  return { shape, data };
}

interface RefAdafactorOptions {
  lr: number | null;
  eps1: number;
  eps2: number;
  clip: number;
  decay: number;
  beta1: number | null;
  wd: number;
  scale: boolean;
  relative: boolean;
  warmup: boolean;
}

/** HF Adafactor (transformers 4.32.1) in float64 for one parameter over several steps. */
function adafactorReference(p0: Float32Array, shape: number[], grads: Float32Array[], o: RefAdafactorOptions): { p: Float64Array; lrs: number[] } {
  const n = p0.length;
  const p = Float64Array.from(p0);
  const factored = shape.length >= 2;
  const C = shape[shape.length - 1];
  const R = factored ? shape[shape.length - 2] : 1;
  const B = factored ? n / (R * C) : 1;
  const row = new Float64Array(B * R);
  const col = new Float64Array(B * C);
  const v = new Float64Array(n);
  const m = new Float64Array(n);
  const lrs: number[] = [];
  grads.forEach((g, k) => {
    const step = k + 1;
    let ss = 0;
    for (const x of p) ss += x * x;
    const rms = Math.sqrt(ss) / Math.sqrt(n);
    const rel = o.relative ? Math.min(o.warmup ? 1e-6 * step : 1e-2, 1 / Math.sqrt(step)) : (o.lr as number);
    const lr = (o.scale ? Math.max(o.eps2, rms) : 1) * rel;
    lrs.push(lr);
    const beta2t = 1 - Math.pow(step, o.decay);
    const u = new Float64Array(n);
    if (factored) {
      for (let b = 0; b < B; b++) {
        for (let r = 0; r < R; r++) {
          let s = 0;
          for (let c = 0; c < C; c++) s += g[(b * R + r) * C + c] ** 2 + o.eps1;
          row[b * R + r] = beta2t * row[b * R + r] + (1 - beta2t) * (s / C);
        }
        for (let c = 0; c < C; c++) {
          let s = 0;
          for (let r = 0; r < R; r++) s += g[(b * R + r) * C + c] ** 2 + o.eps1;
          col[b * C + c] = beta2t * col[b * C + c] + (1 - beta2t) * (s / R);
        }
        let rowMean = 0;
        for (let r = 0; r < R; r++) rowMean += row[b * R + r] / R;
        for (let r = 0; r < R; r++) {
          for (let c = 0; c < C; c++) {
            const i = (b * R + r) * C + c;
            u[i] = g[i] / Math.sqrt(row[b * R + r] / rowMean) / Math.sqrt(col[b * C + c]);
          }
        }
      }
    } else {
      for (let i = 0; i < n; i++) {
        v[i] = beta2t * v[i] + (1 - beta2t) * (g[i] ** 2 + o.eps1);
        u[i] = g[i] / Math.sqrt(v[i]);
      }
    }
    let us = 0;
    for (const x of u) us += x * x;
    const denom = Math.max(1, Math.sqrt(us / n) / o.clip);
    for (let i = 0; i < n; i++) {
      let upd = (u[i] / denom) * lr;
      if (o.beta1 !== null) {
        m[i] = o.beta1 * m[i] + (1 - o.beta1) * upd;
        upd = m[i];
      }
      p[i] = p[i] - o.wd * lr * p[i] - upd;
    }
  });
  return { p, lrs };
}

const ADAFACTOR_CONFIGS: [string, AdafactorOptions, RefAdafactorOptions][] = [
  ['relative step, beta1, weight decay', { beta1: 0.9, weightDecay: 0.01 },
    { lr: null, eps1: 1e-30, eps2: 1e-3, clip: 1, decay: -0.8, beta1: 0.9, wd: 0.01, scale: true, relative: true, warmup: false }],
  ['fixed lr, tight clip', { lr: 0.05, relativeStep: false, scaleParameter: false, clipThreshold: 0.5, weightDecay: 0.1 },
    { lr: 0.05, eps1: 1e-30, eps2: 1e-3, clip: 0.5, decay: -0.8, beta1: null, wd: 0.1, scale: false, relative: false, warmup: false }],
  ['warmup, scaled', { warmupInit: true, decayRate: -0.5, eps: [1e-20, 1e-2] },
    { lr: null, eps1: 1e-20, eps2: 1e-2, clip: 1, decay: -0.5, beta1: null, wd: 0, scale: true, relative: true, warmup: true }],
];

/** Three Adafactor steps on the backend in use against the float64 reference, for each of ADAFACTOR_CONFIGS. */
function adafactorAgainstReference(t: { diagnostic(s: string): void }, shapes: [string, number[], number][], abs = 1e-6): void {
  const r = rng(7);
  for (const [label, options, ref] of ADAFACTOR_CONFIGS) {
    const params = new Map(shapes.map(([name, shape, scale]) => [name, randomTensor(shape, scale, r)]));
    const gradSeq = new Map(shapes.map(([name, shape]) => [name, [0, 1, 2].map(() => randomTensor(shape, 0.2, r).data)]));
    const vars = makeVariables(params);
    const opt = new Adafactor(options);
    for (let k = 0; k < 3; k++) {
      const gs = shapes.map(([name, shape]) => ({ name: vars.get(name)!.name, tensor: tf.tensor(gradSeq.get(name)![k], shape) }));
      opt.applyGradients(gs);
      tf.dispose(gs.map((g) => g.tensor));
    }
    const dev = newDeviation();
    for (const [name, shape] of shapes) {
      const want = adafactorReference(params.get(name)!.data, shape, gradSeq.get(name)!, ref);
      compare(vars.get(name)!.dataSync(), want.p, `${label} ${name}`, 1e-6, abs, dev, params.get(name)!.data);
      const lr = opt.lastLrFor(vars.get(name)!.name)!;
      assert.ok(Math.abs(lr - want.lrs[2]) <= 1e-6 * want.lrs[2], `${label} ${name}: lr ${lr} vs ${want.lrs[2]}`);
      assert.equal(opt.stepOf(vars.get(name)!.name), 3);
    }
    assert.equal(opt.iterations, 3);
    t.diagnostic(`${label} vs float64: ${describe(dev)}`);
    opt.dispose();
    disposeAll(vars);
  }
}

const SMALL_ADAFACTOR_SHAPES: [string, number[], number][] = [
  ['w2d', [6, 5], 0.5],
  ['w3d', [2, 3, 4], 0.3],
  ['bias', [7], 1.0],
  ['tiny', [4, 3], 1e-4], // RMS below eps2: the parameter scale is eps2
];

test('Adafactor over 3 steps matches a float64 reference (beta1, weight decay, 1-D/2-D/3-D, small parameters)', (t) => {
  adafactorAgainstReference(t, SMALL_ADAFACTOR_SHAPES);
});

const ort = loadOrtMatMul(2);
test('Adafactor on the cpu engine with its sums in ONNX Runtime graphs matches the float64 reference', { skip: ort.ok ? false : 'onnxruntime-node not loadable' }, async (t) => {
  await initBackend('cpu', { threads: 2 });
  const saved = ORT_MIN_ELEMENTS.value;
  const runGraph = ort.ok ? ort.ort.runGraph.bind(ort.ort) : undefined;
  const runs = new Map<string, number>();
  if (ort.ok) {
    ort.ort.runGraph = (key, ...rest) => {
      runs.set(key, (runs.get(key) ?? 0) + 1);
      return runGraph!(key, ...rest);
    };
  }
  ORT_MIN_ELEMENTS.value = 0;
  try {
    // 2100 rows of 512 are two runs of the graphs (2048 rows, then 52); [2, 40, 64] has two batch items. Within 2e-7
    // of float64 as the JavaScript loops are (a float32 sum over a whole parameter would be 1e-6 off).
    const shapes: [string, number[], number][] = [...SMALL_ADAFACTOR_SHAPES, ['batched', [2, 40, 64], 0.5], ['large', [2100, 512], 0.05]];
    adafactorAgainstReference(t, shapes, 2e-7);
  } finally {
    ORT_MIN_ELEMENTS.value = saved;
    if (ort.ok) ort.ort.runGraph = runGraph!;
    await tf.setBackend('cpu');
  }
  // Per config and step: w2d, tiny 1 run each, w3d and batched 2, large 2, of each graph.
  assert.equal(runs.get('adafactor_sums'), 3 * 3 * 8);
  assert.equal(runs.get('adafactor_update_sum_sq'), 3 * 3 * 8);
});

/** torch.optim.AdamW (non-amsgrad) in float64, with a learning rate per step. */
function adamwReference(p0: Float32Array, grads: Float32Array[], lrs: number[], b1: number, b2: number, eps: number, wd: number): Float64Array {
  const p = Float64Array.from(p0);
  const m = new Float64Array(p.length);
  const v = new Float64Array(p.length);
  grads.forEach((g, k) => {
    const step = k + 1;
    const lr = lrs[k];
    const bc1 = 1 - b1 ** step;
    const bc2 = 1 - b2 ** step;
    for (let i = 0; i < p.length; i++) {
      p[i] *= 1 - lr * wd;
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      // m̂ / (sqrt(v̂) + eps) with m̂ = m / bc1, v̂ = v / bc2, as torch writes it: (lr / bc1) · m / (sqrt(v) / sqrt(bc2) + eps).
      p[i] -= ((lr / bc1) * m[i]) / (Math.sqrt(v[i]) / Math.sqrt(bc2) + eps);
    }
  });
  return p;
}

/** torch 1.13's `_single_tensor_adamw` kernel sequence in float32 (each op rounded), no fused multiply-add. */
function adamwFloat32(p0: Float32Array, grads: Float32Array[], lrs: number[], b1: number, b2: number, eps: number, wd: number): Float32Array {
  const f = Math.fround;
  const p = Float32Array.from(p0);
  const m = new Float32Array(p.length);
  const v = new Float32Array(p.length);
  grads.forEach((g, k) => {
    const step = k + 1;
    const lr = lrs[k];
    const stepSize = lr / (1 - b1 ** step);
    const bc2Sqrt = Math.sqrt(1 - b2 ** step);
    for (let i = 0; i < p.length; i++) {
      p[i] = f(p[i] * f(1 - lr * wd));
      m[i] = f(f(m[i] * f(b1)) + f(g[i] * f(1 - b1)));
      v[i] = f(f(v[i] * f(b2)) + f(f(f(1 - b2) * g[i]) * g[i]));
      const denom = f(f(f(Math.sqrt(v[i])) / f(bc2Sqrt)) + f(eps));
      p[i] = f(p[i] + f(f(f(-stepSize) * m[i]) / denom));
    }
  });
  return p;
}

test('AdamW over 3 steps with a changing lr matches torch’s formula (float64) and its float32 kernel sequence', (t) => {
  const r = rng(11);
  const shapes: [string, number[]][] = [['a', [4, 5]], ['b', [9]], ['c', [2, 2, 3]]];
  const lrs = [1e-3, 5e-4, 2e-3];
  for (const wd of [0.01, 0]) {
    const params = new Map(shapes.map(([name, shape]) => [name, randomTensor(shape, 0.5, r)]));
    const gradSeq = new Map(shapes.map(([name, shape]) => [name, [0, 1, 2].map(() => randomTensor(shape, 0.1, r).data)]));
    // Exact zeros and a tiny gradient exercise eps.
    gradSeq.get('b')![0][0] = 0;
    gradSeq.get('b')![1][1] = 1e-9;
    const vars = makeVariables(params);
    const opt = new AdamW({ lr: lrs[0], weightDecay: wd });
    for (let k = 0; k < 3; k++) {
      opt.lr = lrs[k];
      const gs: tf.NamedTensorMap = {};
      for (const [name, shape] of shapes) gs[vars.get(name)!.name] = tf.tensor(gradSeq.get(name)![k], shape);
      opt.applyGradients(gs);
      tf.dispose(Object.values(gs));
    }
    const dev = newDeviation();
    const emu = newDeviation();
    let moved = 0;
    for (const [name] of shapes) {
      const p0 = params.get(name)!.data;
      const got = vars.get(name)!.dataSync();
      const want = adamwReference(p0, gradSeq.get(name)!, lrs, 0.9, 0.999, 1e-8, wd);
      compare(got, want, `wd=${wd} ${name}`, 1e-6, 1e-6, dev, p0);
      compare(got, adamwFloat32(p0, gradSeq.get(name)!, lrs, 0.9, 0.999, 1e-8, wd), `wd=${wd} ${name} (float32)`, 0, 2 ** -23, emu, p0);
      for (let i = 0; i < p0.length; i++) moved = Math.max(moved, Math.abs(want[i] - p0[i]));
    }
    assert.ok(moved > 1e-3, `parameters moved ${moved}`);
    t.diagnostic(`wd=${wd} vs float64: ${describe(dev)}; vs torch's float32 kernel sequence: ${describe(emu)}`);
    opt.dispose();
    disposeAll(vars);
  }
});

// ---------------------------------------------------------------------------------------------------------------
// Options, argument checks, state round trip, memory.

test('Adafactor and AdamW defaults and argument checks', () => {
  const ada = new Adafactor();
  assert.deepEqual(ada.getConfig(), {
    lr: null, eps: [1e-30, 1e-3], clipThreshold: 1.0, decayRate: -0.8, beta1: null, weightDecay: 0,
    scaleParameter: true, relativeStep: true, warmupInit: false,
  });
  assert.equal(Adafactor.className, 'Adafactor');
  assert.ok(ada instanceof tf.Optimizer, 'Adafactor is a tf.Optimizer');
  assert.ok(!(ada instanceof AdamW) && !(new AdamW() instanceof Adafactor), 'instanceof tells the two apart');
  assert.equal(new AdafactorSchedule(ada, 0.25).getLr(), 0.25, 'initial lr before any step');
  assert.equal(ada.lastLr, undefined);

  assert.throws(() => new Adafactor({ lr: 1e-3 }), (e: Error) => e instanceof UsageError && e.message === 'Cannot combine manual `lr` and `relative_step=True` options');
  assert.throws(
    () => new Adafactor({ lr: 1e-3, relativeStep: false, warmupInit: true }),
    (e: Error) => e instanceof UsageError && e.message === '`warmup_init=True` requires `relative_step=True`',
  );
  assert.throws(() => new Adafactor({ relativeStep: false }), UsageError);
  assert.doesNotThrow(() => new Adafactor({ lr: 1e-3, relativeStep: false, scaleParameter: false }));

  const adamw = new AdamW();
  assert.deepEqual(adamw.getConfig(), { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.01 });
  assert.equal(AdamW.className, 'AdamW');
  assert.ok(adamw instanceof tf.Optimizer, 'AdamW is a tf.Optimizer');
  assert.throws(() => new AdamW({ lr: -1 }), (e: Error) => e instanceof UsageError && e.message === 'Invalid learning rate: -1');
  assert.throws(() => new AdamW({ betas: [1, 0.999] }), /Invalid beta parameter at index 0: 1/);
  assert.throws(() => new AdamW({ betas: [0.9, -0.1] }), /Invalid beta parameter at index 1: -0.1/);
  assert.throws(() => new AdamW({ eps: -1e-8 }), /Invalid epsilon value/);
  assert.throws(() => new AdamW({ weightDecay: -0.1 }), /Invalid weight_decay value/);
});

const ROUND_TRIP_SHAPES: [string, number[]][] = [['w', [5, 4]], ['w3', [2, 3, 2]], ['b', [6]]];

async function roundTrip(make: () => tf.Optimizer, label: string): Promise<void> {
  const r = rng(23);
  const params = new Map(ROUND_TRIP_SHAPES.map(([name, shape]) => [name, randomTensor(shape, 0.5, r)]));
  const gradSeq = ROUND_TRIP_SHAPES.map(([, shape]) => [0, 1, 2].map(() => randomTensor(shape, 0.3, r).data));
  const step = (opt: tf.Optimizer, vars: Map<string, tf.Variable>, k: number) => {
    const gs = ROUND_TRIP_SHAPES.map(([name, shape], j) => ({ name: vars.get(name)!.name, tensor: tf.tensor(gradSeq[j][k], shape) }));
    opt.applyGradients(gs);
    tf.dispose(gs.map((g) => g.tensor));
  };

  const straightVars = makeVariables(params);
  const straight = make();
  for (let k = 0; k < 3; k++) step(straight, straightVars, k);

  // Resumed run: the variables keep their names (as a reloaded model's would), the optimizer is rebuilt.
  const resumedVars = makeVariables(params);
  const first = make();
  for (let k = 0; k < 2; k++) step(first, resumedVars, k);
  const saved = await first.getWeights();
  const savedCopy = saved.map(({ name, tensor }) => ({ name, shape: tensor.shape, dtype: tensor.dtype, data: tensor.dataSync().slice() }));
  first.dispose();
  tf.dispose(saved.map((s) => s.tensor));
  const reloaded = savedCopy.map(({ name, shape, dtype, data }) => ({ name, tensor: tf.tensor(data, shape, dtype as 'float32' | 'int32') }));
  const second = make();
  await second.setWeights(reloaded);
  tf.dispose(reloaded.map((s) => s.tensor));
  assert.equal(second.iterations, 2, `${label}: iterations restored`);
  step(second, resumedVars, 2);

  for (const [name] of ROUND_TRIP_SHAPES) {
    assert.deepEqual(resumedVars.get(name)!.dataSync(), straightVars.get(name)!.dataSync(), `${label}: ${name} after resume`);
  }
  if (straight instanceof Adafactor && second instanceof Adafactor) {
    assert.equal(second.stepOf(resumedVars.get('w')!.name), 3);
    assert.equal(second.lastLr, straight.lastLr);
  }
  const names = savedCopy.map((s) => s.name);
  assert.equal(names[0], 'iter');
  assert.ok(names.includes(`${resumedVars.get('w')!.name}/step`), `${label}: step saved (${names.join(', ')})`);
  straight.dispose();
  second.dispose();
  disposeAll(straightVars);
  disposeAll(resumedVars);
}

test('getWeights/setWeights resume: 2 steps + reload + 1 step equals 3 straight steps exactly', async () => {
  await roundTrip(() => new Adafactor({ beta1: 0.9, weightDecay: 0.01 }), 'Adafactor');
  await roundTrip(() => new Adafactor({ lr: 1e-2, relativeStep: false, scaleParameter: false }), 'Adafactor fixed lr');
  await roundTrip(() => new AdamW({ weightDecay: 0.01 }), 'AdamW');
  await assert.rejects(new Adafactor().setWeights([{ name: 'iter', tensor: tf.scalar(1, 'int32') }, { name: 'x/bogus', tensor: tf.scalar(0) }]), /unexpected entry "x\/bogus"/);
  await assert.rejects(new AdamW().setWeights([{ name: 'x/step', tensor: tf.scalar(1, 'int32') }]), /"x\/exp_avg" is missing/);
});

test('no tensor leaks: tensor count after step 1 equals that after step 5, and dispose frees the state', () => {
  const r = rng(5);
  const makers: [string, () => tf.Optimizer][] = [
    ['Adafactor', () => new Adafactor({ beta1: 0.9, weightDecay: 0.01 })],
    ['Adafactor fixed lr', () => new Adafactor({ lr: 1e-3, relativeStep: false, scaleParameter: false, weightDecay: 0.01 })],
    ['AdamW', () => new AdamW()],
  ];
  for (const [label, make] of makers) {
    const params = new Map(ROUND_TRIP_SHAPES.map(([name, shape]) => [name, randomTensor(shape, 0.5, r)]));
    const vars = makeVariables(params);
    const grads = ROUND_TRIP_SHAPES.map(([name, shape]) => ({ name: vars.get(name)!.name, tensor: tf.tensor(randomTensor(shape, 0.1, r).data, shape) }));
    const base = tf.memory().numTensors;
    const opt = make();
    const counts: number[] = [];
    for (let k = 0; k < 5; k++) {
      opt.applyGradients(grads);
      counts.push(tf.memory().numTensors);
    }
    if (opt instanceof Adafactor) {
      assert.ok(opt.lastLr! > 0, `${label}: lastLr ${opt.lastLr}`);
      assert.equal(tf.memory().numTensors, counts[4], `${label}: lastLr allocates nothing lasting`);
    }
    assert.equal(counts[4], counts[0], `${label}: tensors after steps 1..5: ${counts.join(', ')}`);
    opt.dispose();
    assert.equal(tf.memory().numTensors, base, `${label}: dispose frees the optimizer state`);
    tf.dispose(grads.map((g) => g.tensor));
    disposeAll(vars);
  }
});

test('--adafactor-scale-parameter: a fixed lr scaled by each parameter RMS; its default 1e-2 takes the step HF takes with its constructor defaults', () => {
  const base = { learningRate: undefined, useAdafactor: true, useAdafactorSchedule: false, weightDecay: 0 };
  const unscaled = makeOptimizer({ ...base, adafactorScaleParameter: false });
  const scaled = makeOptimizer({ ...base, adafactorScaleParameter: true });
  assert.equal(unscaled.baseLr, 1e-3);
  assert.equal(scaled.baseLr, 1e-2);
  assert.ok(scaled.optimizer instanceof Adafactor && scaled.optimizer.scaleParameter && !scaled.optimizer.relativeStep);
  assert.ok(unscaled.optimizer instanceof Adafactor && !unscaled.optimizer.scaleParameter);
  // A run saved before the option existed resumes unscaled.
  const old = makeOptimizer({ ...base, adafactorScaleParameter: undefined as unknown as boolean });
  assert.ok(old.optimizer instanceof Adafactor && !old.optimizer.scaleParameter);
  unscaled.optimizer.dispose();
  old.optimizer.dispose();

  // HF's Adafactor() with no arguments: relative step min(1e-2, 1/sqrt(1)) = 1e-2 at the first step, scaled.
  const dir = path.join(FIXTURES, 't5-tiny');
  const fixture = JSON.parse(fs.readFileSync(path.join(dir, 'fixture.json'), 'utf8'));
  const names: string[] = fixture.named_parameters;
  const before = readSafetensorsFile(path.join(dir, 'model.safetensors')).tensors;
  const grads = readSafetensorsFile(path.join(dir, 'grads.safetensors')).tensors;
  const after = readSafetensorsFile(path.join(dir, 'adafactor_hf_constructor_defaults.safetensors')).tensors;
  const params = new Map(names.map((n) => [n, { shape: before.get(n)!.shape, data: before.get(n)!.data as Float32Array }]));
  const vars = makeVariables(params);
  const gradTensors = names.map((n) => ({ name: vars.get(n)!.name, tensor: tf.tensor(grads.get(n)!.data, grads.get(n)!.shape, 'float32') }));
  scaled.optimizer.applyGradients(gradTensors);
  tf.dispose(gradTensors.map((g) => g.tensor));
  const dev = newDeviation();
  for (const n of names) compare(vars.get(n)!.dataSync(), after.get(n)!.data, n, 1e-6, 1e-6, dev, params.get(n)!.data);
  assert.ok(dev.maxUlps <= 16, `max deviation ${dev.maxUlps} ulp`);
  scaled.optimizer.dispose();
  disposeAll(vars);
});

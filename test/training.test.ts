/** Full training steps (forward, loss, backward, optimizer) against HF + PyTorch, and no tensor leaks. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { tf } from '../src/tf.js';
import { T5ForConditionalGeneration } from '../src/model/index.js';
import { Adafactor, AdamW } from '../src/train/optimizers/index.js';
import { readSafetensorsFile } from '../src/safetensors.js';
import { fixtureDir, MODEL_FIXTURES, readJson } from './helpers/fixtures.js';
import { testBackends, useBackend } from './helpers/backends.js';
import { loadBlasMatMul } from '../src/engine/blas/runtime.js';

const BLAS_LOADS = loadBlasMatMul(2).ok;

type Fixture = ReturnType<typeof readJson>;

/** One step as HF's loop does it (eval mode: dropout off); returns the loss before the step. */
function step(model: T5ForConditionalGeneration, opt: tf.Optimizer, inputs: Fixture['inputs']): number {
  const params = [...model.namedParameters().values()];
  const { value, grads } = tf.variableGrads(
    () => model.forward({ inputIds: inputs.input_ids, attentionMask: inputs.attention_mask, labels: inputs.labels }).loss!,
    params,
  );
  opt.applyGradients(grads);
  const loss = value.dataSync()[0];
  tf.dispose([value, ...Object.values(grads)]);
  return loss;
}

function compareParams(model: T5ForConditionalGeneration, file: string, tol: number, allowedOutlierFraction: number): void {
  const ref = readSafetensorsFile(file).tensors;
  let total = 0;
  let outliers = 0;
  let worst = 0;
  for (const [name, v] of model.namedParameters()) {
    const r = ref.get(name);
    assert.ok(r, `reference has no ${name}`);
    const got = v.dataSync();
    for (let i = 0; i < got.length; i++) {
      const d = Math.abs(got[i] - r!.data[i]);
      total++;
      if (d > tol) outliers++;
      worst = Math.max(worst, d);
    }
  }
  assert.ok(outliers <= allowedOutlierFraction * total, `${outliers} of ${total} elements differ by more than ${tol} (worst ${worst})`);
  if (allowedOutlierFraction === 0) assert.ok(worst <= tol, `worst difference ${worst}`);
}

for (const backend of testBackends()) {
  for (const name of MODEL_FIXTURES) {
    const dir = fixtureDir(name);
    const fx = readJson(path.join(dir, 'fixture.json'));

    test(`[${backend}] ${name}: 3 Adafactor training steps match HF`, async () => {
      await useBackend(backend);
      const model = T5ForConditionalGeneration.fromPretrained(dir);
      const opt = new Adafactor({ lr: 1e-3, scaleParameter: false, relativeStep: false, warmupInit: false });
      const losses = [0, 1, 2].map(() => step(model, opt, fx.inputs));
      losses.forEach((l, i) => assert.ok(Math.abs(l - fx.train.adafactor_fixed_lr.losses_before_each_step[i]) < 1e-4, `loss ${i}: ${l}`));
      compareParams(model, path.join(dir, 'train_adafactor_fixed_lr.safetensors'), 1e-5, 0);
      opt.dispose();
      model.dispose();
    });

    test(`[${backend}] ${name}: 3 AdamW training steps match torch`, async () => {
      await useBackend(backend);
      const model = T5ForConditionalGeneration.fromPretrained(dir);
      const opt = new AdamW({ lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.01 });
      const losses = [0, 1, 2].map(() => step(model, opt, fx.inputs));
      losses.forEach((l, i) => assert.ok(Math.abs(l - fx.train.adamw.losses_before_each_step[i]) < 1e-4, `loss ${i}: ${l}`));
      // Elements whose gradient is at float32 noise level move by ±lr under Adam's normalisation: at most 0.1%.
      compareParams(model, path.join(dir, 'train_adamw.safetensors'), 1e-5, 0.001);
      opt.dispose();
      model.dispose();
    });

    // t5-tiny-long's 20 steps (and its 5.x save's) at lr 1e-2 are chaotic: Adafactor scales each update by the
    // gradient's own size, so an element whose gradient is at float32 noise level takes a full-size step whose sign
    // is that noise. One product summed in another order (OpenBLAS's kernels rather than MKL's or MLAS's; or our wasm
    // product, with the SIMD Adafactor's float32 sums) changes the last bit of one such gradient, and from step 10
    // the losses drift by up to 5e-3. On those paths the losses are checked to 1e-3 up to step 10 and to 1e-2 after,
    // and the greedy outputs exactly; elsewhere to 1e-3 throughout.
    const orderDrifts = name.startsWith('t5-tiny-long') && (backend === 'wasm-pure' || (backend === 'cpu' && BLAS_LOADS));
    test(`[${backend}] ${name}: train then generate (EOS, early stop, padding, suppression) matches HF`, async () => {
      await useBackend(backend);
      const tg = readJson(path.join(dir, 'train_then_generate.json'));
      const model = T5ForConditionalGeneration.fromPretrained(dir);
      const opt = new Adafactor({ lr: tg.optimizer.lr, scaleParameter: false, relativeStep: false, warmupInit: false });
      for (let s = 0; s < tg.steps; s++) {
        const loss = step(model, opt, fx.inputs);
        const tol = orderDrifts && s >= 10 ? 1e-2 : 1e-3;
        assert.ok(Math.abs(loss - tg.losses_before_each_step[s]) < tol, `loss before step ${s}: ${loss} vs ${tg.losses_before_each_step[s]}`);
      }
      const args = { inputIds: fx.inputs.input_ids, attentionMask: fx.inputs.attention_mask, maxNewTokens: tg.max_new_tokens };
      assert.deepEqual(model.generate(args), tg.sequences);
      assert.deepEqual(model.generate({ ...args, suppressTokens: [1] }), tg.sequences_suppress_eos);
      opt.dispose();
      model.dispose();
    });

    test(`[${backend}] ${name}: no tensor leaks across training steps`, async () => {
      await useBackend(backend);
      const model = T5ForConditionalGeneration.fromPretrained(dir);
      for (const opt of [new Adafactor({ lr: 1e-3, scaleParameter: false, relativeStep: false, warmupInit: false }), new AdamW()]) {
        const params = [...model.namedParameters().values()];
        const trainStep = () => {
          const { value, grads } = tf.variableGrads(
            () => model.forward({ inputIds: fx.inputs.input_ids, attentionMask: fx.inputs.attention_mask, labels: fx.inputs.labels, training: true }).loss!,
            params,
          );
          opt.applyGradients(grads);
          tf.dispose([value, ...Object.values(grads)]);
        };
        trainStep();
        const afterOne = tf.memory().numTensors;
        for (let i = 0; i < 4; i++) trainStep();
        assert.equal(tf.memory().numTensors, afterOne);
        opt.dispose();
      }
      model.dispose();
    });
  }
}

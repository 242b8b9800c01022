/**
 * LoRA adapters against reference values made by HF PEFT itself (test/fixtures/lora/, see the fixtures README):
 * logits, loss, gradients, AdamW steps and merging on every test backend; PEFT's adapter folder both ways; what a
 * fresh adapter starts as; each refusal. Where a Python with torch, transformers and peft is found (`T5CLS_PYTHON`,
 * else python3), PEFT also loads an adapter t5cls saved; elsewhere that test reports itself skipped, saying why.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tf } from '../src/tf.js';
import { FormatError, UsageError } from '../src/errors.js';
import { T5Config, T5ForConditionalGeneration, DropoutStream } from '../src/model/index.js';
import { LoraAdapter, LoraConfig, loadAdapter, mergeAdapter, saveAdapter, kaimingUniformBound } from '../src/model/lora/index.js';
import { AdamW } from '../src/train/optimizers/index.js';
import { readSafetensorsFile, saveSafetensors } from '../src/safetensors.js';
import { nativeGraphs } from '../src/engine/flags.js';
import { nativeGraphAvailable, nativeGraphRuns } from '../src/engine/ort/graph_kernel.js';
import { testBackends, useBackend } from './helpers/backends.js';
import { fixtureDir, flatten, maxAbs, maxAbsDiff, readJson, REPO_ROOT, tempDirs } from './helpers/fixtures.js';
import { values } from './helpers/values.js';

interface LoraFixture {
  base: string;
  lora_config: { r: number; lora_alpha: number; lora_dropout: number; target_modules: string[] };
  trainable_parameters: number;
  inputs: { input_ids: number[][]; attention_mask: number[][]; labels: number[][]; decoder_input_ids: number[][] };
  logits: number[][][];
  loss: number;
  train_adamw: { optimizer: { lr: number; betas: [number, number]; eps: number; weight_decay: number }; losses: number[] };
}

const CASES = ['t5-tiny-qv', 't5-tiny-v11-all'] as const;

function loraCase(name: string) {
  const dir = path.join(fixtureDir('lora'), name);
  const fx = readJson<LoraFixture>(path.join(dir, 'lora.json'));
  return { dir, fx, adapterDir: path.join(dir, 'adapter'), baseDir: fixtureDir(fx.base) };
}

const temp = tempDirs('t5cls-lora-');
after(() => temp.removeAll());

function lossOf(model: T5ForConditionalGeneration, fx: LoraFixture): tf.Scalar {
  return model.forward({ inputIds: fx.inputs.input_ids, attentionMask: fx.inputs.attention_mask, labels: fx.inputs.labels }).loss!;
}

function logitsOf(model: T5ForConditionalGeneration, fx: LoraFixture): Float32Array {
  return tf.tidy(() => lossAndLogits(model, fx).logits);
}

function lossAndLogits(model: T5ForConditionalGeneration, fx: LoraFixture): { loss: number; logits: Float32Array } {
  return tf.tidy(() => {
    const out = model.forward({ inputIds: fx.inputs.input_ids, attentionMask: fx.inputs.attention_mask, labels: fx.inputs.labels });
    return { loss: out.loss!.dataSync()[0]!, logits: out.logits.dataSync() as Float32Array };
  });
}

/** Copies of every parameter's values, to tell that none changed. */
function snapshot(model: T5ForConditionalGeneration): Map<string, Float32Array> {
  return new Map([...model.namedParameters()].map(([n, v]) => [n, (v.dataSync() as Float32Array).slice()]));
}

function assertUnchanged(model: T5ForConditionalGeneration, before: Map<string, Float32Array>): void {
  for (const [name, v] of model.namedParameters()) assert.equal(maxAbsDiff(v.dataSync(), before.get(name)!), 0, `${name} changed`);
}

for (const backend of testBackends()) {
  for (const name of CASES) {
    const { dir, fx, adapterDir, baseDir } = loraCase(name);

    for (const graphs of [true, false]) {
      test(`[${backend}${graphs ? '' : ', no native graphs'}] ${name}: logits and loss with PEFT's adapter match PEFT`, async (t) => {
        await useBackend(backend);
        nativeGraphs.enabled = graphs;
        const graphRuns = nativeGraphRuns.count;
        const graphsRun = graphs && nativeGraphAvailable();
        if (graphs && !graphsRun) t.skip('no native graphs on this backend (onnxruntime-node not loaded)');
        const model = T5ForConditionalGeneration.fromPretrained(baseDir);
        const adapter = loadAdapter(adapterDir, model);
        try {
          const tensors = tf.memory().numTensors;
          const { loss, logits } = lossAndLogits(model, fx);
          assert.equal(tf.memory().numTensors, tensors, 'the pass leaks tensors');
          const diff = maxAbsDiff(logits, flatten(fx.logits));
          assert.ok(diff <= 1e-4, `logits differ by ${diff}`);
          assert.ok(Math.abs(loss - fx.loss) <= 1e-4, `loss ${loss} vs ${fx.loss}`);
          // With graphs the targeted weights are fed merged; without, the tfjs math adds the low-rank terms.
          if (graphsRun) assert.ok(nativeGraphRuns.count > graphRuns, 'a native graph ran');
          else assert.equal(nativeGraphRuns.count, graphRuns, 'no native graph ran');
        } finally {
          nativeGraphs.enabled = true;
          adapter.dispose();
          model.dispose();
        }
      });
    }

    test(`[${backend}] ${name}: gradient of every LoRA tensor matches PEFT, and only the adapter gets one`, async () => {
      await useBackend(backend);
      const model = T5ForConditionalGeneration.fromPretrained(baseDir);
      const adapter = loadAdapter(adapterDir, model);
      const ref = readSafetensorsFile(path.join(dir, 'lora_grads.safetensors')).tensors;
      const named = adapter.namedVariables();
      assert.deepEqual([...named.keys()].sort(), [...ref.keys()].sort());
      const { value, grads } = tf.variableGrads(() => lossOf(model, fx), adapter.trainableVariables());
      assert.ok(Math.abs(value.dataSync()[0]! - fx.loss) <= 1e-4);
      assert.deepEqual(Object.keys(grads).sort(), [...named.values()].map((v) => v.name).sort());
      for (const [key, variable] of named) {
        const g = grads[variable.name]!;
        const r = ref.get(key)!;
        assert.deepEqual(g.shape, r.shape);
        const scale = Math.max(maxAbs(r.data), 1e-12);
        const d = maxAbsDiff(g.dataSync(), r.data);
        assert.ok(d <= 1e-4 * scale, `${key}: gradient differs by ${d} (max magnitude ${scale})`);
      }
      tf.dispose([value, ...Object.values(grads)]);
      adapter.dispose();
      model.dispose();
    });

    test(`[${backend}] ${name}: 3 AdamW steps over the adapter, base frozen, match torch`, async () => {
      await useBackend(backend);
      const model = T5ForConditionalGeneration.fromPretrained(baseDir);
      const adapter = loadAdapter(adapterDir, model);
      const base = snapshot(model);
      const { lr, betas, eps, weight_decay } = fx.train_adamw.optimizer;
      const opt = new AdamW({ lr, betas, eps, weightDecay: weight_decay });
      for (const [i, expected] of fx.train_adamw.losses.entries()) {
        const { value, grads } = tf.variableGrads(() => lossOf(model, fx), adapter.trainableVariables());
        opt.applyGradients(grads);
        const loss = value.dataSync()[0]!;
        tf.dispose([value, ...Object.values(grads)]);
        assert.ok(Math.abs(loss - expected) <= 1e-4, `loss before step ${i}: ${loss} vs ${expected}`);
      }
      const ref = readSafetensorsFile(path.join(dir, 'train_adamw_adapter.safetensors')).tensors;
      let total = 0;
      let outliers = 0;
      let worst = 0;
      for (const [key, variable] of adapter.namedVariables()) {
        const got = variable.dataSync();
        const want = ref.get(key)!.data;
        for (let i = 0; i < got.length; i++) {
          const d = Math.abs(got[i]! - want[i]!);
          total++;
          if (d > 1e-5) outliers++;
          worst = Math.max(worst, d);
        }
      }
      // As for full training (training.test.ts): an element whose gradient is at float32 noise level moves by ±lr.
      assert.ok(outliers <= 0.001 * total, `${outliers} of ${total} elements differ by more than 1e-5 (worst ${worst})`);
      assertUnchanged(model, base);
      opt.dispose();
      adapter.dispose();
      model.dispose();
    });

    test(`[${backend}] ${name}: merging gives PEFT's merge_and_unload model, with the adapter's logits`, async () => {
      await useBackend(backend);
      const model = T5ForConditionalGeneration.fromPretrained(baseDir);
      const adapter = loadAdapter(adapterDir, model);
      const adapterLogits = logitsOf(model, fx);
      const base = snapshot(model);
      mergeAdapter(model, adapter);
      assert.equal(model.adapter, undefined, 'the adapter is detached');
      const peftMerged = T5ForConditionalGeneration.fromPretrained(path.join(dir, 'merged'));
      const targeted = new Set(adapter.targetWeights());
      for (const [pname, v] of model.namedParameters()) {
        const d = maxAbsDiff(v.dataSync(), peftMerged.parameter(pname).dataSync());
        if (targeted.has(pname)) {
          assert.ok(d <= 1e-6, `${pname}: merged weight differs from PEFT's by ${d}`);
          assert.ok(maxAbsDiff(v.dataSync(), base.get(pname)!) > 0, `${pname} was merged`);
        } else {
          assert.equal(d, 0, `${pname} is not targeted and stays as it was`);
        }
      }
      const merged = logitsOf(model, fx);
      const d = maxAbsDiff(merged, adapterLogits);
      assert.ok(d <= 1e-4, `merged logits differ from the adapter's by ${d}`);
      assert.ok(maxAbsDiff(merged, flatten(fx.logits)) <= 1e-4);
      // A plain HF model folder, as merge_and_unload + save_pretrained gives.
      const out = path.join(temp.make(), 'merged');
      model.savePretrained(out);
      const reloaded = T5ForConditionalGeneration.fromPretrained(out);
      for (const [pname, v] of model.namedParameters()) assert.equal(maxAbsDiff(v.dataSync(), reloaded.parameter(pname).dataSync()), 0);
      for (const m of [reloaded, peftMerged, model]) m.dispose();
      adapter.dispose();
    });
  }
}

const QV = loraCase('t5-tiny-qv');
const V11 = loraCase('t5-tiny-v11-all');

test('save → PEFT folder → load gives identical tensors and logits; adapter_config.json has what PEFT reads', async () => {
  await useBackend(testBackends()[0]!);
  for (const { fx, adapterDir, baseDir } of [QV, V11]) {
    const model = T5ForConditionalGeneration.fromPretrained(baseDir);
    const adapter = loadAdapter(adapterDir, model);
    const logits = logitsOf(model, fx);
    const dir = path.join(temp.make(), 'adapter');
    await saveAdapter(dir, adapter, { baseModelNameOrPath: fx.base });
    assert.deepEqual(fs.readdirSync(dir).sort(), ['adapter_config.json', 'adapter_model.safetensors']);
    const text = fs.readFileSync(path.join(dir, 'adapter_config.json'), 'utf-8');
    const saved = JSON.parse(text);
    const peft = readJson(path.join(adapterDir, 'adapter_config.json'));
    for (const field of ['r', 'lora_alpha', 'lora_dropout', 'bias', 'fan_in_fan_out', 'use_rslora', 'use_dora', 'modules_to_save']) {
      assert.deepEqual(saved[field], peft[field], field);
    }
    assert.deepEqual([...saved.target_modules].sort(), [...peft.target_modules].sort());
    assert.equal(saved.peft_type, 'LORA');
    assert.equal(saved.task_type, 'SEQ_2_SEQ_LM');
    assert.equal(saved.base_model_name_or_path, fx.base);
    assert.equal(saved.inference_mode, true);
    assert.equal(saved.init_lora_weights, true);
    assert.match(text, new RegExp(`"lora_alpha": ${fx.lora_config.lora_alpha}\\.0,`), 'lora_alpha written as a float');
    assert.match(text, /"lora_dropout": 0\.0,/, 'lora_dropout written as a float');
    assert.deepEqual(Object.keys(saved), Object.keys(saved).sort(), 'keys sorted, as PEFT writes them');
    // PEFT's tensor names, shapes and values, bit for bit.
    const written = readSafetensorsFile(path.join(dir, 'adapter_model.safetensors'));
    const original = readSafetensorsFile(path.join(adapterDir, 'adapter_model.safetensors'));
    assert.deepEqual(written.metadata, original.metadata);
    assert.deepEqual([...written.tensors.keys()].sort(), [...original.tensors.keys()].sort());
    for (const [key, t] of original.tensors) {
      assert.deepEqual(written.tensors.get(key)!.shape, t.shape);
      assert.equal(maxAbsDiff(written.tensors.get(key)!.data, t.data), 0, key);
    }
    model.detachAdapter();
    const again = loadAdapter(dir, model);
    assert.equal(maxAbsDiff(logitsOf(model, fx), logits), 0);
    // Saving again replaces the adapter folder; a loaded adapter keeps the base its config names.
    await saveAdapter(dir, again, { taskType: null });
    assert.equal(readJson(path.join(dir, 'adapter_config.json')).base_model_name_or_path, fx.base);
    assert.equal(readJson(path.join(dir, 'adapter_config.json')).task_type, null);
    adapter.dispose();
    again.dispose();
    model.dispose();
  }
});

test("a fresh adapter starts as PEFT's: lora_B zero (the base model's logits), lora_A Kaiming-uniform", async () => {
  await useBackend(testBackends()[0]!);
  assert.ok(Math.abs(kaimingUniformBound(32) - 1 / Math.sqrt(32)) < 1e-15, 'kaiming_uniform_(a=√5) is U(±1/√fan_in)');
  for (const { fx, baseDir } of [QV, V11]) {
    const model = T5ForConditionalGeneration.fromPretrained(baseDir);
    const config = new LoraConfig({ r: fx.lora_config.r, alpha: fx.lora_config.lora_alpha, targetModules: fx.lora_config.target_modules });
    const adapter = new LoraAdapter(model, config, { seed: 3 });
    assert.equal(adapter.parameterCount, fx.trainable_parameters, "PEFT's trainable parameters");
    for (const graphs of [true, false]) {
      nativeGraphs.enabled = graphs;
      const baseLogits = logitsOf(model, fx);
      model.attachAdapter(adapter);
      assert.equal(maxAbsDiff(logitsOf(model, fx), baseLogits), 0, `logits equal the base's (graphs ${graphs})`);
      model.detachAdapter();
    }
    nativeGraphs.enabled = true;
    const params = model.namedParameters();
    const names = [...adapter.namedVariables().keys()];
    for (const weight of adapter.targetWeights()) {
      const { A, B } = adapter.target(weight)!;
      const [out, fanIn] = params.get(weight)!.shape;
      assert.deepEqual(A.shape, [fx.lora_config.r, fanIn]);
      assert.deepEqual(B.shape, [out, fx.lora_config.r]);
      assert.equal(maxAbs(B.dataSync()), 0, `${weight}: lora_B is zero`);
      const a = A.dataSync();
      const bound = 1 / Math.sqrt(fanIn!);
      assert.ok(maxAbs(a) <= bound, `${weight}: lora_A within ±1/√${fanIn}`);
      assert.ok(maxAbs(a) > 0.9 * bound, `${weight}: lora_A spreads over its bound`);
      assert.ok(new Set(a).size > a.length * 0.99, `${weight}: lora_A values are distinct draws`);
    }
    // PEFT's order: layer by layer in parameter order, lora_A before lora_B.
    const order = [...params.keys()];
    const modules = names.filter((_, i) => i % 2 === 0).map((k) => k.replace(/^base_model\.model\.(.*)\.lora_A\.weight$/, '$1.weight'));
    assert.deepEqual(modules, [...modules].sort((x, y) => order.indexOf(x) - order.indexOf(y)));
    names.forEach((k, i) => assert.match(k, i % 2 === 0 ? /\.lora_A\.weight$/ : /\.lora_B\.weight$/));
    assert.deepEqual(adapter.trainableVariables(), [...adapter.namedVariables().values()]);
    adapter.dispose();
    model.dispose();
  }
});

test("LoraConfig: PEFT's defaults (q, v for T5), 'all-linear' = every linear of the blocks, no LM head", async () => {
  await useBackend(testBackends()[0]!);
  const tiny = T5ForConditionalGeneration.fromPretrained(QV.baseDir);
  const v11 = T5ForConditionalGeneration.fromPretrained(V11.baseDir);
  const defaults = new LoraConfig();
  assert.deepEqual([defaults.r, defaults.alpha, defaults.dropout, defaults.targetModules], [8, 8, 0, ['q', 'v']]);
  assert.ok(defaults.targetWeights(tiny.layout).every((w) => /\.(q|v)\.weight$/.test(w)));
  const all = new LoraConfig({ r: 8, alpha: 16, targetModules: 'all-linear' });
  assert.deepEqual(all.savedTargetModules(tiny.layout), ['q', 'k', 'v', 'o', 'wi', 'wo']);
  assert.deepEqual([...all.savedTargetModules(v11.layout)].sort(), [...V11.fx.lora_config.target_modules].sort());
  const v11All = new LoraAdapter(v11, all);
  assert.equal(v11All.parameterCount, V11.fx.trainable_parameters, "all-linear selects what PEFT's q,k,v,o,wi_0,wi_1,wo does");
  assert.ok(!v11All.targetWeights().some((w) => w.startsWith('lm_head') || w.startsWith('shared')));
  assert.equal(all.scaling, 2);
  // PEFT's suffix rule: a name selects the modules it ends.
  const crossOnly = new LoraConfig({ targetModules: ['EncDecAttention.q'] }).targetWeights(tiny.layout);
  assert.deepEqual(crossOnly, ['decoder.block.0.layer.1.EncDecAttention.q.weight', 'decoder.block.1.layer.1.EncDecAttention.q.weight']);
  for (const [options, message] of [
    [{ targetModules: ['lm_head'] }, /LoRA target module "lm_head" selects none of this T5's linear layers \(q, k, v, o, wi, wo\)/],
    [{ targetModules: ['wi_0'] }, /"wi_0" selects none/],
    [{ r: 0 }, /r must be a whole number/],
    [{ dropout: 1 }, /dropout must be in \[0, 1\)/],
    [{ targetModules: [] }, /non-empty list/],
  ] as const) {
    assert.throws(() => new LoraAdapter(tiny, new LoraConfig(options)), (e: Error) => e instanceof UsageError && message.test(e.message));
  }
  v11All.dispose();
  tiny.dispose();
  v11.dispose();
});

test('attaching: one adapter at a time, of the model it was made for; savePretrained refuses an unmerged adapter', async () => {
  await useBackend(testBackends()[0]!);
  const tiny = T5ForConditionalGeneration.fromPretrained(QV.baseDir);
  const v11 = T5ForConditionalGeneration.fromPretrained(V11.baseDir);
  const adapter = new LoraAdapter(tiny);
  tiny.attachAdapter(adapter);
  const other = new LoraAdapter(tiny);
  assert.throws(() => tiny.attachAdapter(other), /already attached/);
  assert.throws(() => tiny.savePretrained(path.join(temp.make(), 'x')), /a LoRA adapter is attached: saveAdapter writes it, mergeAdapter folds it in first/);
  assert.throws(() => mergeAdapter(tiny, other), /another LoRA adapter is attached/);
  assert.equal(tiny.detachAdapter(), adapter);
  const gated = new LoraAdapter(v11, new LoraConfig({ targetModules: ['wi_0'] }));
  assert.throws(() => tiny.attachAdapter(gated), /targets encoder\.block\.0\.layer\.1\.DenseReluDense\.wi_0\.weight \[64,32\], but the model's is missing/);
  const narrow = new T5ForConditionalGeneration(new T5Config({ vocab_size: 128, d_model: 16, d_kv: 4, d_ff: 32, num_layers: 2, num_heads: 4 }));
  const narrowAdapter = new LoraAdapter(narrow);
  assert.throws(() => tiny.attachAdapter(narrowAdapter), /targets encoder\.block\.0\.layer\.0\.SelfAttention\.q\.weight \[16,16\], but the model's is \[32,32\]/);
  assert.equal(tiny.adapter, undefined);
  for (const a of [adapter, other, gated, narrowAdapter]) a.dispose();
  for (const m of [tiny, v11, narrow]) m.dispose();
});

test('LoRA dropout draws its masks from the forward pass’s stream, only in training and only when lora_dropout > 0', async () => {
  await useBackend(testBackends()[0]!);
  const { fx, baseDir } = QV;
  const model = T5ForConditionalGeneration.fromPretrained(baseDir);
  const trainingLoss = (seed: number) => {
    const stream = new DropoutStream(seed);
    const loss = tf.tidy(() => model.forward({ ...forwardArgs(fx), training: stream }).loss!.dataSync()[0]!);
    return { loss, masks: stream.state().counter };
  };
  const base = trainingLoss(5);
  const quiet = new LoraAdapter(model, new LoraConfig({ targetModules: ['q', 'v'] }));
  model.attachAdapter(quiet);
  assert.deepEqual(trainingLoss(5), base, 'lora_dropout 0 draws no mask; B = 0 adds nothing');
  model.detachAdapter();
  const noisy = new LoraAdapter(model, new LoraConfig({ targetModules: ['q', 'v'], dropout: 0.5 }));
  for (const { B } of noisy.targetWeights().map((w) => noisy.target(w)!)) B.assign(tf.tensor(values(B.size, 7, 0.1), B.shape));
  model.attachAdapter(noisy);
  const withDropout = trainingLoss(5);
  assert.equal(withDropout.masks, base.masks + noisy.targetWeights().length, 'one mask per LoRA layer per pass');
  assert.deepEqual(trainingLoss(5), withDropout, 'the same stream draws the same masks');
  const evalLoss = tf.tidy(() => lossOf(model, fx).dataSync()[0]!);
  assert.equal(tf.tidy(() => lossOf(model, fx).dataSync()[0]!), evalLoss, 'no dropout in evaluation');
  model.detachAdapter();
  quiet.dispose();
  noisy.dispose();
  model.dispose();
});

function forwardArgs(fx: LoraFixture) {
  return { inputIds: fx.inputs.input_ids, attentionMask: fx.inputs.attention_mask, labels: fx.inputs.labels };
}

/** A copy of the qv fixture's adapter folder with adapter_config.json and adapter_model.safetensors changed. */
function alteredAdapter(
  config: Record<string, unknown>,
  editTensors?: (tensors: Map<string, { shape: number[]; data: Float32Array }>) => void,
): string {
  const dir = path.join(temp.make(), 'adapter');
  fs.mkdirSync(dir);
  const json = { ...readJson(path.join(QV.adapterDir, 'adapter_config.json')), ...config };
  fs.writeFileSync(path.join(dir, 'adapter_config.json'), JSON.stringify(json, null, 2));
  const tensors = new Map(
    [...readSafetensorsFile(path.join(QV.adapterDir, 'adapter_model.safetensors')).tensors].map(([k, t]) => [k, { shape: t.shape, data: t.data as Float32Array }]),
  );
  editTensors?.(tensors);
  saveSafetensors(path.join(dir, 'adapter_model.safetensors'), tensors);
  return dir;
}

const Q0 = 'base_model.model.encoder.block.0.layer.0.SelfAttention.q';
const REFUSALS: [string, Record<string, unknown>, RegExp, ((t: Map<string, { shape: number[]; data: Float32Array }>) => void)?][] = [
  ['use_dora', { use_dora: true }, /adapter_config\.json: use_dora is true: DoRA is not supported/],
  ['use_rslora', { use_rslora: true }, /adapter_config\.json: use_rslora is true: rank-stabilized scaling/],
  ['modules_to_save', { modules_to_save: ['lm_head'] }, /adapter_config\.json: modules_to_save is \["lm_head"\]: modules trained in full/],
  ['bias', { bias: 'lora_only' }, /adapter_config\.json: bias is "lora_only": trained biases are not supported/],
  ['rank_pattern', { rank_pattern: { q: 2 } }, /adapter_config\.json: rank_pattern is \{"q":2\}: a rank per layer/],
  ['alpha_pattern', { alpha_pattern: { v: 4 } }, /adapter_config\.json: alpha_pattern is \{"v":4\}: an alpha per layer/],
  ['layers_to_transform', { layers_to_transform: [0] }, /adapter_config\.json: layers_to_transform is \[0\]: LoRA on some layers only/],
  ['fan_in_fan_out', { fan_in_fan_out: true }, /adapter_config\.json: fan_in_fan_out is true: transposed/],
  ['peft_type', { peft_type: 'IA3' }, /adapter_config\.json: peft_type is "IA3": only LORA adapters are read/],
  ['init_lora_weights', { init_lora_weights: 'pissa' }, /adapter_config\.json: init_lora_weights is "pissa"/],
  ['a target outside T5\'s linears', { target_modules: ['q', 'lm_head'] }, /adapter_config\.json: target_modules: target module "lm_head" selects none/],
  ['a regex target', { target_modules: '.*\\.q' }, /adapter_config\.json: target_modules is ".*\\\\.q": a regular expression is not supported/],
  ['r', { r: 0 }, /adapter_config\.json: r is 0: expected a whole number/],
  [
    'a key of an unknown module',
    {},
    /adapter_model\.safetensors: tensor "base_model\.model\.encoder\.block\.0\.layer\.0\.SelfAttention\.k\.lora_A\.weight" is no LoRA weight of a layer that adapter_config\.json targets/,
    (t) => t.set(`${Q0.replace('.q', '.k')}.lora_A.weight`, { shape: [4, 32], data: new Float32Array(128) }),
  ],
  [
    'a shape that does not fit',
    {},
    /adapter_model\.safetensors: tensor "base_model\.model\.encoder\.block\.0\.layer\.0\.SelfAttention\.q\.lora_A\.weight" has shape \[2,32\], but r 4 and the model's layer need \[4,32\]/,
    (t) => t.set(`${Q0}.lora_A.weight`, { shape: [2, 32], data: new Float32Array(64) }),
  ],
  ['a missing tensor', {}, /adapter_model\.safetensors: no tensor ".*SelfAttention\.q\.lora_B\.weight"/, (t) => t.delete(`${Q0}.lora_B.weight`)],
];

for (const [what, config, message, editTensors] of REFUSALS) {
  test(`loadAdapter refuses ${what} in one line naming the file and field`, async () => {
    await useBackend(testBackends()[0]!);
    const dir = alteredAdapter(config, editTensors);
    const model = T5ForConditionalGeneration.fromPretrained(QV.baseDir);
    const tensors = tf.memory().numTensors;
    assert.throws(
      () => loadAdapter(dir, model),
      (e: Error) => e instanceof FormatError && message.test(e.message) && e.message.includes(dir) && !e.message.includes('\n'),
    );
    assert.equal(model.adapter, undefined);
    assert.equal(tf.memory().numTensors, tensors, 'a refused adapter leaves no tensors behind');
    model.dispose();
  });
}

test('saveAdapter does not replace a folder that is not an adapter folder', async () => {
  await useBackend(testBackends()[0]!);
  const model = T5ForConditionalGeneration.fromPretrained(QV.baseDir);
  const adapter = new LoraAdapter(model);
  const dir = temp.make();
  fs.writeFileSync(path.join(dir, 'notes.txt'), 'mine');
  await assert.rejects(saveAdapter(dir, adapter), (e: Error) => e instanceof UsageError && /not an adapter folder/.test(e.message));
  assert.deepEqual(fs.readdirSync(dir), ['notes.txt']);
  adapter.dispose();
  model.dispose();
});

const PYTHON = process.env.T5CLS_PYTHON || 'python3';
const HF_LOGITS = path.join(REPO_ROOT, 'scripts/fixtures/hf_logits.py');

function probePeft(): false | string {
  const r = spawnSync(PYTHON, ['-c', 'import torch, transformers, peft'], { encoding: 'utf-8', timeout: 120_000 });
  if (r.status === 0) return false;
  const last = (r.stderr || String(r.error ?? '')).trim().split('\n').pop();
  return `needs a Python with torch, transformers and peft (T5CLS_PYTHON, else python3): ${PYTHON}: ${last}`;
}

test('PEFT loads an adapter t5cls trained and saved, with t5cls’s logits', { skip: probePeft() }, async () => {
  await useBackend(testBackends()[0]!);
  for (const { fx, baseDir, targets, untied, taskType } of [
    { ...QV, targets: ['q', 'v'] as const, untied: false, taskType: 'SEQ_2_SEQ_LM' as const },
    { ...V11, targets: 'all-linear' as const, untied: true, taskType: null },
  ]) {
    const model = T5ForConditionalGeneration.fromPretrained(baseDir);
    const adapter = new LoraAdapter(model, new LoraConfig({ r: 4, alpha: 12, dropout: 0.1, targetModules: targets }), { seed: 9 });
    model.attachAdapter(adapter);
    const opt = new AdamW({ lr: 1e-2 });
    for (let s = 0; s < 2; s++) {
      const { value, grads } = tf.variableGrads(() => lossOf(model, fx), adapter.trainableVariables());
      opt.applyGradients(grads);
      tf.dispose([value, ...Object.values(grads)]);
    }
    const logits = logitsOf(model, fx);
    const dir = path.join(temp.make(), 'adapter');
    await saveAdapter(dir, adapter, { baseModelNameOrPath: fx.base, taskType });
    const inputs = path.join(dir, '..', 'inputs.json');
    fs.writeFileSync(inputs, JSON.stringify(fx.inputs));
    const args = [HF_LOGITS, baseDir, inputs, '--adapter', dir, ...(untied ? ['--allow-untied'] : [])];
    const r = spawnSync(PYTHON, args, { encoding: 'utf-8', timeout: 300_000, env: { ...process.env, HF_HUB_OFFLINE: '1' } });
    assert.equal(r.status, 0, r.stderr);
    const hf = JSON.parse(r.stdout) as { logits: number[][][] };
    const diff = maxAbsDiff(hf.logits.flat(2), logits);
    assert.ok(diff <= 1e-4, `${fx.base}: logits differ by ${diff}`);
    opt.dispose();
    model.detachAdapter();
    adapter.dispose();
    model.dispose();
  }
});

/**
 * Checkpoint folders as both generations of HF transformers write and read them: config.json's float fields, the
 * LM head tied or untied and the decoder output scaled or not (4.x: `tie_word_embeddings` says both; 5.x:
 * `scale_decoder_outputs`, and a differing `lm_head.weight` unties), generation_config.json's token ids, and the
 * fields t5cls refuses rather than load a different model.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tf } from '../src/tf.js';
import { T5Config, T5ForConditionalGeneration } from '../src/model/index.js';
import { readModelConfig } from '../src/model/pretrained_config.js';
import { readSafetensorsFile, saveSafetensors } from '../src/safetensors.js';
import { testBackends, useBackend } from './helpers/backends.js';
import { fixtureDir, maxAbsDiff, readJson, tempDirs } from './helpers/fixtures.js';

const temp = tempDirs('t5cls-ckpt-');
before(() => useBackend(testBackends()[0]!));
after(() => temp.removeAll());

const SHAPE = { vocab_size: 40, d_model: 16, d_kv: 4, d_ff: 24, num_layers: 1, num_decoder_layers: 2, num_heads: 2 };
const ARGS = { inputIds: [[5, 9, 3, 1], [7, 2, 1, 0]], attentionMask: [[1, 1, 1, 1], [1, 1, 1, 0]], decoderInputIds: [[0, 4, 6], [0, 8, 1]] };

function logits(model: T5ForConditionalGeneration): Float32Array {
  return tf.tidy(() => model.forward(ARGS).logits.dataSync() as Float32Array);
}

function copyFolder(src: string): string {
  const dir = path.join(temp.make(), path.basename(src));
  fs.cpSync(src, dir, { recursive: true });
  for (const f of fs.readdirSync(dir)) fs.chmodSync(path.join(dir, f), 0o644);
  return dir;
}

function editJson(file: string, edit: (j: Record<string, unknown>) => void): void {
  const j = readJson(file);
  edit(j);
  fs.writeFileSync(file, JSON.stringify(j, null, 2));
}

test('config.json keeps float fields as floats: transformers 5.x rejects "initializer_factor": 1', () => {
  const model = new T5ForConditionalGeneration(new T5Config({ ...SHAPE, dropout_rate: 0, initializer_factor: 1 }), { seed: 1 });
  const dir = temp.make();
  model.savePretrained(dir);
  model.dispose();
  const text = fs.readFileSync(path.join(dir, 'config.json'), 'utf-8');
  assert.match(text, /"initializer_factor": 1\.0,/);
  assert.match(text, /"dropout_rate": 0\.0,/);
  assert.match(text, /"classifier_dropout": 0\.0,/);
  assert.match(text, /"layer_norm_epsilon": (1e-6|0\.000001),/);
  assert.match(text, /"vocab_size": 40\n/, "integer fields stay integers");
  assert.match(text, /"d_kv": 4,/);
  const j = JSON.parse(text);
  assert.equal(j.dtype, 'float32');
  assert.equal(j.torch_dtype, 'float32');
});

test('a float the source config wrote as a float (1.0) is written as a float again, whatever its name', () => {
  const src = copyFolder(fixtureDir('t5-tiny'));
  const file = path.join(src, 'config.json');
  fs.writeFileSync(file, fs.readFileSync(file, 'utf-8').replace('"d_ff": 64,', '"d_ff": 64,\n  "router_z_loss_coef": 2.0,\n  "n_positions": 512,'));
  const model = T5ForConditionalGeneration.fromPretrained(src);
  const out = temp.make();
  model.savePretrained(out);
  model.dispose();
  const text = fs.readFileSync(path.join(out, 'config.json'), 'utf-8');
  assert.match(text, /"router_z_loss_coef": 2\.0,/);
  assert.match(text, /"n_positions": 512,/);
});

/** The three ways a T5 head can be: v1.0 (tied, scaled), v1.1 / flan-t5 (untied, unscaled), and tied but unscaled. */
const HEADS = [
  { name: 'tied and scaled (T5 v1.0)', fields: { tie_word_embeddings: true }, tie: true, scale: true, written: { tie: true, head: false } },
  {
    name: 'untied and unscaled (v1.1, flan-t5)',
    fields: { tie_word_embeddings: false, feed_forward_proj: 'gated-gelu' },
    tie: false,
    scale: false,
    written: { tie: false, head: true },
  },
  {
    name: 'tied but unscaled',
    fields: { tie_word_embeddings: true, scale_decoder_outputs: false },
    tie: true,
    scale: false,
    written: { tie: false, head: true },
  },
];

for (const h of HEADS) {
  test(`save → load keeps a ${h.name} model what it was, in a form 4.x and 5.x both read`, () => {
    const config = new T5Config({ ...SHAPE, ...h.fields });
    assert.equal(config.tie_word_embeddings, h.tie);
    assert.equal(config.scale_decoder_outputs, h.scale);
    const model = new T5ForConditionalGeneration(config, { seed: 7 });
    const dir = temp.make();
    model.savePretrained(dir);
    const j = readJson(path.join(dir, 'config.json'));
    // 4.x ties and scales exactly when tie_word_embeddings is true; 5.x reads scale_decoder_outputs.
    assert.equal(j.tie_word_embeddings, h.written.tie);
    assert.equal(j.scale_decoder_outputs, h.scale);
    const saved = readSafetensorsFile(path.join(dir, 'model.safetensors')).tensors;
    assert.equal(saved.has('lm_head.weight'), h.written.head);
    if (h.tie && h.written.head) assert.equal(maxAbsDiff(saved.get('lm_head.weight')!.data, saved.get('shared.weight')!.data), 0);
    const loaded = T5ForConditionalGeneration.fromPretrained(dir);
    assert.equal(loaded.config.tie_word_embeddings, h.tie);
    assert.equal(loaded.config.scale_decoder_outputs, h.scale);
    assert.equal(loaded.namedParameters().has('lm_head.weight'), !h.tie);
    assert.equal(maxAbsDiff(logits(loaded), logits(model)), 0);
    loaded.dispose();
    model.dispose();
  });
}

test('the head scaling changes the logits by d_model^-0.5 (the flag is not ignored)', () => {
  const scaled = new T5ForConditionalGeneration(new T5Config({ ...SHAPE }), { seed: 3 });
  const plain = new T5ForConditionalGeneration(new T5Config({ ...SHAPE, scale_decoder_outputs: false }), { seed: 3 });
  const a = logits(scaled);
  const b = logits(plain);
  assert.ok(maxAbsDiff(a, b) > 1e-3);
  assert.ok(maxAbsDiff(a, b.map((x) => x * SHAPE.d_model ** -0.5)) < 1e-5);
  scaled.dispose();
  plain.dispose();
});

test('a 5.x-saved v1.1 checkpoint (tie_word_embeddings true, its own differing lm_head) loads untied and unscaled', () => {
  const dir = fixtureDir('t5-tiny-v11-hf5');
  const raw = readJson(path.join(dir, 'config.json'));
  assert.equal(raw.tie_word_embeddings, true, 'the fixture is as 5.x writes it');
  const c = readModelConfig(dir);
  assert.equal(c.tie_word_embeddings, false);
  assert.equal(c.scale_decoder_outputs, false);
});

test('scaling follows tie_word_embeddings where scale_decoder_outputs is absent (configs of transformers 4.x)', () => {
  assert.equal(readModelConfig(fixtureDir('t5-tiny')).scale_decoder_outputs, true);
  assert.equal(readModelConfig(fixtureDir('t5-tiny-v11')).scale_decoder_outputs, false);
  assert.equal(new T5Config({ ...SHAPE }).scale_decoder_outputs, true);
  assert.equal(new T5Config({ ...SHAPE, tie_word_embeddings: false }).scale_decoder_outputs, false);
  assert.equal(new T5Config({ ...SHAPE, tie_word_embeddings: false, scale_decoder_outputs: true }).scale_decoder_outputs, true);
  assert.equal(new T5Config({ ...SHAPE, model_type: 'mt5' }).scale_decoder_outputs, false, 'mT5 never scales');
});

test('an lm_head.weight equal to the embedding ties the head, as 5.x does; a missing one ties it too', () => {
  const dir = copyFolder(fixtureDir('t5-tiny'));
  const file = path.join(dir, 'model.safetensors');
  const { tensors } = readSafetensorsFile(file);
  tensors.set('lm_head.weight', { ...tensors.get('shared.weight')! });
  saveSafetensors(file, tensors, { format: 'pt' });
  editJson(path.join(dir, 'config.json'), (j) => (j.tie_word_embeddings = false));
  const c = readModelConfig(dir);
  assert.equal(c.tie_word_embeddings, true);
  assert.equal(c.scale_decoder_outputs, false, 'tie_word_embeddings false (4.x) still means unscaled');

  const v11 = copyFolder(fixtureDir('t5-tiny-v11'));
  const v11file = path.join(v11, 'model.safetensors');
  const v11tensors = readSafetensorsFile(v11file).tensors;
  v11tensors.delete('lm_head.weight');
  saveSafetensors(v11file, v11tensors, { format: 'pt' });
  assert.equal(readModelConfig(v11).tie_word_embeddings, true);
});

test('generation_config.json supplies the token ids config.json lacks; an eos list of one id is that id', () => {
  const dir = copyFolder(fixtureDir('t5-tiny'));
  editJson(path.join(dir, 'config.json'), (j) => {
    delete j.decoder_start_token_id;
    delete j.eos_token_id;
    delete j.pad_token_id;
  });
  fs.writeFileSync(path.join(dir, 'generation_config.json'), JSON.stringify({ decoder_start_token_id: 3, eos_token_id: [2], pad_token_id: 4 }));
  const c = readModelConfig(dir);
  assert.deepEqual([c.decoder_start_token_id, c.eos_token_id, c.pad_token_id], [3, 2, 4]);
  editJson(path.join(dir, 'config.json'), (j) => (j.eos_token_id = 1));
  assert.equal(readModelConfig(dir).eos_token_id, 1, "config.json's own value wins");
});

test('fields that would change the computation in ways t5cls does not implement stop the load, naming the field', () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ model_type: 'umt5' }, /field "model_type" is "umt5"; t5cls implements T5/],
    [{ architectures: ['T5ForSequenceClassification'] }, /field "architectures" is \["T5ForSequenceClassification"\]/],
    [{ quantization_config: { quant_method: 'bitsandbytes' } }, /field "quantization_config" is set/],
    [{ pruned_heads: { '0': [1] } }, /field "pruned_heads"/],
    [{ tie_encoder_decoder: true }, /field "tie_encoder_decoder" is true/],
    [{ eos_token_id: [1, 5] }, /field "eos_token_id" lists several end tokens/],
    [{ dtype: 'int4' }, /field "dtype" is "int4"; expected one of/],
    [{ scale_decoder_outputs: 'yes' }, /field "scale_decoder_outputs" must be true or false/],
  ];
  for (const [fields, message] of cases) {
    const dir = copyFolder(fixtureDir('t5-tiny'));
    editJson(path.join(dir, 'config.json'), (j) => Object.assign(j, fields));
    assert.throws(() => T5ForConditionalGeneration.fromPretrained(dir), (e: Error) => {
      assert.match(e.message, message);
      assert.ok(e.message.startsWith(path.join(dir, 'config.json')), e.message);
      assert.doesNotMatch(e.message, /\n/);
      return true;
    });
  }
  for (const fields of [{ model_type: 'mt5' }, { dtype: 'bfloat16' }, { torch_dtype: 'float16' }, { architectures: ['T5ForConditionalGeneration'] }]) {
    const dir = copyFolder(fixtureDir('t5-tiny'));
    editJson(path.join(dir, 'config.json'), (j) => Object.assign(j, fields));
    T5ForConditionalGeneration.fromPretrained(dir).dispose();
  }
});

test('an encoder embedding that differs from shared.weight is refused, not silently replaced', () => {
  const dir = copyFolder(fixtureDir('t5-tiny'));
  const file = path.join(dir, 'model.safetensors');
  const { tensors } = readSafetensorsFile(file);
  const shared = tensors.get('shared.weight')!;
  tensors.set('encoder.embed_tokens.weight', { ...shared, data: shared.data.map((x) => x + 1) });
  saveSafetensors(file, tensors, { format: 'pt' });
  assert.throws(() => readModelConfig(dir), /tensor "encoder\.embed_tokens\.weight" differs from "shared\.weight"/);
});

test('a checkpoint folder as transformers 5.x saves it (5.x config, tokenizer.json and no spiece.model) classifies as the original', async () => {
  const { saveTinyClassifier } = await import('./helpers/tiny_classifier.js');
  const { Classifier } = await import('../src/eval/classifier.js');
  const original = await saveTinyClassifier(temp.make());
  const hf5 = path.join(temp.make(), 'tiny-hf5');
  fs.cpSync(original, hf5, { recursive: true });
  fs.rmSync(path.join(hf5, 'spiece.model'));
  fs.rmSync(path.join(hf5, 'special_tokens_map.json'));
  editJson(path.join(hf5, 'config.json'), (j) => {
    delete j.torch_dtype;
    delete j.decoder_start_token_id;
    j.tie_word_embeddings = true;
    j.transformers_version = '5.18.0';
  });
  editJson(path.join(hf5, 'tokenizer_config.json'), (j) => {
    j.extra_special_tokens = j.additional_special_tokens;
    delete j.additional_special_tokens;
    delete j.extra_ids;
    j.backend = 'tokenizers';
  });
  const texts = ['so angry I could scream', 'what a wonderful happy day', 'I miss her'];
  const probabilities = async (dir: string) => {
    const c = await Classifier.fromPretrained(dir);
    try {
      return c.predict(texts, { decode: 'rank' }).map((p) => Object.values(p.probabilities!));
    } finally {
      c.dispose();
    }
  };
  const a = (await probabilities(original)).flat();
  const b = (await probabilities(hf5)).flat();
  assert.equal(a.length, 12);
  assert.equal(maxAbsDiff(a, b), 0);
});

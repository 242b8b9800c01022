/**
 * A checkpoint t5cls trained and saved, loaded by HF transformers itself: the same logits, the head tied or not as
 * it was, scaled or not. Runs where a Python with torch and transformers is found (`T5CLS_PYTHON`, else `python3`)
 * and reports itself skipped, saying why, elsewhere: neither `npm test` nor CI needs Python.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tf } from '../src/tf.js';
import { T5Config, T5ForConditionalGeneration } from '../src/model/index.js';
import { Adafactor } from '../src/train/optimizers/index.js';
import { testBackends, useBackend } from './helpers/backends.js';
import { maxAbsDiff, REPO_ROOT, tempDirs } from './helpers/fixtures.js';

const PYTHON = process.env.T5CLS_PYTHON || 'python3';
const HF_LOGITS = path.join(REPO_ROOT, 'scripts/fixtures/hf_logits.py');

function probePython(): { version?: string; why?: string } {
  const r = spawnSync(PYTHON, ['-c', 'import torch, transformers; print(transformers.__version__)'], { encoding: 'utf-8', timeout: 120_000 });
  if (r.status === 0) return { version: r.stdout.trim() };
  const last = (r.stderr || String(r.error ?? '')).trim().split('\n').pop();
  return { why: `needs a Python with torch and transformers (T5CLS_PYTHON, else python3): ${PYTHON}: ${last}` };
}
const probe = probePython();
const skip = probe.why ?? false;

const temp = tempDirs('t5cls-interop-');
before(() => useBackend(testBackends()[0]!));
after(() => temp.removeAll());

const SHAPE = { vocab_size: 64, d_model: 24, d_kv: 8, d_ff: 40, num_layers: 2, num_decoder_layers: 3, num_heads: 3 };
const BATCH = {
  input_ids: [
    [5, 9, 3, 17, 40, 1],
    [7, 2, 33, 1, 0, 0],
  ],
  attention_mask: [
    [1, 1, 1, 1, 1, 1],
    [1, 1, 1, 1, 0, 0],
  ],
  decoder_input_ids: [
    [0, 4, 6, 12],
    [0, 8, 21, 1],
  ],
  labels: [
    [4, 6, 12, 1],
    [8, 21, 1, -100],
  ],
};

/** A T5 of `fields` trained three Adafactor steps on the batch (so no weight is at its initial value), saved as t5cls saves. */
function trainAndSave(fields: Record<string, unknown>): { dir: string; logits: Float32Array } {
  const model = new T5ForConditionalGeneration(new T5Config({ ...SHAPE, dropout_rate: 0, ...fields }), { seed: 11 });
  const params = [...model.namedParameters().values()];
  const opt = new Adafactor({ lr: 1e-2, scaleParameter: false, relativeStep: false, warmupInit: false });
  for (let s = 0; s < 3; s++) {
    const { value, grads } = tf.variableGrads(
      () => model.forward({ inputIds: BATCH.input_ids, attentionMask: BATCH.attention_mask, labels: BATCH.labels }).loss!,
      params,
    );
    opt.applyGradients(grads);
    tf.dispose([value, ...Object.values(grads)]);
  }
  opt.dispose();
  const dir = path.join(temp.make(), 'checkpoint');
  model.savePretrained(dir);
  const logits = tf.tidy(
    () => model.forward({ inputIds: BATCH.input_ids, attentionMask: BATCH.attention_mask, decoderInputIds: BATCH.decoder_input_ids }).logits.dataSync() as Float32Array,
  );
  model.dispose();
  return { dir, logits };
}

const CASES = [
  { name: 'T5 v1.0 (tied, scaled)', fields: {}, tie: true, scale: true },
  { name: 'flan-t5 / v1.1 (gated-gelu, untied, unscaled)', fields: { feed_forward_proj: 'gated-gelu', tie_word_embeddings: false }, tie: false, scale: false },
  // 4.x cannot say "tied but unscaled": t5cls writes it untied with an lm_head equal to the embedding (same logits).
  { name: 'tied but unscaled', fields: { scale_decoder_outputs: false }, tie: true, scale: false, tieIn4x: false },
];
const TRANSFORMERS_4 = probe.version?.startsWith('4.') ?? false;

for (const c of CASES) {
  test(`transformers ${probe.version ?? ''} loads a trained and saved ${c.name} checkpoint with t5cls's logits`, { skip }, () => {
    const { dir, logits } = trainAndSave(c.fields);
    const inputs = path.join(dir, '..', 'inputs.json');
    fs.writeFileSync(inputs, JSON.stringify(BATCH));
    // transformers 5.x warns that it unties every untied T5 ("will NOT tie"): expected here, not a load problem.
    const args = [HF_LOGITS, dir, inputs, ...(c.tie ? [] : ['--allow-untied'])];
    const r = spawnSync(PYTHON, args, { encoding: 'utf-8', timeout: 300_000, env: { ...process.env, HF_HUB_OFFLINE: '1' } });
    assert.equal(r.status, 0, r.stderr);
    const hf = JSON.parse(r.stdout) as { logits: number[][][]; tie: boolean; scale_decoder_outputs: boolean };
    assert.equal(hf.tie, TRANSFORMERS_4 ? (c.tieIn4x ?? c.tie) : c.tie, 'the head is tied in transformers as in t5cls');
    // transformers 4.x has no such flag (it scales where tie_word_embeddings is true): the logits tell.
    if (!TRANSFORMERS_4) assert.equal(hf.scale_decoder_outputs, c.scale);
    const diff = maxAbsDiff(hf.logits.flat(2), logits);
    assert.ok(diff <= 1e-4, `logits differ by ${diff}`);
  });
}

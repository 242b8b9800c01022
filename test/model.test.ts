import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tf } from '../src/tf.js';
import { T5ForConditionalGeneration, T5Config, tokenNll } from '../src/model/index.js';
import { RECOMPUTE_MAX_NEW_TOKENS } from '../src/model/modeling_t5.js';
import { readSafetensorsFile } from '../src/safetensors.js';
import { nativeGraphs } from '../src/engine/flags.js';
import { nativeGraphAvailable, nativeGraphRuns } from '../src/engine/ort/graph_kernel.js';
import { testBackends, useBackend } from './helpers/backends.js';
import { fixtureDir, flatten, maxAbs, maxAbsDiff, MODEL_FIXTURES, readJson } from './helpers/fixtures.js';


/**
 * For a "native graphs" variant: skipped, saying why, where no graph can run (so that it never silently repeats the
 * plain test). The check it returns asserts that a graph ran, or with graphs off that none did.
 */
function expectGraphs(t: TestContext, graphs: boolean): () => void {
  const before = nativeGraphRuns.count;
  const available = graphs && nativeGraphAvailable();
  if (graphs && !available) t.skip('no native graphs on this backend (onnxruntime-node not loaded)');
  return () => {
    if (available) assert.ok(nativeGraphRuns.count > before, 'a native graph ran');
    if (!graphs) assert.equal(nativeGraphRuns.count, before, 'no native graph ran with graphs off');
  };
}

for (const backend of testBackends()) {
  for (const name of MODEL_FIXTURES) {
    const dir = fixtureDir(name);
    const fx = readJson(path.join(dir, 'fixture.json'));
    const inputs = fx.inputs;

    for (const graphs of [true, false]) {
      test(`[${backend}${graphs ? '' : ', no native graphs'}] ${name}: logits, loss and token NLL match HF`, async (t) => {
        await useBackend(backend);
        nativeGraphs.enabled = graphs;
        const checkGraphs = expectGraphs(t, graphs);
        const model = T5ForConditionalGeneration.fromPretrained(dir);
        try {
          tf.tidy(() => {
            const out = model.forward({ inputIds: inputs.input_ids, attentionMask: inputs.attention_mask, labels: inputs.labels });
            assert.deepEqual(out.logits.shape, fx.logits.shape);
            const diff = maxAbsDiff(out.logits.dataSync(), flatten(fx.logits.data));
            assert.ok(diff < 1e-4, `logits differ by ${diff}`);
            assert.ok(Math.abs(out.loss!.dataSync()[0] - fx.loss) < 1e-4, `loss ${out.loss!.dataSync()[0]} vs ${fx.loss}`);
            const nll = tokenNll(out.logits, tf.tensor2d(inputs.labels, undefined, 'int32'));
            const nd = maxAbsDiff(nll.dataSync(), flatten(fx.token_nll));
            assert.ok(nd < 1e-4, `token nll differs by ${nd}`);
            const explicit = model.forward({ inputIds: inputs.input_ids, attentionMask: inputs.attention_mask, decoderInputIds: inputs.decoder_input_ids });
            assert.equal(maxAbsDiff(explicit.logits.dataSync(), out.logits.dataSync()), 0);
          });
          checkGraphs();
        } finally {
          nativeGraphs.enabled = true;
          model.dispose();
        }
      });
    }

    test(`[${backend}] ${name}: gradient of every parameter matches HF`, async () => {
      await useBackend(backend);
      const model = T5ForConditionalGeneration.fromPretrained(dir);
      const ref = readSafetensorsFile(path.join(dir, 'grads.safetensors')).tensors;
      const params = model.namedParameters();
      assert.deepEqual([...params.keys()], fx.named_parameters);
      const byVar = new Map([...params].map(([n, v]) => [v.name, n]));
      const { value, grads } = tf.variableGrads(
        () => model.forward({ inputIds: inputs.input_ids, attentionMask: inputs.attention_mask, labels: inputs.labels }).loss!,
        [...params.values()],
      );
      assert.ok(Math.abs(value.dataSync()[0] - fx.loss) < 1e-4);
      assert.equal(Object.keys(grads).length, params.size);
      for (const [varName, g] of Object.entries(grads)) {
        const pname = byVar.get(varName)!;
        const r = ref.get(pname);
        assert.ok(r, `no reference gradient for ${pname}`);
        assert.deepEqual(g.shape, r!.shape);
        const scale = Math.max(maxAbs(r!.data), 1e-12);
        const d = maxAbsDiff(g.dataSync(), r!.data);
        assert.ok(d <= 1e-4 * scale, `${pname}: gradient differs by ${d} (max magnitude ${scale})`);
      }
      tf.dispose([value, ...Object.values(grads)]);
      model.dispose();
    });

    for (const graphs of [true, false]) {
      test(`[${backend}${graphs ? '' : ', no native graphs'}] ${name}: greedy generation matches HF, with and without suppressed tokens`, async (t) => {
        await useBackend(backend);
        nativeGraphs.enabled = graphs;
        const checkGraphs = expectGraphs(t, graphs);
        const model = T5ForConditionalGeneration.fromPretrained(dir);
        try {
          const before = tf.memory().numTensors;
          const seqs = model.generate({ inputIds: inputs.input_ids, attentionMask: inputs.attention_mask, maxNewTokens: fx.generation.kwargs.max_new_tokens });
          assert.deepEqual(seqs, fx.generation.sequences);
          const g2 = fx.generation_suppress_token_0;
          const seqs2 = model.generate({ inputIds: inputs.input_ids, attentionMask: inputs.attention_mask, maxNewTokens: g2.kwargs.max_new_tokens, suppressTokens: g2.kwargs.suppress_tokens });
          assert.deepEqual(seqs2, g2.sequences);
          assert.equal(tf.memory().numTensors, before, 'generate leaks tensors');
          checkGraphs();
        } finally {
          nativeGraphs.enabled = true;
          model.dispose();
        }
      });
    }

    for (const graphs of [true, false]) {
      // With native graphs, a few new tokens are decoded by recomputing the prefix; without, through the cache.
      test(`[${backend}${graphs ? '' : ', no native graphs'}] ${name}: generation equals step-by-step decoding of the whole prefix`, async (t) => {
        nativeGraphs.enabled = graphs;
        try {
          await useBackend(backend);
          const checkGraphs = expectGraphs(t, graphs);
          const model = T5ForConditionalGeneration.fromPretrained(dir);
          // Up to RECOMPUTE_MAX_NEW_TOKENS new tokens and beyond (always the cache there).
          for (const steps of [6, RECOMPUTE_MAX_NEW_TOKENS + 2]) {
            const generated = model.generate({ inputIds: inputs.input_ids, attentionMask: inputs.attention_mask, maxNewTokens: steps, suppressTokens: [0, 1] });
            const seqs: number[][] = inputs.input_ids.map(() => [0]);
            for (let s = 0; s < steps; s++) {
              const next = tf.tidy(() => {
                const logits = model.forward({ inputIds: inputs.input_ids, attentionMask: inputs.attention_mask, decoderInputIds: seqs }).logits;
                const last = tf.squeeze(tf.slice(logits, [0, s, 0], [-1, 1, -1]), [1]);
                const masked = tf.add(last, tf.tensor1d([-Infinity, -Infinity, ...new Array(model.config.vocab_size - 2).fill(0)]));
                return Array.from(tf.argMax(masked, -1).dataSync());
              });
              next.forEach((t, i) => seqs[i].push(t));
            }
            assert.deepEqual(generated, seqs, `${steps} new tokens`);
          }
          checkGraphs();
          model.dispose();
        } finally {
          nativeGraphs.enabled = true;
        }
      });
    }

    test(`[${backend}] ${name}: loads the all-keys layout and saves exactly HF's keys`, async () => {
      await useBackend(backend);
      const model = T5ForConditionalGeneration.fromPretrained(dir);
      const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 't5cls-model-'));
      try {
        const alt = path.join(tmp, 'alt');
        fs.mkdirSync(alt);
        fs.copyFileSync(path.join(dir, 'config.json'), path.join(alt, 'config.json'));
        fs.copyFileSync(path.join(dir, 'state_dict_all_keys.safetensors'), path.join(alt, 'model.safetensors'));
        const warnings: string[] = [];
        const model2 = T5ForConditionalGeneration.fromPretrained(alt, { onWarning: (m) => warnings.push(m) });
        assert.deepEqual(warnings, []);
        const out = path.join(tmp, 'saved');
        model.savePretrained(out);
        const saved = readSafetensorsFile(path.join(out, 'model.safetensors'));
        assert.deepEqual([...saved.tensors.keys()].sort(), [...fx.model_safetensors_keys].sort());
        assert.deepEqual(saved.metadata, fx.model_safetensors_metadata);
        const model3 = T5ForConditionalGeneration.fromPretrained(out);
        const cfg = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf-8'));
        assert.equal(cfg.tie_word_embeddings, fx.config.tie_word_embeddings);
        assert.equal(cfg.feed_forward_proj, fx.config.feed_forward_proj);
        tf.tidy(() => {
          const args = { inputIds: inputs.input_ids, attentionMask: inputs.attention_mask, decoderInputIds: inputs.decoder_input_ids };
          const a = model.forward(args).logits.dataSync();
          assert.equal(maxAbsDiff(model2.forward(args).logits.dataSync(), a), 0);
          assert.equal(maxAbsDiff(model3.forward(args).logits.dataSync(), a), 0);
        });
        model2.dispose();
        model3.dispose();
      } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
        model.dispose();
      }
    });
  }
}

test('config defaults follow HF for absent fields', () => {
  const c = new T5Config({ vocab_size: 100, d_model: 16, d_kv: 4, d_ff: 32, num_layers: 3, num_heads: 2 });
  assert.equal(c.tie_word_embeddings, true);
  assert.equal(c.feed_forward_proj, 'relu');
  assert.equal(c.num_decoder_layers, 3);
  assert.equal(c.dropout_rate, 0.1);
  assert.equal(c.layer_norm_epsilon, 1e-6);
  assert.equal(c.decoder_start_token_id, 0);
  assert.equal(c.pad_token_id, 0);
  assert.equal(c.eos_token_id, 1);
  assert.equal(c.relative_attention_num_buckets, 32);
  assert.equal(c.relative_attention_max_distance, 128);
  const g = new T5Config({ feed_forward_proj: 'gated-gelu' });
  assert.equal(g.isGatedAct, true);
  assert.equal(g.denseActFn, 'gelu_new');
  assert.throws(() => new T5Config({ feed_forward_proj: 'gated-foo' }), /feed_forward_proj "gated-foo"/);
});

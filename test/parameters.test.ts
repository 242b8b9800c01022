/**
 * T5's parameter table: the places the model reads its weights from (stacks, blocks, modules) name exactly the
 * checkpoint's parameters, each in the place HF's modeling_t5.py gives it, for the fixture models PyTorch saved.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';

import { T5Config } from '../src/model/config.js';
import { attentionWeights, feedForwardWeights, t5Parameters, type T5Parameters } from '../src/model/parameters.js';
import { readSafetensorsFile } from '../src/safetensors.js';
import { fixtureDir, MODEL_FIXTURES } from './helpers/fixtures.js';
import { readModelConfig } from '../src/model/pretrained_config.js';

/** Every weight name the structured part of the table points at, the relative biases included. */
function placedNames(t: T5Parameters): string[] {
  const names = [t.shared, t.encoder.relativeBias, t.encoder.finalNorm, t.decoder.relativeBias, t.decoder.finalNorm];
  for (const b of t.encoder.blocks) {
    names.push(b.selfAttentionNorm, ...attentionWeights(b.selfAttention), b.feedForwardNorm, ...feedForwardWeights(b.feedForward));
  }
  for (const b of t.decoder.blocks) {
    names.push(b.selfAttentionNorm, ...attentionWeights(b.selfAttention), b.crossAttentionNorm, ...attentionWeights(b.crossAttention));
    names.push(b.feedForwardNorm, ...feedForwardWeights(b.feedForward));
  }
  if (t.lmHead !== t.shared) names.push(t.lmHead);
  return names;
}

describe('parameter table', () => {
  for (const name of MODEL_FIXTURES) {
    test(`${name}: every checkpoint tensor has one place in the model, with the checkpoint's shape`, () => {
      const dir = fixtureDir(name);
      const config = readModelConfig(dir);
      const table = t5Parameters(config);
      const placed = placedNames(table);
      assert.equal(new Set(placed).size, placed.length, 'a weight is placed twice');
      assert.deepEqual([...placed].sort(), table.all.map((p) => p.name).sort());
      const stored = readSafetensorsFile(path.join(dir, 'model.safetensors')).tensors;
      for (const p of table.all) assert.deepEqual(stored.get(p.name)?.shape, p.shape, p.name);
      assert.equal(stored.size, table.all.length);
    });
  }

  test('modules sit where HF puts them: block, layer index and module kind', () => {
    const c = new T5Config({ d_model: 8, d_kv: 4, d_ff: 16, num_layers: 2, num_decoder_layers: 3, num_heads: 2, vocab_size: 10 }, 'x');
    const t = t5Parameters(c);
    assert.equal(t.encoder.blocks.length, 2);
    assert.equal(t.decoder.blocks.length, 3);
    const d2 = t.decoder.blocks[2]!;
    assert.equal(d2.selfAttention.q, 'decoder.block.2.layer.0.SelfAttention.q.weight');
    assert.equal(d2.crossAttentionNorm, 'decoder.block.2.layer.1.layer_norm.weight');
    assert.equal(d2.crossAttention.o, 'decoder.block.2.layer.1.EncDecAttention.o.weight');
    assert.deepEqual(d2.feedForward.wi, ['decoder.block.2.layer.2.DenseReluDense.wi.weight']);
    assert.equal(t.encoder.blocks[1]!.feedForwardNorm, 'encoder.block.1.layer.1.layer_norm.weight');
    assert.equal(t.lmHead, 'shared.weight');
    const gated = t5Parameters(new T5Config({ ...c.toJSON(), feed_forward_proj: 'gated-gelu', tie_word_embeddings: false }, 'y'));
    assert.deepEqual(gated.encoder.blocks[0]!.feedForward.wi, [
      'encoder.block.0.layer.1.DenseReluDense.wi_0.weight',
      'encoder.block.0.layer.1.DenseReluDense.wi_1.weight',
    ]);
    assert.equal(gated.lmHead, 'lm_head.weight');
    assert.equal(gated.all.at(-1)?.name, 'lm_head.weight');
  });
});

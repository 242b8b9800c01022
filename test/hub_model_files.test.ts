/**
 * Model repositories as transformers 5.x publishes them, from a Hub served on 127.0.0.1: a tokenizer saved as
 * tokenizer.json alone, and a checkpoint sharded into `model-0000N-of-0000M.safetensors` with its index.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../src/tf.js';
import { downloadModel, TOKENIZER_FILES, type DownloadModelOptions } from '../src/hub/index.js';
import { T5ForConditionalGeneration } from '../src/model/index.js';
import { encodeSafetensors, readSafetensorsFile } from '../src/safetensors.js';
import { T5Tokenizer } from '../src/tokenizer/index.js';
import { testBackends, useBackend } from './helpers/backends.js';
import { startFakeHub, type FakeHub } from './helpers/fake_hub.js';
import { fixtureDir, maxAbsDiff, readJson, tempDirs, TOKENIZER_DIR } from './helpers/fixtures.js';

const temp = tempDirs('t5cls-hubfiles-');
const TINY = fixtureDir('t5-tiny-v11-hf5');
let hub: FakeHub;

/** t5-tiny-v11-hf5's tensors in two shards and the index naming them, as save_pretrained writes a large model. */
function shardedFiles(): { path: string; content: Uint8Array | string }[] {
  const { tensors } = readSafetensorsFile(path.join(TINY, 'model.safetensors'));
  const names = [...tensors.keys()];
  const half = Math.ceil(names.length / 2);
  const shards = [names.slice(0, half), names.slice(half)];
  const weightMap: Record<string, string> = {};
  const files = shards.map((keys, i) => {
    const file = `model-0000${i + 1}-of-00002.safetensors`;
    for (const k of keys) weightMap[k] = file;
    return { path: file, content: encodeSafetensors(new Map(keys.map((k) => [k, tensors.get(k)!])), { format: 'pt' }) };
  });
  return [
    { path: 'config.json', content: fs.readFileSync(path.join(TINY, 'config.json')) },
    { path: 'generation_config.json', content: fs.readFileSync(path.join(TINY, 'generation_config.json')) },
    { path: 'model.safetensors.index.json', content: JSON.stringify({ metadata: {}, weight_map: weightMap }) },
    ...files,
  ];
}

before(async () => {
  await useBackend(testBackends()[0]!);
  const sharded = shardedFiles();
  hub = await startFakeHub({
    models: [
      {
        id: 'acme/t5-tokenizer-5x',
        files: ['config.json', 'tokenizer.json'].map((f) => ({ path: f, content: fs.readFileSync(path.join(TOKENIZER_DIR, f)) })),
      },
      { id: 'acme/tiny-sharded', files: sharded },
      { id: 'acme/tiny-broken-index', files: sharded.filter((f) => f.path !== 'model-00002-of-00002.safetensors') },
    ],
  });
});

after(async () => {
  await hub.close();
  temp.removeAll();
});

function opts(cacheDir: string, extra: Partial<DownloadModelOptions> = {}): DownloadModelOptions {
  return { endpoint: hub.url, cacheDir, token: '', retry: { attempts: 2, baseDelayMs: 5, maxDelayMs: 20 }, timeoutMs: 3000, ...extra };
}

test('a tokenizer-only download takes tokenizer.json where the repository has no spiece.model, and tokenizes as SentencePiece', async () => {
  const dir = await downloadModel('acme/t5-tokenizer-5x', opts(temp.make(), { files: [], optionalFiles: TOKENIZER_FILES }));
  assert.deepEqual(fs.readdirSync(dir).sort(), ['tokenizer.json']);
  const fromJson = await T5Tokenizer.fromPretrained(dir);
  const reference = await T5Tokenizer.fromPretrained(TOKENIZER_DIR);
  const text = 'Héllo  wörld, <extra_id_3> what a   day 🎉';
  assert.deepEqual(fromJson.encode(text), reference.encode(text));
  assert.equal(fromJson.vocabSize, reference.vocabSize);
});

test('a sharded checkpoint comes down as its index and every shard, and loads as the single-file one', async () => {
  const cache = temp.make();
  const dir = await downloadModel('acme/tiny-sharded', opts(cache));
  assert.deepEqual(fs.readdirSync(dir).sort(), [
    'config.json',
    'generation_config.json',
    'model-00001-of-00002.safetensors',
    'model-00002-of-00002.safetensors',
    'model.safetensors.index.json',
  ]);
  const fx = readJson(path.join(TINY, 'fixture.json'));
  const model = T5ForConditionalGeneration.fromPretrained(dir);
  const diff = tf.tidy(() => {
    const out = model.forward({ inputIds: fx.inputs.input_ids, attentionMask: fx.inputs.attention_mask, labels: fx.inputs.labels });
    return maxAbsDiff(out.logits.dataSync(), fx.logits.data.flat(2));
  });
  model.dispose();
  assert.ok(diff < 1e-4, `logits differ by ${diff}`);
  // Offline, the cached index and shards stand for model.safetensors.
  assert.equal(await downloadModel('acme/tiny-sharded', opts(cache, { offline: true })), dir);
});

test('an index that names a shard the repository lacks is refused, naming the shard', async () => {
  await assert.rejects(downloadModel('acme/tiny-broken-index', opts(temp.make())), /has no model-00002-of-00002\.safetensors, which its model\.safetensors\.index\.json names/);
});

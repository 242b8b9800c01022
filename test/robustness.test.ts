/**
 * Bad model folders get one clear line each, and a fuzz run (a fixed number of seeded cases, so that the outcome
 * does not depend on the machine's speed) over safetensors files, configs and
 * data files: every outcome is a clean error or a correct load, never a hang, a crash or unbounded memory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tf } from '../src/tf.js';
import { T5ForConditionalGeneration } from '../src/model/index.js';
import { T5Tokenizer } from '../src/tokenizer/index.js';
import { readSafetensorsBytes, readSafetensorsFile, encodeSafetensors } from '../src/safetensors.js';
import { readSplit } from '../src/data/index.js';
import { T5clsError } from '../src/errors.js';
import { Rng } from '../src/random.js';
import { fixtureDir } from './helpers/fixtures.js';

await tf.setBackend('cpu');
const TINY = fixtureDir('t5-tiny');

function tempModel(mutate: (dir: string) => void): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 't5cls-bad-'));
  fs.copyFileSync(path.join(TINY, 'config.json'), path.join(dir, 'config.json'));
  fs.copyFileSync(path.join(TINY, 'model.safetensors'), path.join(dir, 'model.safetensors'));
  mutate(dir);
  return dir;
}

function expectLoadError(dir: string, pattern: RegExp): void {
  try {
    assert.throws(() => T5ForConditionalGeneration.fromPretrained(dir), (e: Error) => {
      assert.ok(e instanceof T5clsError, String(e));
      assert.equal((e as T5clsError).exitCode, 2);
      assert.match(e.message, pattern);
      assert.ok(!e.message.includes('\n'));
      return true;
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('bad model folders name the file, tensor and what was expected', async () => {
  expectLoadError(tempModel((d) => fs.rmSync(path.join(d, 'config.json'))), /config\.json is missing/);
  expectLoadError(tempModel((d) => fs.rmSync(path.join(d, 'model.safetensors'))), /no model weights found; expected model\.safetensors/);
  expectLoadError(
    tempModel((d) => {
      fs.rmSync(path.join(d, 'model.safetensors'));
      fs.writeFileSync(path.join(d, 'pytorch_model.bin'), 'x');
    }),
    /reads safetensors only/,
  );
  const setConfig = (patch: Record<string, unknown>) => (d: string) => {
    const c = JSON.parse(fs.readFileSync(path.join(d, 'config.json'), 'utf-8'));
    fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify({ ...c, ...patch }));
  };
  expectLoadError(tempModel(setConfig({ feed_forward_proj: 'gated-swishy' })), /feed_forward_proj "gated-swishy" is not a valid activation/);
  expectLoadError(tempModel(setConfig({ d_ff: 48 })), /tensor "encoder\.block\.0\.layer\.1\.DenseReluDense\.wi\.weight" has shape \[64, 32\] but the config expects \[48, 32\]/);
  expectLoadError(tempModel(setConfig({ num_layers: 3 })), /missing tensors: encoder\.block\.2\.layer\.0\.SelfAttention\.q\.weight, /);
  expectLoadError(tempModel(setConfig({ vocab_size: 1e12 })), /"vocab_size" must be an integer from 1 to/);
  expectLoadError(tempModel((d) => fs.writeFileSync(path.join(d, 'config.json'), '{"d_model": 32,')), /config\.json: not valid JSON/);

  const extra = tempModel((d) => {
    const { tensors } = readSafetensorsFile(path.join(d, 'model.safetensors'));
    tensors.set('classifier.weight', { dtype: 'F32', shape: [2], data: new Float32Array(2) });
    fs.writeFileSync(path.join(d, 'model.safetensors'), encodeSafetensors(tensors));
  });
  const warnings: string[] = [];
  T5ForConditionalGeneration.fromPretrained(extra, { onWarning: (w) => warnings.push(w) }).dispose();
  assert.deepEqual(warnings, [`${extra}: ignoring unexpected tensor "classifier.weight"`]);
  fs.rmSync(extra, { recursive: true, force: true });

  await assert.rejects(T5Tokenizer.fromPretrained(TINY), /spiece\.model/);
});

/** Deterministic mutations: flip, set or delete bytes, truncate, or splice random bytes in. */
function mutate(bytes: Uint8Array, rng: Rng, focus: number): Uint8Array {
  const out = Array.from(bytes);
  const edits = 1 + rng.int(4);
  for (let e = 0; e < edits; e++) {
    const at = rng.next() < 0.8 ? rng.int(Math.min(focus, out.length)) : rng.int(out.length);
    switch (rng.int(5)) {
      case 0:
        out[at] ^= 1 << rng.int(8);
        break;
      case 1:
        out[at] = rng.int(256);
        break;
      case 2:
        out.splice(at, 1 + rng.int(8));
        break;
      case 3:
        out.length = Math.max(0, at);
        break;
      default:
        out.splice(at, 0, ...Array.from({ length: 1 + rng.int(8) }, () => rng.int(256)));
    }
    if (!out.length) break;
  }
  return Uint8Array.from(out);
}

function fuzz(label: string, iterations: number, run: (i: number) => void): { ok: number; errors: number } {
  const rss0 = process.memoryUsage().rss;
  let ok = 0;
  let errors = 0;
  for (let i = 0; i < iterations; i++) {
    try {
      run(i);
      ok++;
    } catch (e) {
      if (!(e instanceof T5clsError)) throw new Error(`${label} #${i}: not a clean error: ${(e as Error)?.stack ?? e}`);
      assert.ok(!e.message.includes('\n'), `${label} #${i}: multi-line error ${e.message}`);
      errors++;
    }
  }
  const grown = (process.memoryUsage().rss - rss0) / 2 ** 20;
  assert.ok(grown < 512, `${label}: memory grew by ${grown.toFixed(0)} MB`);
  return { ok, errors };
}

test('fuzz: mutated safetensors files load correctly or fail cleanly', { timeout: 600_000 }, () => {
  const good = fs.readFileSync(path.join(TINY, 'model.safetensors'));
  const headerEnd = 8 + Number(good.readBigUInt64LE(0));
  const rng = new Rng(2024);
  const r = fuzz('safetensors', 600, () => {
    const { tensors } = readSafetensorsBytes(mutate(good, rng, headerEnd), 'fuzz.safetensors');
    for (const t of tensors.values()) assert.equal(t.data.length, t.shape.reduce((a, b) => a * b, 1));
  });
  assert.ok(r.errors > 60 && r.ok > 0, JSON.stringify(r));
});

test('fuzz: mutated configs load a model or fail cleanly', { timeout: 600_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 't5cls-fuzz-'));
  try {
    fs.copyFileSync(path.join(TINY, 'model.safetensors'), path.join(dir, 'model.safetensors'));
    const config = fs.readFileSync(path.join(TINY, 'config.json'));
    const rng = new Rng(7);
    const r = fuzz('config', 400, () => {
      fs.writeFileSync(path.join(dir, 'config.json'), mutate(config, rng, config.length));
      T5ForConditionalGeneration.fromPretrained(dir).dispose();
    });
    assert.ok(r.errors > 40, JSON.stringify(r));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('fuzz: mutated data files are read correctly or fail cleanly', { timeout: 600_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 't5cls-fuzz-'));
  try {
    const records = [
      { text: 'I am so happy today', label: 1 },
      { text: 'this makes me furious', label: 0 },
      { text: 'tomorrow will be better', label: 2 },
      { text: 'I miss you', label: 3 },
    ];
    const good = Buffer.from(JSON.stringify(records, null, 1));
    const file = path.join(dir, 'train.json');
    const map = { anger: 0, joy: 1, optimism: 2, sadness: 3 };
    const rng = new Rng(11);
    const r = fuzz('data', 1000, () => {
      fs.writeFileSync(file, mutate(good, rng, good.length));
      for (const ex of readSplit(file, map)) {
        assert.equal(typeof ex.text, 'string');
        assert.ok(ex.text.trim().length > 0);
        assert.ok(Number.isInteger(ex.label) && ex.label >= 0 && ex.label < 4);
      }
    });
    assert.ok(r.errors > 100, JSON.stringify(r));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('data files: not UTF-8, a split with zero examples, duplicate class ids', async () => {
  const { readClassesMap, loadDataset } = await import('../src/data/index.js');
  const { loadSplits } = await import('../src/cli/shared.js');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 't5cls-data-'));
  try {
    const map = { anger: 0, joy: 1 };
    // "café" in Latin-1 on line 2: 0xE9 is not valid UTF-8.
    const latin1 = Buffer.concat([Buffer.from('[\n{"text": "caf'), Buffer.from([0xe9]), Buffer.from('", "label": 0}\n]\n')]);
    fs.writeFileSync(path.join(dir, 'train.json'), latin1);
    assert.throws(() => readSplit(path.join(dir, 'train.json'), map), /train\.json line 2: not UTF-8 text \(invalid byte 0xe9 at offset 15\)/);
    fs.writeFileSync(path.join(dir, 'reviews.csv'), Buffer.concat([Buffer.from('text,label\nok,joy\nna'), Buffer.from([0xef, 0xbb]), Buffer.from('ve,anger\n')]));
    await assert.rejects(loadDataset({ from: path.join(dir, 'reviews.csv'), out: path.join(dir, 'out'), classesMap: path.join(dir, 'c.json') }), /reviews\.csv line 3: not UTF-8 text/);

    fs.writeFileSync(path.join(dir, 'train.json'), '[]');
    fs.writeFileSync(path.join(dir, 'classes.json'), JSON.stringify(map));
    assert.throws(() => loadSplits(dir, path.join(dir, 'classes.json'), ['train']), /train\.json: the train split has no examples/);

    fs.writeFileSync(path.join(dir, 'dup.json'), '{"anger": 0, "joy": 0}');
    assert.throws(() => readClassesMap(path.join(dir, 'dup.json')), (e: Error) => e instanceof T5clsError && /dup\.json/.test(e.message));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

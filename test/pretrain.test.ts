/**
 * `t5cls pretrain` through the real CLI (bin/t5cls.js over dist/: run `npm run build` first): a tiny random T5
 * learns to denoise tweets, writes an HF-layout checkpoint, and `train --model` fine-tunes that checkpoint.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensorsFile } from '../src/safetensors.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SHARED = path.resolve(ROOT, '../shared');
const CLI = path.join(ROOT, 'bin/t5cls.js');
const TOKENIZER = path.join(SHARED, 'models/t5-small-tokenizer');
const TWEETEVAL = path.join(SHARED, 'data/tweeteval');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 't5cls-pretrain-'));

const cli = (args: string[]) => {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: work, encoding: 'utf-8', stdio: ['ignore', 'pipe', 'pipe'] });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
};

test('pretrain from scratch on two sources: the held-out loss falls, the checkpoint is HF layout and train --model fine-tunes it', { timeout: 240_000 }, () => {
  const extra = path.join(work, 'extra.jsonl');
  fs.writeFileSync(extra, fs.readFileSync(path.join(TWEETEVAL, 'hate/val_text.txt'), 'utf-8').split('\n').filter((l) => l.trim()).map((t) => JSON.stringify({ body: t })).join('\n'));
  const r = cli([
    'pretrain', '--from', path.join(TWEETEVAL, 'irony'), '--from', extra, '--text-column', 'body', '--init', 'random', '--model-config', 'tiny',
    '--tokenizer', TOKENIZER, '--max-source-length', '32', '--batch-size', '16', '--steps', '40', '--eval-every-steps', '20', '--learning-rate', '3e-3', '--seed', '5',
  ]);
  assert.equal(r.code, 0, r.out);
  // Packed 34-token sequences become 32-token inputs and 8-token targets (HF's lengths for 0.15 and 3).
  assert.match(r.out, /sequences of 34 tokens → inputs of 32, targets of 8/);
  const held = [...r.out.matchAll(/step (\d+): held-out loss ([\d.]+), span-token accuracy ([\d.]+)/g)].map((m) => ({ step: Number(m[1]), loss: Number(m[2]), acc: Number(m[3]) }));
  assert.deepEqual(held.map((h) => h.step), [20, 40]);
  assert.ok(held[1]!.loss < held[0]!.loss - 0.05, `held-out loss ${held.map((h) => h.loss)}`);
  const ckpt = /saved checkpoint (\S+) \(step 40\)/.exec(r.out)![1]!;
  for (const f of ['config.json', 'model.safetensors', 'spiece.model', 't5cls.json']) assert.ok(fs.existsSync(path.join(ckpt, f)), f);
  const weights = readSafetensorsFile(path.join(ckpt, 'model.safetensors')).tensors;
  assert.deepEqual(weights.get('encoder.block.0.layer.0.SelfAttention.q.weight')!.shape, [64, 64]);
  const meta = JSON.parse(fs.readFileSync(path.join(ckpt, 't5cls.json'), 'utf-8'));
  assert.equal(meta.step, 40);
  assert.ok(Math.abs(meta.metrics.heldout_loss - held[1]!.loss) < 1e-4);

  // Fine-tuning starts from the pretrained weights.
  const data = path.join(work, 'data');
  fs.mkdirSync(data);
  const rows = [{ text: 'I love it', label: 0 }, { text: 'so sad today', label: 1 }];
  for (const split of ['train', 'validation']) fs.writeFileSync(path.join(data, `${split}.json`), JSON.stringify(rows));
  fs.writeFileSync(path.join(work, 'classes_map.json'), JSON.stringify({ joy: 0, sadness: 1 }));
  const ft = cli(['train', '--model', ckpt, '--data-dir', data, '--epochs', '1', '--batch-size', '2', '--max-source-length', '16']);
  assert.equal(ft.code, 0, ft.out);
  assert.match(ft.out, /best dev macro-F1/);
});

test('pretrain refuses missing sources and too little text in one line', { timeout: 60_000 }, () => {
  const none = cli(['pretrain', '--init', 'random', '--model-config', 'tiny', '--tokenizer', TOKENIZER]);
  assert.equal(none.code, 2);
  assert.match(none.out, /--from: give the text to pretrain on/);
  const small = path.join(work, 'small.txt');
  fs.writeFileSync(small, 'one short text\nand another\n');
  const few = cli(['pretrain', '--from', small, '--init', 'random', '--model-config', 'tiny', '--tokenizer', TOKENIZER, '--max-source-length', '64']);
  assert.equal(few.code, 2, few.out);
  assert.match(few.out, /too little text: \d+ tokens in 2 texts make 0 training and 0 held-out sequences of 70 tokens \(--max-source-length 64\)/);
});

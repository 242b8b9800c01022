/**
 * The product as a user runs it: the real CLI (bin/t5cls.js over the built dist/) in a temp folder, data from a
 * local replica of the Hugging Face Hub (serving the committed TweetEval emotion slice: 200 train, 50 validation,
 * 100 test tweets), a tiny random-init T5 with the real T5 tokenizer.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import protobuf from 'protobufjs';
import { startFakeHub, tweetEvalRepo, type FakeHub } from './helpers/fake_hub.js';
import { REPO_ROOT, TOKENIZER_DIR, TWEETEVAL_SLICE } from './helpers/fixtures.js';
import { readSafetensorsFile } from '../src/safetensors.js';
import { tf } from '../src/tf.js';
import { T5Config, NAMED_CONFIGS, T5ForConditionalGeneration } from '../src/model/index.js';
import { T5Tokenizer } from '../src/tokenizer/index.js';
import { classificationMetrics } from '../src/eval/metrics.js';

const CLI = path.join(REPO_ROOT, 'bin/t5cls.js');
let hub: FakeHub;
let work: string;

function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: work,
      env: { ...process.env, HF_ENDPOINT: hub.url, HF_HOME: path.join(work, 'hf'), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** Minimal reader of TensorBoard event files, independent of the writer: TFRecord framing + protobufjs. */
function readEvents(file: string): { step: number; tag?: string; value?: number }[] {
  const root = protobuf.parse(`
    syntax = "proto3";
    message Value { string tag = 1; float simple_value = 2; }
    message Summary { repeated Value value = 1; }
    message Event { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
  `).root;
  const Event = root.lookupType('Event');
  const buf = fs.readFileSync(file);
  const out: { step: number; tag?: string; value?: number }[] = [];
  let at = 0;
  while (at < buf.length) {
    const len = Number(buf.readBigUInt64LE(at));
    const data = buf.subarray(at + 12, at + 12 + len);
    at += 12 + len + 4;
    // defaults: a value of 0 is written (simple_value sits in a oneof) but proto3 decoding leaves it out of the object.
    const ev = Event.toObject(Event.decode(data), { longs: Number, defaults: true }) as { step?: number; summary?: { value: { tag: string; simpleValue: number }[] } };
    for (const v of ev.summary?.value ?? []) out.push({ step: ev.step ?? 0, tag: v.tag, value: v.simpleValue });
  }
  return out;
}

/** A small random T5 in HF layout with the real T5 tokenizer, as files the fake Hub serves. */
async function smallModelRepo(dir: string) {
  await tf.setBackend('cpu');
  const model = new T5ForConditionalGeneration(new T5Config({ ...NAMED_CONFIGS.tiny, vocab_size: 32128 }), { seed: 3 });
  model.savePretrained(dir);
  model.dispose();
  (await T5Tokenizer.fromPretrained(TOKENIZER_DIR)).savePretrained(dir);
  return {
    id: 'google-t5/t5-small',
    aliases: ['t5-small'],
    files: fs.readdirSync(dir).map((f) => ({ path: f, content: fs.readFileSync(path.join(dir, f)) })),
  };
}

before(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 't5cls-e2e-'));
  const modelDir = path.join(work, 'served-model');
  hub = await startFakeHub({ datasets: [tweetEvalRepo(TWEETEVAL_SLICE, ['emotion'])], models: [await smallModelRepo(modelDir)] });
});

after(async () => {
  await hub.close();
  fs.rmSync(work, { recursive: true, force: true });
});

test('load-dataset, train, test end to end through the CLI', { timeout: 900_000 }, async () => {
  const load = await cli(['load-dataset']);
  assert.equal(load.code, 0, load.stderr);
  const dataDir = path.join(work, 'datasets/tweet_eval-emotion_processed');
  const classes = JSON.parse(fs.readFileSync(path.join(work, 'classes_map.json'), 'utf-8'));
  assert.deepEqual(classes, { anger: 0, joy: 1, optimism: 2, sadness: 3 });
  const train = JSON.parse(fs.readFileSync(path.join(dataDir, 'train.json'), 'utf-8'));
  assert.equal(train.length, 200);
  assert.match(load.stdout, /train: 200 examples/);

  const trainRun = await cli([
    'train', '--init', 'random', '--model-config', 'tiny', '--tokenizer', TOKENIZER_DIR, '--use-adafactor',
    '--use-weighted-random-sampler', '--epochs', '2', '--max-train-examples', '160', '--max-eval-examples', '48',
    '--batch-size', '16', '--learning-rate', '3e-3', '--seed', '7',
  ]);
  assert.equal(trainRun.code, 0, trainRun.stderr);

  // Log: every option, then one block per epoch with the seven metrics.
  const logs = fs.readdirSync(path.join(work, 'logs'));
  assert.equal(logs.length, 1);
  assert.match(logs[0], /^t5-tiny-scratch_[A-Z][a-z]{2}\d{2}_\d{2}-\d{2}-\d{2}\.txt$/);
  const logText = fs.readFileSync(path.join(work, 'logs', logs[0]), 'utf-8');
  for (const opt of ['useAdafactor', 'batchSize', 'prefixText']) assert.match(logText, new RegExp(`${opt}: `));
  const epochBlocks = logText.split(/\n(?=\[epoch )/).filter((b) => b.startsWith('[epoch '));
  assert.equal(epochBlocks.length, 2);
  const metricNames = ['learning_rate', 'train_loss', 'train_accuracy', 'dev_accuracy', 'dev_macro_f1', 'dev_micro_f1', 'dev_weighted_f1'];
  const epochMetrics = epochBlocks.map((b) => Object.fromEntries(metricNames.map((m) => [m, Number(new RegExp(`${m}: (\\S+)`).exec(b)![1])])));
  assert.ok(epochMetrics[1].train_loss < epochMetrics[0].train_loss, `train loss did not go down: ${epochMetrics.map((m) => m.train_loss)}`);

  // TensorBoard: the seven scalars per epoch and the loss per step.
  const runDirs = fs.readdirSync(path.join(work, 'runs'));
  assert.equal(runDirs.length, 1);
  const eventFile = fs.readdirSync(path.join(work, 'runs', runDirs[0])).find((f) => f.startsWith('events.out.tfevents.'));
  assert.ok(eventFile, 'no event file');
  const events = readEvents(path.join(work, 'runs', runDirs[0], eventFile!));
  for (const m of metricNames) {
    const rows = events.filter((e) => e.tag === m);
    assert.deepEqual(rows.map((r) => r.step), [1, 2], `scalar ${m}`);
    rows.forEach((r, i) => assert.ok(Math.abs(r.value! - epochMetrics[i][m]) <= 1e-6 * Math.max(1, Math.abs(epochMetrics[i][m])), `${m} epoch ${i + 1}: ${r.value} in TensorBoard, ${epochMetrics[i][m]} in the log`));
  }
  const stepLosses = events.filter((e) => e.tag === 'train/loss_step');
  assert.equal(stepLosses.length, 20, 'one loss per optimizer step (2 epochs × 160/16)');
  assert.deepEqual(stepLosses.map((e) => e.step), Array.from({ length: 20 }, (_, i) => i + 1));

  // Checkpoints: HF layout, loadable, with t5cls.json.
  const ckpts = fs.readdirSync(path.join(work, 'weights')).filter((n) => !n.startsWith('.'));
  assert.ok(ckpts.length >= 1 && ckpts.length <= 2, `checkpoints: ${ckpts}`);
  for (const c of ckpts) assert.match(c, /^t5-tiny-scratch-[A-Z][a-z]{2}\d{2}_\d{2}-\d{2}-\d{2}-epoch[12]$/);
  const best = ckpts.sort().at(-1)!;
  const ckptDir = path.join(work, 'weights', best);
  for (const f of ['config.json', 'model.safetensors', 'spiece.model', 'tokenizer_config.json', 't5cls.json']) assert.ok(fs.existsSync(path.join(ckptDir, f)), f);
  const meta = JSON.parse(fs.readFileSync(path.join(ckptDir, 't5cls.json'), 'utf-8'));
  assert.deepEqual(meta.classesMap, classes);
  assert.equal(meta.prefixText, 'tweet_eval emotion sentence: ');
  const weights = readSafetensorsFile(path.join(ckptDir, 'model.safetensors'));
  assert.deepEqual(weights.tensors.get('shared.weight')!.shape, [32128, 64]);
  assert.ok(!weights.tensors.has('lm_head.weight'));

  const testRun = await cli(['test', '--weights-name', best, '--max-eval-examples', '96']);
  assert.equal(testRun.code, 0, testRun.stderr);
  assert.match(testRun.stdout, /macro F1/);
  assert.match(testRun.stdout, /confusion matrix/);
  const metrics = JSON.parse(fs.readFileSync(path.join(ckptDir, 'metrics.json'), 'utf-8'));
  const predictions = fs.readFileSync(path.join(ckptDir, 'predictions.txt'), 'utf-8').trimEnd().split('\n').map(Number);
  assert.equal(predictions.length, 96);
  assert.equal(metrics.examples, 96);
  assert.ok(predictions.every((p) => Number.isInteger(p) && p >= -1 && p < 4));
  const testLabels = JSON.parse(fs.readFileSync(path.join(dataDir, 'test.json'), 'utf-8')).slice(0, 96).map((r: { label: number }) => r.label);
  const recomputed = classificationMetrics(testLabels, predictions, 4);
  assert.ok(Math.abs(recomputed.accuracy - metrics.accuracy) < 1e-12);
  assert.ok(Math.abs(recomputed.macroF1 - metrics.macro_f1) < 1e-12);
  assert.equal(metrics.invalid_outputs, predictions.filter((p) => p === -1).length);
  assert.equal(metrics.confusion_matrix.flat().reduce((a: number, b: number) => a + b, 0), 96);

  // Rank decoding never gives an invalid label.
  const rankRun = await cli(['test', '--weights-name', best, '--max-eval-examples', '64', '--decode', 'rank', '--output-dir', 'rank-out']);
  assert.equal(rankRun.code, 0, rankRun.stderr);
  const rankPreds = fs.readFileSync(path.join(work, 'rank-out/predictions.txt'), 'utf-8').trimEnd().split('\n').map(Number);
  assert.equal(rankPreds.length, 64);
  assert.ok(rankPreds.every((p) => p >= 0 && p < 4));
});

test('train --model t5-small downloads the model through the Hub cache and fine-tunes it', { timeout: 300_000 }, async () => {
  if (!fs.existsSync(path.join(work, 'datasets'))) assert.equal((await cli(['load-dataset'])).code, 0);
  const args = ['train', '--model', 't5-small', '--epochs', '1', '--max-train-examples', '32', '--max-eval-examples', '16', '--save-weights-path', 'w2', '--logs-dir', 'l2', '--runs-dir', 'r2'];
  const first = await cli(args);
  assert.equal(first.code, 0, first.stderr);
  const cache = path.join(work, 'hf/hub');
  // As huggingface_hub does, the cache folder is named after the id the user asked for.
  assert.deepEqual(fs.readdirSync(cache).filter((d) => d.startsWith('models--')), ['models--t5-small'], first.stderr);
  const snapshots = path.join(cache, 'models--t5-small/snapshots');
  const [commit] = fs.readdirSync(snapshots);
  for (const f of ['config.json', 'model.safetensors', 'spiece.model']) assert.ok(fs.existsSync(path.join(snapshots, commit, f)), f);
  const ckpt = fs.readdirSync(path.join(work, 'w2'))[0];
  assert.match(ckpt, /^t5-small-/);
  const meta = JSON.parse(fs.readFileSync(path.join(work, 'w2', ckpt, 't5cls.json'), 'utf-8'));
  assert.equal(meta.baseModel, 't5-small');
  // Offline afterwards: the cached snapshot is used.
  const offline = await cli(args, { HF_ENDPOINT: 'http://127.0.0.1:9' });
  assert.equal(offline.code, 0, offline.stderr);
  // A model that does not exist is one clear line.
  const missing = await cli(['train', '--model', 'nobody/no-such-model', '--epochs', '1']);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /no-such-model/);
});

test('a LoRA adapter of a Hub model names the Hub id as its base; test finds that base in the cache, offline', { timeout: 300_000 }, async () => {
  if (!fs.existsSync(path.join(work, 'datasets'))) assert.equal((await cli(['load-dataset'])).code, 0);
  const common = ['--save-weights-path', 'w3', '--logs-dir', 'l3', '--runs-dir', 'r3'];
  const train = await cli(['train', '--model', 't5-small', '--lora-r', '4', '--epochs', '1', '--max-train-examples', '16', '--max-eval-examples', '8', ...common]);
  assert.equal(train.code, 0, train.stderr);
  const ckpt = path.join(work, 'w3', fs.readdirSync(path.join(work, 'w3'))[0]!);
  const config = JSON.parse(fs.readFileSync(path.join(ckpt, 'adapter_config.json'), 'utf-8'));
  assert.equal(config.base_model_name_or_path, 't5-small', 'the id as given, as PEFT records it');
  const test = await cli(['test', '--weights', ckpt, '--max-eval-examples', '8', '--decode', 'rank', '--quiet'], { HF_ENDPOINT: 'http://127.0.0.1:9' });
  assert.equal(test.code, 0, test.stderr);
  assert.equal(JSON.parse(fs.readFileSync(path.join(ckpt, 'metrics.json'), 'utf-8')).examples, 8);
});

test('a job this machine cannot hold stops before allocating, with the estimate and what would fit', { timeout: 120_000 }, async () => {
  if (!fs.existsSync(path.join(work, 'datasets'))) assert.equal((await cli(['load-dataset'])).code, 0);
  // t5-11b's shape: 11B parameters; with AdamW some 180 GB, more than any machine these tests run on.
  const config = path.join(work, 't5-11b', 'config.json');
  fs.mkdirSync(path.dirname(config), { recursive: true });
  fs.writeFileSync(config, JSON.stringify({ d_model: 1024, d_kv: 128, d_ff: 65536, num_layers: 24, num_heads: 128 }));
  const t0 = Date.now();
  const run = await cli(['train', '--init', 'random', '--model-config', config, '--tokenizer', TOKENIZER_DIR, '--epochs', '1', '--runs-dir', 'r11b']);
  assert.equal(run.code, 2, run.stderr);
  const lines = run.stderr.trim().split('\n');
  assert.match(
    lines[lines.length - 1]!,
    /^t5cls: error: training t5-11b-scratch \(11\.3B parameters\) with AdamW at batch 16 needs about \d+\.\d GB \(weights 45\.\d GB, gradients 45\.\d GB, optimizer state 90\.\d GB, activations \d+\.\d GB\) but this machine has \d+\.\d GB; what would fit: .*a GPU \(--device cuda with @tensorflow\/tfjs-node-gpu\)$/,
  );
  // Refused from the config alone: no backend started, no run folder claimed, no weights allocated.
  assert.ok(Date.now() - t0 < 60_000);
  assert.ok(!run.stderr.includes('backend:'), run.stderr);
  assert.ok(!fs.existsSync(path.join(work, 'r11b')));
});

/**
 * LoRA through the real CLI (bin/t5cls.js over dist/: run `npm run build` first): `train --lora-r` on a small
 * pretrained-layout T5 (random weights, the real T5 tokenizer) writes PEFT adapter folders as checkpoints and states,
 * leaves the base untouched and resumes exactly; `test`, `predict`, `merge` and `export` run an adapter (a t5cls
 * checkpoint, or a bare PEFT folder with --adapter/--model) as its merged model; `--adapter` trains one further; what
 * cannot go together is refused in one line.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT, TOKENIZER_DIR, TWEETEVAL_SLICE, readJson, tempDirs } from './helpers/fixtures.js';
import { readSafetensorsFile } from '../src/safetensors.js';
import { tf } from '../src/tf.js';
import { T5Config, NAMED_CONFIGS, T5ForConditionalGeneration } from '../src/model/index.js';
import { T5Tokenizer } from '../src/tokenizer/index.js';

const CLI = path.join(REPO_ROOT, 'bin/t5cls.js');
const temp = tempDirs('t5cls-lora-cli-');
let work: string;
let base: string;
let data: string[];

function cli(cwd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  fs.mkdirSync(cwd, { recursive: true });
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

const sha = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

/** A LoRA run over 32 tweets in batches of 8, 3 epochs, LoRA dropout on (its masks are part of what resumes). */
function loraArgs(extra: string[]): string[] {
  return [
    'train',
    '--model',
    base,
    '--lora-r',
    '4',
    '--lora-alpha',
    '16',
    '--lora-dropout',
    '0.1',
    '--data-dir',
    data[0]!,
    '--classes-map',
    data[1]!,
    '--max-train-examples',
    '32',
    '--max-eval-examples',
    '16',
    '--batch-size',
    '8',
    '--learning-rate',
    '1e-2',
    '--seed',
    '5',
    '--quiet',
    ...extra,
  ];
}

function only<T>(items: T[], what: string): T {
  assert.equal(items.length, 1, `one ${what}: ${items}`);
  return items[0]!;
}

const checkpoints = (cwd: string) =>
  fs
    .readdirSync(path.join(cwd, 'weights'))
    .filter((n) => /-epoch\d+$/.test(n))
    .map((n) => path.join(cwd, 'weights', n));
const snapshotOf = (cwd: string) => {
  const stateDir = path.join(cwd, 'runs', only(fs.readdirSync(path.join(cwd, 'runs')), 'run'), 'state');
  return path.join(
    stateDir,
    only(
      fs.readdirSync(stateDir).filter((n) => n.startsWith('snapshot-')),
      'snapshot',
    ),
  );
};

before(async () => {
  work = temp.make();
  base = path.join(work, 'base');
  await tf.setBackend('cpu');
  const model = new T5ForConditionalGeneration(new T5Config({ ...NAMED_CONFIGS.tiny, vocab_size: 32128 }), { seed: 3 });
  model.savePretrained(base);
  model.dispose();
  (await T5Tokenizer.fromPretrained(TOKENIZER_DIR)).savePretrained(base);
  const dataDir = path.join(work, 'data');
  const load = await cli(work, ['load-dataset', '--from', path.join(TWEETEVAL_SLICE, 'emotion'), '--out', dataDir]);
  assert.equal(load.code, 0, load.stderr);
  data = [dataDir, path.join(work, 'classes_map.json')];
});

after(() => temp.removeAll());

let trained: { cwd: string; checkpoint: string } | undefined;

test(
  'train --lora-r: PEFT adapter checkpoints and states, only the adapter trained, the base untouched',
  { timeout: 120_000 },
  async () => {
    const before = sha(path.join(base, 'model.safetensors'));
    const cwd = path.join(work, 'full-run');
    const r = await cli(cwd, loraArgs(['--epochs', '2', '--lora-target-modules', 'q,v,wo']));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(sha(path.join(base, 'model.safetensors')), before, 'the base model folder is not written');
    const checkpoint = checkpoints(cwd)[0]!;
    const files = fs.readdirSync(checkpoint).sort();
    assert.ok(!files.includes('model.safetensors') && !files.includes('config.json'), `an adapter folder, not a model: ${files}`);
    for (const f of ['adapter_config.json', 'adapter_model.safetensors', 't5cls.json', 'spiece.model']) assert.ok(files.includes(f), f);
    const config = readJson(path.join(checkpoint, 'adapter_config.json'));
    assert.equal(config.base_model_name_or_path, base);
    assert.equal(config.r, 4);
    assert.equal(config.lora_alpha, 16);
    assert.equal(config.lora_dropout, 0.1);
    assert.deepEqual(config.target_modules, ['q', 'v', 'wo']);
    assert.equal(config.task_type, 'SEQ_2_SEQ_LM');
    const { tensors } = readSafetensorsFile(path.join(checkpoint, 'adapter_model.safetensors'));
    // tiny: 2+2 blocks; q and v of its 6 attentions (encoder 2, decoder 2 self + 2 cross), wo of its 4 feed-forwards:
    // 16 layers, A and B each.
    assert.equal(tensors.size, 32);
    const b = tensors.get('base_model.model.decoder.block.1.layer.2.DenseReluDense.wo.lora_B.weight')!;
    assert.deepEqual(b.shape, [64, 4]);
    assert.ok(
      [...(b.data as Float32Array)].some((x) => x !== 0),
      'lora_B moved from zero',
    );

    const snapshot = snapshotOf(cwd);
    assert.deepEqual(fs.readdirSync(snapshot).sort(), [
      'adapter_config.json',
      'adapter_model.safetensors',
      'optimizer.safetensors',
      'state.json',
    ]);
    const slots = [...readSafetensorsFile(path.join(snapshot, 'optimizer.safetensors')).tensors.keys()].filter((k) => k !== 'iter');
    assert.equal(slots.length, 96, 'AdamW: two moments and a step count per LoRA tensor, none for the frozen weights');
    assert.ok(
      slots.every((k) => /^base_model\.model\..*\.lora_[AB]\.weight\/\w+$/.test(k)),
      slots[0],
    );
    trained = { cwd, checkpoint };
  },
);

test('a LoRA run stopped after an epoch and resumed ends exactly as an uninterrupted one', { timeout: 120_000 }, async () => {
  const whole = path.join(work, 'whole');
  const parts = path.join(work, 'parts');
  const [a, b] = await Promise.all([cli(whole, loraArgs(['--epochs', '3'])), cli(parts, loraArgs(['--epochs', '1']))]);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(b.code, 0, b.stderr);
  const resumed = await cli(parts, ['train', '--resume', 'latest', '--epochs', '3', '--quiet']);
  assert.equal(resumed.code, 0, resumed.stderr);
  for (const file of ['adapter_model.safetensors', 'optimizer.safetensors']) {
    assert.equal(sha(path.join(snapshotOf(parts), file)), sha(path.join(snapshotOf(whole), file)), file);
  }
  const losses = (cwd: string) => {
    const log = fs.readFileSync(path.join(cwd, 'logs', only(fs.readdirSync(path.join(cwd, 'logs')), 'log')), 'utf-8');
    return [...log.matchAll(/^train_loss: (.*)$/gm)].map((m) => m[1]);
  };
  assert.equal(losses(whole).length, 3);
  assert.deepEqual(losses(parts), losses(whole));
});

test('test, predict and export run an adapter as its merged model; merge writes that model', { timeout: 180_000 }, async (t) => {
  if (!trained) return t.skip('needs the training test above');
  const { cwd, checkpoint } = trained;
  const evalArgs = ['--data-dir', data[0]!, '--max-eval-examples', '24', '--decode', 'rank', '--quiet'];
  const onAdapter = await cli(cwd, ['test', '--weights', checkpoint, '--output-dir', 'on-adapter', ...evalArgs]);
  assert.equal(onAdapter.code, 0, onAdapter.stderr);
  const merged = await cli(cwd, ['merge', '--adapter', checkpoint, '--quiet']);
  assert.equal(merged.code, 0, merged.stderr);
  const mergedDir = merged.stdout.trim();
  assert.equal(mergedDir, `${checkpoint}-merged`);
  for (const f of ['config.json', 'model.safetensors', 'spiece.model', 't5cls.json']) assert.ok(fs.existsSync(path.join(mergedDir, f)), f);
  const again = await cli(cwd, ['merge', '--adapter', checkpoint, '--quiet']);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /already exists; a model folder is never overwritten/);

  // The merged weights are W + (alpha/r)·B·A of the adapter's tensors, the other weights the base's.
  const baseT = readSafetensorsFile(path.join(base, 'model.safetensors')).tensors;
  const mergedT = readSafetensorsFile(path.join(mergedDir, 'model.safetensors')).tensors;
  const adapterT = readSafetensorsFile(path.join(checkpoint, 'adapter_model.safetensors')).tensors;
  const name = 'encoder.block.0.layer.1.DenseReluDense.wo.weight';
  const A = adapterT.get(`base_model.model.${name.replace(/\.weight$/, '')}.lora_A.weight`)!;
  const B = adapterT.get(`base_model.model.${name.replace(/\.weight$/, '')}.lora_B.weight`)!;
  const W = baseT.get(name)!;
  const [out, inner] = W.shape as [number, number];
  let worst = 0;
  for (let i = 0; i < out; i++) {
    for (let j = 0; j < inner; j++) {
      let ba = 0;
      for (let k = 0; k < 4; k++) ba += (B.data[i * 4 + k] as number) * (A.data[k * inner + j] as number);
      worst = Math.max(worst, Math.abs((W.data[i * inner + j] as number) + 4 * ba - (mergedT.get(name)!.data[i * inner + j] as number)));
    }
  }
  assert.ok(worst < 1e-6, `merged ${name} differs from W + scaling·B·A by ${worst}`);
  assert.deepEqual(mergedT.get('shared.weight')!.data, baseT.get('shared.weight')!.data);

  const onMerged = await cli(cwd, ['test', '--weights', mergedDir, '--output-dir', 'on-merged', ...evalArgs]);
  assert.equal(onMerged.code, 0, onMerged.stderr);
  // A folder as PEFT writes it: the adapter's two files alone (no tokenizer, no t5cls.json), its base given.
  const peftDir = path.join(cwd, 'peft-adapter');
  fs.mkdirSync(peftDir);
  for (const f of ['adapter_config.json', 'adapter_model.safetensors']) fs.copyFileSync(path.join(checkpoint, f), path.join(peftDir, f));
  const prefix = readJson(path.join(checkpoint, 't5cls.json')).prefixText;
  const bare = await cli(cwd, [
    'test',
    '--adapter',
    peftDir,
    '--model',
    base,
    '--classes-map',
    data[1]!,
    '--prefix-text',
    prefix,
    '--output-dir',
    'on-peft',
    ...evalArgs,
  ]);
  assert.equal(bare.code, 0, bare.stderr);
  const metrics = (dir: string) => {
    const m = readJson(path.join(cwd, dir, 'metrics.json'));
    return { macro_f1: m.macro_f1, confusion: m.confusion_matrix };
  };
  const predictions = (dir: string) => fs.readFileSync(path.join(cwd, dir, 'predictions.txt'), 'utf-8');
  for (const dir of ['on-merged', 'on-peft']) {
    assert.deepEqual(metrics(dir), metrics('on-adapter'), dir);
    assert.equal(predictions(dir), predictions('on-adapter'), dir);
  }

  const texts = ['I am so happy today', 'this is infuriating'];
  const p1 = await cli(cwd, ['predict', '--weights', checkpoint, '--format', 'json', '--quiet', ...texts]);
  const p2 = await cli(cwd, ['predict', '--weights', mergedDir, '--format', 'json', '--quiet', ...texts]);
  assert.equal(p1.code, 0, p1.stderr);
  assert.equal(p2.code, 0, p2.stderr);
  const probs = (s: string) =>
    s
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).probabilities as Record<string, number>);
  for (const [i, row] of probs(p1.stdout).entries()) {
    for (const [label, p] of Object.entries(row)) assert.ok(Math.abs(p - probs(p2.stdout)[i]![label]!) < 1e-5, `${texts[i]}: ${label}`);
  }

  const exported = await cli(cwd, ['export', '--weights', checkpoint, '--out', 'exported', '--quiet']);
  assert.equal(exported.code, 0, exported.stderr);
  assert.ok(fs.existsSync(path.join(cwd, 'exported', 'onnx', 'encoder_model.onnx')));
  assert.equal(readJson(path.join(cwd, 'exported', 't5cls.json')).checkpoint, path.basename(checkpoint));
});

test('--adapter trains an adapter further on the base its config names', { timeout: 120_000 }, async (t) => {
  if (!trained) return t.skip('needs the training test above');
  const cwd = path.join(work, 'further');
  const r = await cli(cwd, [
    'train',
    '--adapter',
    trained.checkpoint,
    '--data-dir',
    data[0]!,
    '--classes-map',
    data[1]!,
    '--max-train-examples',
    '16',
    '--max-eval-examples',
    '8',
    '--batch-size',
    '8',
    '--epochs',
    '1',
    '--learning-rate',
    '1e-2',
    '--quiet',
  ]);
  assert.equal(r.code, 0, r.stderr);
  const checkpoint = only(checkpoints(cwd), 'checkpoint');
  const config = readJson(path.join(checkpoint, 'adapter_config.json'));
  assert.equal(config.base_model_name_or_path, base);
  assert.deepEqual(config.target_modules, ['q', 'v', 'wo']);
  assert.equal(config.lora_alpha, 16);
  assert.equal(path.basename(checkpoint).split('-')[0], 'base', 'named after the base model');
  // One step moved the adapter it started from, which was not zero.
  const start = readSafetensorsFile(path.join(trained.checkpoint, 'adapter_model.safetensors')).tensors;
  const end = readSafetensorsFile(path.join(checkpoint, 'adapter_model.safetensors')).tensors;
  const key = 'base_model.model.encoder.block.0.layer.0.SelfAttention.q.lora_B.weight';
  let moved = 0;
  for (let i = 0; i < start.get(key)!.data.length; i++)
    moved = Math.max(moved, Math.abs((start.get(key)!.data[i] as number) - (end.get(key)!.data[i] as number)));
  assert.ok(moved > 0 && moved < 0.1, `one step of lr 1e-2 moved lora_B by ${moved}`);
});

test('LoRA options that cannot go together are refused in one line', { timeout: 120_000 }, async () => {
  const cwd = path.join(work, 'refusals');
  const common = ['--data-dir', data[0]!, '--classes-map', data[1]!, '--max-train-examples', '8', '--epochs', '1'];
  const cases: [string[], RegExp][] = [
    [['train', '--model', base, '--lora-alpha', '16', ...common], /--lora-alpha needs --lora-r/],
    [
      ['train', '--init', 'random', '--model-config', 'tiny', '--tokenizer', TOKENIZER_DIR, '--lora-r', '4', ...common],
      /--init random cannot be combined with --lora-r/,
    ],
    [
      ['train', '--model', base, '--lora-r', '4', '--lora-target-modules', 'query', ...common],
      /target module "query" selects none of this T5's linear layers/,
    ],
    [['train', '--model', base, '--lora-r', '0', ...common], /--lora-r/],
    [['train', '--model', base, '--adapter', base, ...common], /no adapter_config\.json \(not a PEFT adapter folder\)/],
    [['test', '--weights', base, '--model', base, '--data-dir', data[0]!], /--model is the base of a LoRA adapter/],
    [['merge', '--model', base], /merge needs --adapter DIR/],
  ];
  if (trained)
    cases.push([['train', '--adapter', trained.checkpoint, '--lora-r', '8', ...common], /--lora-r cannot be combined with --adapter/]);
  for (const [args, message] of cases) {
    const r = await cli(cwd, args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(
      r.stderr
        .trim()
        .split('\n')
        .filter((l) => l.includes('error')).length,
      1,
      r.stderr,
    );
  }
  assert.ok(!fs.existsSync(path.join(cwd, 'weights')), 'nothing was trained');
});

/**
 * `t5cls pretrain` through the real CLI (bin/t5cls.js over dist/: run `npm run build` first): a tiny random T5
 * learns to denoise tweets, writes an HF-layout checkpoint, and `train --model` fine-tunes that checkpoint.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readSafetensorsFile } from '../src/safetensors.js';
import { HOLD_ENV } from '../src/train/hold.js';
import { REPO_ROOT, TOKENIZER_DIR, TWEETEVAL_SLICE } from './helpers/fixtures.js';

const CLI = path.join(REPO_ROOT, 'bin/t5cls.js');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 't5cls-pretrain-'));

const cli = (args: string[], cwd = work) => {
  fs.mkdirSync(cwd, { recursive: true });
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf-8', stdio: ['ignore', 'pipe', 'pipe'] });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
};

test('pretrain from scratch on two sources: the held-out loss falls, the checkpoint is HF layout and train --model fine-tunes it', { timeout: 240_000 }, () => {
  const extra = path.join(work, 'extra.jsonl');
  const emotion = ['train', 'val', 'test'].flatMap((s) => fs.readFileSync(path.join(TWEETEVAL_SLICE, `emotion/${s}_text.txt`), 'utf-8').split('\n'));
  fs.writeFileSync(extra, emotion.filter((l) => l.trim()).map((t) => JSON.stringify({ body: t })).join('\n'));
  const r = cli([
    'pretrain', '--from', path.join(TWEETEVAL_SLICE, 'irony'), '--from', extra, '--text-column', 'body', '--init', 'random', '--model-config', 'tiny',
    '--tokenizer', TOKENIZER_DIR, '--max-source-length', '32', '--batch-size', '16', '--steps', '40', '--eval-every-steps', '20', '--learning-rate', '3e-3', '--seed', '5',
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
  const none = cli(['pretrain', '--init', 'random', '--model-config', 'tiny', '--tokenizer', TOKENIZER_DIR]);
  assert.equal(none.code, 2);
  assert.match(none.out, /--from: give the text to pretrain on/);
  const small = path.join(work, 'small.txt');
  fs.writeFileSync(small, 'one short text\nand another\n');
  const few = cli(['pretrain', '--from', small, '--init', 'random', '--model-config', 'tiny', '--tokenizer', TOKENIZER_DIR, '--max-source-length', '64']);
  assert.equal(few.code, 2, few.out);
  assert.match(few.out, /too little text: \d+ tokens in 2 texts make 0 training and 0 held-out sequences of 70 tokens \(--max-source-length 64\)/);
});

test('pretrain resumes exactly: SIGTERM at step 8 saves the state, exits 143, and --resume ends with the uninterrupted weights', { timeout: 240_000 }, async () => {
  const text = path.join(work, 'resume.txt');
  fs.writeFileSync(text, fs.readFileSync(path.join(TWEETEVAL_SLICE, 'irony/train_text.txt'), 'utf-8').split('\n').slice(0, 300).join('\n'));
  const args = [
    'pretrain', '--from', text, '--init', 'random', '--model-config', 'tiny', '--tokenizer', TOKENIZER_DIR, '--max-source-length', '32',
    '--batch-size', '32', '--epochs', '2', '--eval-every-steps', '5', '--save-every-steps', '3', '--learning-rate', '3e-3', '--seed', '9',
  ];
  const straight = cli(args, path.join(work, 'straight'));
  assert.equal(straight.code, 0, straight.out);
  const perEpoch = Number(/(\d+) steps per epoch/.exec(straight.out)![1]);
  assert.ok(perEpoch >= 5 && perEpoch < 8, `${perEpoch} steps per epoch: step 8 should fall in epoch 2`);

  const cwd = path.join(work, 'stopped');
  fs.mkdirSync(cwd, { recursive: true });
  const child = spawn(process.execPath, [CLI, ...args], { cwd, env: { ...process.env, [HOLD_ENV]: '8' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  while (!out.includes('holding after step 8')) await new Promise((r) => setTimeout(r, 50));
  child.kill('SIGTERM');
  assert.equal(await closed, 143, out);
  assert.match(out, /stopped by SIGTERM after step 8; the model is saved in \S+ and the state in \S+snapshot-\d+\. Resume with: t5cls pretrain --resume \S+/);
  const stateDir = path.join(cwd, 'runs', fs.readdirSync(path.join(cwd, 'runs'))[0]!, 'state');
  const snapshot = fs.readdirSync(stateDir).filter((n) => n.startsWith('snapshot-'));
  assert.equal(snapshot.length, 1, 'older snapshots are removed');
  const state = JSON.parse(fs.readFileSync(path.join(stateDir, snapshot[0]!, 'state.json'), 'utf-8'));
  assert.equal(state.reason, 'interrupt');
  assert.deepEqual({ epoch: state.progress.epoch, nextBatch: state.progress.nextBatch, steps: state.progress.steps }, { epoch: 2, nextBatch: 8 - perEpoch, steps: 8 });

  // Changing what the run learns is refused; the original command plus --resume continues it.
  const changed = cli([...args, '--resume', '--learning-rate', '1e-3'], cwd);
  assert.equal(changed.code, 2, changed.out);
  assert.match(changed.out, /--learning-rate was 0\.003 in that run, not 0\.001/);
  const resumed = cli([...args, '--resume'], cwd);
  assert.equal(resumed.code, 0, resumed.out);
  assert.match(resumed.out, /resuming \S+ from \S+: epoch 2, step 8/);

  const heldOut = (o: string) => [...o.matchAll(/step (\d+): held-out loss ([\d.]+), span-token accuracy ([\d.]+)/g)].map((m) => m.slice(1).map(Number));
  assert.deepEqual(heldOut(resumed.out), heldOut(straight.out).filter(([step]) => step! > 8));
  assert.ok(heldOut(resumed.out).length > 0);
  const checkpoint = (o: string) => readSafetensorsFile(path.join(/saved checkpoint (\S+) \(step \d+\)/.exec(o)![1]!, 'model.safetensors')).tensors;
  const [want, got] = [checkpoint(straight.out), checkpoint(resumed.out)];
  assert.deepEqual([...got.keys()], [...want.keys()]);
  for (const [name, t] of want) assert.deepEqual(Array.from(got.get(name)!.data), Array.from(t.data), name);
  const again = cli([...args, '--resume'], cwd);
  assert.equal(again.code, 2, again.out);
  assert.match(again.out, /has finished \(\d+ steps, 2 epochs\); nothing to resume/);
});

test('--max-minutes stops after the step that passes the time, evaluates, saves the checkpoint and the state', { timeout: 120_000 }, () => {
  const cwd = path.join(work, 'minutes');
  const r = cli(
    ['pretrain', '--from', path.join(TWEETEVAL_SLICE, 'irony'), '--init', 'random', '--model-config', 'tiny', '--tokenizer', TOKENIZER_DIR, '--max-source-length', '32',
      '--batch-size', '16', '--epochs', '3', '--eval-every-steps', '1000', '--max-minutes', '0'],
    cwd,
  );
  assert.equal(r.code, 0, r.out);
  // Zero minutes: the first step already passes the deadline, so it is also the last.
  assert.match(r.out, /step 1: held-out loss [\d.]+/);
  assert.match(r.out, /saved checkpoint \S+ \(step 1\)/);
  const stateDir = path.join(cwd, 'runs', fs.readdirSync(path.join(cwd, 'runs'))[0]!, 'state');
  const snapshot = fs.readdirSync(stateDir).find((n) => n.startsWith('snapshot-'))!;
  const state = JSON.parse(fs.readFileSync(path.join(stateDir, snapshot, 'state.json'), 'utf-8'));
  assert.deepEqual({ reason: state.reason, steps: state.progress.steps, epoch: state.progress.epoch, nextBatch: state.progress.nextBatch }, { reason: 'end', steps: 1, epoch: 1, nextBatch: 1 });
});

/** `pretrain` of a tiny random T5 on the first 200 irony tweets (10 steps per epoch at batch 16), in `cwd`. */
const pretrainTiny = (cwd: string, extra: string[]) => {
  const text = path.join(work, 'irony200.txt');
  if (!fs.existsSync(text)) fs.writeFileSync(text, fs.readFileSync(path.join(TWEETEVAL_SLICE, 'irony/train_text.txt'), 'utf-8').split('\n').slice(0, 200).join('\n'));
  return cli(['pretrain', '--from', text, '--init', 'random', '--model-config', 'tiny', '--tokenizer', TOKENIZER_DIR, '--max-source-length', '32', '--batch-size', '16', ...extra], cwd);
};

test('a diverging run stops at the first non-finite loss or gradient norm, naming the step, in pretrain and in train', { timeout: 120_000 }, () => {
  // AdamW at a rate of 1e30 moves every weight by ~1e30 in its first step: the second step overflows.
  const cwd = path.join(work, 'diverging');
  const pre = pretrainTiny(cwd, ['--steps', '6', '--no-use-adafactor', '--learning-rate', '1e30', '--eval-every-steps', '100']);
  assert.equal(pre.code, 1, pre.out);
  assert.match(pre.out, /pretraining stopped: the (loss|gradient norm) is (NaN|-?Infinity) at step 2; nothing of this run was saved/);
  assert.doesNotMatch(pre.out, /saved checkpoint/);
  // Resumed after its first step, the same run names the state it resumed from: that state is what is kept.
  const resumedCwd = path.join(work, 'diverging-resumed');
  const first = pretrainTiny(resumedCwd, ['--steps', '1', '--no-use-adafactor', '--learning-rate', '1e30', '--eval-every-steps', '100']);
  assert.equal(first.code, 0, first.out);
  const resumed = pretrainTiny(resumedCwd, ['--steps', '6', '--no-use-adafactor', '--learning-rate', '1e30', '--eval-every-steps', '100', '--resume']);
  assert.equal(resumed.code, 1, resumed.out);
  assert.match(resumed.out, /pretraining stopped: the (loss|gradient norm) is (NaN|-?Infinity) at step 2; the last state is \S*snapshot-/);

  const data = path.join(cwd, 'data');
  fs.mkdirSync(data, { recursive: true });
  const rows = ['I love it', 'so sad today', 'what a day', 'never again'].map((text, i) => ({ text, label: i % 2 }));
  for (const split of ['train', 'validation']) fs.writeFileSync(path.join(data, `${split}.json`), JSON.stringify(rows));
  fs.writeFileSync(path.join(cwd, 'classes_map.json'), JSON.stringify({ joy: 0, sadness: 1 }));
  const ft = cli(['train', '--init', 'random', '--model-config', 'tiny', '--tokenizer', TOKENIZER_DIR, '--data-dir', data, '--epochs', '2', '--batch-size', '2', '--learning-rate', '1e30'], cwd);
  assert.equal(ft.code, 1, ft.out);
  assert.match(ft.out, /training stopped: the (loss|gradient norm) is (NaN|-?Infinity) at epoch 1, step 2; no checkpoint was saved yet/);
});

test('--steps alone runs that many steps across epochs, and a larger --steps continues the finished run', { timeout: 120_000 }, () => {
  const cwd = path.join(work, 'steps');
  const r = pretrainTiny(cwd, ['--steps', '13', '--eval-every-steps', '100']);
  assert.equal(r.code, 0, r.out);
  const perEpoch = Number(/(\d+) steps per epoch/.exec(r.out)![1]);
  assert.ok(perEpoch < 13 && 2 * perEpoch >= 13, `${perEpoch} steps per epoch: 13 steps should end in epoch 2`);
  assert.match(r.out, /pretrain epoch 2\/2/);
  assert.match(r.out, /saved checkpoint \S+ \(step 13\)/);

  const more = pretrainTiny(cwd, ['--steps', '25', '--eval-every-steps', '100', '--resume']);
  assert.equal(more.code, 0, more.out);
  assert.match(more.out, /resuming \S+ from \S+: epoch 2, step 13/);
  assert.match(more.out, /saved checkpoint \S+ \(step 25\)/);
  // Given with --steps, --epochs still ends the run first.
  const both = pretrainTiny(path.join(work, 'steps-epochs'), ['--steps', '25', '--epochs', '1', '--eval-every-steps', '100']);
  assert.equal(both.code, 0, both.out);
  assert.match(both.out, new RegExp(`saved checkpoint \\S+ \\(step ${perEpoch}\\)`));
});

test('pretrain on the big-model engine (--backend cpu, where auto puts t5-base and larger) follows the wasm run', { timeout: 120_000 }, () => {
  const heldOut = (backend: string) => {
    const r = pretrainTiny(path.join(work, `engine-${backend}`), ['--steps', '10', '--eval-every-steps', '5', '--learning-rate', '1e-2', '--seed', '3', '--backend', backend]);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, new RegExp(`^backend: ${backend} `, 'm'));
    return [...r.out.matchAll(/step (\d+): held-out loss ([\d.]+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
  };
  const [wasm, cpu] = [heldOut('wasm'), heldOut('cpu')];
  assert.deepEqual(cpu.map(([s]) => s), [5, 10]);
  assert.ok(wasm[1]![1]! < wasm[0]![1]!, `held-out loss ${wasm}`);
  for (let i = 0; i < 2; i++) assert.ok(Math.abs(cpu[i]![1]! - wasm[i]![1]!) < 2e-3, `step ${cpu[i]![0]}: cpu ${cpu[i]![1]}, wasm ${wasm[i]![1]}`);
});

/**
 * `Classifier` and `t5cls predict` on a checkpoint made here: a tiny random T5 with the real T5 tokenizer, trained a
 * few steps so that its predictions differ between texts. Rank probabilities are checked against a softmax of
 * sequence log-likelihoods computed one (text, class) pair at a time with model.forward + tokenNll; generate output
 * against a greedy decoder without cache and against predictGenerate.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tf } from '../src/tf.js';
import { initBackend } from '../src/engine/init.js';
import { NAMED_CONFIGS, T5Config } from '../src/model/config.js';
import { T5ForConditionalGeneration } from '../src/model/modeling_t5.js';
import { tokenNll } from '../src/model/loss.js';
import { T5Tokenizer } from '../src/tokenizer/index.js';
import { Adafactor } from '../src/train/optimizers/index.js';
import { saveCheckpoint } from '../src/train/checkpoint.js';
import type { CheckpointMeta } from '../src/checkpoint_meta.js';
import { predictGenerate } from '../src/eval/decoding.js';
import { Classifier } from '../src/eval/classifier.js';
import { UsageError } from '../src/errors.js';
import { REPO_ROOT, TOKENIZER_DIR } from './helpers/fixtures.js';
import { TINY_CLASSES, TINY_PREFIX, TINY_TRAIN } from './helpers/tiny_classifier.js';

const CLI = path.join(REPO_ROOT, 'bin/t5cls.js');
const PREFIX = TINY_PREFIX;
const MAX_LEN = 24;
const CLASSES = TINY_CLASSES;
const TRAIN = TINY_TRAIN;
const TEXTS = [...TRAIN.map(([t]) => t), 'a completely new sentence about the weather'];

let work: string;
let ckpt: string;
let model: T5ForConditionalGeneration;
let tokenizer: T5Tokenizer;
let classTokens: number[][];
/** Reference rank probabilities per text of TEXTS (float64 softmax of one-pair-at-a-time log-likelihoods). */
let refProbs: number[][];
/** Reference greedy outputs per text of TEXTS. */
let refGenerated: string[];

function meta(runName: string, createdAt: string, extra: Partial<CheckpointMeta> = {}): CheckpointMeta {
  return {
    format: 't5cls-checkpoint',
    version: 1,
    baseModel: 'tiny (random)',
    runName,
    epoch: 1,
    step: 40,
    prefixText: PREFIX,
    maxSourceLength: MAX_LEN,
    classesMap: Object.fromEntries(CLASSES.map((c, i) => [c, i])),
    options: {},
    metrics: { dev_macro_f1: 0.5 },
    createdAt,
    ...extra,
  };
}

/** Sum of log p(class tokens | text), one pair at a time, no padding, no cache. */
function sequenceLogLik(ids: number[], target: number[]): number {
  return tf.tidy(() => {
    const { logits } = model.forward({ inputIds: [ids], labels: [target] });
    return -tf.sum(tokenNll(logits, tf.tensor2d([target], undefined, 'int32'))).dataSync()[0];
  });
}

function softmax(xs: number[]): number[] {
  const m = Math.max(...xs);
  const e = xs.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

/** Greedy decoding by re-running the full decoder every step. */
function greedy(ids: number[], maxNew: number): string {
  const dec = [model.config.decoder_start_token_id];
  for (let i = 0; i < maxNew; i++) {
    const next = tf.tidy(() => {
      const { logits } = model.forward({ inputIds: [ids], decoderInputIds: [dec] });
      return tf.argMax(logits.slice([0, dec.length - 1, 0], [1, 1, -1]).reshape([-1])).dataSync()[0];
    });
    dec.push(next);
    if (next === model.config.eos_token_id) break;
  }
  const end = dec.indexOf(model.config.eos_token_id, 1);
  return tokenizer.decode(dec.slice(1, end < 0 ? undefined : end));
}

function cli(args: string[], opts: { stdin?: string; cwd?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: opts.cwd ?? work, stdio: [opts.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    if (opts.stdin !== undefined) child.stdin!.end(opts.stdin);
  });
}

function assertClose(got: number[], want: number[], tol: number, what: string): void {
  assert.equal(got.length, want.length, what);
  got.forEach((g, i) => assert.ok(Math.abs(g - want[i]) <= tol, `${what}[${i}]: ${g} vs ${want[i]}`));
}

/**
 * Probabilities against the reference: they sum to 1, and their logs (the log-likelihoods less their logsumexp)
 * agree, which also checks the small probabilities of a confident model.
 */
function assertProbs(got: number[], want: number[], what: string): void {
  assert.ok(Math.abs(got.reduce((a, b) => a + b, 0) - 1) < 1e-6, `${what}: sum of ${got}`);
  assertClose(got.map(Math.log), want.map(Math.log), 1e-3, `${what} (log)`);
}

function argmax(xs: number[]): number {
  return xs.indexOf(Math.max(...xs));
}

before(async () => {
  await initBackend('wasm');
  work = fs.mkdtempSync(path.join(os.tmpdir(), 't5cls-predict-'));
  tokenizer = await T5Tokenizer.fromPretrained(TOKENIZER_DIR);
  model = new T5ForConditionalGeneration(new T5Config({ ...NAMED_CONFIGS.tiny, vocab_size: 32128 }), { seed: 3 });
  classTokens = CLASSES.map((c) => tokenizer.encode(c));
  // A few full-batch Adafactor steps: enough for the model to tell the training texts apart.
  const inputs = TRAIN.map(([t]) => tokenizer.encode(PREFIX + t));
  const width = Math.max(...inputs.map((r) => r.length));
  const inputIds = inputs.map((r) => [...r, ...new Array(width - r.length).fill(0)]);
  const attentionMask = inputs.map((r) => r.map(() => 1).concat(new Array(width - r.length).fill(0)));
  const lw = Math.max(...classTokens.map((r) => r.length));
  const labels = TRAIN.map(([, c]) => [...classTokens[c], ...new Array(lw - classTokens[c].length).fill(-100)]);
  const opt = new Adafactor({ lr: 1e-2, scaleParameter: false, relativeStep: false, warmupInit: false });
  const params = [...model.namedParameters().values()];
  for (let s = 0; s < 12; s++) {
    const { value, grads } = tf.variableGrads(() => model.forward({ inputIds, attentionMask, labels }).loss!, params);
    opt.applyGradients(grads);
    tf.dispose([value, ...Object.values(grads)]);
  }
  opt.dispose();

  const weights = path.join(work, 'weights');
  ckpt = path.join(weights, 'tiny-new-epoch1');
  await saveCheckpoint(ckpt, model, tokenizer, meta('tiny-new', '2030-01-02T00:00:00.000Z'));
  // An older run: the default checkpoint must be the newest run's.
  await saveCheckpoint(path.join(weights, 'tiny-old-epoch1'), model, tokenizer, meta('tiny-old', '2020-01-01T00:00:00.000Z', { metrics: { dev_macro_f1: 0.9 } }));

  refProbs = TEXTS.map((t) => {
    const ids = tokenizer.encode(PREFIX + t);
    assert.ok(ids.length <= MAX_LEN, 'reference texts must not be truncated');
    return softmax(classTokens.map((target) => sequenceLogLik(ids, target)));
  });
  const maxNew = Math.max(...classTokens.map((t) => t.length));
  refGenerated = TEXTS.map((t) => greedy(tokenizer.encode(PREFIX + t), maxNew));
});

after(() => {
  model?.dispose();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

test('the trained checkpoint is not constant: rank picks differ between texts', () => {
  const picked = new Set(refProbs.map(argmax));
  assert.ok(picked.size >= 2, `all texts get class ${[...picked]}`);
  // Memorised training texts: most get their own class.
  const right = TRAIN.filter(([, c], i) => argmax(refProbs[i]) === c).length;
  assert.ok(right >= 5, `only ${right} of 8 training texts ranked right`);
});

test('Classifier rank: probabilities are the softmax of the sequence log-likelihoods and sum to 1', async () => {
  const before = tf.memory().numTensors;
  const clf = await Classifier.fromPretrained(ckpt);
  assert.deepEqual(clf.classNames, CLASSES);
  assert.equal(clf.prefixText, PREFIX);
  assert.equal(clf.maxSourceLength, MAX_LEN);
  const during = tf.memory().numTensors;
  // Batch size 4 with texts of different lengths: padding and batch order must not change the results.
  const preds = clf.predict(TEXTS, { batchSize: 4 });
  assert.equal(tf.memory().numTensors, during, 'predict leaks tensors');
  assert.equal(preds.length, TEXTS.length);
  preds.forEach((p, i) => {
    assert.equal(p.text, TEXTS[i]);
    const probs = CLASSES.map((c) => p.probabilities![c]);
    assertProbs(probs, refProbs[i], `text ${i}`);
    assert.equal(p.labelId, argmax(refProbs[i]));
    assert.equal(p.label, CLASSES[p.labelId]);
    assert.equal(p.generated, undefined);
  });
  // rank is the default; batch size 1 gives the same.
  const one = clf.predict(TEXTS.slice(0, 3), { decode: 'rank', batchSize: 1 });
  one.forEach((p, i) => assertClose(CLASSES.map((c) => Math.log(p.probabilities![c])), CLASSES.map((c) => Math.log(preds[i].probabilities![c])), 1e-4, `batch size 1, text ${i}`));
  assert.deepEqual(clf.predict([]), []);
  clf.dispose();
  assert.equal(tf.memory().numTensors, before, 'dispose leaves tensors');
  assert.throws(() => clf.predict(['x']), /disposed/);
});

test('Classifier generate: matches a greedy decoder without cache and predictGenerate', async () => {
  const clf = await Classifier.fromPretrained(ckpt);
  const preds = clf.predict(TEXTS, { decode: 'generate', batchSize: 3 });
  const inputs = TEXTS.map((t) => tokenizer.encode(PREFIX + t));
  const direct = predictGenerate(model, tokenizer, inputs, CLASSES, classTokens, 64);
  preds.forEach((p, i) => {
    assert.equal(p.generated, refGenerated[i], `text ${i}`);
    assert.equal(p.generated, direct.texts[i]);
    const id = CLASSES.indexOf(refGenerated[i].trim().toLowerCase());
    assert.equal(p.labelId, id);
    assert.equal(p.label, id < 0 ? null : CLASSES[id]);
    assert.equal(p.probabilities, undefined);
  });
  assert.ok(preds.some((p) => p.labelId >= 0), 'no generated output is a class name');
  clf.dispose();
});

test('Classifier: truncation, overrides, and folders without t5cls.json', async () => {
  const clf = await Classifier.fromPretrained(ckpt, { maxSourceLength: 8, prefixText: '' });
  const long = 'one two three four five six seven eight nine ten eleven twelve';
  const full = tokenizer.encode(long);
  assert.ok(full.length > 8);
  assert.deepEqual(clf.encode(long), [...full.slice(0, 7), 1]);
  clf.dispose();

  const bare = path.join(work, 'bare');
  model.savePretrained(bare);
  tokenizer.savePretrained(bare);
  await assert.rejects(Classifier.fromPretrained(bare), (e: Error) => e instanceof UsageError && /has no t5cls\.json.*classes map/.test(e.message));
  await assert.rejects(Classifier.fromPretrained(path.join(work, 'nowhere')), (e: Error) => e instanceof UsageError && /no such folder/.test(e.message));
  await assert.rejects(Classifier.fromPretrained(bare, { classesMap: { anger: 0, joy: 2 } }), /ids must be 0\.\.1/);
  const fromList = await Classifier.fromPretrained(bare, { classesMap: CLASSES, prefixText: PREFIX });
  assert.equal(fromList.maxSourceLength, 512);
  const p = fromList.predict([TEXTS[2]])[0];
  assertProbs(CLASSES.map((c) => p.probabilities![c]), refProbs[2], 'bare folder');
  fromList.dispose();
  // Without the prefix the model sees other tokens: probabilities change.
  const noPrefix = await Classifier.fromPretrained(bare, { classesMap: CLASSES });
  assert.equal(noPrefix.prefixText, '');
  const q = noPrefix.predict([TEXTS[2]])[0];
  assert.ok(CLASSES.some((c, i) => Math.abs(Math.log(q.probabilities![c]) - Math.log(refProbs[2][i])) > 0.05));
  noPrefix.dispose();
});

test('CLI: positional texts, --format json (JSONL) with rank probabilities', async () => {
  const r = await cli(['predict', '--weights', ckpt, '--format', 'json', '--eval-batch-size', '2', ...TEXTS.slice(0, 4)]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 4);
  lines.forEach((line, i) => {
    const o = JSON.parse(line);
    assert.deepEqual(Object.keys(o), ['text', 'label', 'label_id', 'probabilities']);
    assert.equal(o.text, TEXTS[i]);
    assert.deepEqual(Object.keys(o.probabilities), CLASSES);
    assertProbs(CLASSES.map((c) => o.probabilities[c]), refProbs[i], `cli text ${i}`);
    assert.equal(o.label_id, argmax(refProbs[i]));
    assert.equal(o.label, CLASSES[o.label_id]);
  });
  // Arguments are not a file: no progress bar.
  assert.doesNotMatch(r.stderr, /predict \(rank\)/);
});

test('CLI: default checkpoint is the newest run\'s; --format text; --quiet', async () => {
  const r = await cli(['predict', TEXTS[0], TEXTS[6]]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /checkpoint: .*tiny-new-epoch1/);
  const lines = r.stdout.trimEnd().split('\n');
  assert.equal(lines.length, 2);
  [0, 6].forEach((t, i) => {
    const label = CLASSES[argmax(refProbs[t])];
    assert.ok(lines[i].startsWith(label.padEnd(8) + '  '), lines[i]);
    const shown = Object.fromEntries([...lines[i].matchAll(/(\w+)=([\d.]+)/g)].map((m) => [m[1], Number(m[2])]));
    assert.deepEqual(Object.keys(shown), CLASSES);
    assertClose(CLASSES.map((c) => shown[c]), refProbs[t], 2e-4, `text line ${i}`);
    assert.ok(lines[i].endsWith(TEXTS[t]), lines[i]);
  });
  const q = await cli(['predict', '--quiet', '--weights-name', 'tiny-old-epoch1', TEXTS[0]]);
  assert.equal(q.code, 0, q.stderr);
  assert.equal(q.stderr, '');
  assert.equal(q.stdout.trim().split('\n').length, 1);
});

test('CLI: --file with one text a line, --format tsv, progress bar on stderr', async () => {
  const file = path.join(work, 'texts.txt');
  const withTab = 'tab\there and a back\\slash';
  fs.writeFileSync(file, `${TEXTS[0]}\n\n${TEXTS[3]}\r\n${withTab}\n${TEXTS[7]}\n`);
  const r = await cli(['predict', '--weights', ckpt, '--file', file, '--format', 'tsv']);
  assert.equal(r.code, 0, r.stderr);
  const rows = r.stdout.trimEnd().split('\n').map((l) => l.split('\t'));
  assert.deepEqual(rows[0], ['text', 'label', 'label_id', ...CLASSES.map((c) => `p_${c}`)]);
  assert.equal(rows.length, 5);
  const unescape = (s: string) => s.replace(/\\(.)/g, (_, c: string) => (c === 't' ? '\t' : c === 'n' ? '\n' : c === 'r' ? '\r' : c));
  assert.deepEqual(rows.slice(1).map((r) => unescape(r[0])), [TEXTS[0], TEXTS[3], withTab, TEXTS[7]]);
  for (const [row, t] of [[rows[1], 0], [rows[2], 3], [rows[4], 7]] as const) {
    assert.equal(row.length, 3 + CLASSES.length);
    assertProbs(row.slice(3).map(Number), refProbs[t], `tsv ${t}`);
    assert.equal(row[1], CLASSES[argmax(refProbs[t])]);
    assert.equal(Number(row[2]), argmax(refProbs[t]));
  }
  assert.match(r.stderr, /predict \(rank\) 4\/4 100%/);
  assert.match(r.stderr, /skipped 1 blank line/);
});

test('CLI: texts on stdin, --decode generate', async () => {
  const texts = [TEXTS[1], TEXTS[4], TEXTS[8]];
  const r = await cli(['predict', '--weights', ckpt, '--decode', 'generate', '--format', 'json'], { stdin: texts.join('\n') + '\n' });
  assert.equal(r.code, 0, r.stderr);
  const out = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(out.length, 3);
  out.forEach((o, i) => {
    const ref = refGenerated[TEXTS.indexOf(texts[i])];
    assert.equal(o.text, texts[i]);
    assert.equal(o.generated, ref);
    assert.equal(o.label_id, CLASSES.indexOf(ref.trim().toLowerCase()));
    assert.equal('probabilities' in o, false);
  });
  // `--file -` is stdin too.
  const dash = await cli(['predict', '--weights', ckpt, '--file', '-', '--format', 'json'], { stdin: TEXTS[5] });
  assert.equal(dash.code, 0, dash.stderr);
  assertProbs(CLASSES.map((c) => JSON.parse(dash.stdout).probabilities[c]), refProbs[5], 'stdin');
});

test('CLI: --file JSONL with --text-column', async () => {
  const file = path.join(work, 'tweets.jsonl');
  fs.writeFileSync(file, [TEXTS[2], TEXTS[6]].map((t, i) => JSON.stringify({ id: i, tweet: t, extra: [1] })).join('\n') + '\n');
  const r = await cli(['predict', '--weights', ckpt, '--file', file, '--text-column', 'tweet', '--format', 'json', '--quiet']);
  assert.equal(r.code, 0, r.stderr);
  const out = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(out.map((o) => o.text), [TEXTS[2], TEXTS[6]]);
  assertProbs(CLASSES.map((c) => out[1].probabilities[c]), refProbs[6], 'jsonl');
  // A .jsonl file is read as JSONL with the default column "text".
  const bad = path.join(work, 'bad.jsonl');
  fs.writeFileSync(bad, `${JSON.stringify({ text: 'fine' })}\n${JSON.stringify({ tweet: 'no text field' })}\n`);
  const e = await cli(['predict', '--weights', ckpt, '--file', bad]);
  assert.equal(e.code, 2);
  assert.equal(e.stderr.trim().split('\n').length, 1, e.stderr);
  assert.match(e.stderr, /bad\.jsonl:2: no "text" field \(the object has "tweet"\)/);
});

test('CLI errors: one line, exit code 2', async () => {
  const empty = path.join(work, 'empty.txt');
  fs.writeFileSync(empty, '');
  const noRun = fs.mkdtempSync(path.join(work, 'norun-'));
  const bare = path.join(work, 'bare2');
  model.savePretrained(bare);
  tokenizer.savePretrained(bare);
  const cases: [string[], RegExp, { cwd?: string; stdin?: string }?][] = [
    [['predict', '--weights', path.join(work, 'missing'), 'hello'], /checkpoint .*missing: no such folder/],
    [['predict', 'hello'], /no checkpoint under .*weights; train first/, { cwd: noRun }],
    [['predict', '--weights', ckpt, '--file', empty], /empty\.txt: no texts to classify \(the input is empty\)/],
    [['predict', '--weights', ckpt, '--file', path.join(work, 'none.txt')], /--file .*none\.txt: no such file/],
    [['predict', '--weights', ckpt], /no texts to classify: give them as arguments, with --file FILE, or as lines on stdin/],
    [['predict', '--weights', ckpt], /no texts to classify/, { stdin: '\n  \n' }],
    [['predict', '--weights', ckpt, '--file', empty, 'hello'], /as arguments or with --file, not both/],
    [['predict', '--weights', bare, 'hello'], /has no t5cls\.json, so its classes are unknown; pass the classes map/],
    [['predict', '--weights', ckpt, '--format', 'xml', 'hello'], /'--format <value>' argument 'xml' is invalid. Allowed choices are text, json, tsv/],
  ];
  for (const [args, pattern, opts] of cases) {
    const r = await cli(args, opts);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, `${args.join(' ')} printed: ${r.stderr}`);
    assert.match(r.stderr, pattern);
    assert.equal(r.stdout, '');
  }
  // With a classes map the bare folder works.
  const map = path.join(work, 'map.json');
  fs.writeFileSync(map, JSON.stringify(Object.fromEntries(CLASSES.map((c, i) => [c, i]))));
  const ok = await cli(['predict', '--weights', bare, '--classes-map', map, '--prefix-text', PREFIX, '--format', 'json', TEXTS[3]]);
  assert.equal(ok.code, 0, ok.stderr);
  assertProbs(CLASSES.map((c) => JSON.parse(ok.stdout).probabilities[c]), refProbs[3], 'bare with classes map');
});

test('CLI help shows rank as predict\'s default decoding and the positional texts', async () => {
  const r = await cli(['predict', '--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /predict \[options\] \[texts\.\.\.\]/);
  const decode = /--decode <value>[\s\S]*?(?=\n  -)/.exec(r.stdout)?.[0] ?? '';
  assert.match(decode.replace(/\s+/g, ' '), /\(default: "rank"\)/);
  assert.match(r.stdout, /--format <value>/);
});

test('a checkpoint that cannot be written is a runtime error (exit code 1), named, with no temp folder left', async () => {
  const model = T5ForConditionalGeneration.fromPretrained(ckpt);
  const tokenizer = await T5Tokenizer.fromPretrained(ckpt);
  const blocked = path.join(work, 'not-a-folder');
  fs.writeFileSync(blocked, 'a file where the weights folder should be');
  try {
    await assert.rejects(saveCheckpoint(path.join(blocked, 'tiny-epoch1'), model, tokenizer, meta('tiny', '2030-01-03T00:00:00.000Z')), (e: Error & { exitCode?: number }) => {
      assert.equal(e.exitCode, 1);
      assert.match(e.message, /^could not save the checkpoint \S+tiny-epoch1: .*; earlier checkpoints are intact$/);
      return true;
    });
    assert.deepEqual(fs.readdirSync(work).filter((n) => n.includes('partial')), []);
  } finally {
    model.dispose();
  }
});

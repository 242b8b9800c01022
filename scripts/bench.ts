/**
 * Speed and memory benchmark (not a test; CI never runs it).
 *
 *   npm run bench -- [--model-config tiny|mini|small|base|large|xl|path/to/config.json] [--batch-size N]
 *                    [--modes adamw,adafactor,generate,rank] [--steps N] [--backend auto|wasm|cpu|tensorflow]
 *                    [--threads N] [--lora-r R [--lora-alpha A] [--lora-dropout P]
 *                    [--lora-target-modules q,v|all-linear|name,…]] [--json]
 *   npm run bench -- --job emotion [--json]
 *
 * Default: a T5 of the given shape (t5-small's by default; random, initialised as HF does); training batch N (16)
 * × 64 input tokens × 4 label tokens with AdamW and with Adafactor, then evaluation of batch 4N × 64 tokens by
 * greedy generation (2 new tokens) and by rank classification over 4 class names. The first 2 steps of each are
 * warm-up. The engine is the one `auto` would give a job of that shape. With a single mode, peak_rss_mb is that
 * mode's alone (each optimizer in its own process, as the PyTorch reference figures are measured).
 * With --lora-r, training trains a LoRA adapter (PEFT's math; q,v by default) attached to the frozen model: only the
 * adapter's tensors are differentiated and given to the optimizer, and the output adds `trainable` (the numbers
 * trained) and `lora` ({r, alpha, targets}). scripts/reference/torch_bench.py runs the same job in PyTorch (+ PEFT).
 * `--job emotion`: one AdamW epoch over the first 512 TweetEval emotion tweets plus validation on all val tweets.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { tf } from '../src/tf.js';
import { initBackend, type BackendChoice } from '../src/engine/init.js';
import { NAMED_CONFIGS, T5Config } from '../src/model/config.js';
import { estimateMemory, parameterCount } from '../src/model/memory_estimate.js';
import { T5ForConditionalGeneration } from '../src/model/modeling_t5.js';
import { ALL_LINEAR, LoraAdapter, LoraConfig } from '../src/model/lora/index.js';
import { Adafactor, AdamW } from '../src/train/optimizers/index.js';
import { T5Tokenizer } from '../src/tokenizer/index.js';
import { disposeBatch, encodeClassNames, encodeExamples, lengthGroupedBatches, trainBatch, type Example } from '../src/data/batches.js';
import { predictRank } from '../src/eval/decoding.js';
import { Rng } from '../src/random.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SHARED = path.resolve(ROOT, '../shared');
const TOKENIZER_DIR = path.join(SHARED, 'models/t5-small-tokenizer');
const EMOTION = path.join(SHARED, 'data/tweeteval/emotion');
const CLASS_NAMES = ['anger', 'joy', 'optimism', 'sadness'];

const MODES_DEFAULT = 'adamw,adafactor,generate,rank';
const { values: args } = parseArgs({
  options: {
    backend: { type: 'string', default: 'auto' },
    threads: { type: 'string' },
    steps: { type: 'string', default: '5' },
    job: { type: 'string' },
    'model-config': { type: 'string', default: 'small' },
    'batch-size': { type: 'string', default: '16' },
    modes: { type: 'string', default: MODES_DEFAULT },
    json: { type: 'boolean', default: false },
    'lora-r': { type: 'string' },
    'lora-alpha': { type: 'string' },
    'lora-dropout': { type: 'string' },
    'lora-target-modules': { type: 'string' },
  },
});
const log = (line: string) => {
  if (!args.json) console.error(line);
};

const peakRssMb = () => process.resourceUsage().maxRSS / 1024;

/** The variables a step trains: the adapter's when one is attached (the model's own stay frozen), else every parameter. */
function trainedVariables(model: T5ForConditionalGeneration): tf.Variable[] {
  return model.adapter ? model.adapter.trainableVariables() : [...model.namedParameters().values()];
}

function trainStep(model: T5ForConditionalGeneration, opt: tf.Optimizer, batch: ReturnType<typeof trainBatch>): number {
  const params = trainedVariables(model);
  const { value, grads } = tf.variableGrads(
    () => model.forward({ inputIds: batch.inputIds, attentionMask: batch.attentionMask, labels: batch.labels, training: true }).loss!,
    params,
  );
  opt.applyGradients(grads);
  const loss = value.dataSync()[0];
  tf.dispose([value, ...Object.values(grads)]);
  return loss;
}

const NAMED_SHAPES = Object.keys(NAMED_CONFIGS).join('|');

/** --model-config: a named shape (tiny, mini, small, base, large, xl) or a config.json file. */
function benchConfig(): T5Config {
  const name = args['model-config']!;
  if (NAMED_CONFIGS[name]) return new T5Config({ ...NAMED_CONFIGS[name] }, name);
  if (!fs.existsSync(name)) throw new Error(`--model-config: "${name}" is neither a named shape (${NAMED_SHAPES}) nor a config.json file`);
  return T5Config.fromFile(name);
}

/** --lora-r and its companions: the adapter to train, or undefined for full fine-tuning. */
function benchLora(): LoraConfig | undefined {
  type LoraFlag = 'lora-r' | 'lora-alpha' | 'lora-dropout' | 'lora-target-modules';
  const number = (flag: LoraFlag): number | undefined => {
    const text = args[flag];
    if (text === undefined) return undefined;
    const value = Number(text);
    if (text.trim() === '' || !Number.isFinite(value)) throw new Error(`--${flag}: expected a number, got "${text}"`);
    return value;
  };
  const r = number('lora-r');
  if (r === undefined) {
    const stray = (['lora-alpha', 'lora-dropout', 'lora-target-modules'] as const).find((f) => args[f] !== undefined);
    if (stray) throw new Error(`--${stray} needs --lora-r`);
    return undefined;
  }
  const targets = args['lora-target-modules'];
  return new LoraConfig({
    r,
    alpha: number('lora-alpha'),
    dropout: number('lora-dropout'),
    targetModules: targets === undefined ? undefined : targets === ALL_LINEAR ? ALL_LINEAR : targets.split(',').map((t) => t.trim()),
  });
}

const MODES = ['adamw', 'adafactor', 'generate', 'rank'] as const;
type Mode = (typeof MODES)[number];

function benchModes(): Mode[] {
  const modes = args.modes!.split(',').map((m) => m.trim());
  for (const m of modes)
    if (!(MODES as readonly string[]).includes(m)) throw new Error(`--modes: unknown mode "${m}" (expected ${MODES.join(', ')})`);
  return modes as Mode[];
}

/** Training batches × 64 input tokens × 4 label tokens; evaluation batches of 4× as many inputs. */
function jobShapes(batch: number) {
  return {
    train: { batchSize: batch, sourceLength: 64, targetLength: 4 },
    eval: { batchSize: 4 * batch, sourceLength: 64, targetLength: 4 },
  };
}

async function fixedShape(config: T5Config, modes: Mode[], batch: number, backendName: string, threads: number, lora?: LoraConfig) {
  const steps = Number(args.steps);
  const rng = new Rng(1);
  const tokenizer = await T5Tokenizer.fromPretrained(TOKENIZER_DIR);
  const classTokens = encodeClassNames(tokenizer, CLASS_NAMES);
  const vocab = Math.min(config.vocab_size, 32000);
  const randomInput = (n: number) => Array.from({ length: n }, () => [...Array.from({ length: 63 }, () => 3 + rng.int(vocab - 3)), 1]);
  const trainExamples = () => randomInput(batch).map((ids) => ({ inputIds: ids, label: rng.int(4) }));
  const labelTokens = Array.from({ length: 4 }, () => [3 + rng.int(vocab - 3), 3 + rng.int(vocab - 3), 3 + rng.int(vocab - 3), 1]);
  const result: Record<string, unknown> = { backend: backendName, threads, params: parameterCount(config) };
  let tensorsFirst = 0;
  let tensorsLast = 0;
  // Tensors alive after the first timed step and after the last, of the first mode run (a leak shows as growth).
  const count = (first: boolean, last: boolean, mode: Mode) => {
    if (mode !== modes[0]) return;
    if (first) tensorsFirst = tf.memory().numTensors;
    if (last) tensorsLast = tf.memory().numTensors;
  };

  for (const name of modes.filter((m) => m === 'adamw' || m === 'adafactor')) {
    const model = new T5ForConditionalGeneration(config, { seed: 0 });
    const adapter = lora ? new LoraAdapter(model, lora, { seed: 1 }) : undefined;
    if (adapter) {
      model.attachAdapter(adapter);
      result.trainable = adapter.parameterCount;
      result.lora = { r: lora!.r, alpha: lora!.alpha, targets: lora!.targetModules };
    }
    const opt =
      name === 'adamw'
        ? new AdamW({ lr: 1e-4, inPlaceParameters: true })
        : new Adafactor({ lr: 1e-3, scaleParameter: false, relativeStep: false, warmupInit: false, inPlaceParameters: true });
    let timed = 0;
    for (let s = 0; s < steps + 2; s++) {
      const batchTensors = trainBatch(trainExamples(), labelTokens, 0);
      const t0 = performance.now();
      trainStep(model, opt, batchTensors);
      const dt = performance.now() - t0;
      disposeBatch(batchTensors);
      if (s >= 2) timed += dt;
      count(s === 2, s === steps + 1, name);
      log(`train ${name} step ${s + 1}${s < 2 ? ' (warm-up)' : ''}: ${(dt / 1000).toFixed(2)} s`);
    }
    result[`train_${name}_ex_s`] = (batch * steps) / (timed / 1000);
    opt.dispose();
    adapter?.dispose();
    model.dispose();
  }

  const evalModes = modes.filter((m) => m === 'generate' || m === 'rank');
  const model = evalModes.length ? new T5ForConditionalGeneration(config, { seed: 0 }) : undefined;
  const evalBatch = 4 * batch;
  for (const mode of evalModes) {
    let timed = 0;
    const batches = Math.max(2, Math.ceil(steps / 2));
    for (let s = 0; s < batches + 2; s++) {
      const inputs = randomInput(evalBatch);
      const t0 = performance.now();
      if (mode === 'generate') {
        const ids = tf.tensor2d(inputs, undefined, 'int32');
        const mask = tf.ones([evalBatch, 64], 'int32');
        model!.generate({ inputIds: ids, attentionMask: mask, maxNewTokens: 2, suppressTokens: [1] });
        tf.dispose([ids, mask]);
      } else {
        predictRank(model!, inputs, CLASS_NAMES, classTokens, evalBatch);
      }
      const dt = performance.now() - t0;
      if (s >= 2) timed += dt;
      count(s === 2, s === batches + 1, mode);
      log(`eval ${mode} batch ${s + 1}${s < 2 ? ' (warm-up)' : ''}: ${(dt / 1000).toFixed(2)} s`);
    }
    result[`eval_${mode}_ex_s`] = (evalBatch * batches) / (timed / 1000);
  }
  model?.dispose();
  result.peak_rss_mb = peakRssMb();
  result.tensors_first = tensorsFirst;
  result.tensors_last = tensorsLast;
  return result;
}

function t5SmallModel(seed: number): T5ForConditionalGeneration {
  return new T5ForConditionalGeneration(T5Config.fromFile(path.join(TOKENIZER_DIR, 'config.json')), { seed });
}

function readTweetEval(split: 'train' | 'val'): Example[] {
  const texts = fs.readFileSync(path.join(EMOTION, `${split}_text.txt`), 'utf-8').split('\n');
  const labels = fs.readFileSync(path.join(EMOTION, `${split}_labels.txt`), 'utf-8').split('\n');
  return labels.filter((l) => l.trim() !== '').map((l, i) => ({ text: texts[i].trim(), label: Number(l) }));
}

async function emotionJob(backendName: string, threads: number) {
  const start = performance.now();
  const tokenizer = await T5Tokenizer.fromPretrained(TOKENIZER_DIR);
  const prefix = 'tweet_eval emotion sentence: ';
  const train = encodeExamples(tokenizer, readTweetEval('train').slice(0, 512), prefix, 512);
  const val = readTweetEval('val');
  const valInputs = encodeExamples(tokenizer, val, prefix, 512).map((e) => e.inputIds);
  const classTokens = encodeClassNames(tokenizer, CLASS_NAMES);
  const model = t5SmallModel(0);
  const opt = new AdamW({ lr: 1e-4 });
  const rng = new Rng(42);
  const order = lengthGroupedBatches(
    train.map((e) => e.inputIds.length),
    16,
    rng,
  );
  const t0 = performance.now();
  let done = 0;
  for (const b of order) {
    const batch = trainBatch(
      b.map((i) => train[i]),
      classTokens,
      0,
    );
    const loss = trainStep(model, opt, batch);
    disposeBatch(batch);
    done += b.length;
    log(`train ${done}/${train.length} loss ${loss.toFixed(4)} ${((done * 1000) / (performance.now() - t0)).toFixed(1)} ex/s`);
  }
  const trainS = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  const preds = predictRank(model, valInputs, CLASS_NAMES, classTokens, 64);
  const valS = (performance.now() - t1) / 1000;
  const accuracy = preds.labels.filter((l, i) => l === val[i].label).length / val.length;
  log(`validation accuracy after one epoch: ${accuracy.toFixed(4)}`);
  opt.dispose();
  model.dispose();
  return {
    backend: backendName,
    threads,
    train_examples: train.length,
    train_s: trainS,
    train_ex_s: train.length / trainS,
    val_examples: val.length,
    val_s: valS,
    val_ex_s: val.length / valS,
    total_s: (performance.now() - start) / 1000,
    peak_rss_mb: peakRssMb(),
  };
}

if (args.job !== undefined && args.job !== 'emotion') throw new Error(`unknown --job ${args.job} (expected emotion)`);
const config = benchConfig();
const modes = benchModes();
const lora = benchLora();
if (lora && args.job !== undefined) throw new Error('--lora-r: the emotion job trains the whole model');
const batch = Number(args['batch-size']);
if (!Number.isInteger(batch) || batch < 1) throw new Error(`--batch-size: expected a whole number >= 1, got ${args['batch-size']}`);
// The engine a user's job of this shape would get: auto leaves wasm out when its heap cannot hold the tensors.
const shapes = jobShapes(batch);
const estimates = modes.map((m) =>
  estimateMemory(config, m === 'adamw' || m === 'adafactor' ? { ...shapes.train, optimizer: m, lora } : shapes.eval),
);
const tensorBytes = Math.max(...estimates.map((e) => e.tensorBytes));
const info = await initBackend(args.backend as BackendChoice, {
  threads: args.threads ? Number(args.threads) : undefined,
  log,
  tensorBytes,
});
const out: Record<string, unknown> =
  args.job === 'emotion'
    ? await emotionJob(info.description, info.threads)
    : await fixedShape(config, modes, batch, info.description, info.threads, lora);
// What t5cls's memory estimate said beforehand (the engine choice and the refusal of jobs that cannot fit use it).
if (args.job === undefined) out.estimated_peak_mb = Math.max(...estimates.map((e) => e.totalBytes)) / 2 ** 20;
if (args.json) console.log(JSON.stringify(out));
else
  console.log(
    Object.entries(out)
      .map(([k, v]) => `${k}: ${typeof v === 'number' ? Number(v.toFixed(2)) : typeof v === 'object' ? JSON.stringify(v) : v}`)
      .join('\n'),
  );

/**
 * The memory estimate that decides the engine and refuses jobs a machine cannot hold: parameter counts against
 * the published sizes of the Hugging Face checkpoints, optimizer state against what the optimizers really keep,
 * and the one-line refusal with what would fit.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { tf } from '../src/tf.js';
import { initBackend } from '../src/engine/init.js';
import { NAMED_CONFIGS, T5Config } from '../src/model/config.js';
import { assertBackendHolds, estimateMemory, fitAdvice, parameterCount } from '../src/model/memory_estimate.js';
import { T5ForConditionalGeneration } from '../src/model/modeling_t5.js';
import { parameterShapes } from '../src/model/parameters.js';
import { Adafactor, AdamW } from '../src/train/optimizers/index.js';
import { checkJobMemory } from '../src/cli/job_memory.js';
import { T5clsError, UsageError } from '../src/errors.js';
import { reportError } from '../src/cli/main.js';
import { longestRow } from '../src/data/batches.js';
import { fixtureDir, MODEL_FIXTURES } from './helpers/fixtures.js';
import { readModelConfig } from '../src/model/pretrained_config.js';

const named = (name: string, extra: Record<string, unknown> = {}) => new T5Config({ ...NAMED_CONFIGS[name], ...extra }, name);
const FLAN_T5_BASE = named('base', { d_ff: 2048, feed_forward_proj: 'gated-gelu', tie_word_embeddings: false });
const T5_3B = new T5Config({ d_model: 1024, d_kv: 128, d_ff: 16384, num_layers: 24, num_heads: 32 }, 't5-3b');

describe('parameter count', () => {
  test('matches the published sizes of t5-small, t5-base, t5-large, flan-t5-base and t5-3b', () => {
    assert.equal(parameterCount(named('small')), 60_506_624);
    assert.equal(parameterCount(named('base')), 222_903_552);
    assert.equal(parameterCount(named('large')), 737_668_096);
    assert.equal(parameterCount(FLAN_T5_BASE), 247_577_856);
    assert.equal(parameterCount(T5_3B), 2_851_598_336);
  });

  test('equals the parameters the model defines, for every fixture config', () => {
    for (const name of MODEL_FIXTURES) {
      const c = readModelConfig(fixtureDir(name));
      const defined = parameterShapes(c).reduce((n, [, shape]) => n + shape.reduce((a, b) => a * b, 1), 0);
      assert.equal(parameterCount(c), defined, name);
    }
  });
});

describe('optimizer state', () => {
  const job = { batchSize: 2, sourceLength: 7, targetLength: 3 };

  for (const [name, make] of [
    ['adafactor', () => new Adafactor({ lr: 1e-3, scaleParameter: false, relativeStep: false, warmupInit: false })],
    ['adamw', () => new AdamW({ lr: 1e-3 })],
  ] as const) {
    test(`${name}: the estimate counts what the optimizer keeps after a step`, async () => {
      await initBackend('cpu', { threads: 1 });
      for (const fixture of ['t5-tiny', 't5-tiny-v11', 't5-tiny-v11-hf5']) {
        const model = T5ForConditionalGeneration.fromPretrained(fixtureDir(fixture));
        const opt = make();
        const grads = tf.tidy(() => Object.fromEntries([...model.namedParameters()].map(([n, v]) => [v.name, tf.onesLike(v)])));
        opt.applyGradients(grads);
        const state = await opt.getWeights();
        // Every state tensor but the step counters and the iteration count.
        const kept = state.filter((w) => !/\/step$|^iter$/.test(w.name)).reduce((n, w) => n + w.tensor.size, 0);
        assert.equal(estimateMemory(model.config, { ...job, optimizer: name }).optimizerBytes, 4 * kept, fixture);
        tf.dispose([...Object.values(grads), ...state.map((w) => w.tensor)]);
        opt.dispose();
        model.dispose();
      }
    });
  }

  test('Adafactor keeps t5-large factored: its state is under 1% of AdamW’s', () => {
    const shape = { batchSize: 8, sourceLength: 64, targetLength: 4 };
    const adamw = estimateMemory(named('large'), { ...shape, optimizer: 'adamw' });
    const adafactor = estimateMemory(named('large'), { ...shape, optimizer: 'adafactor' });
    assert.equal(adamw.optimizerBytes, 2 * adamw.weightBytes);
    assert.ok(adafactor.optimizerBytes < 0.01 * adamw.optimizerBytes, `${adafactor.optimizerBytes}`);
    assert.equal(adafactor.gradientBytes, adafactor.weightBytes);
  });

  test('inference keeps no gradients or optimizer state, and activations grow with the batch', () => {
    const small = estimateMemory(named('base'), { batchSize: 8, sourceLength: 64, targetLength: 4 });
    const large = estimateMemory(named('base'), { batchSize: 64, sourceLength: 64, targetLength: 4 });
    assert.equal(small.gradientBytes + small.optimizerBytes, 0);
    assert.ok(large.activationBytes > 7 * small.activationBytes);
  });
});

describe('jobs that do not fit', () => {
  test('t5-large with AdamW on 12 GB: one line with the estimate, the memory and what fits', () => {
    const job = { batchSize: 8, sourceLength: 64, targetLength: 4, optimizer: 'adamw' as const };
    assert.throws(
      () => checkJobMemory(named('large'), job, 't5-large', { availableBytes: 12e9 }),
      (e: Error) =>
        e instanceof UsageError &&
        !e.message.includes('\n') &&
        /^training t5-large \(738M parameters\) with AdamW at batch 8 needs about 1\d\.\d GB \(weights 3\.0 GB, gradients 3\.0 GB, optimizer state 5\.9 GB, activations \d\.\d GB\) but this machine has 12\.0 GB; what would fit: --use-adafactor \(about [5-9]\.\d GB\); or a GPU/.test(
          e.message,
        ),
    );
    // The same job fits a 24 GB machine.
    assert.ok(checkJobMemory(named('large'), job, 't5-large', { availableBytes: 24e9 }).totalBytes < 21.6e9);
  });

  test('smaller batches with gradient accumulation keep the effective batch', () => {
    const job = { batchSize: 64, sourceLength: 128, targetLength: 4, optimizer: 'adafactor' as const };
    const full = estimateMemory(named('large'), job).totalBytes;
    const advice = fitAdvice(named('large'), job, 2, full * 0.8);
    assert.equal(advice.alternatives.length, 1);
    assert.match(advice.alternatives[0]!.options, /^--batch-size (32|16|8) --gradient-accumulation-steps (4|8|16)$/);
    const [, b, acc] = /--batch-size (\d+) --gradient-accumulation-steps (\d+)/.exec(advice.alternatives[0]!.options)!;
    assert.equal(Number(b) * Number(acc), 64 * 2);
  });

  test('t5-3b with AdamW on a 24 GB machine cannot be helped but by a GPU', () => {
    assert.throws(
      () => checkJobMemory(T5_3B, { batchSize: 16, sourceLength: 64, targetLength: 4, optimizer: 'adamw' }, 't5-3b', { availableBytes: 24e9 }),
      (e: Error) => /^training t5-3b \(2\.9B parameters\) with AdamW at batch 16 needs about \d+\.\d GB .* but this machine has 24\.0 GB; what would fit: a GPU \(--device cuda with @tensorflow\/tfjs-node-gpu\)$/.test(e.message),
    );
  });
});

describe('models the wasm heap cannot hold', () => {
  test('a library user on wasm gets one line before anything is allocated; the cpu engine takes it', async () => {
    await initBackend('wasm', { threads: 1 });
    const before = tf.memory().numBytes;
    assert.throws(
      () => new T5ForConditionalGeneration(T5_3B),
      (e: Error) => e instanceof T5clsError && /^a T5 of 2852M parameters needs 11\.4 GB for its weights, more than the wasm backend's heap holds/.test(e.message),
    );
    assert.equal(tf.memory().numBytes, before);
    assert.doesNotThrow(() => assertBackendHolds(T5_3B, 'cpu'));
    assert.doesNotThrow(() => assertBackendHolds(named('base'), 'wasm'));
  });

  test('a wasm heap that runs out mid-job is reported with what to do, not as a bare wasm error', () => {
    const lines: string[] = [];
    const saved = console.error;
    console.error = (line: string) => lines.push(line);
    try {
      assert.equal(reportError(new WebAssembly.RuntimeError('memory access out of bounds'), false), 1);
      assert.equal(reportError(new Error('Aborted(OOM)'), false), 1);
    } finally {
      console.error = saved;
    }
    for (const line of lines) {
      assert.match(line, /^t5cls: error: the wasm backend ran out of memory \(its heap holds 4 GiB at most; .*\); run again with --backend cpu/);
    }
    assert.equal(lines.length, 2);
  });
});

test('the longest input of a large data set is found without overflowing the stack', () => {
  // 300,000 rows: spreading them into Math.max throws "Maximum call stack size exceeded".
  const rows = Array.from({ length: 300_000 }, (_, i) => new Array<number>(1 + (i % 97)).fill(5));
  rows[123_456] = new Array<number>(512).fill(5);
  assert.equal(longestRow(rows), 512);
  assert.equal(longestRow([]), 1);
});

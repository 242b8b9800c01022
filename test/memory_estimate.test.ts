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
import { assertBackendHolds, estimateMemory, fitAdvice, parameterCount, type JobShape } from '../src/model/memory_estimate.js';
import { T5ForConditionalGeneration } from '../src/model/modeling_t5.js';
import { parameterShapes } from '../src/model/parameters.js';
import { Adafactor, AdamW } from '../src/train/optimizers/index.js';
import { checkJobMemory } from '../src/cli/job_memory.js';
import { T5clsError, UsageError } from '../src/errors.js';
import { reportError } from '../src/cli/main.js';
import { longestRow } from '../src/data/batches.js';
import { fixtureDir, MODEL_FIXTURES, readJson } from './helpers/fixtures.js';
import { readModelConfig } from '../src/model/pretrained_config.js';
import { LoraAdapter, LoraConfig } from '../src/model/lora/index.js';
import * as path from 'node:path';

const named = (name: string, extra: Record<string, unknown> = {}) => new T5Config({ ...NAMED_CONFIGS[name], ...extra }, name);
const FLAN_T5_BASE = named('base', { d_ff: 2048, feed_forward_proj: 'gated-gelu', tie_word_embeddings: false });
const T5_3B = new T5Config({ d_model: 1024, d_kv: 128, d_ff: 16384, num_layers: 24, num_heads: 32 }, 't5-3b');
const FLAN_T5_XL = named('xl');
const QV16 = new LoraConfig({ r: 16 });

describe('parameter count', () => {
  test('matches the published sizes of t5-small, t5-base, t5-large, flan-t5-base and t5-3b', () => {
    assert.equal(parameterCount(named('small')), 60_506_624);
    assert.equal(parameterCount(named('base')), 222_903_552);
    assert.equal(parameterCount(named('large')), 737_668_096);
    assert.equal(parameterCount(FLAN_T5_BASE), 247_577_856);
    assert.equal(parameterCount(T5_3B), 2_851_598_336);
  });

  test('the named shape xl is flan-t5-xl: 2,849,757,184 parameters, gated-gelu, its own unscaled LM head', () => {
    assert.equal(parameterCount(FLAN_T5_XL), 2_849_757_184);
    assert.equal(FLAN_T5_XL.isGatedAct, true);
    assert.equal(FLAN_T5_XL.denseActFn, 'gelu_new');
    assert.equal(FLAN_T5_XL.tie_word_embeddings, false);
    assert.equal(FLAN_T5_XL.scale_decoder_outputs, false);
    assert.equal(FLAN_T5_XL.innerDim, 2048);
    assert.ok(parameterShapes(FLAN_T5_XL).some(([name, shape]) => name === 'lm_head.weight' && shape[0] === 32128 && shape[1] === 2048));
    // The others are T5 v1.0's shapes: relu, tied and scaled head.
    for (const name of ['tiny', 'mini', 'small', 'base', 'large']) {
      assert.equal(named(name).isGatedAct, false, name);
      assert.equal(named(name).scale_decoder_outputs, true, name);
    }
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

describe('LoRA jobs', () => {
  const job = { batchSize: 8, sourceLength: 64, targetLength: 4 };

  test("the adapter's trained numbers are PEFT's trainable params", () => {
    // peft 0.21's get_nb_trainable_parameters() for these shapes (HF T5ForConditionalGeneration, vocabulary 32128).
    const trained = (c: T5Config, lora: LoraConfig) => estimateMemory(c, { ...job, optimizer: 'adamw', lora }).trainableParameters;
    assert.equal(trained(named('small'), new LoraConfig({ r: 8 })), 294_912);
    assert.equal(trained(named('small'), QV16), 589_824);
    assert.equal(trained(named('small'), new LoraConfig({ r: 8, targetModules: 'all-linear' })), 1_081_344);
    assert.equal(trained(FLAN_T5_BASE, QV16), 1_769_472);
    assert.equal(trained(FLAN_T5_BASE, new LoraConfig({ r: 8, targetModules: 'all-linear' })), 3_391_488);
    assert.equal(trained(FLAN_T5_XL, QV16), 9_437_184);
    assert.equal(trained(FLAN_T5_XL, new LoraConfig({ r: 8, targetModules: 'all-linear' })), 17_694_720);
    // Full fine-tuning trains every parameter; inference none.
    assert.equal(estimateMemory(named('small'), { ...job, optimizer: 'adafactor' }).trainableParameters, 60_506_624);
    assert.equal(estimateMemory(named('small'), job).trainableParameters, 0);
  });

  test("the fixtures' adapters: PEFT's count, and the adapter t5cls builds", () => {
    for (const name of ['t5-tiny-qv', 't5-tiny-v11-all']) {
      const fx = readJson<{
        base: string;
        lora_config: { r: number; lora_alpha: number; target_modules: string[] };
        trainable_parameters: number;
      }>(path.join(fixtureDir('lora'), name, 'lora.json'));
      const lora = new LoraConfig({ r: fx.lora_config.r, alpha: fx.lora_config.lora_alpha, targetModules: fx.lora_config.target_modules });
      const config = readModelConfig(fixtureDir(fx.base));
      const e = estimateMemory(config, { ...job, optimizer: 'adamw', lora });
      assert.equal(e.trainableParameters, fx.trainable_parameters, name);
      const model = new T5ForConditionalGeneration(config, { seed: 0 });
      const adapter = new LoraAdapter(model, lora);
      assert.equal(adapter.parameterCount, fx.trainable_parameters, name);
      adapter.dispose();
      model.dispose();
    }
  });

  test('frozen weights are held once; gradients and AdamW moments only for the adapter', () => {
    const full = estimateMemory(FLAN_T5_XL, { ...job, optimizer: 'adamw' });
    const lora = estimateMemory(FLAN_T5_XL, { ...job, optimizer: 'adamw', lora: QV16 });
    assert.equal(lora.parameters, 2_849_757_184);
    assert.equal(lora.weightBytes, 4 * (2_849_757_184 + 9_437_184));
    assert.equal(lora.gradientBytes, 4 * 9_437_184);
    assert.equal(lora.optimizerBytes, 8 * 9_437_184);
    assert.equal(full.gradientBytes, full.weightBytes);
    // Backward still runs through every layer: the model's activations stay, the LoRA branches add theirs.
    assert.ok(lora.activationBytes > full.activationBytes);
    assert.ok(lora.totalBytes < 0.4 * full.totalBytes, `${lora.totalBytes} vs ${full.totalBytes}`);
    // Inference with an adapter attached: its weights beside the model's, nothing else.
    const inference = estimateMemory(FLAN_T5_XL, { ...job, lora: QV16 });
    assert.equal(inference.gradientBytes + inference.optimizerBytes + inference.trainableParameters, 0);
    assert.equal(inference.activationBytes, estimateMemory(FLAN_T5_XL, job).activationBytes);
  });

  /** What the LoRA branches add to a training step's activations, by the estimate (elements). */
  const branchElements = (c: T5Config, shape: JobShape, lora: LoraConfig) => {
    const full = estimateMemory(c, { ...shape, optimizer: 'adamw' }).activationBytes / 4;
    return estimateMemory(c, { ...shape, optimizer: 'adamw', lora }).activationBytes / 4 - Math.round(1.5 * full);
  };

  test("the LoRA branches' saved tensors: x·Aᵀ, three products as wide as the layer's output, with dropout its input twice", () => {
    // t5-small, q and v: encoder q, v and cross-attention v see the 64 source tokens, decoder self q, v and cross q the 4 target tokens.
    const sourceLayers = 6 * 2 + 6;
    const targetLayers = 6 * 3;
    const perToken = 16 + 3 * 512;
    assert.equal(branchElements(named('small'), job, QV16), 8 * (64 * sourceLayers + 4 * targetLayers) * perToken);
    assert.equal(
      branchElements(named('small'), job, new LoraConfig({ r: 16, dropout: 0.05 })),
      8 * (64 * sourceLayers + 4 * targetLayers) * (perToken + 2 * 512),
    );
    // The model's own activations, as a LoRA step holds them: 1.5 times the tensors its forward pass saves.
    const full = estimateMemory(named('small'), { ...job, optimizer: 'adamw' });
    const lora = estimateMemory(named('small'), { ...job, optimizer: 'adamw', lora: QV16 });
    assert.equal(lora.activationBytes, 4 * (Math.round((1.5 * full.activationBytes) / 4) + branchElements(named('small'), job, QV16)));
  });

  test("the LoRA branches' term equals what the adapter adds to the tensors a training step saves (tfjs's tape)", async () => {
    await initBackend('cpu', { threads: 1 });
    const shape = { batchSize: 2, sourceLength: 7, targetLength: 3 };
    const inputIds = [
      [5, 6, 7, 8, 9, 10, 1],
      [11, 12, 13, 14, 15, 16, 1],
    ];
    const labels = [
      [3, 4, 1],
      [5, 6, 1],
    ];
    /** Bytes of the distinct tensors the tape saves for the backward pass, the model's and adapter's variables left out. */
    const savedBytes = (model: T5ForConditionalGeneration, adapter?: LoraAdapter): number => {
      const variables = [...model.namedParameters().values(), ...(adapter?.trainableVariables() ?? [])];
      const seen = new Set<object>(variables.map((v) => v.dataId));
      let bytes = 0;
      const { value, grads } = tf.variableGrads(() => {
        const loss = model.forward({ inputIds, attentionMask: inputIds.map((r) => r.map(() => 1)), labels, training: true }).loss!;
        const tape = (tf.engine() as unknown as { state: { activeTape: { saved?: tf.Tensor[] }[] } }).state.activeTape;
        for (const node of tape) {
          for (const t of node.saved ?? []) {
            // Scalars (the branch's scaling, say) are left out: the estimate counts tensors as wide as a layer.
            if (seen.has(t.dataId) || t.size === 1) continue;
            seen.add(t.dataId);
            bytes += 4 * t.size;
          }
        }
        return loss as tf.Scalar;
      }, adapter?.trainableVariables() ?? variables);
      tf.dispose([value, ...Object.values(grads)]);
      return bytes;
    };
    for (const [fixture, lora] of [
      ['t5-tiny', new LoraConfig({ r: 4 })],
      ['t5-tiny-v11', new LoraConfig({ r: 8, targetModules: 'all-linear', dropout: 0.1 })],
    ] as const) {
      const model = T5ForConditionalGeneration.fromPretrained(fixtureDir(fixture));
      const without = savedBytes(model);
      const adapter = new LoraAdapter(model, lora);
      model.attachAdapter(adapter);
      const added = savedBytes(model, adapter) - without;
      assert.equal(added, 4 * branchElements(model.config, shape, lora), fixture);
      model.detachAdapter();
      adapter.dispose();
      model.dispose();
    }
  });

  for (const [name, make] of [
    ['adafactor', () => new Adafactor({ lr: 1e-3, scaleParameter: false, relativeStep: false, warmupInit: false })],
    ['adamw', () => new AdamW({ lr: 1e-3 })],
  ] as const) {
    test(`${name}: the estimate counts what the optimizer keeps for the adapter after a step`, async () => {
      await initBackend('cpu', { threads: 1 });
      for (const [fixture, lora] of [
        ['t5-tiny', new LoraConfig({ r: 4 })],
        ['t5-tiny-v11', new LoraConfig({ r: 8, targetModules: 'all-linear' })],
      ] as const) {
        const model = T5ForConditionalGeneration.fromPretrained(fixtureDir(fixture));
        const adapter = new LoraAdapter(model, lora);
        const opt = make();
        const grads = tf.tidy(() => Object.fromEntries(adapter.trainableVariables().map((v) => [v.name, tf.onesLike(v)])));
        opt.applyGradients(grads);
        const state = await opt.getWeights();
        const kept = state.filter((w) => !/\/step$|^iter$/.test(w.name)).reduce((n, w) => n + w.tensor.size, 0);
        const e = estimateMemory(model.config, { ...job, optimizer: name, lora });
        assert.equal(e.optimizerBytes, 4 * kept, fixture);
        assert.equal(e.gradientBytes, 4 * adapter.parameterCount, fixture);
        tf.dispose([...Object.values(grads), ...state.map((w) => w.tensor)]);
        opt.dispose();
        adapter.dispose();
        model.dispose();
      }
    });
  }
});

describe('jobs that do not fit', () => {
  test('t5-large with AdamW on 12 GB: one line with the estimate, the memory and what fits', () => {
    const job = { batchSize: 8, sourceLength: 64, targetLength: 4, optimizer: 'adamw' as const };
    assert.throws(
      () => checkJobMemory(named('large'), job, 't5-large', { availableBytes: 12e9 }),
      (e: Error) =>
        e instanceof UsageError &&
        !e.message.includes('\n') &&
        /^training t5-large \(738M parameters\) with AdamW at batch 8 needs about 1\d\.\d GB \(weights 3\.0 GB, gradients 3\.0 GB, optimizer state 5\.9 GB, activations \d\.\d GB\) but this machine has 12\.0 GB; what would fit: --use-adafactor \(about [5-9]\.\d GB\); or --lora-r 16 \(about [3-9]\.\d GB\); or a GPU/.test(
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
    // Full fine-tuning's own alternative first; then training a LoRA adapter instead.
    assert.equal(advice.alternatives.length, 2);
    assert.match(advice.alternatives[1]!.options, /^--lora-r 16( --batch-size \d+ --gradient-accumulation-steps \d+)?$/);
    assert.match(advice.alternatives[0]!.options, /^--batch-size (32|16|8) --gradient-accumulation-steps (4|8|16)$/);
    const [, b, acc] = /--batch-size (\d+) --gradient-accumulation-steps (\d+)/.exec(advice.alternatives[0]!.options)!;
    assert.equal(Number(b) * Number(acc), 64 * 2);
  });

  test('t5-3b with AdamW on a 24 GB machine: no full fine-tuning fits, a LoRA adapter at a quarter of the batch does', () => {
    assert.throws(
      () =>
        checkJobMemory(T5_3B, { batchSize: 16, sourceLength: 64, targetLength: 4, optimizer: 'adamw' }, 't5-3b', { availableBytes: 24e9 }),
      (e: Error) =>
        /^training t5-3b \(2\.9B parameters\) with AdamW at batch 16 needs about \d+\.\d GB .* but this machine has 24\.0 GB; what would fit: --lora-r 16 --batch-size 4 --gradient-accumulation-steps 4 \(about 1\d\.\d GB\); or a GPU \(--device cuda with @tensorflow\/tfjs-node-gpu\)$/.test(
          e.message,
        ),
    );
    // On 12 GB the frozen weights alone do not fit: only a GPU.
    assert.throws(
      () =>
        checkJobMemory(T5_3B, { batchSize: 16, sourceLength: 64, targetLength: 4, optimizer: 'adamw' }, 't5-3b', { availableBytes: 12e9 }),
      (e: Error) => /; what would fit: a GPU \(--device cuda with @tensorflow\/tfjs-node-gpu\)$/.test(e.message),
    );
  });

  test('flan-t5-xl on a 24 GB machine: full AdamW is refused with --lora-r 16 as the way, which is admitted', () => {
    const job = { batchSize: 8, sourceLength: 64, targetLength: 4, optimizer: 'adamw' as const };
    let advised = 0;
    assert.throws(
      () => checkJobMemory(FLAN_T5_XL, job, 'flan-t5-xl', { availableBytes: 24e9 }),
      (e: Error) => {
        const m =
          /^training flan-t5-xl \(2\.8B parameters\) with AdamW at batch 8 needs about 5\d\.\d GB \(weights 11\.4 GB, gradients 11\.4 GB, optimizer state 22\.8 GB, activations \d\.\d GB\) but this machine has 24\.0 GB; what would fit: --lora-r 16 \(about (1\d\.\d) GB\); or a GPU \(--device cuda with @tensorflow\/tfjs-node-gpu\)$/.exec(
            e.message,
          );
        advised = Number(m?.[1]);
        return m !== null;
      },
    );
    const admitted = checkJobMemory(FLAN_T5_XL, { ...job, lora: QV16 }, 'flan-t5-xl', { availableBytes: 24e9 });
    assert.equal(Number((admitted.totalBytes / 1e9).toFixed(1)), advised);
    assert.ok(admitted.totalBytes <= 0.9 * 24e9);
  });

  test('a LoRA job that does not fit names its adapter, and is offered smaller batches, not Adafactor for nothing', () => {
    const job = { batchSize: 8, sourceLength: 64, targetLength: 4, optimizer: 'adamw' as const, lora: QV16 };
    assert.throws(
      () => checkJobMemory(FLAN_T5_XL, job, 'flan-t5-xl', { availableBytes: 16e9, accumulation: 2 }),
      (e: Error) =>
        e instanceof UsageError &&
        /^training flan-t5-xl \(2\.8B parameters, LoRA r 16 on q,v: 9\.4M trained\) with AdamW at batch 8 needs about 1\d\.\d GB \(weights 11\.4 GB, gradients 38 MB, optimizer state 75 MB, activations \d\.\d GB\) but this machine has 16\.0 GB; what would fit: --batch-size (4|2|1) --gradient-accumulation-steps (4|8|16) \(about 1[34]\.\d GB\); or a GPU \(--device cuda with @tensorflow\/tfjs-node-gpu\)$/.test(
          e.message,
        ),
    );
    const advice = fitAdvice(FLAN_T5_XL, job, 2, 16e9).alternatives;
    assert.equal(advice.length, 1);
    const [, b, acc] = /--batch-size (\d+) --gradient-accumulation-steps (\d+)/.exec(advice[0]!.options)!;
    assert.equal(Number(b) * Number(acc), 8 * 2);
    // all-linear at rank 8 and a small model: the count is printed in thousands.
    assert.throws(
      () =>
        checkJobMemory(
          named('small'),
          { ...job, batchSize: 64, sourceLength: 512, lora: new LoraConfig({ r: 8, targetModules: 'all-linear' }) },
          't5-small',
          {
            availableBytes: 8e9,
          },
        ),
      (e: Error) => /^training t5-small \(61M parameters, LoRA r 8 on all-linear: 1\.1M trained\) with AdamW at batch 64 /.test(e.message),
    );
    assert.throws(
      () =>
        checkJobMemory(
          named('small'),
          { ...job, batchSize: 256, sourceLength: 512, lora: new LoraConfig({ r: 1, targetModules: ['q'] }) },
          't5-small',
          { availableBytes: 8e9 },
        ),
      (e: Error) =>
        /^training t5-small \(61M parameters, LoRA r 1 on q: 18K trained\) with AdamW at batch 256 \S+ \S+ \S+ GB \(weights 242 MB, gradients 74 kB, optimizer state 147 kB, /.test(
          e.message,
        ),
    );
  });

  test('full fine-tuning advice keeps its order; the LoRA alternative comes after it', () => {
    const job = { batchSize: 64, sourceLength: 128, targetLength: 4, optimizer: 'adamw' as const };
    const full = estimateMemory(named('large'), job).totalBytes;
    const options = fitAdvice(named('large'), job, 1, full * 0.8).alternatives.map((a) => a.options);
    assert.equal(options.length, 3, options.join(' | '));
    assert.match(options[0]!, /^--batch-size \d+ --gradient-accumulation-steps \d+$/);
    assert.match(options[1]!, /^--use-adafactor( --batch-size \d+ --gradient-accumulation-steps \d+)?$/);
    assert.match(options[2]!, /^--lora-r 16( --batch-size \d+ --gradient-accumulation-steps \d+)?$/);
  });
});

describe('models the wasm heap cannot hold', () => {
  test('a library user on wasm gets one line before anything is allocated; the cpu engine takes it', async () => {
    await initBackend('wasm', { threads: 1 });
    const before = tf.memory().numBytes;
    assert.throws(
      () => new T5ForConditionalGeneration(T5_3B),
      (e: Error) =>
        e instanceof T5clsError &&
        /^a T5 of 2852M parameters needs 11\.4 GB for its weights, more than the wasm backend's heap holds/.test(e.message),
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
      assert.match(
        line,
        /^t5cls: error: the wasm backend ran out of memory \(its heap holds 4 GiB at most; .*\); run again with --backend cpu/,
      );
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

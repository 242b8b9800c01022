/**
 * `t5cls train --launcher accelerate` with a LoRA adapter, against a real Python with PEFT: the job starts from the
 * adapter t5cls would (an --adapter folder's tensors under t5cls's names), its first-batch loss equals t5cls's within
 * 1e-4 and one AdamW step moves the adapter as t5cls's step does; a job trains the adapter alone, writes the
 * checkpoints t5cls's LoRA run writes (which `t5cls test` evaluates on the base), and a job stopped after an epoch
 * and resumed ends exactly as an uninterrupted one. Runs where `T5CLS_PYTHON` (else `python3`) has torch,
 * transformers, accelerate, safetensors, sentencepiece and peft; reported as skipped, with the reason, elsewhere.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tf } from '../src/tf.js';
import { T5ForConditionalGeneration } from '../src/model/index.js';
import { LoraAdapter, LoraConfig, loadAdapter, saveAdapter } from '../src/model/lora/index.js';
import { adapterConfigText } from '../src/model/lora/peft_config.js';
import { DropoutStream } from '../src/model/dropout_stream.js';
import { T5Tokenizer } from '../src/tokenizer/index.js';
import { Rng } from '../src/random.js';
import { randomPermutation } from '../src/train/sampler.js';
import { batchGradients, makeOptimizer, optimizerStep } from '../src/train/step.js';
import { chunk, encodeClassNames, encodeExamples, trainBatch } from '../src/data/batches.js';
import { readSafetensorsFile } from '../src/safetensors.js';
import { readRunLog } from '../src/run_log_format.js';
import type { JobFile } from '../src/launcher/job_folder.js';
import { testBackends, useBackend } from './helpers/backends.js';
import { TOKENIZER_DIR, readJson } from './helpers/fixtures.js';
import { cliFromSource, emotionWork, launcherTemp, PYTHON, pythonSkip, runCheck, tinyBase, firstJobDir } from './helpers/launcher.js';

const skip = pythonSkip(['torch', 'transformers', 'accelerate', 'safetensors', 'sentencepiece', 'peft']);
before(() => useBackend(testBackends()[0]!));
after(() => launcherTemp.removeAll());

const sha = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');
const tensorsOf = (file: string) => readSafetensorsFile(file).tensors;

test(
  'same recipe with an --adapter: the starting adapter, first-batch loss within 1e-4, one AdamW step within 1e-5',
  { skip, timeout: 300_000 },
  async (t) => {
    const work = emotionWork();
    const base = tinyBase(work, { feed_forward_proj: 'gated-gelu', tie_word_embeddings: false });
    // An adapter to train further, lora_B away from zero so that it changes what the model computes.
    const model = T5ForConditionalGeneration.fromPretrained(base);
    try {
      const config = new LoraConfig({ r: 4, alpha: 16, targetModules: 'all-linear' });
      const start = new LoraAdapter(model, config, { seed: 9, base: { nameOrPath: base, revision: null } });
      let k = 0;
      for (const [name, v] of start.namedVariables()) {
        if (name.includes('lora_B')) tf.tidy(() => v.assign(tf.randomNormal(v.shape, 0, 0.05, 'float32', k++)));
      }
      const adapterDir = path.join(work, 'start-adapter');
      await saveAdapter(adapterDir, start);
      start.dispose();

      const args = ['--adapter', adapterDir, '--tokenizer', TOKENIZER_DIR, '--max-train-examples', '48', '--max-eval-examples', '8'];
      const opts = ['--batch-size', '8', '--max-source-length', '40', '--seed', '11', '--learning-rate', '1e-3', '--weight-decay', '0.01'];
      const r = cliFromSource(['train', '--launcher', 'accelerate', '--dry-run', ...args, ...opts], work);
      assert.equal(r.code, 0, r.out);
      const jobDir = firstJobDir(work);
      const job = readJson<JobFile>(path.join(jobDir, 'job.json'));
      assert.deepEqual(job.lora, {
        r: 4,
        alpha: 16,
        dropout: 0,
        targetModules: ['q', 'k', 'v', 'o', 'wi_0', 'wi_1', 'wo'],
        base: { nameOrPath: base, revision: null },
        adapter: 'adapter',
        from: adapterDir,
      });
      assert.equal(job.model.path, base, "the base the adapter's config names");
      assert.match(fs.readFileSync(path.join(jobDir, 'requirements.txt'), 'utf-8'), /^peft>=/m);
      const given = tensorsOf(path.join(adapterDir, 'adapter_model.safetensors'));
      const jobStart = tensorsOf(path.join(jobDir, 'adapter', 'adapter_model.safetensors'));
      assert.deepEqual([...jobStart.keys()].sort(), [...given.keys()].sort());
      for (const [key, v] of given) assert.deepEqual(jobStart.get(key)!.data, v.data, key);

      const py = runCheck(jobDir, path.join(work, 'check.json'));
      const o = job.options;
      const tokenizer = await T5Tokenizer.fromPretrained(path.join(jobDir, 'tokenizer'));
      const train = encodeExamples(tokenizer, readJson(path.join(jobDir, 'data/train.json')), o.prefixText, o.maxSourceLength);
      const first = chunk(randomPermutation(train.length, new Rng(o.seed)), o.batchSize)[0]!;
      assert.deepEqual(py.firstBatch, first);
      const batch = trainBatch(
        first.map((i) => train[i]!),
        encodeClassNames(tokenizer, job.classNames),
        model.config.pad_token_id,
      );
      const lossNow = () =>
        tf.tidy(
          () => model.forward({ inputIds: batch.inputIds, attentionMask: batch.attentionMask, labels: batch.labels }).loss!.dataSync()[0]!,
        );
      const baseLoss = lossNow();
      const adapter = loadAdapter(path.join(jobDir, 'adapter'), model);
      const loss = lossNow();
      t.diagnostic(`first-batch loss: job ${py.firstBatchLoss}, t5cls ${loss} (base alone ${baseLoss})`);
      assert.ok(Math.abs(loss - baseLoss) > 1e-3, 'the adapter changes the loss');
      assert.ok(Math.abs(py.firstBatchLoss - loss) <= 1e-4, `first-batch loss: job ${py.firstBatchLoss}, t5cls ${loss}`);

      // One optimizer step as t5cls's training loop takes it (the adapter's variables only, dropout off here).
      const { optimizer, baseLr } = makeOptimizer(o);
      const params = [...model.trainableVariables().values()];
      assert.equal(params.length, adapter.namedVariables().size, 'only the adapter trains');
      const { grads } = batchGradients(model, params, batch, new DropoutStream(o.seed), { scale: 1, exactMatches: false });
      optimizerStep(optimizer, baseLr, o.lrWarmupSteps, grads, 0, (what, value) => assert.fail(`${what} ${value}`));
      tf.dispose([batch.inputIds, batch.attentionMask, batch.labels]);
      const stepped = tensorsOf(py.firstStepAdapter);
      assert.deepEqual([...stepped.keys()].sort(), [...adapter.namedVariables().keys()].sort(), "PEFT's saved names are t5cls's");
      let worst = 0;
      let moved = 0;
      for (const [key, v] of adapter.namedVariables()) {
        const ours = v.dataSync();
        const theirs = stepped.get(key)!.data as Float32Array;
        const startValues = jobStart.get(key)!.data as Float32Array;
        let diff = 0;
        let scale = 0;
        for (let i = 0; i < ours.length; i++) {
          diff = Math.max(diff, Math.abs(ours[i]! - theirs[i]!));
          scale = Math.max(scale, Math.abs(ours[i]!));
          moved = Math.max(moved, Math.abs(ours[i]! - startValues[i]!));
        }
        worst = Math.max(worst, diff / scale);
      }
      t.diagnostic(`after one AdamW step: largest relative difference ${worst} (the step moved tensors by up to ${moved})`);
      assert.ok(moved >= 5e-4, `the step moved the adapter by ${moved}`);
      assert.ok(worst <= 1e-5, `the adapters differ by ${worst} after one step`);
      adapter.dispose();
    } finally {
      model.dispose();
    }
  },
);

/** A LoRA job of `epochs` over 48 tweets, LoRA dropout on (its masks come from torch's generator, saved with the state). */
function loraJob(work: string, base: string, epochs: number): { code: number; out: string } {
  return cliFromSource(
    [
      ...['train', '--launcher', 'accelerate', '--python', PYTHON, '--model', base, '--tokenizer', TOKENIZER_DIR],
      ...['--lora-r', '4', '--lora-alpha', '16', '--lora-dropout', '0.1', '--lora-target-modules', 'q,v,wo'],
      ...['--max-train-examples', '48', '--max-eval-examples', '30', '--batch-size', '8', '--max-source-length', '40'],
      ...['--seed', '11', '--learning-rate', '1e-2', '--epochs', String(epochs)],
    ],
    work,
    { HF_HUB_OFFLINE: '1' },
  );
}

test(
  "a LoRA job writes t5cls's adapter checkpoints, t5cls test evaluates them; stopped and resumed it ends as an uninterrupted job",
  { skip, timeout: 600_000 },
  async () => {
    const work = emotionWork();
    const base = tinyBase(work, { dropout_rate: 0.1 });
    const baseSha = sha(path.join(base, 'model.safetensors'));
    const whole = emotionWork();
    const a = loraJob(whole, base, 2);
    assert.equal(a.code, 0, a.out);
    const b = loraJob(work, base, 1);
    assert.equal(b.code, 0, b.out);
    const resumeArgs = ['train', '--launcher', 'accelerate', '--python', PYTHON, '--resume', 'latest'];
    const finished = cliFromSource(resumeArgs, work, { HF_HUB_OFFLINE: '1' });
    assert.equal(finished.code, 2, finished.out);
    assert.match(finished.out, /--resume: the run .* has finished \(1 epochs, 6 steps\); nothing to resume \(pass a larger --epochs/);
    const changed = cliFromSource([...resumeArgs, '--batch-size', '4'], work);
    assert.equal(changed.code, 2, changed.out);
    assert.match(changed.out, /--batch-size was 8 in that run, not 4/);
    const resumed = cliFromSource([...resumeArgs, '--epochs', '2'], work, { HF_HUB_OFFLINE: '1' });
    assert.equal(resumed.code, 0, resumed.out);
    assert.match(resumed.out, /the job now runs to epoch 2/);
    assert.equal(sha(path.join(base, 'model.safetensors')), baseSha, 'the base is not written');

    // The saved state holds the adapter and the optimizer: the same bytes as the uninterrupted job's.
    const stateDir = (w: string) => path.join(w, 'runs', fs.readdirSync(path.join(w, 'runs'))[0]!, 'accelerate_state');
    const files = fs.readdirSync(stateDir(work));
    assert.ok(files.includes('adapter_model.safetensors') && !files.some((f) => f.startsWith('model')), `${files}`);
    for (const f of ['adapter_model.safetensors', 'optimizer.bin']) {
      assert.equal(sha(path.join(stateDir(work), f)), sha(path.join(stateDir(whole), f)), f);
    }
    const epochs = (w: string) =>
      readRunLog(path.join(w, 'logs', fs.readdirSync(path.join(w, 'logs'))[0]!)).epochs.map((e) => ({
        epoch: e.epoch,
        metrics: e.metrics,
      }));
    assert.deepEqual(
      epochs(work).map((e) => e.epoch),
      [1, 2],
    );
    assert.deepEqual(epochs(work), epochs(whole));

    // The checkpoint: PEFT's adapter folder as t5cls writes it, with the tokenizer and t5cls.json.
    const weights = path.join(work, 'weights');
    const ckpt = path.join(
      weights,
      fs.readdirSync(weights).find((n) => n.endsWith('-epoch1'))!,
    );
    const ckptFiles = fs.readdirSync(ckpt);
    for (const f of ['adapter_config.json', 'adapter_model.safetensors', 't5cls.json', 'spiece.model']) assert.ok(ckptFiles.includes(f), f);
    assert.ok(!ckptFiles.includes('model.safetensors') && !ckptFiles.includes('config.json'), `${ckptFiles}`);
    const model = T5ForConditionalGeneration.fromPretrained(base);
    try {
      const config = new LoraConfig({ r: 4, alpha: 16, dropout: 0.1, targetModules: ['q', 'v', 'wo'] });
      const ours = new LoraAdapter(model, config, { seed: 11, base: { nameOrPath: base, revision: null } });
      assert.equal(fs.readFileSync(path.join(ckpt, 'adapter_config.json'), 'utf-8'), adapterConfigText(ours, base, 'SEQ_2_SEQ_LM'));
      const saved = tensorsOf(path.join(ckpt, 'adapter_model.safetensors'));
      assert.deepEqual([...saved.keys()].sort(), [...ours.namedVariables().keys()].sort());
      const key = 'base_model.model.decoder.block.1.layer.2.DenseReluDense.wo.lora_B.weight';
      assert.ok(
        [...(saved.get(key)!.data as Float32Array)].some((x) => x !== 0),
        'lora_B trained',
      );
      ours.dispose();
    } finally {
      model.dispose();
    }
    assert.equal(readJson(path.join(ckpt, 't5cls.json')).options.loraR, 4);

    const evaluated = cliFromSource(
      ['test', '--weights', ckpt, '--split', 'validation', '--max-eval-examples', '30', '--decode', 'rank'],
      work,
    );
    assert.equal(evaluated.code, 0, evaluated.out);
    const metrics = readJson(path.join(ckpt, 'metrics.json'));
    assert.equal(typeof metrics.macro_f1, 'number');
    assert.equal(fs.readFileSync(path.join(ckpt, 'predictions.txt'), 'utf-8').trim().split('\n').length, 30);
  },
);

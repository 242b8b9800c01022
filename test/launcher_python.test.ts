/**
 * `t5cls train --launcher accelerate` against a real Python: the job's tokenizer, generator and sampler give
 * t5cls's ids and orders, its loss on the first training batch (dropout off) equals t5cls's within 1e-4 and its dev
 * predictions before training equal t5cls's (rank decoding), accelerate reads the generated configs, a 2-process
 * CPU run (DDP over gloo) trains a tiny T5 start to finish and leaves what `t5cls test` evaluates, its validation
 * sharded over the processes giving the metrics t5cls computes on the checkpoint, and a full fine-tuning job stopped
 * after an epoch and resumed ends byte for byte as an uninterrupted one. LoRA jobs: launcher_lora.test.ts; DeepSpeed:
 * launcher_deepspeed.test.ts.
 * Runs where `T5CLS_PYTHON` (else `python3`) has torch, transformers, accelerate, safetensors and sentencepiece;
 * reported as skipped, with the reason, elsewhere.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tf } from '../src/tf.js';
import { T5ForConditionalGeneration } from '../src/model/index.js';
import { T5Tokenizer } from '../src/tokenizer/index.js';
import { Rng } from '../src/random.js';
import { randomPermutation, weightedRandomSampler } from '../src/train/sampler.js';
import { chunk, encodeClassNames, encodeExamples, trainBatch } from '../src/data/batches.js';
import { predictRank, predictGenerate } from '../src/eval/decoding.js';
import { readRunLog, EPOCH_FIELDS } from '../src/run_log_format.js';
import { readEventFile } from '../src/report/events.js';
import { accelerateConfigText, deepspeedConfig } from '../src/launcher/accelerate_config.js';
import { resolveCluster } from '../src/launcher/cluster.js';
import type { JobFile } from '../src/launcher/job_folder.js';
import { testBackends, useBackend } from './helpers/backends.js';
import { FIXTURES, TOKENIZER_DIR, readJson, tempDirs } from './helpers/fixtures.js';
import {
  cliFromSource,
  emotionWork,
  launcherTemp,
  PYTHON,
  pythonSkip,
  runCheck,
  runPython,
  tinyBase,
  tinyConfigFile,
  firstJobDir,
} from './helpers/launcher.js';
import { formatPythonReport, pythonReport } from '../src/cli/doctor_python.js';

const skip = pythonSkip(['torch', 'transformers', 'accelerate', 'safetensors', 'sentencepiece']);
const temp = tempDirs('t5cls-launcher-py-');
before(() => useBackend(testBackends()[0]!));
after(() => {
  temp.removeAll();
  launcherTemp.removeAll();
});

const python = runPython;
const sha = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

test(
  "the job's own tokenizer gives t5cls's ids but for ties between equally likely segmentations; jobs carry t5cls's ids",
  { skip },
  async () => {
    const file = path.join(FIXTURES, 'tokenizer/t5-spiece-ids.jsonl');
    const got = python(
      `import json, sys\nfrom recipe import T5Ids\ntok = T5Ids(sys.argv[1])\nprint(json.dumps({"exact": tok.exact, "ids": [tok.encode(json.loads(l)["text"]) for l in open(sys.argv[2], encoding="utf-8")]}))`,
      [TOKENIZER_DIR, file],
    );
    const rows = fs
      .readFileSync(file, 'utf-8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { text: string; ids: number[] });
    const t5cls = await T5Tokenizer.fromPretrained(TOKENIZER_DIR);
    assert.equal(got.exact, true);
    assert.equal(got.ids.length, rows.length);
    const sorted = (ids: number[]) => JSON.stringify([...ids].sort((a, b) => a - b));
    const differ = rows
      .map((r, i) => ({ ids: got.ids[i] as number[], t5cls: t5cls.encode(r.text) }))
      .filter((d) => JSON.stringify(d.ids) !== JSON.stringify(d.t5cls));
    // SentencePiece's Python package orders a tie ("h"+"hhh" or "hhh"+"h") otherwise on a few texts: the same pieces.
    assert.ok(differ.length <= 20, `${differ.length} of ${rows.length} texts differ`);
    for (const d of differ) assert.equal(sorted(d.ids), sorted(d.t5cls), 'only the order of equally scored pieces differs');
  },
);

test("the job's generator and samplers draw t5cls's orders", { skip }, () => {
  const labels = [3, 0, 0, 1, 2, 2, 2, 0, 1, 3, 3, 3, 3, 0];
  const seeds = [0, 42, 7, 2 ** 40 + 12345];
  const got = python(
    'import json, sys\nfrom recipe import Rng, random_permutation, weighted_random_sampler\nlabels = json.loads(sys.argv[1])\n' +
      'draws = lambda r: [r.next_uint32() for _ in range(3)]\n' +
      'print(json.dumps([[random_permutation(50, Rng(s)), weighted_random_sampler(labels, Rng(s)), draws(Rng(s))] for s in json.loads(sys.argv[2])]))',
    [JSON.stringify(labels), JSON.stringify(seeds)],
  );
  seeds.forEach((s, i) => {
    const r = new Rng(s);
    assert.deepEqual(
      got[i],
      [randomPermutation(50, new Rng(s)), weightedRandomSampler(labels, new Rng(s)), [r.nextUint32(), r.nextUint32(), r.nextUint32()]],
      `seed ${s}`,
    );
  });
});

/** A dry-run job of the emotion slice; `extra` adds train options. Returns the job folder and its work folder. */
function dryRunJob(extra: string[], work = emotionWork()): { work: string; jobDir: string } {
  const r = cliFromSource(
    [
      'train',
      '--launcher',
      'accelerate',
      '--dry-run',
      '--tokenizer',
      TOKENIZER_DIR,
      '--max-train-examples',
      '48',
      '--max-eval-examples',
      '30',
      '--batch-size',
      '8',
      '--max-source-length',
      '40',
      '--seed',
      '11',
      ...extra,
    ],
    work,
  );
  assert.equal(r.code, 0, r.out);
  return { work, jobDir: firstJobDir(work) };
}

const SHAPES = [
  { name: 'T5 v1.0 (relu, tied and scaled head), uniform order', config: { feed_forward_proj: 'relu' }, sampler: [] },
  {
    name: 'T5 v1.1 (gated-gelu, untied unscaled head), weighted sampler',
    config: { feed_forward_proj: 'gated-gelu', tie_word_embeddings: false },
    sampler: ['--use-weighted-random-sampler'],
  },
];

for (const shape of SHAPES) {
  test(
    `same recipe, ${shape.name}: ids, first batch, its loss within 1e-4, dev predictions before training`,
    { skip, timeout: 300_000 },
    async (t) => {
      const work = temp.make();
      const configFile = tinyConfigFile(work, { dropout_rate: 0.1, ...shape.config });
      const { jobDir } = dryRunJob(['--init', 'random', '--model-config', configFile, ...shape.sampler]);
      const py = runCheck(jobDir, path.join(work, 'check.json'));
      const job = readJson<JobFile>(path.join(jobDir, 'job.json'));

      // t5cls on the same starting checkpoint and data.
      const tokenizer = await T5Tokenizer.fromPretrained(path.join(jobDir, 'tokenizer'));
      const model = T5ForConditionalGeneration.fromPretrained(path.join(jobDir, 'model'));
      try {
        const o = job.options;
        const trainRows = readJson(path.join(jobDir, 'data/train.json'));
        const devRows = readJson(path.join(jobDir, 'data/validation.json'));
        const train = encodeExamples(tokenizer, trainRows, o.prefixText, o.maxSourceLength);
        const dev = encodeExamples(tokenizer, devRows, o.prefixText, o.maxSourceLength).map((e) => e.inputIds);
        const classTokens = encodeClassNames(tokenizer, job.classNames);
        assert.equal(py.idsFrom, 't5cls');
        assert.deepEqual(
          py.trainInputs,
          train.map((e) => e.inputIds),
          'tokenization, prefix and truncation',
        );
        assert.deepEqual(py.devInputs, dev);
        assert.deepEqual(py.classTokens, classTokens, 'label targets');
        assert.ok(
          train.some((e) => e.inputIds.length === o.maxSourceLength),
          'some inputs are cut',
        );

        const rng = new Rng(o.seed);
        const order = o.useWeightedRandomSampler
          ? weightedRandomSampler(
              train.map((e) => e.label),
              rng,
            )
          : randomPermutation(train.length, rng);
        const first = chunk(order, o.batchSize)[0]!;
        assert.deepEqual(py.firstBatch, first, 'the first batch');
        const batch = trainBatch(
          first.map((i) => train[i]!),
          classTokens,
          model.config.pad_token_id,
        );
        const loss = tf.tidy(
          () => model.forward({ inputIds: batch.inputIds, attentionMask: batch.attentionMask, labels: batch.labels }).loss!.dataSync()[0]!,
        );
        tf.dispose([batch.inputIds, batch.attentionMask, batch.labels]);
        t.diagnostic(`first-batch loss: job ${py.firstBatchLoss}, t5cls ${loss}, difference ${Math.abs(py.firstBatchLoss - loss)}`);
        assert.ok(Math.abs(py.firstBatchLoss - loss) <= 1e-4, `first-batch loss: job ${py.firstBatchLoss}, t5cls ${loss}`);

        const rank = predictRank(model, dev, job.classNames, classTokens, o.evalBatchSize);
        assert.deepEqual(py.rank.labels, rank.labels, 'rank decoding');
        const worst = Math.max(...rank.probabilities!.flatMap((row, i) => row.map((p, c) => Math.abs(p - py.rank.probabilities[i][c]))));
        t.diagnostic(`rank decoding: ${rank.labels.length} dev examples, the same labels; probabilities differ by at most ${worst}`);
        assert.ok(worst <= 1e-4, `class probabilities differ by ${worst}`);
        const generated = predictGenerate(model, tokenizer, dev, job.classNames, classTokens, o.evalBatchSize);
        assert.deepEqual(py.generate.texts, generated.texts, 'greedy decoding');
      } finally {
        model.dispose();
      }
    },
  );
}

test('accelerate reads the generated configs: multi-GPU on 2 machines, DeepSpeed ZeRO 2 and 3, FSDP', { skip, timeout: 120_000 }, () => {
  const work = temp.make();
  const cases = {
    multi: resolveCluster({ numProcesses: 16, numMachines: 2, mainProcessIp: '10.0.0.1', mixedPrecision: 'bf16' }, 0),
    zero2: resolveCluster({ numProcesses: 8, deepspeedStage: 2 }, 0),
    zero3: resolveCluster({ numProcesses: 8, deepspeedStage: 3 }, 0),
    fsdp: resolveCluster({ numProcesses: 8, fsdp: true }, 0),
  };
  for (const [name, cluster] of Object.entries(cases)) {
    fs.mkdirSync(path.join(work, name));
    fs.writeFileSync(path.join(work, name, 'accelerate_config.yaml'), accelerateConfigText(cluster));
    if (cluster.deepspeedStage)
      fs.writeFileSync(
        path.join(work, name, 'deepspeed_config.json'),
        JSON.stringify(deepspeedConfig(cluster, { batchSize: 16, gradientAccumulationSteps: 2 })),
      );
  }
  const got = python(
    [
      'import json, os, sys',
      'from accelerate.commands.config.config_args import load_config_from_file',
      'from accelerate.utils import DeepSpeedPlugin',
      'out = {}',
      'for name in sys.argv[2:]:',
      '    os.chdir(os.path.join(sys.argv[1], name))',
      '    c = load_config_from_file("accelerate_config.yaml")',
      '    row = {"type": str(c.distributed_type).split(".")[-1], "processes": c.num_processes, "machines": c.num_machines, "mp": c.mixed_precision}',
      '    if c.deepspeed_config:',
      '        p = DeepSpeedPlugin(hf_ds_config=c.deepspeed_config["deepspeed_config_file"])',
      '        row["stage"] = p.zero_stage',
      '        row["optimizer"] = "optimizer" in p.deepspeed_config',
      '    if c.fsdp_config:',
      '        row["wrap"] = c.fsdp_config["fsdp_transformer_layer_cls_to_wrap"]',
      '    out[name] = row',
      'print(json.dumps(out))',
    ].join('\n'),
    [work, ...Object.keys(cases)],
  );
  assert.deepEqual(got.multi, { type: 'MULTI_GPU', processes: 16, machines: 2, mp: 'bf16' });
  // With a DeepSpeed file, the precision is its own (bf16 "auto": the script's choice).
  assert.deepEqual(got.zero2, { type: 'DEEPSPEED', processes: 8, machines: 1, mp: null, stage: 2, optimizer: false });
  assert.deepEqual(got.zero3, { type: 'DEEPSPEED', processes: 8, machines: 1, mp: null, stage: 3, optimizer: false });
  assert.deepEqual(got.fsdp, { type: 'FSDP', processes: 8, machines: 1, mp: 'no', wrap: 'T5Block' });
});

test(
  "2 CPU processes (DDP over gloo) train a tiny T5 end to end; their sharded validation is one process's; t5cls test evaluates the checkpoint",
  { skip, timeout: 600_000 },
  (ctx) => {
    const work = emotionWork();
    const r = cliFromSource(
      [
        'train',
        '--launcher',
        'accelerate',
        '--num-processes',
        '2',
        '--python',
        PYTHON,
        '--init',
        'random',
        '--model-config',
        'tiny',
        '--tokenizer',
        TOKENIZER_DIR,
        '--use-adafactor',
        '--epochs',
        '2',
        '--batch-size',
        '16',
        '--max-source-length',
        '64',
        '--max-eval-examples',
        '40',
      ],
      work,
      { HF_HUB_OFFLINE: '1' },
    );
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /no GPU visible: the job runs on 2 CPU processes \(gloo\)/);
    const best = /evaluate it with: t5cls test --weights-name (\S+)/.exec(r.out)?.[1];
    assert.ok(best, r.out);
    const run = readdir(path.join(work, 'runs'))[0]!;
    const ckpt = path.join(work, 'weights', best);
    for (const f of ['config.json', 'model.safetensors', 'spiece.model', 'tokenizer.json', 't5cls.json', 'generation_config.json']) {
      assert.ok(fs.existsSync(path.join(ckpt, f)), f);
    }
    const meta = readJson(path.join(ckpt, 't5cls.json'));
    assert.equal(meta.runName, run);
    assert.deepEqual(meta.classesMap, { anger: 0, joy: 1, optimism: 2, sadness: 3 });

    // The log: the launcher's header, and every epoch with train's fields.
    const log = readRunLog(path.join(work, 'logs', `${run}.txt`));
    assert.equal(log.options.launcher, 'accelerate');
    assert.equal(log.options.processes, '2');
    assert.equal(log.options.devices, '2 x cpu (gloo)');
    assert.deepEqual(
      log.epochs.map((e) => e.epoch),
      [1, 2],
    );
    for (const e of log.epochs) for (const f of EPOCH_FIELDS) assert.equal(typeof e.metrics[f], 'number', `epoch ${e.epoch} ${f}`);
    assert.ok(log.epochs[1]!.metrics.train_loss! < log.epochs[0]!.metrics.train_loss!, 'the loss goes down');
    assert.equal(meta.metrics.dev_macro_f1, log.epochs.find((e) => e.epoch === meta.epoch)!.metrics.dev_macro_f1);
    // 200 examples in batches of 16: 13 steps an epoch, each logged once, whatever the number of processes.
    const events = readdir(path.join(work, 'runs', run)).filter((f) => f.startsWith('events.out.tfevents.'));
    assert.equal(events.length, 1);
    const scalars = readEventFile(path.join(work, 'runs', run, events[0]!)).scalars;
    const steps = (tag: string) => scalars.filter((s) => s.tag === tag).map((s) => s.step);
    assert.deepEqual(
      steps('train/loss_step'),
      Array.from({ length: 26 }, (_, i) => i + 1),
    );
    assert.deepEqual(
      steps('train/grad_norm'),
      Array.from({ length: 26 }, (_, i) => i + 1),
    );
    for (const f of EPOCH_FIELDS) assert.deepEqual(steps(f), [1, 2], f);

    // Validation was sharded over the 2 processes and gathered: its metrics are what t5cls computes on the same
    // checkpoint and dev examples (greedy decoding, one process).
    const dev = cliFromSource(
      ['test', '--weights-name', best, '--split', 'validation', '--max-eval-examples', '40', '--output-dir', 'dev'],
      work,
    );
    assert.equal(dev.code, 0, dev.out);
    const devMetrics = readJson(path.join(work, 'dev', 'metrics.json'));
    const logged = log.epochs.find((e) => e.epoch === meta.epoch)!.metrics;
    ctx.diagnostic(`dev (epoch ${meta.epoch}): job ${JSON.stringify(logged)}; t5cls test ${JSON.stringify(devMetrics).slice(0, 300)}`);
    assert.deepEqual(
      [devMetrics.accuracy, devMetrics.macro_f1, devMetrics.weighted_f1],
      [logged.dev_accuracy, logged.dev_macro_f1, logged.dev_weighted_f1],
    );

    const t = cliFromSource(['test', '--weights-name', best, '--decode', 'rank'], work);
    assert.equal(t.code, 0, t.out);
    const metrics = readJson(path.join(ckpt, 'metrics.json'));
    assert.equal(typeof metrics.accuracy, 'number');
    assert.equal(fs.readFileSync(path.join(ckpt, 'predictions.txt'), 'utf-8').trim().split('\n').length, 100);

    // transformers itself loads the checkpoint, its head tied and scaled as t5cls wrote it.
    const hf = python(
      'import json, sys\nfrom transformers import T5ForConditionalGeneration\nm = T5ForConditionalGeneration.from_pretrained(sys.argv[1])\n' +
        'print(json.dumps({"tied": m.lm_head.weight.data_ptr() == m.shared.weight.data_ptr()}))',
      [ckpt],
    );
    assert.equal(hf.tied, true);
  },
);

/** A full fine-tuning job of `epochs` on one process over 48 tweets, from `base` (dropout on: torch's generator draws its masks); `extra`: the optimizer's options. */
function fullJob(work: string, base: string, epochs: number, extra: string[] = []): { code: number; out: string } {
  return cliFromSource(
    [
      ...['train', '--launcher', 'accelerate', '--python', PYTHON, '--model', base, '--tokenizer', TOKENIZER_DIR],
      ...['--max-train-examples', '48', '--max-eval-examples', '30', '--batch-size', '8', '--max-source-length', '40'],
      ...['--seed', '11', '--epochs', String(epochs), ...extra],
    ],
    work,
    { HF_HUB_OFFLINE: '1' },
  );
}

for (const optimizer of [
  { name: 'AdamW', args: ['--learning-rate', '3e-3', '--weight-decay', '0.01'] },
  { name: 'relative-step Adafactor', args: ['--use-adafactor-schedule'] },
]) {
  test(
    `a full fine-tuning job (${optimizer.name}) stopped after an epoch and resumed ends as an uninterrupted one: the same weights, optimizer state and epochs`,
    { skip, timeout: 600_000 },
    () => {
      const work = emotionWork();
      const base = tinyBase(work, { dropout_rate: 0.1 });
      const whole = emotionWork();
      const a = fullJob(whole, base, 2, optimizer.args);
      assert.equal(a.code, 0, a.out);
      const b = fullJob(work, base, 1, optimizer.args);
      assert.equal(b.code, 0, b.out);
      const resumed = cliFromSource(
        ['train', '--launcher', 'accelerate', '--python', PYTHON, '--resume', 'latest', '--epochs', '2'],
        work,
        {
          HF_HUB_OFFLINE: '1',
        },
      );
      assert.equal(resumed.code, 0, resumed.out);
      assert.match(resumed.out, /the job now runs to epoch 2/);

      // The saved state: the whole model and the optimizer, byte for byte the uninterrupted job's.
      const stateDir = (w: string) => path.join(w, 'runs', readdir(path.join(w, 'runs'))[0]!, 'accelerate_state');
      for (const f of ['model.safetensors', 'optimizer.bin']) {
        assert.equal(sha(path.join(stateDir(work), f)), sha(path.join(stateDir(whole), f)), f);
      }
      const epochs = (w: string) =>
        readRunLog(path.join(w, 'logs', readdir(path.join(w, 'logs'))[0]!)).epochs.map((e) => ({ epoch: e.epoch, metrics: e.metrics }));
      assert.deepEqual(
        epochs(work).map((e) => e.epoch),
        [1, 2],
      );
      assert.deepEqual(epochs(work), epochs(whole));
      assert.notEqual(epochs(work)[1]!.metrics.train_loss, epochs(work)[0]!.metrics.train_loss);

      // The checkpoints: saved at the same epochs, the same weights (the run's time names them, so they go by epoch).
      const checkpoints = (w: string) =>
        new Map(readdir(path.join(w, 'weights')).map((n) => [/-epoch(\d+)$/.exec(n)![1]!, path.join(w, 'weights', n)]));
      const mine = checkpoints(work);
      const theirs = checkpoints(whole);
      assert.deepEqual([...mine.keys()], [...theirs.keys()]);
      assert.ok(mine.has('1'), `${[...mine.keys()]}`);
      for (const [epoch, dir] of mine) {
        assert.equal(sha(path.join(dir, 'model.safetensors')), sha(path.join(theirs.get(epoch)!, 'model.safetensors')), `epoch ${epoch}`);
      }
      const last = mine.get(String(Math.max(...[...mine.keys()].map(Number))))!;
      assert.notEqual(sha(path.join(last, 'model.safetensors')), sha(path.join(base, 'model.safetensors')), 'the model trained');
    },
  );
}

test('validation on several processes: each rank decodes whole batches of the one-process order, all of them once', { skip }, () => {
  const lengths = [5, 3, 9, 1, 7, 7, 2, 8, 4, 6, 10];
  const got = python(
    'import json, sys\nfrom evaluate import my_batches\nL = json.loads(sys.argv[1])\n' +
      'print(json.dumps({f"{w}-{s}": [[r, my_batches(L, 2, (r, w, s))] for r in range(w)] for w in (1, 2, 4) for s in (False, True)}))',
    [JSON.stringify(lengths)],
  );
  const order = [...lengths.keys()].sort((a, b) => lengths[a]! - lengths[b]! || a - b);
  const batches = Array.from({ length: 6 }, (_, i) => order.slice(2 * i, 2 * i + 2));
  for (const world of [1, 2, 4]) {
    for (const synced of [false, true]) {
      const parts = got[`${world}-${synced ? 'True' : 'False'}`] as [number, [number[], boolean][]][];
      const used = parts.flatMap(([, list]) => list.filter(([, u]) => u).map(([b]) => b));
      assert.deepEqual(
        used.sort((a, b) => a[0]! - b[0]! || a.length - b.length),
        [...batches].sort((a, b) => a[0]! - b[0]!),
        `${world} processes: every batch once`,
      );
      const rounds = parts.map(([, list]) => list.length);
      // Synced (a sharded model): every rank runs as many rounds (a spare round decodes a batch, unused).
      if (synced) assert.deepEqual(rounds, Array(world).fill(Math.ceil(6 / world)));
      else
        assert.deepEqual(
          rounds,
          Array.from({ length: world }, (_, r) => batches.filter((_, i) => i % world === r).length),
        );
    }
  }
});

test("doctor's Python section names the versions and says the launcher can run", { skip }, () => {
  const r = pythonReport(PYTHON);
  assert.equal(r.launcherReady, true, r.error ?? r.missing.join(', '));
  for (const name of ['torch', 'transformers', 'accelerate'] as const) assert.match(r.env!.packages[name]!, /^\d+\.\d+/);
  const text = formatPythonReport(r).join('\n');
  assert.match(text, /torch \d+\.\d+.*transformers \d+\.\d+.*accelerate \d+\.\d+/);
  assert.match(text, /--launcher accelerate can run here/);
});

function readdir(dir: string): string[] {
  return fs.readdirSync(dir).sort();
}

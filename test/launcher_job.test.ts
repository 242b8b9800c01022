/**
 * `t5cls train --launcher accelerate` without Python: the options' mapping to the cluster and its refusals, the
 * accelerate and DeepSpeed configs, and the job folder a --dry-run writes (script, job.json, data, tokenizer, the
 * checkpoint config, run.sh, the commands for each machine), a LoRA job's adapter block and starting adapter, --resume
 * of a job, and the job's options refused without --launcher accelerate. Needs nothing beside the clone.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { resolveCluster } from '../src/launcher/cluster.js';
import { accelerateConfig, accelerateConfigText, deepspeedConfig, distributedType } from '../src/launcher/accelerate_config.js';
import { PYTHON_SOURCE, type JobFile } from '../src/launcher/job_folder.js';
import { parseRunLog } from '../src/run_log_format.js';
import { T5Config, NAMED_CONFIGS } from '../src/model/config.js';
import { T5Tokenizer } from '../src/tokenizer/index.js';
import { UsageError } from '../src/errors.js';
import { encodeClassNames, encodeExamples } from '../src/data/batches.js';
import { formatPythonReport, pythonReport } from '../src/cli/doctor_python.js';
import { TOKENIZER_DIR, readJson } from './helpers/fixtures.js';
import { cliFromSource, emotionWork, launcherTemp, tinyBase, firstJobDir } from './helpers/launcher.js';
import { T5ForConditionalGeneration } from '../src/model/index.js';
import { LoraAdapter, LoraConfig } from '../src/model/lora/index.js';
import { adapterConfigText } from '../src/model/lora/peft_config.js';
import { readSafetensorsFile } from '../src/safetensors.js';
import { testBackends, useBackend } from './helpers/backends.js';

after(() => launcherTemp.removeAll());

test('the cluster: defaults, accelerate names, and the combinations that cannot run are refused in one line', () => {
  const one = resolveCluster({}, 0);
  assert.deepEqual(
    { n: one.numProcesses, m: one.numMachines, r: one.machineRank, port: one.mainProcessPort, mp: one.mixedPrecision, fsdp: one.fsdp },
    { n: 1, m: 1, r: 0, port: 29500, mp: 'auto', fsdp: false },
  );
  assert.equal(resolveCluster({}, 4).numProcesses, 4, 'one process per GPU by default');
  assert.equal(resolveCluster({ numMachines: 2, mainProcessIp: '10.0.0.1' }, 8).numProcesses, 16);
  const refused = (p: Parameters<typeof resolveCluster>[0], re: RegExp) =>
    assert.throws(
      () => resolveCluster(p, 0),
      (e: Error) => e instanceof UsageError && re.test(e.message),
    );
  refused({ mixedPrecision: 'fp16' }, /^--mixed-precision fp16: refused: T5 overflows in fp16 .*#4586, #14189/);
  refused({ mixedPrecision: 'fp8' }, /^--mixed-precision: expected bf16 or no/);
  refused({ machineRank: 2, numMachines: 2, mainProcessIp: 'a' }, /^--machine-rank 2: expected a rank below --num-machines 2/);
  refused({ numProcesses: 3, numMachines: 2, mainProcessIp: 'a' }, /^--num-processes 3: expected a multiple of --num-machines 2/);
  refused({ numMachines: 2 }, /^--num-machines 2: give --main-process-ip/);
  refused({ deepspeedStage: 3, fsdp: true }, /^--deepspeed-stage and --fsdp: choose one/);
  refused(
    { deepspeedStage: 3, accelerateConfig: 'mine.yaml' },
    /^--accelerate-config mine.yaml: your file decides DeepSpeed and FSDP; leave out --deepspeed-stage/,
  );
});

test('accelerate configs: distributed type, precision quoted for PyYAML, DeepSpeed with the client optimizer, FSDP per T5Block', () => {
  const c = (p: Parameters<typeof resolveCluster>[0]) => resolveCluster(p, 0);
  assert.equal(distributedType(c({})), 'NO');
  assert.equal(distributedType(c({ numProcesses: 2 })), 'MULTI_GPU');
  assert.equal(distributedType(c({ numProcesses: 2, deepspeedStage: 2 })), 'DEEPSPEED');
  assert.equal(distributedType(c({ numProcesses: 2, fsdp: true })), 'FSDP');

  const multi = c({ numProcesses: 16, numMachines: 2, machineRank: 1, mainProcessIp: '10.0.0.1', mixedPrecision: 'no' });
  const text = accelerateConfigText(multi);
  assert.match(text, /^mixed_precision: "no"$/m, 'a bare no would read as false in YAML 1.1');
  const yaml = parseYaml(text, { version: '1.1' }) as Record<string, unknown>;
  assert.equal(yaml.mixed_precision, 'no');
  assert.deepEqual(
    [yaml.distributed_type, yaml.num_processes, yaml.num_machines, yaml.machine_rank, yaml.main_process_ip, yaml.main_process_port],
    ['MULTI_GPU', 16, 2, 1, '10.0.0.1', 29500],
  );
  assert.equal(accelerateConfig(c({ numProcesses: 2 })).mixed_precision, 'no', 'auto: float32 unless the script finds bf16');

  for (const stage of [2, 3] as const) {
    const cluster = c({ numProcesses: 4, deepspeedStage: stage, mixedPrecision: 'bf16' });
    const cfg = accelerateConfig(cluster);
    assert.equal(cfg.mixed_precision, undefined, 'with a DeepSpeed file, precision comes from it');
    assert.deepEqual(cfg.deepspeed_config, {
      deepspeed_config_file: 'deepspeed_config.json',
      deepspeed_multinode_launcher: 'standard',
      zero3_init_flag: false,
    });
    const ds = deepspeedConfig(cluster, { batchSize: 10, gradientAccumulationSteps: 3 });
    assert.equal(ds.optimizer, undefined, 'no optimizer block: the client optimizer is kept');
    assert.equal(ds.scheduler, undefined);
    assert.equal(ds.zero_allow_untested_optimizer, true);
    assert.equal(ds.train_micro_batch_size_per_gpu, 3);
    assert.equal(ds.gradient_accumulation_steps, 3);
    assert.equal(ds.gradient_clipping, 0);
    assert.equal((ds.zero_optimization as { stage: number }).stage, stage);
    assert.equal(
      (ds.zero_optimization as Record<string, unknown>).stage3_gather_16bit_weights_on_model_save,
      stage === 3 ? true : undefined,
    );
  }
  const fsdp = accelerateConfig(c({ numProcesses: 8, fsdp: true })).fsdp_config as Record<string, unknown>;
  assert.equal(fsdp.fsdp_transformer_layer_cls_to_wrap, 'T5Block');
  assert.equal(fsdp.fsdp_auto_wrap_policy, 'TRANSFORMER_BASED_WRAP');
  assert.equal(fsdp.fsdp_state_dict_type, 'FULL_STATE_DICT');
});

test(
  '--dry-run writes a self-contained job for a 2-machine DeepSpeed ZeRO-3 cluster and prints what to run on each machine',
  { timeout: 120_000 },
  async () => {
    const work = emotionWork();
    const r = cliFromSource(
      [
        'train',
        '--launcher',
        'accelerate',
        '--dry-run',
        '--num-processes',
        '16',
        '--num-machines',
        '2',
        '--main-process-ip',
        '10.0.0.1',
        '--deepspeed-stage',
        '3',
        '--mixed-precision',
        'bf16',
        '--init',
        'random',
        '--model-config',
        'tiny',
        '--tokenizer',
        TOKENIZER_DIR,
        '--use-adafactor',
        '--batch-size',
        '32',
        '--gradient-accumulation-steps',
        '2',
        '--max-train-examples',
        '60',
        '--max-eval-examples',
        '20',
        '--max-source-length',
        '48',
        '--epochs',
        '3',
        '--seed',
        '7',
        '--early-stopping-patience',
        '2',
        '--prefix-text',
        'emotion: ',
      ],
      work,
    );
    assert.equal(r.code, 0, r.out);
    const jobs = fs.readdirSync(path.join(work, 'jobs'));
    assert.equal(jobs.length, 1);
    const jobDir = path.join(work, 'jobs', jobs[0]!);
    assert.match(jobs[0]!, /^t5-tiny-scratch_[A-Z][a-z]{2}\d\d_\d\d-\d\d-\d\d$/);
    assert.ok(fs.existsSync(path.join(work, 'runs', jobs[0]!)), 'the run name is claimed as train claims it');

    // The commands, machine by machine.
    assert.match(r.stdout, /install \(each machine\): python3 -m pip install -r jobs\/.+\/requirements\.txt/);
    assert.match(r.stdout, /machine 0 \(10\.0\.0\.1, main\): MACHINE_RANK=0 PYTHON=python3 sh jobs\/.+\/run\.sh/);
    assert.match(r.stdout, /machine 1: MACHINE_RANK=1 PYTHON=python3 sh jobs\/.+\/run\.sh/);

    // The script is the repository's, copied.
    for (const name of fs.readdirSync(PYTHON_SOURCE).filter((n) => n.endsWith('.py'))) {
      assert.equal(
        fs.readFileSync(path.join(jobDir, 't5cls_accelerate', name), 'utf-8'),
        fs.readFileSync(path.join(PYTHON_SOURCE, name), 'utf-8'),
        name,
      );
    }
    const job = readJson<JobFile>(path.join(jobDir, 'job.json'));
    assert.equal(job.format, 't5cls-accelerate-job');
    assert.equal(job.runName, jobs[0]);
    assert.equal(job.lora, null);
    // Every train option keeps its meaning; the default rate is resolved as train resolves it.
    const o = job.options;
    assert.deepEqual(
      [
        o.epochs,
        o.batchSize,
        o.gradientAccumulationSteps,
        o.seed,
        o.maxSourceLength,
        o.prefixText,
        o.useAdafactor,
        o.adafactorScaleParameter,
        o.learningRate,
        o.earlyStoppingPatience,
      ],
      [3, 32, 2, 7, 48, 'emotion: ', true, true, 1e-2, 2],
    );
    assert.deepEqual(
      [
        job.launcher.numProcesses,
        job.launcher.numMachines,
        job.launcher.mainProcessIp,
        job.launcher.deepspeedStage,
        job.launcher.mixedPrecision,
      ],
      [16, 2, '10.0.0.1', 3, 'bf16'],
    );
    assert.deepEqual(job.outputs, {
      weightsDir: '../../weights',
      logFile: `../../logs/${job.runName}.txt`,
      tensorboardDir: `../../runs/${job.runName}`,
    });
    // The data as train read it (the --max-* slices), the classes map, the tokenizer, t5cls's random start.
    assert.equal(readJson<unknown[]>(path.join(jobDir, 'data/train.json')).length, 60);
    assert.equal(readJson<unknown[]>(path.join(jobDir, 'data/validation.json')).length, 20);
    assert.deepEqual(readJson(path.join(jobDir, 'data/classes_map.json')), { anger: 0, joy: 1, optimism: 2, sadness: 3 });
    assert.deepEqual(job.classNames, ['anger', 'joy', 'optimism', 'sadness']);
    const tok = await T5Tokenizer.fromPretrained(path.join(jobDir, 'tokenizer'));
    const tokens = readJson(path.join(jobDir, 'data/tokens.json'));
    const trainRows = readJson<{ text: string; label: number }[]>(path.join(jobDir, 'data/train.json'));
    assert.deepEqual(
      tokens.train,
      encodeExamples(tok, trainRows, 'emotion: ', 48).map((e) => e.inputIds),
      "t5cls's ids travel with the job",
    );
    assert.deepEqual(tokens.classes, encodeClassNames(tok, job.classNames));
    assert.equal(tokens.validation.length, 20);
    assert.deepEqual(tok.encode('emotion: what a day'), (await T5Tokenizer.fromPretrained(TOKENIZER_DIR)).encode('emotion: what a day'));
    assert.equal(job.model.path, 'model');
    for (const f of ['config.json', 'model.safetensors']) assert.ok(fs.existsSync(path.join(jobDir, 'model', f)), f);
    // Checkpoints get the config.json text t5cls writes for this model.
    const config = new T5Config({ ...NAMED_CONFIGS.tiny, vocab_size: 32128 });
    assert.equal(fs.readFileSync(path.join(jobDir, 'checkpoint_config.json'), 'utf-8'), config.toJSONText());
    assert.deepEqual(
      [job.checkpoint.tied, job.checkpoint.scaled, job.checkpoint.headWeightWritten],
      [config.tie_word_embeddings, config.scale_decoder_outputs, config.headWeightWritten],
    );
    // The run log's header, rendered as t5cls's RunLog writes it.
    const header = parseRunLog(`[options] 2030-01-01T00:00:00.000Z\n${job.logOptions.join('\n')}\n`).options;
    assert.equal(header.launcher, 'accelerate');
    assert.equal(header.numProcesses, '16');
    assert.equal(header.prefixText, 'emotion: ');
    assert.equal(header.batchSize, '32');

    // accelerate's and DeepSpeed's configs, as the cluster needs them.
    const yaml = parseYaml(fs.readFileSync(path.join(jobDir, 'accelerate_config.yaml'), 'utf-8'), { version: '1.1' }) as Record<
      string,
      unknown
    >;
    assert.deepEqual(
      [yaml.distributed_type, yaml.num_processes, yaml.num_machines, yaml.main_process_ip],
      ['DEEPSPEED', 16, 2, '10.0.0.1'],
    );
    const ds = readJson(path.join(jobDir, 'deepspeed_config.json'));
    assert.equal(ds.zero_optimization.stage, 3);
    assert.equal(ds.train_micro_batch_size_per_gpu, 2);
    assert.equal(ds.gradient_accumulation_steps, 2);
    assert.match(fs.readFileSync(path.join(jobDir, 'requirements.txt'), 'utf-8'), /^deepspeed>=/m);
    const run = fs.readFileSync(path.join(jobDir, 'run.sh'), 'utf-8');
    assert.match(
      run,
      /-m accelerate\.commands\.launch --config_file accelerate_config\.yaml --machine_rank "\$\{MACHINE_RANK:-0\}" t5cls_accelerate\/train\.py job\.json "\$@"/,
    );
    assert.equal(fs.statSync(path.join(jobDir, 'run.sh')).mode & 0o111, 0o111);
    assert.ok(!fs.existsSync(path.join(work, 'weights')), 'a dry run trains nothing');
  },
);

test("a user's own accelerate config wins; a pretrained model folder is named, not copied", { timeout: 120_000 }, () => {
  const work = emotionWork();
  // A model folder as t5cls saves it.
  const init = cliFromSource(
    [
      'train',
      '--launcher',
      'accelerate',
      '--dry-run',
      '--init',
      'random',
      '--model-config',
      'tiny',
      '--tokenizer',
      TOKENIZER_DIR,
      '--max-train-examples',
      '4',
    ],
    work,
  );
  assert.equal(init.code, 0, init.out);
  const modelDir = path.join(firstJobDir(work), 'model');
  const mine = path.join(work, 'mine.yaml');
  fs.writeFileSync(mine, 'compute_environment: LOCAL_MACHINE\ndistributed_type: MULTI_GPU\nnum_processes: 3\n');
  const r = cliFromSource(
    [
      'train',
      '--launcher',
      'accelerate',
      '--dry-run',
      '--model',
      modelDir,
      '--tokenizer',
      TOKENIZER_DIR,
      '--accelerate-config',
      mine,
      '--max-eval-examples',
      '5',
    ],
    work,
  );
  assert.equal(r.code, 0, r.out);
  const jobDir = path.join(
    work,
    'jobs',
    fs.readdirSync(path.join(work, 'jobs')).find((n) => n.startsWith('model_'))!,
  );
  assert.equal(fs.readFileSync(path.join(jobDir, 'accelerate_config.yaml'), 'utf-8'), fs.readFileSync(mine, 'utf-8'));
  const job = readJson<JobFile>(path.join(jobDir, 'job.json'));
  assert.equal(job.model.path, modelDir);
  assert.equal(job.model.hubId, undefined);
  assert.equal(job.options.learningRate, 1e-4, "AdamW's default rate");
  assert.ok(!fs.existsSync(path.join(jobDir, 'model')));
});

test(
  'refusals: fp16, DeepSpeed with FSDP, a missing accelerate config; no usable Python leaves the job and says what to do',
  { timeout: 120_000 },
  () => {
    const work = emotionWork();
    const base = [
      'train',
      '--launcher',
      'accelerate',
      '--init',
      'random',
      '--model-config',
      'tiny',
      '--tokenizer',
      TOKENIZER_DIR,
      '--max-train-examples',
      '8',
    ];
    const fp16 = cliFromSource([...base, '--mixed-precision', 'fp16', '--dry-run'], work);
    assert.equal(fp16.code, 2, fp16.out);
    assert.match(fp16.out, /--mixed-precision fp16: refused: T5 overflows in fp16/);
    const both = cliFromSource([...base, '--deepspeed-stage', '3', '--fsdp', '--dry-run'], work);
    assert.equal(both.code, 2, both.out);
    assert.match(both.out, /--deepspeed-stage and --fsdp: choose one/);
    const stage = cliFromSource([...base, '--deepspeed-stage', '1', '--dry-run'], work);
    assert.equal(stage.code, 2, stage.out);
    assert.match(stage.out, /--deepspeed-stage: expected a number ≥ 2/);
    const missing = cliFromSource([...base, '--accelerate-config', 'nowhere.yaml', '--dry-run'], work);
    assert.equal(missing.code, 2, missing.out);
    assert.match(missing.out, /--accelerate-config nowhere.yaml: no such file/);
    assert.ok(!fs.existsSync(path.join(work, 'jobs')), 'a refused job writes nothing');

    const nopython = cliFromSource([...base, '--python', path.join(work, 'no-python')], work);
    assert.equal(nopython.code, 1, nopython.out);
    assert.match(nopython.out, /training did not run here: no usable Python \(.*no-python: no such interpreter\); the job is written/);
    assert.match(nopython.stdout, /install \(each machine\): .*no-python -m pip install -r jobs\/.*requirements\.txt/);
    assert.match(nopython.stdout, /run: MACHINE_RANK=0 .* sh jobs\/.*\/run\.sh/);
    assert.equal(fs.readdirSync(path.join(work, 'jobs')).length, 1);
  },
);

test("doctor's Python section: a missing interpreter is reported at once, and what the launcher can still do", () => {
  const started = Date.now();
  const r = pythonReport('/nonexistent/python3');
  assert.ok(Date.now() - started < 5_000);
  assert.deepEqual([r.env, r.launcherReady, r.error], [null, false, '/nonexistent/python3: no such interpreter']);
  assert.deepEqual(formatPythonReport(r), [
    'Python (train --launcher accelerate, /nonexistent/python3):',
    '  not usable: /nonexistent/python3: no such interpreter',
    '  --launcher accelerate writes jobs (--dry-run) but cannot run them here',
  ]);
});

test("the accelerate job's options are refused without --launcher accelerate, in one line", { timeout: 120_000 }, () => {
  const work = emotionWork();
  const base = ['train', '--init', 'random', '--model-config', 'tiny', '--tokenizer', TOKENIZER_DIR, '--max-train-examples', '4'];
  for (const [extra, flag] of [
    [['--num-processes', '2'], '--num-processes'],
    [['--launcher', 'tfjs', '--deepspeed-stage', '2'], '--deepspeed-stage'],
    [['--dry-run'], '--dry-run'],
    [['--python', 'python3', '--resume', 'latest'], '--python'],
  ] as const) {
    const r = cliFromSource([...base, ...extra], work);
    assert.equal(r.code, 2, r.out);
    const errors = r.out.split('\n').filter((l) => /error/i.test(l));
    assert.equal(errors.length, 1, r.out);
    assert.match(errors[0]!, new RegExp(`${flag} needs --launcher accelerate$`));
  }
  assert.ok(!fs.existsSync(path.join(work, 'runs')) && !fs.existsSync(path.join(work, 'jobs')), 'nothing was started');
});

test(
  "a LoRA job: job.json's lora block, the fresh adapter t5cls's train draws, peft required; what cannot go with LoRA is refused",
  { timeout: 120_000 },
  async () => {
    const work = emotionWork();
    const base = tinyBase(work);
    const common = [
      'train',
      '--launcher',
      'accelerate',
      '--dry-run',
      '--model',
      base,
      '--tokenizer',
      TOKENIZER_DIR,
      '--max-train-examples',
      '8',
    ];
    const r = cliFromSource([...common, '--lora-r', '2', '--lora-alpha', '4', '--lora-target-modules', 'all-linear', '--seed', '5'], work);
    assert.equal(r.code, 0, r.out);
    const jobDir = firstJobDir(work);
    const job = readJson<JobFile>(path.join(jobDir, 'job.json'));
    assert.deepEqual(job.lora, {
      r: 2,
      alpha: 4,
      dropout: 0,
      targetModules: ['q', 'k', 'v', 'o', 'wi', 'wo'],
      base: { nameOrPath: base, revision: null },
      adapter: 'adapter',
      from: null,
    });
    assert.equal(job.model.path, base);
    assert.equal(job.record.loraR, 2);
    assert.match(fs.readFileSync(path.join(jobDir, 'requirements.txt'), 'utf-8'), /^peft>=/m);
    // The adapter the job starts from is the one `t5cls train --lora-r 2 --seed 5` attaches to this base.
    await useBackend(testBackends()[0]!);
    const model = T5ForConditionalGeneration.fromPretrained(base);
    const config = new LoraConfig({ r: 2, alpha: 4, targetModules: 'all-linear' });
    const ours = new LoraAdapter(model, config, { seed: 5, base: { nameOrPath: base, revision: null } });
    try {
      const written = readSafetensorsFile(path.join(jobDir, 'adapter', 'adapter_model.safetensors')).tensors;
      assert.deepEqual([...written.keys()].sort(), [...ours.namedVariables().keys()].sort());
      for (const [key, v] of ours.namedVariables()) assert.deepEqual(written.get(key)!.data, v.dataSync(), key);
      assert.equal(
        fs.readFileSync(path.join(jobDir, 'adapter', 'adapter_config.json'), 'utf-8'),
        adapterConfigText(ours, base, 'SEQ_2_SEQ_LM'),
      );
    } finally {
      ours.dispose();
      model.dispose();
    }

    const refusals: [string[], RegExp][] = [
      [['--lora-r', '2', '--fsdp'], /--fsdp cannot be combined with LoRA/],
      [['--lora-r', '2', '--num-processes', '2', '--deepspeed-stage', '3'], /--deepspeed-stage 3 cannot be combined with LoRA/],
      [['--lora-alpha', '4'], /--lora-alpha needs --lora-r/],
      [['--adapter', base], /--adapter .*: no adapter_config\.json/],
    ];
    for (const [extra, message] of refusals) {
      const refused = cliFromSource([...common, ...extra], work);
      assert.equal(refused.code, 2, refused.out);
      assert.match(refused.out, message);
    }
    assert.equal(fs.readdirSync(path.join(work, 'jobs')).length, 1, 'a refused job writes nothing');
  },
);

test(
  '--resume of a job: more --epochs rewrite job.json, other changed options are refused, --dry-run prints run.sh --resume',
  { timeout: 120_000 },
  () => {
    const work = emotionWork();
    const none = cliFromSource(['train', '--launcher', 'accelerate', '--resume', 'latest'], work);
    assert.equal(none.code, 2, none.out);
    assert.match(none.out, /--resume: no job under .*jobs/);
    const args = ['--init', 'random', '--model-config', 'tiny', '--tokenizer', TOKENIZER_DIR, '--max-train-examples', '8', '--epochs', '1'];
    const r = cliFromSource(['train', '--launcher', 'accelerate', '--dry-run', ...args], work);
    assert.equal(r.code, 0, r.out);
    const resume = ['train', '--launcher', 'accelerate', '--resume', 'latest', '--dry-run'];
    const changed = cliFromSource([...resume, '--max-train-examples', '9'], work);
    assert.equal(changed.code, 2, changed.out);
    assert.match(changed.out, /--max-train-examples was 8 in that run, not 9/);
    const more = cliFromSource([...resume, '--epochs', '3'], work);
    assert.equal(more.code, 0, more.out);
    assert.match(more.stdout, /run: MACHINE_RANK=0 PYTHON=python3 sh jobs\/.+\/run\.sh --resume$/m);
    const jobDir = firstJobDir(work);
    const job = readJson<JobFile>(path.join(jobDir, 'job.json'));
    assert.deepEqual([job.options.epochs, job.record.epochs], [3, 3]);
  },
);

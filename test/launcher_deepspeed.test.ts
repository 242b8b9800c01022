/**
 * The DeepSpeed config `t5cls train --launcher accelerate --deepspeed-stage 2|3` writes, read by DeepSpeed itself
 * as accelerate hands it over: accelerate's DeepSpeedPlugin reads the file, sets the precision and fills its "auto"
 * values as `Accelerator.prepare` does for the job's model (no data loader: the micro-batch is the file's), then
 * DeepSpeed's own DeepSpeedConfig parses and checks it for the job's number of data-parallel processes. Runs where
 * `T5CLS_PYTHON` (else `python3`) has torch, transformers, accelerate and deepspeed; reported as skipped, with the
 * reason, elsewhere.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import type { JobFile } from '../src/launcher/job_folder.js';
import { TOKENIZER_DIR, readJson } from './helpers/fixtures.js';
import { cliFromSource, emotionWork, firstJobDir, launcherTemp, pythonSkip, runPython } from './helpers/launcher.js';

const skip = pythonSkip(['torch', 'transformers', 'accelerate', 'deepspeed']);
after(() => launcherTemp.removeAll());

/**
 * For each job folder: its DeepSpeed config as DeepSpeed reads it after accelerate's fill-in. A one-process gloo
 * group stands in for the cluster; the data-parallel size DeepSpeed checks the batch sizes against is the job's
 * --num-processes.
 */
const PROBE = `
import json, os, sys, tempfile
result, sys.stdout = sys.stdout, sys.stderr  # DeepSpeed logs to stdout: the answer alone goes there
import torch.distributed as torch_dist
from accelerate.commands.config.config_args import load_config_from_file
from accelerate.utils import DeepSpeedPlugin
from transformers import AutoConfig
import deepspeed
from deepspeed.runtime.config import DeepSpeedConfig

torch_dist.init_process_group("gloo", init_method="file://" + os.path.join(tempfile.mkdtemp(), "rendezvous"), rank=0, world_size=1)
deepspeed.init_distributed(dist_backend="gloo", auto_mpi_discovery=False, verbose=False)

class DataParallel:
    def __init__(self, size):
        self.size = size
    def get_data_parallel_world_size(self):
        return self.size
    def get_data_parallel_rank(self):
        return 0
    def get_model_parallel_world_size(self):
        return 1
    def get_model_parallel_rank(self):
        return 0

out = []
for job_dir in sys.argv[1:]:
    os.chdir(job_dir)
    job = json.load(open("job.json", encoding="utf-8"))
    c = load_config_from_file("accelerate_config.yaml")
    plugin = DeepSpeedPlugin(hf_ds_config=c.deepspeed_config["deepspeed_config_file"])
    # What train.py asks of the Accelerator on a GPU with bf16: "auto" and "bf16" train in bf16.
    precision = "no" if job["launcher"].get("mixedPrecision") == "no" else "bf16"
    plugin.set_mixed_precision(precision)
    # Accelerator.prepare(model, optimizer), as accelerate fills the config (no data loader is prepared).
    plugin.fill_match("gradient_accumulation_steps", must_match=False, gradient_accumulation_steps=1)
    micro = plugin.get_value("train_micro_batch_size_per_gpu")
    hidden = AutoConfig.from_pretrained(job["model"]["path"]).hidden_size
    plugin.deepspeed_config_process(
        must_match=False,
        **{
            "gradient_clipping": 1.0,
            "zero_optimization.stage3_gather_16bit_weights_on_model_save": False,
            "train_micro_batch_size_per_gpu": micro,
            "train_batch_size": micro * plugin.get_value("gradient_accumulation_steps") * c.num_processes,
            "zero_optimization.reduce_bucket_size": hidden * hidden,
            "zero_optimization.stage3_prefetch_bucket_size": int(0.9 * hidden * hidden),
            "zero_optimization.stage3_param_persistence_threshold": 10 * hidden,
        },
    )
    plugin.deepspeed_config["zero_allow_untested_optimizer"] = True
    left = lambda d, at="": [k for key, v in d.items() for k in (left(v, at + key + ".") if isinstance(v, dict) else [at + key] if v == "auto" else [])]
    ds = DeepSpeedConfig(plugin.deepspeed_config, mpu=DataParallel(c.num_processes))
    z = ds.zero_config
    out.append({
        "processes": c.num_processes,
        "hidden": hidden,
        "left_auto": left(plugin.deepspeed_config),
        "train_batch_size": ds.train_batch_size,
        "micro_batch": ds.train_micro_batch_size_per_gpu,
        "accumulation": ds.gradient_accumulation_steps,
        "stage": int(ds.zero_optimization_stage),
        "bf16": ds.bfloat16_config.enabled,
        "fp16": ds.float16_config.enabled,
        "optimizer": ds.optimizer_name,
        "scheduler": ds.scheduler_name,
        "untested_optimizer": ds.zero_allow_untested_optimizer,
        "clipping": ds.gradient_clipping,
        "reduce_bucket_size": int(z.reduce_bucket_size),
        "prefetch_bucket_size": int(z.prefetch_bucket_size),
        "param_persistence_threshold": int(z.param_persistence_threshold),
        "gather_16bit_weights_on_model_save": z.gather_16bit_weights_on_model_save,
    })
print(json.dumps(out), file=result)
`;

const CASES = [
  { name: 'ZeRO-2, AdamW, 8 processes', args: ['--deepspeed-stage', '2', '--num-processes', '8'], batch: 16, accum: 1, bf16: true },
  {
    name: 'ZeRO-2, Adafactor, accumulation 4, bf16, 8 processes',
    args: [
      '--deepspeed-stage',
      '2',
      '--num-processes',
      '8',
      '--use-adafactor',
      '--gradient-accumulation-steps',
      '4',
      '--mixed-precision',
      'bf16',
    ],
    batch: 16,
    accum: 4,
    bf16: true,
  },
  {
    name: 'ZeRO-3, AdamW, accumulation 2, bf16, 4 processes',
    args: ['--deepspeed-stage', '3', '--num-processes', '4', '--gradient-accumulation-steps', '2', '--mixed-precision', 'bf16'],
    batch: 16,
    accum: 2,
    bf16: true,
  },
  {
    name: 'ZeRO-3, Adafactor, float32, a batch of 12 on 8 processes',
    args: ['--deepspeed-stage', '3', '--num-processes', '8', '--use-adafactor', '--mixed-precision', 'no'],
    batch: 12,
    accum: 1,
    bf16: false,
  },
];

test('DeepSpeed reads the generated ZeRO-2 and ZeRO-3 configs as accelerate hands them over', { skip, timeout: 300_000 }, (t) => {
  const jobs = CASES.map((c) => {
    const work = emotionWork();
    const r = cliFromSource(
      [
        ...['train', '--launcher', 'accelerate', '--dry-run', '--init', 'random', '--model-config', 'tiny', '--tokenizer', TOKENIZER_DIR],
        ...['--max-train-examples', '16', '--max-eval-examples', '8', '--batch-size', String(c.batch), ...c.args],
      ],
      work,
    );
    assert.equal(r.code, 0, r.out);
    const jobDir = firstJobDir(work);
    const job = readJson<JobFile>(path.join(jobDir, 'job.json'));
    assert.equal(job.launcher.deepspeedConfigFile, 'deepspeed_config.json', c.name);
    return jobDir;
  });
  const got = runPython(PROBE, jobs) as Record<string, any>[];
  CASES.forEach((c, i) => {
    const ds = got[i]!;
    t.diagnostic(`${c.name}: ${JSON.stringify(ds)}`);
    const stage = Number(c.args[1]);
    const processes = ds.processes as number;
    assert.equal(processes, Number(c.args[3]), c.name);
    assert.deepEqual(ds.left_auto, [], `${c.name}: every "auto" value is filled`);
    const micro = Math.ceil(c.batch / processes);
    assert.equal(ds.micro_batch, micro, `${c.name}: each process's share of --batch-size`);
    assert.equal(ds.accumulation, c.accum, c.name);
    assert.equal(ds.train_batch_size, micro * c.accum * processes, c.name);
    assert.equal(ds.stage, stage, c.name);
    assert.equal(ds.bf16, c.bf16, c.name);
    assert.equal(ds.fp16, false, c.name);
    // t5cls's optimizer is the client optimizer: DeepSpeed builds none of its own, nor a scheduler, and clips nothing.
    assert.equal(ds.optimizer, null, c.name);
    assert.equal(ds.scheduler, null, c.name);
    assert.equal(ds.untested_optimizer, true, c.name);
    assert.equal(ds.clipping, 0, c.name);
    const hidden = ds.hidden as number;
    assert.equal(ds.reduce_bucket_size, hidden * hidden, c.name);
    if (stage === 3) {
      assert.equal(ds.prefetch_bucket_size, Math.floor(0.9 * hidden * hidden), c.name);
      assert.equal(ds.param_persistence_threshold, 10 * hidden, c.name);
      assert.equal(ds.gather_16bit_weights_on_model_save, true, `${c.name}: the checkpoint gathers the whole model`);
    }
  });
});

/**
 * The job's accumulation under a real DeepSpeed engine (one CPU process, gloo): each optimizer step spans its
 * micro-batches, the short last step of an epoch included, and ends where t5cls's AdamW step on the summed
 * gradients (each micro-batch's loss over --gradient-accumulation-steps) ends.
 */
const ACCUMULATION = `
import copy, json, os, sys, tempfile
result, sys.stdout = sys.stdout, sys.stderr
os.environ.update(LOCAL_RANK="0", RANK="0", WORLD_SIZE="1")
import torch
import torch.distributed as torch_dist
torch_dist.init_process_group("gloo", init_method="file://" + os.path.join(tempfile.mkdtemp(), "rendezvous"), rank=0, world_size=1)
import deepspeed
deepspeed.init_distributed(dist_backend="gloo", auto_mpi_discovery=False, verbose=False)
from accelerate.utils.deepspeed import DeepSpeedEngineWrapper
from train import deepspeed_boundary

class Flag:
    """The Accelerator's sync_gradients, which accelerator.backward hands to DeepSpeed."""
    sync_gradients = True

STEPS = [[0, 1], [2, 3], [4]]
ACCUM = 2
torch.manual_seed(0)
x, y = torch.randn(5, 6), torch.randn(5, 3)
start = torch.nn.Linear(6, 3)
loss_of = lambda m, i: ((m(x[i : i + 1]) - y[i : i + 1]) ** 2).sum()

reference = copy.deepcopy(start)
opt = torch.optim.AdamW(reference.parameters(), lr=0.05, weight_decay=0.01)
for step in STEPS:
    opt.zero_grad()
    for i in step:
        (loss_of(reference, i) / ACCUM).backward()
    opt.step()

out = {}
for stage in (2, 3):
    model = copy.deepcopy(start)
    config = {"train_micro_batch_size_per_gpu": 1, "gradient_accumulation_steps": ACCUM, "gradient_clipping": 0,
              "zero_allow_untested_optimizer": True, "zero_optimization": {"stage": stage},
              "bf16": {"enabled": False}, "fp16": {"enabled": False}, "steps_per_print": 10**9}
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.01)
    engine, _, _, _ = deepspeed.initialize(model=model, optimizer=optimizer, config_params=config)
    wrapper, flag = DeepSpeedEngineWrapper(engine), Flag()
    for step in STEPS:
        for k, i in enumerate(step):
            deepspeed_boundary(flag, engine, k == len(step) - 1)
            wrapper.backward(loss_of(engine, i), sync_gradients=flag.sync_gradients)
    if stage == 3:
        with deepspeed.zero.GatheredParameters(list(engine.module.parameters())):
            trained = [p.detach().clone() for p in engine.module.parameters()]
    else:
        trained = [p.detach().clone() for p in engine.module.parameters()]
    out[stage] = {
        "steps": engine.global_steps,
        "flag": flag.sync_gradients,
        "moved": max(float((a - b).abs().max()) for a, b in zip(trained, start.parameters())),
        "difference": max(float((a - b).abs().max()) for a, b in zip(trained, reference.parameters())),
    }
print(json.dumps(out), file=result)
`;

test(
  'under DeepSpeed ZeRO-2 and ZeRO-3 an optimizer step spans its micro-batches, a short last step too (gradient accumulation)',
  { skip, timeout: 300_000 },
  (t) => {
    const got = runPython(ACCUMULATION) as Record<string, { steps: number; flag: boolean; moved: number; difference: number }>;
    for (const stage of ['2', '3']) {
      const r = got[stage]!;
      t.diagnostic(`ZeRO-${stage}: ${JSON.stringify(r)}`);
      assert.equal(r.steps, 3, `ZeRO-${stage}: 5 micro-batches in 3 optimizer steps`);
      assert.equal(r.flag, true, 'the flag is left as accelerate expects it between steps');
      assert.ok(r.moved > 0.05, `ZeRO-${stage}: the weights moved by ${r.moved}`);
      assert.ok(r.difference <= 1e-6, `ZeRO-${stage}: ${r.difference} from the AdamW step on the summed gradients`);
    }
  },
);

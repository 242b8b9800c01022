/**
 * `t5cls train --launcher accelerate`: the same training job on PyTorch + transformers + accelerate. Writes the job
 * folder (jobs/<run>/, src/launcher/), then, unless --dry-run or no usable Python is found, runs `accelerate launch`
 * on this machine and streams its output; the job writes the checkpoints, log and TensorBoard events train writes.
 * A LoRA run (--lora-r, --adapter) hands its adapter over too: the job trains it through PEFT on the frozen base.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ParsedParams } from './options.js';
import type { OptionName, TrainParams } from '../params/commands.js';
import { launcherOptions } from '../params/launcher.js';
import { kebab } from '../params/option_info.js';
import { T5clsError, UsageError } from '../errors.js';
import { writeJsonAtomic } from '../fsutil.js';
import { initBackend } from '../engine/init.js';
import { writeRunReport } from '../report/index.js';
import { defaultLearningRate } from '../train/step.js';
import { assertSafeName } from '../train/checkpoint.js';
import { claimRunName, loadSplits, refuseChangedOptions, resolveDataDir, RESUME_MAY_CHANGE, sayer } from './shared.js';
import { adapterBaseOf, trainingLoraConfig, trainingModelSource } from './train_lora.js';
import { createModel, resolveModelSource } from './model_source.js';
import { trainOptions } from './train_options.js';
import { resolveCluster, type Cluster } from '../launcher/cluster.js';
import { jobInstructions, JOB_FILE, writeJobFolder, type JobFile } from '../launcher/job_folder.js';
import { describeDevices, describePythonEnv, missingPackages, probePython, type PythonEnv } from '../launcher/python_env.js';
import { launchJob } from '../launcher/launch.js';
import { encodeClassNames, encodeExamples } from '../data/batches.js';

/** The options that only a `--launcher accelerate` job reads. */
const ACCELERATE_ONLY = Object.keys(launcherOptions).filter((name) => name !== 'launcher') as OptionName<'train'>[];

/** Without `--launcher accelerate`, its options are refused in one line rather than ignored. */
export function refuseLauncherOptions(given: Set<OptionName<'train'>>): void {
  const stray = ACCELERATE_ONLY.find((name) => given.has(name));
  if (stray !== undefined) throw new UsageError(`--${kebab(stray)} needs --launcher accelerate`);
}

export async function runWithLauncher({ params: p, given }: ParsedParams<'train'>): Promise<void> {
  const say = sayer(p.quiet);
  const python = p.python ?? 'python3';
  if (p.resume !== undefined) return resumeJob(p, given, python, say);
  if (p.accelerateConfig !== undefined && !fs.existsSync(p.accelerateConfig))
    throw new UsageError(`--accelerate-config ${p.accelerateConfig}: no such file`);
  const lora = trainingLoraConfig(p, given);
  if (lora && p.fsdp) throw new UsageError('--fsdp cannot be combined with LoRA (--lora-r, --adapter): use DDP or --deepspeed-stage 2');
  if (lora && p.deepspeedStage === 3)
    throw new UsageError('--deepspeed-stage 3 cannot be combined with LoRA (--lora-r, --adapter): use --deepspeed-stage 2');
  const probe = p.dryRun ? undefined : probePython(python);
  const cluster = resolveCluster(p, probe?.env?.cuda.devices.length ?? 0);
  if (cluster.accelerateConfig) cluster.accelerateConfig = path.resolve(cluster.accelerateConfig);
  // With --adapter and no --model, the base its adapter_config.json names.
  const source = trainingModelSource(p, given);

  const dataDir = resolveDataDir(p.dataDir);
  const classesMapPath = path.resolve(p.classesMap);
  const { classNames, splits } = loadSplits(dataDir, classesMapPath, ['train', 'validation']);
  const train = p.maxTrainExamples !== undefined ? splits.train.slice(0, p.maxTrainExamples) : splits.train;
  const validation = p.maxEvalExamples !== undefined ? splits.validation.slice(0, p.maxEvalExamples) : splits.validation;
  const { tokenizer, config, modelName, modelDir } = await resolveModelSource(source, say);
  assertSafeName(modelName, 'model name');
  const options = trainOptions(p);
  if (!options.useAdafactorSchedule) options.learningRate ??= defaultLearningRate(options.useAdafactor, options.adafactorScaleParameter);
  else if (p.learningRate !== undefined)
    throw new UsageError('--learning-rate cannot be combined with --use-adafactor-schedule (Adafactor sets its own rate)');

  const { runTime, runName } = claimRunName(path.resolve(p.runsDir), modelName, new Date());
  const jobDir = path.resolve('jobs', runName);
  const record: Record<string, unknown> = {
    ...source,
    launcher: 'accelerate',
    numProcesses: cluster.numProcesses,
    numMachines: cluster.numMachines,
    mixedPrecision: cluster.mixedPrecision,
    adafactorScaleParameter: options.adafactorScaleParameter,
    dataDir,
    classesMap: classesMapPath,
    given: [...given],
  };
  const local = fs.existsSync(path.resolve(source.model)) && fs.statSync(path.resolve(source.model)).isDirectory();
  let writeInitialWeights: ((dir: string) => void) | undefined;
  // A fresh adapter or random weights are drawn by t5cls (an adapter's tensors are read by it, to be checked).
  if (modelDir === undefined || lora) await initBackend(p.backend, { threads: p.threads, device: p.device, log: say });
  if (modelDir === undefined) {
    writeInitialWeights = (dir) => {
      const model = createModel(p, config, undefined, say);
      try {
        model.savePretrained(dir);
      } finally {
        model.dispose();
      }
    };
  }
  await writeJobFolder({
    jobDir,
    runName,
    modelName,
    runTime,
    model: { path: modelDir, ...(local || modelDir === undefined ? {} : { hubId: source.model, revision: source.revision }) },
    writeInitialWeights,
    config,
    tokenizer,
    classNames,
    train,
    validation,
    tokens: {
      train: encodeExamples(tokenizer, train, options.prefixText, options.maxSourceLength).map((e) => e.inputIds),
      validation: encodeExamples(tokenizer, validation, options.prefixText, options.maxSourceLength).map((e) => e.inputIds),
      classes: encodeClassNames(tokenizer, classNames),
    },
    options,
    record,
    cluster,
    outputs: {
      weightsDir: path.resolve(p.saveWeightsPath),
      logFile: path.resolve(p.logsDir, `${runName}.txt`),
      tensorboardDir: path.resolve(p.runsDir, runName),
    },
    python,
    // As train names the base in its adapters: the Hub id as given, or the base folder's absolute path.
    lora: lora && {
      config: lora,
      base: adapterBaseOf(source, modelDir!),
      from: p.adapter !== undefined ? path.resolve(p.adapter) : undefined,
      seed: p.seed,
    },
  });
  say(`job: ${jobDir} (${train.length} training examples, ${classNames.length} classes, ${cluster.numProcesses} processes)`);
  await launchOrExplain(jobDir, cluster, python, probe, !!p.dryRun, [], say, lora !== undefined);
}

/** Runs the job here when it can; otherwise says why and prints what to install and run on each machine. */
async function launchOrExplain(
  jobDir: string,
  cluster: Cluster,
  python: string,
  probe: { env?: PythonEnv; error?: string } | undefined,
  dryRun: boolean,
  extra: string[],
  say: (line: string) => void,
  lora: boolean,
): Promise<void> {
  const explain = () => {
    for (const line of jobInstructions(jobDir, cluster, python, extra)) console.log(line);
  };
  if (dryRun || !probe) {
    explain();
    return;
  }
  const why = notRunnable(probe, cluster, lora);
  if (why) {
    explain();
    throw new T5clsError(`training did not run here: ${why}; the job is written (${jobDir}): install and run it as above`);
  }
  const env = probe.env!;
  say(describePythonEnv(env));
  say(describeDevices(env));
  if (cluster.numMachines > 1) {
    say(`this machine is rank ${cluster.machineRank} of ${cluster.numMachines}; start the others with:`);
    explain();
  }
  const result = await launchJob(jobDir, python, { machineRank: cluster.machineRank, extra, say });
  if (result.code !== 0) {
    throw new T5clsError(
      `the job failed (exit code ${result.code})${result.error ? `: ${result.error}` : ''}; its folder is ${jobDir}`,
      result.error ? 2 : 1,
    );
  }
  if (cluster.machineRank !== 0) return;
  if (result.checkpoint) {
    say(`evaluate it with: t5cls test --weights-name ${path.basename(result.checkpoint)}`);
    const job = JSON.parse(fs.readFileSync(path.join(jobDir, JOB_FILE), 'utf-8')) as { outputs: { logFile: string } };
    try {
      say(`report: ${writeRunReport({ run: path.resolve(jobDir, job.outputs.logFile) })}`);
    } catch (e) {
      say(`(no report written: ${(e as Error).message})`);
    }
  }
}

/** Why this Python cannot run the job here, or undefined. */
function notRunnable(probe: { env?: PythonEnv; error?: string }, cluster: Cluster, lora: boolean): string | undefined {
  if (!probe.env) return `no usable Python (${probe.error})`;
  const missing = missingPackages(probe.env, { deepspeed: cluster.deepspeedStage !== undefined, peft: lora });
  if (missing.length) return `${probe.env.python} lacks ${missing.join(', ')}`;
  if ((cluster.deepspeedStage !== undefined || cluster.fsdp) && probe.env.cuda.devices.length === 0) {
    return `${cluster.fsdp ? 'FSDP' : 'DeepSpeed'} shards the model over GPUs and torch sees none here (--dry-run writes the job for a GPU cluster)`;
  }
  return undefined;
}

/**
 * `--resume`: the job of a run (its jobs/ folder, its run name, or "latest") launched again from its saved state,
 * with the options it was started with; `--epochs` may grow (job.json is rewritten), `--machine-rank` names this
 * machine, `--dry-run` prints what to run on each machine.
 */
async function resumeJob(p: TrainParams, given: Set<OptionName<'train'>>, python: string, say: (line: string) => void): Promise<void> {
  const jobsDir = path.resolve('jobs');
  let jobDir: string;
  if (p.resume === true || p.resume === 'latest') {
    const jobs = fs.existsSync(jobsDir) ? fs.readdirSync(jobsDir).filter((n) => fs.existsSync(path.join(jobsDir, n, JOB_FILE))) : [];
    if (!jobs.length) throw new UsageError(`--resume: no job under ${jobsDir}`);
    jobs.sort((a, b) => fs.statSync(path.join(jobsDir, b, JOB_FILE)).mtimeMs - fs.statSync(path.join(jobsDir, a, JOB_FILE)).mtimeMs);
    jobDir = path.join(jobsDir, jobs[0]!);
  } else {
    const named = path.resolve(p.resume!);
    jobDir = fs.existsSync(path.join(named, JOB_FILE)) ? named : path.join(jobsDir, path.basename(p.resume!));
  }
  const file = path.join(jobDir, JOB_FILE);
  if (!fs.existsSync(file)) throw new UsageError(`--resume ${String(p.resume)}: no job folder (${file} is missing)`);
  const job = JSON.parse(fs.readFileSync(file, 'utf-8')) as JobFile;
  refuseChangedOptions(p, given, job.record, [...RESUME_MAY_CHANGE.train, 'launcher', 'python', 'machineRank', 'dryRun']);
  if (given.has('epochs') && p.epochs !== job.options.epochs) {
    // The job reads its epochs from job.json: a copy on every machine of a cluster needs the same change.
    writeJsonAtomic(file, { ...job, options: { ...job.options, epochs: p.epochs }, record: { ...job.record, epochs: p.epochs } });
    say(`the job now runs to epoch ${p.epochs} (${file} updated)`);
  }
  const cluster = { ...job.launcher, machineRank: p.machineRank ?? job.launcher.machineRank };
  say(`resuming the job ${jobDir}`);
  const probe = p.dryRun ? undefined : probePython(python);
  await launchOrExplain(jobDir, cluster, python, probe, !!p.dryRun, ['--resume'], say, job.lora != null);
}

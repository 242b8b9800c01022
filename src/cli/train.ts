/**
 * `t5cls train`: fine-tune (or train from scratch) a T5 on the processed data set, or with `--resume` continue a
 * stopped run from its saved state (see src/train/state.ts) with the options it was started with.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeRunReport } from '../report/index.js';
import type { ParsedParams } from './options.js';
import type { OptionName, TrainParams } from '../params/commands.js';
import { T5Config } from '../model/config.js';
import { readModelConfig } from '../model/pretrained_config.js';
import { T5ForConditionalGeneration } from '../model/modeling_t5.js';
import { T5Tokenizer } from '../tokenizer/index.js';
import { runTraining, type TrainJob } from '../train/trainer.js';
import type { TrainOptions } from '../train/types.js';
import { trainOptions } from './train_options.js';
import { loadTrainState, resolveResumeTarget, runStateDir, TOKENIZER_DIR, type LoadedTrainState } from '../train/state.js';
import { tf } from '../tf.js';
import { FormatError, UsageError } from '../errors.js';
import { initBackend } from '../engine/init.js';
import { encodeClassNames, encodeExamples, longestRow, type Example } from '../data/batches.js';
import { estimateMemory } from '../model/memory_estimate.js';
import { checkJobMemory } from './job_memory.js';
import { loadSplits, resolveDataDir, resolveModelDir } from './shared.js';
import { claimRunName, refuseChangedOptions, RESUME_MAY_CHANGE, sayer, startResumedBackend } from './shared.js';
import { createModel, resolveModelSource } from './model_source.js';
import { adapterBaseOf, attachTrainingAdapter, describeAdapter, trainingLoraConfig, trainingModelSource } from './train_lora.js';
import {
  ADAPTER_CONFIG_FILE,
  fromPretrainedWithAdapter,
  readAdapterBase,
  readAdapterConfig,
  type LoraConfig,
} from '../model/lora/index.js';
import { assertSafeName } from '../train/checkpoint.js';
import { stepHoldFromEnv } from '../train/hold.js';
import { refuseLauncherOptions, runWithLauncher } from './train_launcher.js';

/**
 * What the training job's tensors need at their peak (training steps, or validation beside the optimizer state);
 * throws, in one line, when this machine cannot hold it.
 */
function trainingTensorBytes(
  config: T5Config,
  modelName: string,
  o: TrainOptions,
  tokenizer: T5Tokenizer,
  train: Example[],
  classNames: string[],
  lora: LoraConfig | undefined,
): number {
  const sourceLength = longestRow(encodeExamples(tokenizer, train, o.prefixText, o.maxSourceLength).map((e) => e.inputIds));
  const targetLength = longestRow(encodeClassNames(tokenizer, classNames));
  const optimizer = o.useAdafactor ? 'adafactor' : 'adamw';
  const training = checkJobMemory(config, { batchSize: o.batchSize, sourceLength, targetLength, optimizer, lora }, modelName, {
    accumulation: o.gradientAccumulationSteps,
  });
  const validation = estimateMemory(config, { batchSize: o.evalBatchSize, sourceLength, targetLength });
  return Math.max(training.tensorBytes, validation.tensorBytes + training.optimizerBytes);
}

export async function run({ params: p, given }: ParsedParams<'train'>): Promise<void> {
  if (p.launcher === 'accelerate') return runWithLauncher({ params: p, given });
  refuseLauncherOptions(given);
  const say = sayer(p.quiet);
  if (p.resume !== undefined) return resume(p, given, say);
  const dataDir = resolveDataDir(p.dataDir);
  const classesMapPath = path.resolve(p.classesMap);
  const { classNames, splits } = loadSplits(dataDir, classesMapPath, ['train', 'validation']);
  let train = splits.train;
  let validation = splits.validation;
  if (p.maxTrainExamples !== undefined) train = train.slice(0, p.maxTrainExamples);
  if (p.maxEvalExamples !== undefined) validation = validation.slice(0, p.maxEvalExamples);

  // The model's shape and the job's lengths first: they decide whether this machine can hold the job, and which
  // engine (wasm's heap holds 4 GiB at most); nothing large is allocated before that.
  const lora = trainingLoraConfig(p, given);
  const source = trainingModelSource(p, given);
  const { tokenizer, config, modelName, modelDir } = await resolveModelSource(source, say);
  const options = trainOptions(p);
  const tensorBytes = trainingTensorBytes(config, modelName, options, tokenizer, train, classNames, lora);
  const backend = await initBackend(p.backend, { threads: p.threads, device: p.device, log: say, tensorBytes });
  const model = createModel(p, config, modelDir, say);
  assertSafeName(modelName, 'model name');
  // trainingLoraConfig refuses LoRA on a random initialisation: a LoRA run has its base folder.
  if (lora) say(describeAdapter(attachTrainingAdapter(p, model, lora, adapterBaseOf(source, modelDir!)), model));

  const { runTime, runName } = claimRunName(path.resolve(p.runsDir), modelName, new Date());
  const logFile = path.resolve(p.logsDir, `${runName}.txt`);
  const tensorboardDir = path.resolve(p.runsDir, runName);
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  const record: Record<string, unknown> = {
    ...source,
    adafactorScaleParameter: options.adafactorScaleParameter,
    dataDir,
    classesMap: classesMapPath,
    backend: backend.name,
    given: [...given],
  };
  say(
    `training ${modelName} on ${train.length} examples (${classNames.length} classes), validating on ${validation.length}; ` +
      `backend ${backend.name}`,
  );
  say(`log: ${logFile}`);
  say(`TensorBoard: ${tensorboardDir}`);
  const weightsDir = path.resolve(p.saveWeightsPath);
  await trainAndReport(
    {
      model,
      tokenizer,
      train,
      validation,
      classNames,
      options,
      modelName,
      runTime,
      weightsDir,
      logFile,
      tensorboardDir,
      record,
      stateDir: runStateDir(path.resolve(p.runsDir), runName),
      say,
    },
    say,
  );
}

async function trainAndReport(job: TrainJob, say: (line: string) => void): Promise<void> {
  try {
    const result = await runTraining({ ...job, hold: stepHoldFromEnv() });
    say(
      result.bestCheckpoint
        ? `best dev macro-F1 ${result.bestMacroF1.toFixed(4)}: ${result.bestCheckpoint}\nevaluate it with: t5cls test ` +
            `--weights-name ${path.basename(result.bestCheckpoint)}`
        : 'no checkpoint was saved',
    );
    try {
      say(`report: ${writeRunReport({ run: job.logFile })}`);
    } catch (e) {
      say(`(no report written: ${(e as Error).message})`);
    }
  } finally {
    const adapter = job.model.adapter;
    job.model.dispose();
    adapter?.dispose();
  }
}

async function resume(p: TrainParams, given: Set<OptionName<'train'>>, say: (line: string) => void): Promise<void> {
  const loaded = loadTrainState(resolveResumeTarget(p.resume!, path.resolve(p.runsDir)));
  try {
    refuseChangedOptions(p, given, loaded.state.record, RESUME_MAY_CHANGE.train);
    await resumeRun(loaded, p, given, say);
  } finally {
    tf.dispose([...loaded.optimizer.values()]);
  }
}

async function resumeRun(
  loaded: LoadedTrainState,
  p: TrainParams,
  given: Set<OptionName<'train'>>,
  say: (line: string) => void,
): Promise<void> {
  const { state, snapshotDir, stateDir } = loaded;
  const options: TrainOptions = {
    ...state.options,
    epochs: given.has('epochs') ? p.epochs : state.options.epochs,
    saveEverySteps: given.has('saveEverySteps') ? p.saveEverySteps : state.options.saveEverySteps,
    quiet: p.quiet,
  };
  const at = state.progress;
  if (at.stoppedEarly || at.epoch > options.epochs || (options.maxSteps !== undefined && at.steps >= options.maxSteps)) {
    throw new UsageError(
      `--resume: the run ${state.run.runName} has finished (${at.epochs.length} epochs, ${at.steps} ` +
        `steps${at.stoppedEarly ? ', stopped early' : ''}); nothing to resume` +
        (at.stoppedEarly ? '' : ' (pass a larger --epochs to train it further)'),
    );
  }
  const r = state.record;
  const { splits } = loadSplits(String(r.dataDir), Object.fromEntries(state.classNames.map((n, i) => [n, i])), ['train', 'validation']);
  const train = typeof r.maxTrainExamples === 'number' ? splits.train.slice(0, r.maxTrainExamples) : splits.train;
  const validation = typeof r.maxEvalExamples === 'number' ? splits.validation.slice(0, r.maxEvalExamples) : splits.validation;
  const tokenizer = await T5Tokenizer.fromPretrained(path.join(stateDir, TOKENIZER_DIR));
  // A LoRA run's snapshot is its adapter: the frozen base is the model its config names.
  const adapterFile = path.join(snapshotDir, ADAPTER_CONFIG_FILE);
  const lora = fs.existsSync(adapterFile) ? readAdapterConfig(adapterFile) : undefined;
  const base = lora ? readAdapterBase(adapterFile) : undefined;
  if (base && base.nameOrPath === null) throw new FormatError(`${adapterFile}: base_model_name_or_path is null: the run's base is unknown`);
  const modelDir = base ? await resolveModelDir(base.nameOrPath!, base.revision ?? 'main', say) : snapshotDir;
  // As when the run started: the job's size decides the engine (a t5-large run must not land on the wasm heap).
  const config = readModelConfig(modelDir);
  const tensorBytes = trainingTensorBytes(config, state.run.modelName, options, tokenizer, train, state.classNames, lora);
  const backend = await startResumedBackend(p, given, r, tensorBytes, say);
  const model = lora ? fromPretrainedWithAdapter(modelDir, snapshotDir) : T5ForConditionalGeneration.fromPretrained(snapshotDir);
  const record = { ...r, epochs: options.epochs, saveEverySteps: options.saveEverySteps };
  say(`resuming ${state.run.runName} from ${snapshotDir}: epoch ${at.epoch}, step ${at.steps}; backend ${backend.name}`);
  say(`log: ${state.run.logFile}`);
  await trainAndReport(
    {
      model,
      tokenizer,
      train,
      validation,
      classNames: state.classNames,
      options,
      modelName: state.run.modelName,
      runTime: state.run.runTime,
      weightsDir: state.run.weightsDir,
      logFile: state.run.logFile,
      tensorboardDir: state.run.tensorboardDir,
      record,
      stateDir,
      resume: loaded,
      say,
    },
    say,
  );
}

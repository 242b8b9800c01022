/**
 * `t5cls pretrain`: continue T5's span-corruption pretraining (or start it from a random T5) on unlabeled text
 * files, then fine-tune the checkpoint it writes with `t5cls train --model <checkpoint>`. With `--resume`, continue a
 * stopped run from its saved state with the options it was started with.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ParsedParams } from './options.js';
import type { OptionName, PretrainParams } from '../params/commands.js';
import { tf } from '../tf.js';
import { readModelConfig } from '../model/pretrained_config.js';
import { T5ForConditionalGeneration } from '../model/modeling_t5.js';
import { T5Tokenizer } from '../tokenizer/index.js';
import { loadRunState, resolveResumeTarget, runStateDir, TOKENIZER_DIR, type LoadedRunState } from '../train/state.js';
import { initBackend } from '../engine/init.js';
import { readTextSources } from '../data/text_sources.js';
import { spanCorruptionLengths } from '../data/span_corruption.js';
import { assertSafeName } from '../train/checkpoint.js';
import { adafactorScaleParameter } from '../train/types.js';
import { stepHoldFromEnv } from '../train/hold.js';
import {
  pretrainCheckpointDir,
  runPretraining,
  PRETRAIN_STATE_FORMAT,
  PRETRAIN_STATE_KEYS,
  type PretrainOptions,
  type PretrainStateFile,
} from '../train/pretrain.js';
import { UsageError } from '../errors.js';
import { checkJobMemory } from './job_memory.js';
import { createModel, resolveModelSource } from './model_source.js';
import { claimRunName, refuseChangedOptions, RESUME_MAY_CHANGE, sayer, startResumedBackend } from './shared.js';

/** Share of the texts held out for the denoising loss. */
const HELD_OUT_SHARE = 0.05;

export async function run({ params: p, given }: ParsedParams<'pretrain'>): Promise<void> {
  const say = sayer(p.quiet);
  if (p.resume !== undefined) return resume(p, given, say);
  if (p.from === undefined)
    throw new UsageError(
      '--from: give the text to pretrain on (text files, CSV/TSV/JSONL/JSON files or folders; repeat --from for several)',
    );
  const sources = readTextSources([p.from].flat(), { textColumn: p.textColumn });
  const texts = sources.flatMap((s) => s.texts);
  say(`read ${texts.length} texts from ${sources.length} file${sources.length === 1 ? '' : 's'}`);

  const { tokenizer, config, modelName, modelDir } = await resolveModelSource(p, say);
  if (tokenizer.extraIds === 0) throw new UsageError('the tokenizer has no <extra_id_N> sentinels, which span corruption needs');
  const { targetLength } = spanCorruptionLengths(p.maxSourceLength, p);
  const { tensorBytes } = checkJobMemory(
    config,
    { batchSize: p.batchSize, sourceLength: p.maxSourceLength, targetLength, optimizer: p.useAdafactor ? 'adafactor' : 'adamw' },
    modelName,
  );
  const backend = await initBackend(p.backend, { threads: p.threads, device: p.device, log: say, tensorBytes });
  const model = createModel(p, config, modelDir, say);
  assertSafeName(modelName, 'model name');

  const { runTime, runName } = claimRunName(path.resolve(p.runsDir), `${modelName}-pretrain`, new Date());
  const logFile = path.resolve(p.logsDir, `${runName}.txt`);
  const tensorboardDir = path.resolve(p.runsDir, runName);
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  const checkpointDir = pretrainCheckpointDir(path.resolve(p.saveWeightsPath), modelName, runTime);
  const scaleParameter = adafactorScaleParameter(p);
  const epochs = pretrainEpochs(p, given);
  say(`log: ${logFile}`);
  say(`TensorBoard: ${tensorboardDir}`);
  try {
    await runPretraining({
      model,
      tokenizer,
      texts,
      modelName,
      runName,
      checkpointDir,
      logFile,
      tensorboardDir,
      runTime,
      stateDir: runStateDir(path.resolve(p.runsDir), runName),
      hold: stepHoldFromEnv(),
      say,
      record: {
        ...p,
        epochs,
        adafactorScaleParameter: scaleParameter,
        from: [p.from].flat().map((f) => path.resolve(f)),
        backend: backend.name,
        given: [...given],
      },
      options: {
        inputLength: p.maxSourceLength,
        noiseDensity: p.noiseDensity,
        meanNoiseSpanLength: p.meanNoiseSpanLength,
        epochs,
        maxSteps: p.steps,
        maxMinutes: p.maxMinutes,
        batchSize: p.batchSize,
        evalBatchSize: p.evalBatchSize,
        learningRate: p.learningRate,
        lrWarmupSteps: p.lrWarmupSteps,
        weightDecay: p.weightDecay,
        useAdafactor: p.useAdafactor,
        adafactorScaleParameter: scaleParameter,
        evalEverySteps: p.evalEverySteps,
        heldOutShare: HELD_OUT_SHARE,
        saveEverySteps: p.saveEverySteps,
        seed: p.seed,
        quiet: p.quiet,
      },
    });
  } finally {
    model.dispose();
  }
}

/**
 * --steps alone runs that many steps, through as many epochs as it takes (HF's max_steps); with --epochs too, whichever
 * ends first. A resumed run keeps its epochs unless --epochs is given again, or only --steps was ever given.
 */
function pretrainEpochs(
  p: PretrainParams,
  given: Set<OptionName<'pretrain'>>,
  saved?: { epochs?: number; given: OptionName<'pretrain'>[] },
): number | undefined {
  if (given.has('epochs')) return p.epochs;
  if (saved?.given.includes('epochs')) return saved.epochs;
  if (given.has('steps') || saved?.given.includes('steps')) return undefined;
  return saved ? saved.epochs : p.epochs;
}

async function resume(p: PretrainParams, given: Set<OptionName<'pretrain'>>, say: (line: string) => void): Promise<void> {
  const target = resolveResumeTarget(p.resume!, path.resolve(p.runsDir), PRETRAIN_STATE_FORMAT);
  const loaded = loadRunState<PretrainStateFile>(target, PRETRAIN_STATE_FORMAT, PRETRAIN_STATE_KEYS);
  try {
    refuseChangedOptions(p, given, loaded.state.record, RESUME_MAY_CHANGE.pretrain);
    await resumeRun(loaded, p, given, say);
  } finally {
    tf.dispose([...loaded.optimizer.values()]);
  }
}

async function resumeRun(
  loaded: LoadedRunState<PretrainStateFile>,
  p: PretrainParams,
  given: Set<OptionName<'pretrain'>>,
  say: (line: string) => void,
): Promise<void> {
  const { state, snapshotDir, stateDir } = loaded;
  const r = state.record;
  const options: PretrainOptions = {
    ...state.options,
    epochs: pretrainEpochs(p, given, { epochs: state.options.epochs, given: (r.given as OptionName<'pretrain'>[] | undefined) ?? [] }),
    maxSteps: given.has('steps') ? p.steps : state.options.maxSteps,
    maxMinutes: given.has('maxMinutes') ? p.maxMinutes : state.options.maxMinutes,
    saveEverySteps: given.has('saveEverySteps') ? p.saveEverySteps : state.options.saveEverySteps,
    quiet: p.quiet,
  };
  const at = state.progress;
  if (at.steps >= (options.maxSteps ?? Infinity) || at.epoch > (options.epochs ?? Infinity)) {
    throw new UsageError(
      `--resume: the run ${state.run.runName} has finished (${at.steps} steps, ${at.epoch - 1} epochs); nothing to resume ` +
        `(pass a larger --steps or --epochs to pretrain it further)`,
    );
  }
  const sources = readTextSources([r.from as string | string[]].flat(), { textColumn: r.textColumn as string | undefined });
  const texts = sources.flatMap((s) => s.texts);
  const config = readModelConfig(snapshotDir);
  const { targetLength } = spanCorruptionLengths(options.inputLength, options);
  const { tensorBytes } = checkJobMemory(
    config,
    {
      batchSize: options.batchSize,
      sourceLength: options.inputLength,
      targetLength,
      optimizer: options.useAdafactor ? 'adafactor' : 'adamw',
    },
    state.run.modelName,
  );
  const backend = await startResumedBackend(p, given, r, tensorBytes, say);
  const tokenizer = await T5Tokenizer.fromPretrained(path.join(stateDir, TOKENIZER_DIR));
  const model = T5ForConditionalGeneration.fromPretrained(snapshotDir);
  say(`resuming ${state.run.runName} from ${snapshotDir}: epoch ${at.epoch}, step ${at.steps}; backend ${backend.name}`);
  say(`log: ${state.run.logFile}`);
  try {
    await runPretraining({
      model,
      tokenizer,
      texts,
      options,
      ...state.run,
      stateDir,
      resume: loaded,
      record: {
        ...r,
        epochs: options.epochs,
        steps: options.maxSteps,
        maxMinutes: options.maxMinutes,
        saveEverySteps: options.saveEverySteps,
      },
      hold: stepHoldFromEnv(),
      say,
    });
  } finally {
    model.dispose();
  }
}

/**
 * One zod schema per command, composed from the option pieces beside this file: which options the command takes,
 * in the order its --help and the README list them, and the defaults it gives them (a command may give an option a
 * default of its own). Commander's options, `--config params.json` and the README's options table are generated from
 * these (src/cli/options.ts, src/cli/options_table.ts).
 */
import { z } from 'zod';
import { checkpoint, run } from './checkpoint.js';
import {
  classesMap,
  dataDir,
  dataset,
  from,
  labelColumn,
  maxEvalExamples,
  maxTrainExamples,
  skipEmptyTexts,
  subset,
  textColumn,
} from './data.js';
import { engine } from './engine.js';
import { launcherOptions as launcher } from './launcher.js';
import { decode, file, format, outputDir, split } from './evaluation.js';
import { maxSourceLength, modelSource, prefixText, revision, tokenizer } from './model.js';
import { adapterSource, lora } from './lora.js';
import { adafactorScaleParameter, optimizer, useAdafactor, useAdafactorSchedule } from './optimizer.js';
import { json, logsDir, messages, out, output, quantize, runFolders, runsDir, saveWeightsPath, verbose } from './output.js';
import { evalEverySteps, maxMinutes, meanNoiseSpanLength, noiseDensity, steps } from './pretraining.js';
import {
  batchSize,
  earlyStoppingPatience,
  epochs,
  evalBatchSize,
  gradientAccumulationSteps,
  maxSteps,
  resume,
  saveEverySteps,
  seed,
  useWeightedRandomSampler,
} from './training.js';

const loadDatasetSchema = z.strictObject({
  dataset,
  subset,
  revision,
  from,
  textColumn,
  labelColumn,
  skipEmptyTexts,
  out,
  classesMap,
  ...messages,
});

const trainSchema = z.strictObject({
  ...modelSource,
  prefixText,
  dataDir,
  classesMap,
  maxSourceLength,
  maxTrainExamples,
  maxEvalExamples,
  epochs,
  batchSize,
  evalBatchSize,
  ...optimizer,
  useAdafactorSchedule,
  adafactorScaleParameter,
  ...lora,
  useWeightedRandomSampler,
  gradientAccumulationSteps,
  earlyStoppingPatience,
  seed,
  maxSteps,
  ...runFolders,
  saveEverySteps,
  resume,
  ...launcher,
  ...engine,
  ...messages,
});

const pretrainSchema = z.strictObject({
  from,
  textColumn,
  ...modelSource,
  maxSourceLength,
  noiseDensity,
  meanNoiseSpanLength,
  epochs: epochs.default(1),
  steps,
  maxMinutes,
  batchSize,
  evalBatchSize,
  ...optimizer,
  useAdafactor: useAdafactor.default(true),
  adafactorScaleParameter,
  evalEverySteps,
  seed,
  ...runFolders,
  saveEverySteps,
  resume,
  ...engine,
  ...messages,
});

const testSchema = z.strictObject({
  ...checkpoint,
  ...adapterSource,
  revision,
  dataDir,
  split,
  decode,
  prefixText,
  classesMap,
  tokenizer,
  evalBatchSize,
  maxSourceLength,
  maxEvalExamples,
  outputDir,
  ...engine,
  ...messages,
});

const predictSchema = z.strictObject({
  ...checkpoint,
  ...adapterSource,
  revision,
  decode: decode.default('rank'),
  prefixText,
  classesMap,
  tokenizer,
  evalBatchSize,
  maxSourceLength,
  file,
  textColumn,
  format,
  ...engine,
  ...messages,
});

const exportSchema = z.strictObject({
  ...checkpoint,
  ...adapterSource,
  revision,
  out,
  tokenizer,
  prefixText,
  classesMap,
  maxSourceLength,
  quantize,
  ...messages,
});

const mergeSchema = z.strictObject({ ...adapterSource, revision, out, tokenizer, ...messages });

const doctorSchema = z.strictObject({ ...engine, json, verbose });

const reportSchema = z.strictObject({ run, output, logsDir, runsDir, saveWeightsPath, ...messages });

/** Every command's schema, in the order the README's options table names the commands. */
export const COMMAND_SCHEMAS = {
  'load-dataset': loadDatasetSchema,
  train: trainSchema,
  pretrain: pretrainSchema,
  test: testSchema,
  predict: predictSchema,
  export: exportSchema,
  merge: mergeSchema,
  doctor: doctorSchema,
  report: reportSchema,
};

export type CommandName = keyof typeof COMMAND_SCHEMAS;

export type LoadDatasetParams = z.infer<typeof loadDatasetSchema>;
export type TrainParams = z.infer<typeof trainSchema>;
export type PretrainParams = z.infer<typeof pretrainSchema>;
export type TestParams = z.infer<typeof testSchema>;
export type PredictParams = z.infer<typeof predictSchema> & {
  /** The texts given as arguments: set by the command line parser, neither a flag nor a --config key. */
  texts?: string[];
};
export type ExportParams = z.infer<typeof exportSchema>;
export type MergeParams = z.infer<typeof mergeSchema>;
export type DoctorParams = z.infer<typeof doctorSchema>;
export type ReportParams = z.infer<typeof reportSchema>;

/** A command's validated options. */
export interface CommandParams {
  'load-dataset': LoadDatasetParams;
  train: TrainParams;
  pretrain: PretrainParams;
  test: TestParams;
  predict: PredictParams;
  export: ExportParams;
  merge: MergeParams;
  doctor: DoctorParams;
  report: ReportParams;
}

/** The option names of a command (by default, of any command). */
export type OptionName<C extends CommandName = CommandName> = { [K in C]: keyof CommandParams[K] & string }[C];

/** Every option some command takes: a --config key outside it is no option at all. */
export const ALL_OPTION_NAMES: ReadonlySet<string> = new Set(Object.values(COMMAND_SCHEMAS).flatMap((s) => Object.keys(s.shape)));

/** Validates raw option values (from the command line and --config) for one command; throws zod's error. */
export function parseParams<C extends CommandName>(command: C, raw: Record<string, unknown>): CommandParams[C] {
  // TypeScript does not follow a generic key through the map of schemas to its own parse result.
  return COMMAND_SCHEMAS[command].parse(raw) as CommandParams[C];
}

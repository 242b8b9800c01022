/** `t5cls train`: fine-tune (or train from scratch) a T5 on the processed data set. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ParsedParams } from './options.js';
import { T5Config, NAMED_CONFIGS } from '../model/config.js';
import { T5ForConditionalGeneration } from '../model/modeling_t5.js';
import { T5Tokenizer } from '../tokenizer/index.js';
import { runTraining, type TrainOptions } from '../train/trainer.js';
import { UsageError } from '../errors.js';
import { initBackend } from '../backend.js';
import { loadSplits, resolveDataDir } from './shared.js';
import { resolveModelDir, runTimestamp, sayer } from './shared.js';
import { assertSafeName } from '../train/checkpoint.js';

export async function run({ params: p, given }: ParsedParams): Promise<void> {
  const say = sayer(p.quiet);
  const dataDir = resolveDataDir(p.dataDir);
  const classesMapPath = path.resolve(p.classesMap);
  const { classNames, splits } = loadSplits(dataDir, classesMapPath, ['train', 'validation']);
  let train = splits.train;
  let validation = splits.validation;
  if (p.maxTrainExamples !== undefined) train = train.slice(0, p.maxTrainExamples);
  if (p.maxEvalExamples !== undefined) validation = validation.slice(0, p.maxEvalExamples);

  const backend = await initBackend(p.backend, { threads: p.threads, device: p.device, log: say });
  let model: T5ForConditionalGeneration;
  let tokenizer: T5Tokenizer;
  let modelName: string;
  if (p.init === 'random') {
    const tokenizerDir = p.tokenizer ? path.resolve(p.tokenizer) : await resolveModelDir(p.model, p.revision, say, { tokenizerOnly: true });
    tokenizer = await T5Tokenizer.fromPretrained(tokenizerDir);
    const vocab = Math.ceil(tokenizer.vocabSize / 128) * 128;
    let fields: Record<string, unknown>;
    if (NAMED_CONFIGS[p.modelConfig]) {
      fields = { ...NAMED_CONFIGS[p.modelConfig] };
      modelName = `t5-${p.modelConfig}-scratch`;
    } else {
      const file = path.resolve(p.modelConfig);
      if (!fs.existsSync(file)) throw new UsageError(`--model-config: "${p.modelConfig}" is neither a named shape (${Object.keys(NAMED_CONFIGS).join(', ')}) nor an existing config.json file`);
      fields = T5Config.fromFile(file).toJSON();
      modelName = `${path.basename(path.dirname(file))}-scratch`;
    }
    const config = new T5Config({ ...fields, vocab_size: vocab }, p.modelConfig);
    model = new T5ForConditionalGeneration(config, { seed: p.seed });
    say(`initialised a random T5 (${p.modelConfig}: d_model ${config.d_model}, ${config.num_layers}+${config.num_decoder_layers} layers, vocab ${vocab})`);
  } else {
    const modelDir = await resolveModelDir(p.model, p.revision, say);
    tokenizer = await T5Tokenizer.fromPretrained(p.tokenizer ? path.resolve(p.tokenizer) : modelDir);
    model = T5ForConditionalGeneration.fromPretrained(modelDir, { onWarning: say });
    modelName = path.basename(p.model.replace(/[/\\]+$/, ''));
  }
  assertSafeName(modelName, 'model name');

  const runTime = runTimestamp(new Date());
  const runName = `${modelName}_${runTime}`;
  const logFile = path.resolve(p.logsDir, `${runName}.txt`);
  const tensorboardDir = path.resolve(p.runsDir, runName);
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  const options: TrainOptions = {
    epochs: p.epochs,
    batchSize: p.batchSize,
    evalBatchSize: p.evalBatchSize,
    learningRate: p.learningRate,
    lrWarmupSteps: p.lrWarmupSteps,
    weightDecay: p.weightDecay,
    useAdafactor: p.useAdafactor || p.useAdafactorSchedule,
    useAdafactorSchedule: p.useAdafactorSchedule,
    useWeightedRandomSampler: p.useWeightedRandomSampler,
    gradientAccumulationSteps: p.gradientAccumulationSteps,
    earlyStoppingPatience: p.earlyStoppingPatience,
    maxSteps: p.maxSteps,
    seed: p.seed,
    prefixText: p.prefixText,
    maxSourceLength: p.maxSourceLength,
    quiet: p.quiet,
  };
  const record: Record<string, unknown> = { ...p, dataDir, classesMap: classesMapPath, backend: backend.name, given: [...given] };
  say(`training ${modelName} on ${train.length} examples (${classNames.length} classes), validating on ${validation.length}; backend ${backend.name}`);
  say(`log: ${logFile}`);
  say(`TensorBoard: ${tensorboardDir}`);
  const result = await runTraining({
    model,
    tokenizer,
    train,
    validation,
    classNames,
    options,
    modelName,
    runTime,
    weightsDir: path.resolve(p.saveWeightsPath),
    logFile,
    tensorboardDir,
    record,
    say,
  });
  say(
    result.bestCheckpoint
      ? `best dev macro-F1 ${result.bestMacroF1.toFixed(4)}: ${result.bestCheckpoint}\nevaluate it with: t5cls test --weights-name ${path.basename(result.bestCheckpoint)}`
      : 'no checkpoint was saved',
  );
  model.dispose();
}

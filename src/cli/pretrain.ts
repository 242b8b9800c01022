/**
 * `t5cls pretrain`: continue T5's span-corruption pretraining (or start it from a random T5) on unlabeled text
 * files, then fine-tune the checkpoint it writes with `t5cls train --model <checkpoint>`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ParsedParams } from './options.js';
import { initBackend } from '../engine/init.js';
import { readTextSources } from '../data/text_sources.js';
import { spanCorruptionLengths } from '../data/span_corruption.js';
import { assertSafeName } from '../train/checkpoint.js';
import { pretrainCheckpointDir, runPretraining } from '../train/pretrain.js';
import { UsageError } from '../errors.js';
import { checkJobMemory } from './job_memory.js';
import { createModel, resolveModelSource } from './model_source.js';
import { claimRunName, sayer } from './shared.js';

/** Share of the texts held out for the denoising loss. */
const HELD_OUT_SHARE = 0.05;

export async function run({ params: p, given }: ParsedParams): Promise<void> {
  const say = sayer(p.quiet);
  if (p.from === undefined) throw new UsageError('--from: give the text to pretrain on (text files, CSV/TSV/JSONL/JSON files or folders; repeat --from for several)');
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
      say,
      record: { ...p, from: [p.from].flat().map((f) => path.resolve(f)), backend: backend.name, given: [...given] },
      options: {
        inputLength: p.maxSourceLength,
        noiseDensity: p.noiseDensity,
        meanNoiseSpanLength: p.meanNoiseSpanLength,
        epochs: p.epochs,
        maxSteps: p.steps,
        maxMinutes: p.maxMinutes,
        batchSize: p.batchSize,
        evalBatchSize: p.evalBatchSize,
        learningRate: p.learningRate,
        lrWarmupSteps: p.lrWarmupSteps,
        weightDecay: p.weightDecay,
        useAdafactor: p.useAdafactor,
        evalEverySteps: p.evalEverySteps,
        heldOutShare: HELD_OUT_SHARE,
        seed: p.seed,
        quiet: p.quiet,
      },
    });
  } finally {
    model.dispose();
  }
}

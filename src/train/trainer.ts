/**
 * The training loop: one visible loop over epochs and batches (forward, loss, backward, optimizer step), then
 * validation with greedy decoding, logging, and a checkpoint whenever dev macro-F1 improves.
 *
 * Everything the loop needs to go on is kept in one `TrainProgress` record and written, with the weights and the
 * optimizer, as a resumable state (src/train/state.ts) at the end of every epoch, every `saveEverySteps` steps and
 * on SIGINT/SIGTERM. A run resumed from a state continues exactly as if it had never stopped.
 */
import { DropoutStream } from '../model/dropout_stream.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tf } from '../tf.js';
import type { T5ForConditionalGeneration } from '../model/modeling_t5.js';
import { chunk, disposeBatch, encodeClassNames, encodeExamples, trainBatch, type Example, type TokenizerLike } from '../data/batches.js';
import { predictGenerate } from '../eval/decoding.js';
import { classificationMetrics } from '../eval/metrics.js';
import { Progress } from '../progress.js';
import { Adafactor, AdamW } from './optimizers/index.js';
import { Rng } from '../random.js';
import { randomPermutation, weightedRandomSampler } from './sampler.js';
import { EPOCH_FIELDS } from '../run_log_format.js';
import { RunLog } from './run_log.js';
import { SummaryWriter } from './tensorboard.js';
import { readCheckpointMeta } from '../checkpoint_meta.js';
import { saveCheckpoint, type SavableTokenizer } from './checkpoint.js';
import {
  dataFingerprint,
  removePartials,
  restoreOptimizerState,
  saveRunTokenizer,
  saveTrainState,
  type LoadedTrainState,
  type TrainProgress,
  type TrainStateFile,
  type TrainStateToSave,
} from './state.js';
import { T5clsError, UsageError } from '../errors.js';
import type { EpochResult, TrainOptions } from './types.js';
import { holdAtStep, stepHoldFromEnv } from './hold.js';
import { addGradients, batchGradients, makeOptimizer, optimizerStep } from './step.js';
import { shellQuote, TrainingInterrupted, watchStopSignals } from './stop_signals.js';

export type { EpochResult, TrainOptions } from './types.js';

export interface TrainJob {
  model: T5ForConditionalGeneration;
  tokenizer: TokenizerLike & SavableTokenizer;
  train: Example[];
  validation: Example[];
  classNames: string[];
  options: TrainOptions;
  /** Name of the base model (`t5-small`, a folder name, `t5-tiny-scratch`). */
  modelName: string;
  /** `<Mon DD_HH-MM-SS>` of the run's start: with the model name it names the log, TensorBoard folder and checkpoints. */
  runTime: string;
  weightsDir: string;
  logFile: string;
  tensorboardDir: string;
  /** Every option of the command, written at the top of the log and into each checkpoint. */
  record: Record<string, unknown>;
  /** Folder of the run's resumable state (`<runs-dir>/<run name>/state`). */
  stateDir: string;
  /** A saved state to continue from (the caller keeps and disposes its optimizer tensors). */
  resume?: LoadedTrainState;
  say: (line: string) => void;
}

export interface TrainResult {
  epochs: EpochResult[];
  bestCheckpoint?: string;
  bestMacroF1: number;
  steps: number;
  stoppedEarly: boolean;
  /** The last state written (a snapshot folder). */
  lastState?: string;
}

export async function runTraining(job: TrainJob): Promise<TrainResult> {
  const { model, tokenizer, options: o, say } = job;
  const classTokens = encodeClassNames(tokenizer, job.classNames);
  const trainSet = encodeExamples(tokenizer, job.train, o.prefixText, o.maxSourceLength);
  const devInputs = encodeExamples(tokenizer, job.validation, o.prefixText, o.maxSourceLength).map((e) => e.inputIds);
  const trainLabels = trainSet.map((e) => e.label);
  const fingerprint = dataFingerprint(job.classNames, job.train, job.validation);
  const runName = `${job.modelName}_${job.runTime}`;
  const { optimizer, baseLr } = makeOptimizer(o);
  const params = [...model.namedParameters().values()];
  const rng = new Rng(o.seed);
  let p: TrainProgress;
  let dropout: DropoutStream;
  const stop = watchStopSignals(say);
  const hold = stepHoldFromEnv();
  const log = new RunLog(job.logFile);
  let tb: SummaryWriter | undefined;
  let lastState: string | undefined;
  try {
    if (job.resume) {
      const { state, snapshotDir } = job.resume;
      if (state.dataFingerprint !== fingerprint) {
        throw new UsageError(
          `--resume ${snapshotDir}: the training or validation data differ from those the run started with (${String(job.record.dataDir)})`,
        );
      }
      await restoreOptimizerState(optimizer, job.resume.optimizer, state.optimizer.order, model, snapshotDir);
      rng.setState(state.rng);
      dropout = new DropoutStream(state.dropout.seed, state.dropout.counter);
      p = structuredClone(state.progress);
      lastState = snapshotDir;
      removePartials(job.stateDir);
      log.line(`resumed from ${snapshotDir}: epoch ${p.epoch}, step ${p.steps}`);
    } else {
      dropout = new DropoutStream(o.seed);
      p = freshProgress(baseLr);
      if (fs.existsSync(job.stateDir)) {
        throw new UsageError(
          `${job.stateDir} already exists: another run started under the name ${runName} in the same second; start again`,
        );
      }
      log.options(job.record);
    }
    await saveRunTokenizer(job.stateDir, tokenizer);
    // A resumed run logs again from the step after its saved state: TensorBoard drops what the stopped run logged there.
    tb = new SummaryWriter(job.tensorboardDir, job.resume ? { purgeStep: p.steps + 1 } : {});

    const saveState = async (reason: TrainStateFile['reason']): Promise<void> => {
      const file = stateFile(job, reason, { runName, fingerprint, rng, dropout, optimizer, progress: p });
      lastState = await saveTrainState(job.stateDir, file, model, optimizer);
    };
    const stopIfAsked = (): void => {
      if (!stop.signal) return;
      const command = `t5cls train --resume ${shellQuote(job.stateDir)}`;
      const where = `after step ${p.steps} (${p.order ? `epoch ${p.epoch}` : `end of epoch ${p.epoch - 1}`})`;
      log.line(`stopped by ${stop.signal} ${where}; resume with: ${command}`);
      throw new TrainingInterrupted(
        stop.signal,
        job.stateDir,
        `stopped by ${stop.signal} ${where}; the state is saved in ${lastState}. Resume with: ${command}`,
      );
    };
    const failNonFinite = (what: string, value: number): never => {
      throw new T5clsError(
        `training stopped: the ${what} is ${value} at epoch ${p.epoch}, step ${p.steps + 1}` +
          (p.bestCheckpoint ? `; the last good checkpoint is ${p.bestCheckpoint}` : '; no checkpoint was saved yet') +
          (lastState ? `; the last saved state is ${lastState}` : ''),
      );
    };

    const finished = () => p.stoppedEarly || p.epoch > o.epochs || (o.maxSteps !== undefined && p.steps >= o.maxSteps);
    while (!finished()) {
      const epoch = p.epoch;
      if (p.order === null) {
        p.order = o.useWeightedRandomSampler ? weightedRandomSampler(trainLabels, rng) : randomPermutation(trainSet.length, rng);
        Object.assign(p, EPOCH_START);
      }
      const batches = chunk(p.order, o.batchSize);
      const bar = new Progress({ label: `epoch ${epoch}/${o.epochs}`, total: p.order.length - p.seen, quiet: o.quiet });
      let accumulated: tf.NamedTensorMap | undefined;
      let accumulatedBatches = 0;
      while (p.nextBatch < batches.length) {
        const bi = p.nextBatch;
        const batchIndices = batches[bi]!;
        const batch = trainBatch(
          batchIndices.map((i) => trainSet[i]!),
          classTokens,
          model.config.pad_token_id,
        );
        const { loss, correct: batchCorrect, grads } = batchGradients(model, params, batch, dropout, 1 / o.gradientAccumulationSteps);
        disposeBatch(batch);
        if (!Number.isFinite(loss)) {
          tf.dispose([...Object.values(grads), ...Object.values(accumulated ?? {})]);
          failNonFinite('loss', loss);
        }
        accumulated = addGradients(accumulated, grads);
        accumulatedBatches++;
        if (accumulatedBatches === o.gradientAccumulationSteps || bi === batches.length - 1) {
          const { gradNorm, lr } = optimizerStep(optimizer, baseLr, o.lrWarmupSteps, accumulated, p.steps, failNonFinite);
          p.steps++;
          if (lr !== undefined) p.currentLr = lr;
          accumulated = undefined;
          accumulatedBatches = 0;
          tb.addScalar('train/loss_step', loss, p.steps);
          tb.addScalar('train/grad_norm', gradNorm, p.steps);
        }
        p.lossSum += loss * batchIndices.length;
        p.lossCount += batchIndices.length;
        p.correct += batchCorrect;
        p.seen += batchIndices.length;
        p.nextBatch++;
        bar.tick(batchIndices.length, { loss: p.lossSum / p.lossCount });
        // Lets a SIGINT/SIGTERM that came during the batch reach its handler.
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (accumulated === undefined) {
          // After a step: stop if asked, save every N steps (the epoch's last step is saved after validation).
          await holdAtStep(hold, p.steps, () => stop.signal !== undefined, say);
          if (stop.signal) {
            bar.done();
            await saveState('interrupt');
            stopIfAsked();
          }
          if (o.saveEverySteps !== undefined && p.steps % o.saveEverySteps === 0 && p.nextBatch < batches.length) await saveState('steps');
          if (o.maxSteps !== undefined && p.steps >= o.maxSteps) break;
        }
      }
      bar.done();

      const r = validate(job, p, epoch, devInputs, classTokens);
      p.epochs.push(r);
      log.epoch(epoch, { ...r });
      reportEpoch(tb, say, r);
      await keepBest(job, p, r, runName, log);
      Object.assign(p, { epoch: epoch + 1, order: null, ...EPOCH_START });
      await saveState(stop.signal ? 'interrupt' : 'epoch');
      if (!finished()) stopIfAsked();
    }
  } finally {
    stop.dispose();
    tb?.close();
    optimizer.dispose();
  }
  return {
    epochs: p.epochs,
    bestCheckpoint: p.bestCheckpoint,
    bestMacroF1: p.bestMacroF1,
    steps: p.steps,
    stoppedEarly: p.stoppedEarly,
    lastState,
  };
}

/** The per-epoch counters of TrainProgress at an epoch's start. */
const EPOCH_START = { nextBatch: 0, lossSum: 0, lossCount: 0, correct: 0, seen: 0 } as const;

function freshProgress(baseLr: number | undefined): TrainProgress {
  return {
    epoch: 1,
    order: null,
    steps: 0,
    ...EPOCH_START,
    currentLr: baseLr ?? 0,
    bestMacroF1: -1,
    epochsWithoutGain: 0,
    epochs: [],
    stoppedEarly: false,
  };
}

/** An epoch's results to TensorBoard and as one line. */
function reportEpoch(tb: SummaryWriter, say: (line: string) => void, r: EpochResult): void {
  for (const key of EPOCH_FIELDS) tb.addScalar(key, r[key], r.epoch);
  tb.flush();
  say(
    `epoch ${r.epoch}: train_loss ${r.train_loss.toFixed(4)} train_acc ${r.train_accuracy.toFixed(4)} ` +
      `dev_acc ${r.dev_accuracy.toFixed(4)} dev_macro_f1 ${r.dev_macro_f1.toFixed(4)} (invalid outputs: ${r.dev_invalid})`,
  );
}

/** The resumable state's record of the run at this point (saved with the weights and the optimizer). */
function stateFile(
  job: TrainJob,
  reason: TrainStateFile['reason'],
  at: { runName: string; fingerprint: string; rng: Rng; dropout: DropoutStream; optimizer: Adafactor | AdamW; progress: TrainProgress },
): TrainStateToSave {
  return {
    format: 't5cls-train-state',
    version: 1,
    savedAt: new Date().toISOString(),
    reason,
    run: {
      runName: at.runName,
      modelName: job.modelName,
      runTime: job.runTime,
      weightsDir: job.weightsDir,
      logFile: job.logFile,
      tensorboardDir: job.tensorboardDir,
    },
    record: job.record,
    options: job.options,
    classNames: job.classNames,
    dataFingerprint: at.fingerprint,
    rng: at.rng.getState(),
    dropout: at.dropout.state(),
    optimizer: { kind: at.optimizer instanceof Adafactor ? 'adafactor' : 'adamw' },
    progress: at.progress,
  };
}

/** Greedy decoding over the validation set: the epoch's record (training figures from `p`). */
function validate(job: TrainJob, p: TrainProgress, epoch: number, devInputs: number[][], classTokens: number[][]): EpochResult {
  const o = job.options;
  const devBar = new Progress({ label: `validation ${epoch}/${o.epochs}`, total: devInputs.length, quiet: o.quiet });
  let devDone = 0;
  const preds = predictGenerate(job.model, job.tokenizer, devInputs, job.classNames, classTokens, o.evalBatchSize, (d) => {
    devBar.tick(d - devDone);
    devDone = d;
  });
  devBar.done();
  const m = classificationMetrics(
    job.validation.map((e) => e.label),
    preds.labels,
    job.classNames.length,
  );
  return {
    epoch,
    learning_rate: p.currentLr,
    train_loss: p.lossSum / Math.max(1, p.lossCount),
    train_accuracy: p.correct / Math.max(1, p.seen),
    dev_accuracy: m.accuracy,
    dev_macro_f1: m.macroF1,
    dev_micro_f1: m.microF1,
    dev_weighted_f1: m.weightedF1,
    dev_invalid: m.invalid,
  };
}

/**
 * Saves a checkpoint when dev macro-F1 improved (kept as is when this run saved it before it was stopped), else
 * counts the epoch toward early stopping.
 */
async function keepBest(job: TrainJob, p: TrainProgress, r: EpochResult, runName: string, log: RunLog): Promise<void> {
  const o = job.options;
  const epoch = r.epoch;
  if (!(r.dev_macro_f1 > p.bestMacroF1)) {
    p.epochsWithoutGain++;
    if (o.earlyStoppingPatience !== undefined && p.epochsWithoutGain >= o.earlyStoppingPatience) {
      p.stoppedEarly = true;
      log.line(`early stopping: no better dev macro-F1 for ${p.epochsWithoutGain} epochs`);
      job.say(`early stopping after epoch ${epoch}: no better dev macro-F1 for ${p.epochsWithoutGain} epochs`);
    }
    return;
  }
  p.bestMacroF1 = r.dev_macro_f1;
  p.epochsWithoutGain = 0;
  const dir = path.join(job.weightsDir, `${job.modelName}-${job.runTime}-epoch${epoch}`);
  const earlier = readCheckpointMeta(dir);
  if (earlier?.runName === runName && earlier.epoch === epoch && earlier.step === p.steps) {
    log.line(`checkpoint ${dir} was saved before the run stopped; kept`);
  } else {
    await saveCheckpoint(dir, job.model, job.tokenizer, {
      format: 't5cls-checkpoint',
      version: 1,
      baseModel: job.modelName,
      runName,
      epoch,
      step: p.steps,
      prefixText: o.prefixText,
      maxSourceLength: o.maxSourceLength,
      classesMap: Object.fromEntries(job.classNames.map((n, i) => [n, i])),
      options: job.record,
      metrics: { ...r },
      createdAt: new Date().toISOString(),
    });
    log.line(`saved checkpoint ${dir}`);
    job.say(`saved checkpoint ${dir}`);
  }
  p.bestCheckpoint = dir;
}

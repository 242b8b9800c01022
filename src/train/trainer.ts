/**
 * `train`: fine-tunes (or trains from scratch) a T5 classifier. It hands the shared loop (loop.ts) its epochs, each
 * a fresh order of the training examples in batches (summed per optimizer step with gradient accumulation), and
 * validates at each epoch's end (epoch_end.ts: greedy decoding, the log, a checkpoint whenever dev macro-F1 improves).
 *
 * Everything the run needs to go on is kept in one `TrainProgress` record (train_progress.ts) and written, with the
 * weights and the optimizer, as a resumable state (state.ts) at the end of every epoch, every `saveEverySteps` steps
 * and on SIGINT/SIGTERM. A run resumed from a state continues exactly as if it had never stopped.
 */
import * as fs from 'node:fs';
import { chunk, encodeClassNames, encodeExamples, trainBatch, type Example } from '../data/batches.js';
import { Progress } from '../progress.js';
import { Rng } from '../random.js';
import { T5clsError, UsageError } from '../errors.js';
import { randomPermutation, weightedRandomSampler } from './sampler.js';
import type { StepHold } from './hold.js';
import { Adafactor } from './optimizers/index.js';
import { trainLoop, type LoopEpoch } from './loop.js';
import { openRunSession, type RunSession } from './session.js';
import {
  dataFingerprint,
  saveRunTokenizer,
  type LoadedTrainState,
  type SaveReason,
  type TrainProgress,
  type TrainStateToSave,
} from './state.js';
import { keepBest, reportEpoch, validate, type ValidationJob } from './epoch_end.js';
import { batchCounted, epochEnded, epochStarted, freshProgress, stepCounted } from './train_progress.js';
import { shellQuote, TrainingInterrupted } from './stop_signals.js';
import type { EpochResult } from './types.js';

export type { EpochResult, TrainOptions } from './types.js';

/** A training run: what validation and checkpoints need (ValidationJob), the training data and where the run writes. */
export interface TrainJob extends ValidationJob {
  train: Example[];
  logFile: string;
  tensorboardDir: string;
  /** Folder of the run's resumable state (`<runs-dir>/<run name>/state`). */
  stateDir: string;
  /** A saved state to continue from (the caller keeps and disposes its optimizer tensors). */
  resume?: LoadedTrainState;
  /** Wait for a signal after this step (src/train/hold.ts: the resume tests' hook). */
  hold?: StepHold;
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
  const { model, tokenizer, options: o, resume, say } = job;
  const classTokens = encodeClassNames(tokenizer, job.classNames);
  const trainSet = encodeExamples(tokenizer, job.train, o.prefixText, o.maxSourceLength);
  const devInputs = encodeExamples(tokenizer, job.validation, o.prefixText, o.maxSourceLength).map((e) => e.inputIds);
  const trainLabels = trainSet.map((e) => e.label);
  const fingerprint = dataFingerprint(job.classNames, job.train, job.validation);
  const runName = `${job.modelName}_${job.runTime}`;
  if (resume && resume.state.dataFingerprint !== fingerprint) {
    throw new UsageError(
      `--resume ${resume.snapshotDir}: the training or validation data differ from those the run started with (${String(job.record.dataDir)})`,
    );
  }
  if (!resume && fs.existsSync(job.stateDir)) {
    throw new UsageError(`${job.stateDir} already exists: another run started under the name ${runName} in the same second; start again`);
  }
  const session = await openRunSession({ ...job, optimizer: o, seed: o.seed });
  try {
    await saveRunTokenizer(job.stateDir, tokenizer);
    const rng = new Rng(o.seed);
    if (resume) rng.setState(resume.state.rng);
    let p = resume ? structuredClone(resume.state.progress) : freshProgress(session.baseLr);
    const drawOrder = () =>
      o.useWeightedRandomSampler ? weightedRandomSampler(trainLabels, rng) : randomPermutation(trainSet.length, rng);

    const startEpoch = (): LoopEpoch<number[]> => {
      const order = p.order ?? drawOrder();
      if (p.order === null) p = epochStarted(p, order);
      const batches = chunk(order, o.batchSize);
      const steps = chunk(batches.slice(p.nextBatch), o.gradientAccumulationSteps);
      const stepsLeft = o.maxSteps === undefined ? steps : steps.slice(0, o.maxSteps - p.steps);
      const bar = new Progress({ label: `epoch ${p.epoch}/${o.epochs}`, total: order.length - p.seen, quiet: o.quiet });
      return {
        steps: stepsLeft,
        endsEarly: stepsLeft.length < steps.length,
        bar,
        stepTaken: (step) => {
          for (const [k, indices] of step.batches.entries()) {
            p = batchCounted(p, indices.length, step.losses[k]!, step.correct[k]!);
            bar.tick(indices.length, { loss: p.lossSum / p.lossCount });
          }
          p = stepCounted(p, step.steps, step.lr);
        },
        end: async () => {
          const r = validate(job, p, devInputs, classTokens);
          reportEpoch(session.log, session.tb, say, r);
          p = epochEnded(await keepBest(job, p, r, runName, session.log), r);
        },
      };
    };

    const end = await trainLoop<number[]>({
      session,
      startStep: p.steps,
      lrWarmupSteps: o.lrWarmupSteps,
      accumulationSteps: o.gradientAccumulationSteps,
      countExactMatches: true,
      saveEverySteps: o.saveEverySteps,
      finished: () => p.stoppedEarly || p.epoch > o.epochs || (o.maxSteps !== undefined && p.steps >= o.maxSteps),
      startEpoch,
      tensors: (indices) =>
        trainBatch(
          indices.map((i) => trainSet[i]!),
          classTokens,
          model.config.pad_token_id,
        ),
      stateToSave: (reason) => trainState(job, reason, { runName, fingerprint, rng, session, progress: p }),
      nonFiniteError: (what, value, step, savedNow) => {
        const saved = savedNow ?? resume?.snapshotDir;
        return new T5clsError(
          `training stopped: the ${what} is ${value} at epoch ${p.epoch}, step ${step}` +
            (p.bestCheckpoint ? `; the last good checkpoint is ${p.bestCheckpoint}` : '; no checkpoint was saved yet') +
            (saved ? `; the last saved state is ${saved}` : ''),
        );
      },
    });
    const lastState = end.lastState ?? resume?.snapshotDir;
    if (end.stoppedBy) {
      const command = `t5cls train --resume ${shellQuote(job.stateDir)}`;
      const where = `after step ${p.steps} (${p.order ? `epoch ${p.epoch}` : `end of epoch ${p.epoch - 1}`})`;
      session.log.line(`stopped by ${end.stoppedBy} ${where}; resume with: ${command}`);
      throw new TrainingInterrupted(
        end.stoppedBy,
        job.stateDir,
        `stopped by ${end.stoppedBy} ${where}; the state is saved in ${lastState}. Resume with: ${command}`,
      );
    }
    const { epochs, bestCheckpoint, bestMacroF1, steps, stoppedEarly } = p;
    return { epochs, bestCheckpoint, bestMacroF1, steps, stoppedEarly, lastState };
  } finally {
    session.close();
  }
}

/** The resumable state's record of the run at this point (saved with the weights and the optimizer). */
function trainState(
  job: TrainJob,
  reason: SaveReason,
  at: { runName: string; fingerprint: string; rng: Rng; session: RunSession; progress: TrainProgress },
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
    dropout: at.session.dropout.state(),
    optimizer: { kind: at.session.optimizer instanceof Adafactor ? 'adafactor' : 'adamw' },
    progress: at.progress,
  };
}

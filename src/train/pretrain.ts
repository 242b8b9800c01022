/**
 * Continued pretraining on unlabeled text with T5's span-corruption objective (src/data/span_corruption.ts). It hands
 * the shared loop (loop.ts) its epochs, each the packed sequences in a fresh order with a fresh masking, evaluates a
 * held-out denoising loss and span-token accuracy every N steps, and writes an HF-layout checkpoint at the end (or
 * when stopped by Ctrl-C / SIGTERM) that `train --model` loads. A resumable state (train/state.ts, in the run's
 * folder) is written every `saveEverySteps` steps, after each epoch and when stopped; a resumed run continues
 * exactly as if it had never stopped.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { T5ForConditionalGeneration } from '../model/modeling_t5.js';
import type { T5Tokenizer } from '../tokenizer/index.js';
import type { CorruptedExample, SpanCorruptionOptions } from '../data/span_corruption.js';
import { chunk } from '../data/batches.js';
import { Progress } from '../progress.js';
import { T5clsError, UsageError } from '../errors.js';
import { Rng, type RngState } from '../random.js';
import { randomPermutation } from './sampler.js';
import { batchTensors, corruptRows, evaluateDenoising, pretrainSequences, textsFingerprint, type HeldOutMetrics } from './pretrain_data.js';
import type { LoadedRunState, RunStateBase, RunStateToSave, SaveReason } from './state.js';
import type { StepHold } from './hold.js';
import { saveCheckpoint } from './checkpoint.js';
import { trainLoop, type LoopEpoch } from './loop.js';
import { openRunSession, type RunSession } from './session.js';
import { shellQuote, TrainingInterrupted } from './stop_signals.js';
import type { TrainOptions } from './types.js';

/** The training options pretraining shares with `train`, plus its own. */
export interface PretrainOptions
  extends
    SpanCorruptionOptions,
    Pick<
      TrainOptions,
      | 'maxSteps'
      | 'batchSize'
      | 'evalBatchSize'
      | 'learningRate'
      | 'lrWarmupSteps'
      | 'weightDecay'
      | 'useAdafactor'
      | 'adafactorScaleParameter'
      | 'seed'
      | 'quiet'
    > {
  /** Tokens of every corrupted input (EOS included). */
  inputLength: number;
  /** Passes over the texts; undefined: as many as `maxSteps` takes (HF's max_steps without num_train_epochs), else one. */
  epochs?: number;
  maxMinutes?: number;
  /** Evaluate on the held-out sequences every N optimizer steps (and after the last step). */
  evalEverySteps: number;
  /** Share of the texts held out for evaluation (at least one sequence's worth). */
  heldOutShare: number;
  /** Also write the resumable state every N optimizer steps (it is always written after each epoch and when stopped). */
  saveEverySteps?: number;
}

export const PRETRAIN_STATE_FORMAT = 't5cls-pretrain-state';
export const PRETRAIN_STATE_KEYS = ['run', 'record', 'options', 'textsFingerprint', 'dropout', 'optimizer', 'progress'];

/** Where a pretraining run stands; enough to continue exactly. */
export interface PretrainProgress {
  /** The epoch in progress (its order and masking are drawn again from `rng`). */
  epoch: number;
  /** Batches of that epoch already trained on. */
  nextBatch: number;
  /** Optimizer steps done in the whole run. */
  steps: number;
  /** The generator as it was when the epoch in progress drew its order and masking. */
  rng: RngState;
  heldOut?: HeldOutMetrics;
}

export interface PretrainStateFile extends RunStateBase {
  format: typeof PRETRAIN_STATE_FORMAT;
  reason: SaveReason;
  run: { runName: string; modelName: string; runTime: string; checkpointDir: string; logFile: string; tensorboardDir: string };
  /** Every option of the command, as logged. */
  record: Record<string, unknown>;
  options: PretrainOptions;
  /** sha256 of the texts, so a resumed run can tell that its text changed. */
  textsFingerprint: string;
  dropout: { seed: number; counter: number };
  progress: PretrainProgress;
}

export interface PretrainJob {
  model: T5ForConditionalGeneration;
  tokenizer: T5Tokenizer;
  texts: string[];
  options: PretrainOptions;
  modelName: string;
  runName: string;
  checkpointDir: string;
  logFile: string;
  tensorboardDir: string;
  record: Record<string, unknown>;
  runTime: string;
  /** Where the resumable state goes (`<runs-dir>/<run>/state`). */
  stateDir: string;
  /** The state to continue from. */
  resume?: LoadedRunState<PretrainStateFile>;
  /** Wait for a signal after this step (src/train/hold.ts: the resume tests' hook). */
  hold?: StepHold;
  say: (line: string) => void;
}

export interface PretrainResult {
  steps: number;
  checkpoint: string;
  heldOut: HeldOutMetrics | undefined;
}

export async function runPretraining(job: PretrainJob): Promise<PretrainResult> {
  const { model, tokenizer, options: o, resume, say } = job;
  const { train, heldOut, rawLength, targetLength } = pretrainSequences(tokenizer, job.texts, o);
  const fingerprint = textsFingerprint(job.texts);
  // The held-out masking is drawn once, from its own seed, so evaluations are comparable across steps.
  const heldOutExamples = corruptRows(heldOut, o, tokenizer, new Rng(o.seed + 1));
  const firstSentinel = tokenizer.vocabSize - tokenizer.extraIds;
  const isSpanToken = (id: number) => id !== tokenizer.eosTokenId && id < firstSentinel;
  const stepsPerEpoch = Math.ceil(train.length / o.batchSize);
  const epochs = o.epochs ?? (o.maxSteps !== undefined ? Math.ceil(o.maxSteps / stepsPerEpoch) : 1);
  const totalSteps = Math.min(o.maxSteps ?? Infinity, stepsPerEpoch * epochs);
  const deadline = o.maxMinutes !== undefined ? Date.now() + o.maxMinutes * 60_000 : Infinity;
  if (resume && resume.state.textsFingerprint !== fingerprint)
    throw new UsageError(
      `--resume ${resume.snapshotDir}: the text differs from the text the run started with (${[resume.state.record.from].flat().join(', ')})`,
    );
  const rng = new Rng(o.seed);
  let at: PretrainProgress = resume?.state.progress ?? { epoch: 1, nextBatch: 0, steps: 0, rng: rng.getState() };
  rng.setState(at.rng);
  const session = await openRunSession({ ...job, optimizer: { ...o, useAdafactorSchedule: false }, seed: o.seed });
  say(
    `pretraining ${job.modelName}: ${train.length} sequences of ${rawLength} tokens → inputs of ${o.inputLength}, targets of ` +
      `${targetLength}; ` +
      `${heldOut.length} held out; ${stepsPerEpoch} steps per epoch`,
  );

  const startEpoch = (): LoopEpoch<CorruptedExample[]> => {
    // A new order and a new masking every epoch, drawn from the generator as it stands at the epoch's start.
    const { epoch, nextBatch: first } = at;
    const epochRng = rng.getState();
    const order = randomPermutation(train.length, rng);
    const batches = chunk(
      corruptRows(
        order.map((i) => train[i]!),
        o,
        tokenizer,
        rng,
      ),
      o.batchSize,
    );
    const bar = new Progress({
      label: `pretrain epoch ${epoch}/${epochs}`,
      total: Math.min(batches.length - first, totalSteps - at.steps),
      quiet: o.quiet,
    });
    return {
      steps: batches.slice(first).map((batch) => [batch]),
      bar,
      stepTaken: ({ steps, losses, lr }) => {
        if (lr !== undefined) session.tb.addScalar('train/learning_rate', lr, steps);
        bar.tick(1, { loss: losses[0]! });
        const nextBatch = at.nextBatch + 1;
        // After the epoch's last batch the next epoch starts, from the generator as it is now.
        at =
          nextBatch < batches.length
            ? { epoch, nextBatch, steps, rng: epochRng, heldOut: at.heldOut }
            : { epoch: epoch + 1, nextBatch: 0, steps, rng: rng.getState(), heldOut: at.heldOut };
      },
    };
  };

  const evaluate = (steps: number): void => {
    const metrics = evaluateDenoising(model, heldOutExamples, o.evalBatchSize, isSpanToken);
    at = { ...at, heldOut: metrics };
    session.tb.addScalar('heldout/loss', metrics.loss, steps);
    session.tb.addScalar('heldout/token_accuracy', metrics.tokenAccuracy, steps);
    const line = `step ${steps}: held-out loss ${metrics.loss.toFixed(4)}, span-token accuracy ${metrics.tokenAccuracy.toFixed(4)}`;
    session.log.line(line);
    say(line);
  };

  try {
    const end = await trainLoop<CorruptedExample[]>({
      session,
      startStep: at.steps,
      lrWarmupSteps: o.lrWarmupSteps,
      accumulationSteps: 1,
      countExactMatches: false,
      saveEverySteps: o.saveEverySteps,
      evaluation: { everySteps: o.evalEverySteps, evaluate },
      isLastStep: (steps) => steps >= totalSteps || Date.now() >= deadline,
      finished: () => at.steps >= totalSteps || at.epoch > epochs,
      startEpoch,
      tensors: batchTensors,
      stateToSave: (reason) => pretrainState(job, reason, { fingerprint, session, progress: at }),
      nonFiniteError: (what, value, step, savedNow) => {
        const lastState = savedNow ?? resume?.snapshotDir;
        const kept = lastState ? `; the last state is ${lastState}` : '; nothing of this run was saved';
        return new T5clsError(`pretraining stopped: the ${what} is ${value} at step ${step}${kept}`, 1);
      },
    });
    const { steps, stoppedBy } = end;
    const checkpoint = await saveFinalCheckpoint(job, {
      steps,
      epoch: Math.ceil(steps / stepsPerEpoch),
      heldOut: at.heldOut,
      finished: stoppedBy === undefined && steps >= totalSteps,
    });
    session.log.line(`saved checkpoint ${checkpoint} after step ${steps}`);
    say(`saved checkpoint ${checkpoint} (step ${steps}); fine-tune it with: t5cls train --model ${checkpoint}`);
    if (stoppedBy) {
      const command = `t5cls pretrain --resume ${shellQuote(job.stateDir)}`;
      session.log.line(`stopped by ${stoppedBy} after step ${steps}; resume with: ${command}`);
      throw new TrainingInterrupted(
        stoppedBy,
        checkpoint,
        `stopped by ${stoppedBy} after step ${steps}; the model is saved in ${checkpoint} and the state in ${end.lastState}. ` +
          `Resume with: ${command}`,
      );
    }
    return { steps, checkpoint, heldOut: at.heldOut };
  } finally {
    session.close();
  }
}

/**
 * The run's model as an HF-layout checkpoint. A finished run's takes the run's checkpoint name; a stopped run's (and
 * one a later session of the run finishes, when that name is taken) carries its step, so that no checkpoint is ever
 * overwritten.
 */
async function saveFinalCheckpoint(
  job: PretrainJob,
  at: { steps: number; epoch: number; heldOut: HeldOutMetrics | undefined; finished: boolean },
): Promise<string> {
  const checkpoint = at.finished && !fs.existsSync(job.checkpointDir) ? job.checkpointDir : `${job.checkpointDir}-step${at.steps}`;
  await saveCheckpoint(checkpoint, job.model, job.tokenizer, {
    format: 't5cls-checkpoint',
    version: 1,
    baseModel: job.modelName,
    runName: job.runName,
    epoch: at.epoch,
    step: at.steps,
    prefixText: '',
    maxSourceLength: job.options.inputLength,
    classesMap: {},
    options: { objective: 'span-corruption', ...job.record },
    metrics: at.heldOut ? { heldout_loss: at.heldOut.loss, heldout_token_accuracy: at.heldOut.tokenAccuracy } : {},
    createdAt: new Date().toISOString(),
  });
  return checkpoint;
}

/** The resumable state's record of the run at this point (saved with the weights and the optimizer). */
function pretrainState(
  job: PretrainJob,
  reason: SaveReason,
  at: { fingerprint: string; session: RunSession; progress: PretrainProgress },
): RunStateToSave<PretrainStateFile> {
  return {
    format: PRETRAIN_STATE_FORMAT,
    version: 1,
    savedAt: new Date().toISOString(),
    reason,
    run: {
      runName: job.runName,
      modelName: job.modelName,
      runTime: job.runTime,
      checkpointDir: job.checkpointDir,
      logFile: job.logFile,
      tensorboardDir: job.tensorboardDir,
    },
    record: job.record,
    options: job.options,
    textsFingerprint: at.fingerprint,
    dropout: at.session.dropout.state(),
    optimizer: { kind: job.options.useAdafactor ? 'adafactor' : 'adamw' },
    progress: at.progress,
  };
}

/** Where a pretraining run's checkpoint goes: `<weights>/<model>-pretrained-<time>`. */
export function pretrainCheckpointDir(weightsDir: string, modelName: string, runTime: string): string {
  return path.join(weightsDir, `${modelName}-pretrained-${runTime}`);
}

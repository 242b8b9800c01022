/**
 * The end of a training epoch: validation with greedy decoding, its report (run log, TensorBoard, one line), and a
 * checkpoint whenever dev macro-F1 improves (else the epoch counts toward early stopping).
 */
import * as path from 'node:path';
import type { T5ForConditionalGeneration } from '../model/modeling_t5.js';
import type { TokenizerLike, Example } from '../data/batches.js';
import { predictGenerate } from '../eval/decoding.js';
import { classificationMetrics } from '../eval/metrics.js';
import { Progress } from '../progress.js';
import { EPOCH_FIELDS } from '../run_log_format.js';
import { readCheckpointMeta } from '../checkpoint_meta.js';
import { saveCheckpoint, type SavableTokenizer } from './checkpoint.js';
import type { RunLog } from './run_log.js';
import type { SummaryWriter } from './tensorboard.js';
import type { TrainProgress } from './state.js';
import type { EpochResult, TrainOptions } from './types.js';

/** What validation and the checkpoints need of the training job. */
export interface ValidationJob {
  model: T5ForConditionalGeneration;
  tokenizer: TokenizerLike & SavableTokenizer;
  validation: Example[];
  classNames: string[];
  options: TrainOptions;
  /** Name of the base model (`t5-small`, a folder name, `t5-tiny-scratch`). */
  modelName: string;
  /** `<Mon DD_HH-MM-SS>` of the run's start: with the model name it names the log, TensorBoard folder and checkpoints. */
  runTime: string;
  weightsDir: string;
  /** Every option of the command, written at the top of the log and into each checkpoint. */
  record: Record<string, unknown>;
  say: (line: string) => void;
}

/** Greedy decoding over the validation set: the epoch's record (training figures from `p`). */
export function validate(job: ValidationJob, p: TrainProgress, devInputs: number[][], classTokens: number[][]): EpochResult {
  const o = job.options;
  const epoch = p.epoch;
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

/** An epoch's results to the run log, TensorBoard and as one line. */
export function reportEpoch(log: RunLog, tb: SummaryWriter, say: (line: string) => void, r: EpochResult): void {
  log.epoch(r.epoch, { ...r });
  for (const key of EPOCH_FIELDS) tb.addScalar(key, r[key], r.epoch);
  tb.flush();
  say(
    `epoch ${r.epoch}: train_loss ${r.train_loss.toFixed(4)} train_acc ${r.train_accuracy.toFixed(4)} ` +
      `dev_acc ${r.dev_accuracy.toFixed(4)} dev_macro_f1 ${r.dev_macro_f1.toFixed(4)} (invalid outputs: ${r.dev_invalid})`,
  );
}

/**
 * Saves a checkpoint when dev macro-F1 improved (kept as is when this run saved it before it was stopped), else
 * counts the epoch toward early stopping. Returns the progress with the best epoch and the stopping count.
 */
export async function keepBest(job: ValidationJob, p: TrainProgress, r: EpochResult, runName: string, log: RunLog): Promise<TrainProgress> {
  const o = job.options;
  const epoch = r.epoch;
  if (!(r.dev_macro_f1 > p.bestMacroF1)) {
    const epochsWithoutGain = p.epochsWithoutGain + 1;
    const stoppedEarly = o.earlyStoppingPatience !== undefined && epochsWithoutGain >= o.earlyStoppingPatience;
    if (stoppedEarly) {
      log.line(`early stopping: no better dev macro-F1 for ${epochsWithoutGain} epochs`);
      job.say(`early stopping after epoch ${epoch}: no better dev macro-F1 for ${epochsWithoutGain} epochs`);
    }
    return { ...p, epochsWithoutGain, stoppedEarly };
  }
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
  return { ...p, bestMacroF1: r.dev_macro_f1, epochsWithoutGain: 0, bestCheckpoint: dir };
}

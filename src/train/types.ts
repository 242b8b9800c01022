/**
 * `train`'s options and per-epoch results: shared by the command (trainer.ts, epoch_end.ts) and its saved state
 * (state.ts), so that neither imports the other for them. They are the library's own: the CLI maps its validated
 * params to them (src/cli/train_options.ts).
 */

/** What the training loop does: its epochs, batches, optimizer, schedule, stopping and saving, and its inputs' shape. */
export interface TrainOptions {
  epochs: number;
  batchSize: number;
  evalBatchSize: number;
  /** Default: 1e-4 for AdamW, 1e-3 for Adafactor, 1e-2 for Adafactor with `adafactorScaleParameter`. */
  learningRate?: number;
  /** Linear warm-up steps, constant afterwards. */
  lrWarmupSteps: number;
  /** Decoupled weight decay. */
  weightDecay: number;
  /** Adafactor instead of AdamW; true whenever `useAdafactorSchedule` is (the schedule needs the optimizer). */
  useAdafactor: boolean;
  /** Relative-step Adafactor: the learning rate comes from Adafactor's own schedule. */
  useAdafactorSchedule: boolean;
  /** Adafactor scales each parameter's step by its root mean square (HF scale_parameter); default off. */
  adafactorScaleParameter?: boolean;
  /** Draw training examples with replacement, weighted 1/(class count). */
  useWeightedRandomSampler: boolean;
  /** Batches whose gradients are summed before each optimizer step. */
  gradientAccumulationSteps: number;
  /** Stop after this many epochs without a better dev macro-F1. */
  earlyStoppingPatience?: number;
  /** Stop after this many optimizer steps. */
  maxSteps?: number;
  /** Also write the resumable state every N optimizer steps (it is always written after each epoch). */
  saveEverySteps?: number;
  seed: number;
  /** Text put before every input. */
  prefixText: string;
  /** Inputs are truncated to this many tokens. */
  maxSourceLength: number;
  quiet: boolean;
}

/** Whether Adafactor scales its steps by the parameters' RMS: as given, else from a random start only. */
export function adafactorScaleParameter(p: { adafactorScaleParameter?: boolean; init: 'pretrained' | 'random' }): boolean {
  return p.adafactorScaleParameter ?? p.init === 'random';
}

export interface EpochResult {
  epoch: number;
  learning_rate: number;
  train_loss: number;
  train_accuracy: number;
  dev_accuracy: number;
  dev_macro_f1: number;
  dev_micro_f1: number;
  dev_weighted_f1: number;
  dev_invalid: number;
}

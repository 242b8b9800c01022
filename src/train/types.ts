/**
 * The training loop's options and per-epoch results: shared by the loop (trainer.ts) and its saved state
 * (state.ts), so that neither imports the other for them.
 */

export interface TrainOptions {
  epochs: number;
  batchSize: number;
  evalBatchSize: number;
  learningRate?: number;
  lrWarmupSteps: number;
  weightDecay: number;
  useAdafactor: boolean;
  useAdafactorSchedule: boolean;
  useWeightedRandomSampler: boolean;
  gradientAccumulationSteps: number;
  earlyStoppingPatience?: number;
  maxSteps?: number;
  /** Also write the resumable state every N optimizer steps (it is always written at the end of an epoch). */
  saveEverySteps?: number;
  seed: number;
  prefixText: string;
  maxSourceLength: number;
  quiet: boolean;
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

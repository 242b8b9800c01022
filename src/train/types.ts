/**
 * The training loop's options and per-epoch results: shared by the loop (trainer.ts) and its saved state
 * (state.ts), so that neither imports the other for them.
 */
import type { Params, ParamName } from '../params.js';

/** The params the training loop reads, as the user gave them (after validation). */
export const TRAIN_LOOP_PARAMS = [
  'epochs',
  'batchSize',
  'evalBatchSize',
  'learningRate',
  'lrWarmupSteps',
  'weightDecay',
  'useAdafactor',
  'useAdafactorSchedule',
  'adafactorScaleParameter',
  'useWeightedRandomSampler',
  'gradientAccumulationSteps',
  'earlyStoppingPatience',
  'maxSteps',
  'saveEverySteps',
  'seed',
  'prefixText',
  'maxSourceLength',
  'quiet',
] as const satisfies readonly ParamName[];

/**
 * `useAdafactor` is true whenever `useAdafactorSchedule` is (the schedule needs the optimizer), and
 * `adafactorScaleParameter` is resolved; see trainOptions.
 */
export type TrainOptions = Pick<Params, (typeof TRAIN_LOOP_PARAMS)[number]>;

/** The loop's options taken from validated params. */
export function trainOptions(p: Params): TrainOptions {
  const picked = Object.fromEntries(TRAIN_LOOP_PARAMS.map((k) => [k, p[k]])) as TrainOptions;
  return {
    ...picked,
    useAdafactor: p.useAdafactor || p.useAdafactorSchedule,
    adafactorScaleParameter: adafactorScaleParameter(p),
  };
}

/** Whether Adafactor scales its steps by the parameters' RMS: as given, else from a random start only. */
export function adafactorScaleParameter(p: Pick<Params, 'adafactorScaleParameter' | 'init'>): boolean {
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

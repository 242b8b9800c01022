/** The training loop's options (the library's TrainOptions) from `t5cls train`'s validated params. */
import type { TrainParams } from '../params/commands.js';
import { adafactorScaleParameter, type TrainOptions } from '../train/types.js';

export function trainOptions(p: TrainParams): TrainOptions {
  return {
    epochs: p.epochs,
    batchSize: p.batchSize,
    evalBatchSize: p.evalBatchSize,
    learningRate: p.learningRate,
    lrWarmupSteps: p.lrWarmupSteps,
    weightDecay: p.weightDecay,
    useAdafactor: p.useAdafactor || p.useAdafactorSchedule,
    useAdafactorSchedule: p.useAdafactorSchedule,
    adafactorScaleParameter: adafactorScaleParameter(p),
    useWeightedRandomSampler: p.useWeightedRandomSampler,
    gradientAccumulationSteps: p.gradientAccumulationSteps,
    earlyStoppingPatience: p.earlyStoppingPatience,
    maxSteps: p.maxSteps,
    saveEverySteps: p.saveEverySteps,
    seed: p.seed,
    prefixText: p.prefixText,
    maxSourceLength: p.maxSourceLength,
    quiet: p.quiet,
  };
}

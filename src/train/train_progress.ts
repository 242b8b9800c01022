/**
 * Moves a training run's progress record (TrainProgress, saved with every state) on: each function returns a new
 * record, so that what a state saves is the record as it stood.
 */
import type { TrainProgress } from './state.js';
import type { EpochResult } from './types.js';

/** The per-epoch counters of TrainProgress at an epoch's start. */
const EPOCH_START = { nextBatch: 0, lossSum: 0, lossCount: 0, correct: 0, seen: 0 } as const;

export function freshProgress(baseLr: number | undefined): TrainProgress {
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

/** The epoch in progress, with the example order it goes through. */
export function epochStarted(p: TrainProgress, order: number[]): TrainProgress {
  return { ...p, order, ...EPOCH_START };
}

/** A trained batch counted in the epoch's sums. */
export function batchCounted(p: TrainProgress, examples: number, loss: number, correct: number): TrainProgress {
  return {
    ...p,
    nextBatch: p.nextBatch + 1,
    lossSum: p.lossSum + loss * examples,
    lossCount: p.lossCount + examples,
    correct: p.correct + correct,
    seen: p.seen + examples,
  };
}

/** Optimizer step number `steps` taken, at rate `lr` (undefined: relative-step Adafactor has reported none yet). */
export function stepCounted(p: TrainProgress, steps: number, lr: number | undefined): TrainProgress {
  return { ...p, steps, currentLr: lr ?? p.currentLr };
}

/** The epoch validated (its result recorded), and the next one to start. */
export function epochEnded(p: TrainProgress, result: EpochResult): TrainProgress {
  return { ...p, epochs: [...p.epochs, result], epoch: p.epoch + 1, order: null, ...EPOCH_START };
}

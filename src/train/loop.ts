/**
 * The training loop that `train` (trainer.ts) and `pretrain` (pretrain.ts) share. One iteration is one optimizer
 * step: forward and backward over the step's micro-batches (their gradients summed: accumulation), the non-finite
 * checks, the update on the learning-rate schedule, the step's TensorBoard scalars; then the test hold, the stop
 * signals, the command's evaluation when due, and the state saves. Each command hands over its batches epoch by
 * epoch, its evaluation and its state; the loop owns none of their records.
 *
 * SIGINT/SIGTERM stop the run after the step during which they came, with an 'interrupt' state. Their handlers run
 * only where the loop yields to the event loop: between micro-batches and after each step (evaluation and saves do
 * not yield), so a signal is seen once per step, after the hold.
 */
import { tf } from '../tf.js';
import type { Progress } from '../progress.js';
import { holdAtStep } from './hold.js';
import type { RunSession } from './session.js';
import { saveRunState, saveRunTokenizer, type RunStateBase, type RunStateToSave, type SaveReason } from './state.js';
import { addGradients, batchGradients, optimizerStep, type ModelBatch } from './step.js';

/** An epoch as a command hands it to the loop. */
export interface LoopEpoch<Batch> {
  /** Its optimizer steps still to take, each as the micro-batches whose gradients it sums. */
  steps: Batch[][];
  /** Batches of the epoch remain after `steps` (train's --max-steps ends its last epoch early). */
  endsEarly?: boolean;
  /** The epoch's progress bar: the command ticks it, the loop closes it. */
  bar: Progress;
  /** The command takes in a step just taken (its progress record moves on). */
  stepTaken(step: TakenStep<Batch>): void;
  /** At the epoch's end, before its state is saved (train evaluates here). */
  end?(): Promise<void>;
}

export interface TakenStep<Batch> {
  /** Optimizer steps done in the run, this one included. */
  steps: number;
  batches: Batch[];
  /** Each micro-batch's mean loss, and its exact matches where the command counts them. */
  losses: number[];
  correct: (number | undefined)[];
  /** The rate the step used (undefined while relative-step Adafactor has not reported one). */
  lr: number | undefined;
}

export interface LoopSpec<Batch> {
  session: RunSession;
  /** Optimizer steps done when the loop starts (a resumed run's). */
  startStep: number;
  lrWarmupSteps: number;
  /** Micro-batches per step: each one's loss is scaled by 1/this. */
  accumulationSteps: number;
  /** Count the examples the model gets exactly right (train's accuracy). */
  countExactMatches: boolean;
  /** Also save the state every N steps (always at each epoch's end and when stopped). */
  saveEverySteps?: number;
  /** Pretrain's evaluation: every N steps and after the last one (train evaluates at its epochs' `end`). */
  evaluation?: { everySteps: number; evaluate(steps: number): void };
  /** A budget of the command's own (steps, minutes) that ends the run after this step, with an 'end' state. */
  isLastStep?(steps: number): boolean;
  /** Checked before each epoch. */
  finished(): boolean;
  startEpoch(): LoopEpoch<Batch>;
  /** A micro-batch's tensors (the loop disposes them). */
  tensors(batch: Batch): ModelBatch;
  /** The command's state now, to save for `reason`. */
  stateToSave(reason: SaveReason): RunStateToSave<RunStateBase>;
  /** The error that ends the run when the loss or the gradient norm of step `step` is not finite. */
  nonFiniteError(what: string, value: number, step: number, lastState: string | undefined): Error;
}

export interface LoopEnd {
  /** Optimizer steps done in the run. */
  steps: number;
  /** The signal that stopped the run after `steps` (its state is saved). */
  stoppedBy?: 'SIGINT' | 'SIGTERM';
  /** The newest state this session saved. */
  lastState?: string;
}

export async function trainLoop<Batch>(spec: LoopSpec<Batch>): Promise<LoopEnd> {
  const { session: s } = spec;
  let steps = spec.startStep;
  let lastState: string | undefined;
  const save = async (reason: SaveReason): Promise<void> => {
    await saveRunTokenizer(s.stateDir, s.tokenizer);
    lastState = await saveRunState(s.stateDir, spec.stateToSave(reason), s.model, s.optimizer);
  };
  const failNonFinite = (what: string, value: number): never => {
    throw spec.nonFiniteError(what, value, steps + 1, lastState);
  };
  const params = [...s.model.trainableVariables().values()];
  while (!spec.finished()) {
    const epoch = spec.startEpoch();
    for (const [i, batches] of epoch.steps.entries()) {
      const { losses, correct, grads } = await stepGradients(spec, params, batches, failNonFinite);
      const { gradNorm, lr } = optimizerStep(s.optimizer, s.baseLr, spec.lrWarmupSteps, grads, steps, failNonFinite);
      steps++;
      s.tb.addScalar('train/loss_step', losses.at(-1)!, steps);
      s.tb.addScalar('train/grad_norm', gradNorm, steps);
      epoch.stepTaken({ steps, batches, losses, correct, lr });
      await signalsDelivered();
      await holdAtStep(s.hold, steps, () => s.stop.signal !== undefined, s.say);
      // A stop comes before the epoch's end: train validates an epoch stopped at its last step when resumed.
      const stoppedBy = s.stop.signal;
      const last = stoppedBy !== undefined || spec.isLastStep?.(steps) === true;
      if (spec.evaluation && (steps % spec.evaluation.everySteps === 0 || last)) spec.evaluation.evaluate(steps);
      if (last) {
        epoch.bar.done();
        await save(stoppedBy ? 'interrupt' : 'end');
        return { steps, stoppedBy, lastState };
      }
      // At an epoch's end the epoch's own state follows.
      const epochEnds = i === epoch.steps.length - 1 && !epoch.endsEarly;
      if (spec.saveEverySteps !== undefined && steps % spec.saveEverySteps === 0 && !epochEnds) await save('steps');
    }
    epoch.bar.done();
    await epoch.end?.();
    await save('epoch');
  }
  return { steps, lastState };
}

/** Forward and backward over a step's micro-batches, their gradients summed; a non-finite loss ends the run. */
async function stepGradients<Batch>(
  spec: LoopSpec<Batch>,
  params: tf.Variable[],
  batches: Batch[],
  failNonFinite: (what: string, value: number) => never,
): Promise<{ losses: number[]; correct: (number | undefined)[]; grads: tf.NamedTensorMap }> {
  const { model, dropout } = spec.session;
  const options = { scale: 1 / spec.accumulationSteps, exactMatches: spec.countExactMatches };
  const losses: number[] = [];
  const correct: (number | undefined)[] = [];
  let summed: tf.NamedTensorMap | undefined;
  for (const [i, b] of batches.entries()) {
    if (i > 0) await signalsDelivered();
    const batch = spec.tensors(b);
    const { loss, correct: exact, grads } = batchGradients(model, params, batch, dropout, options);
    tf.dispose([batch.inputIds, batch.attentionMask, batch.labels]);
    if (!Number.isFinite(loss)) {
      tf.dispose([...Object.values(grads), ...Object.values(summed ?? {})]);
      failNonFinite('loss', loss);
    }
    summed = addGradients(summed, grads);
    losses.push(loss);
    correct.push(exact);
  }
  return { losses, correct, grads: summed! };
}

/** Lets a SIGINT/SIGTERM that came during the work just done reach its handler. */
function signalsDelivered(): Promise<void> {
  return new Promise<void>((resolve) => setImmediate(resolve));
}

/**
 * `T5CLS_HOLD_AFTER_STEP`: a training run that stops at a known step and waits there, so that what happens when it
 * is killed or interrupted at that step can be checked without racing a run at full speed (the resume tests use
 * it; an operator can use it the same way to rehearse a scheduler's preemption).
 *
 * - `N`: after optimizer step N, before any state is saved for it, print `holding after step N` and wait for SIGINT
 *   or SIGTERM; the run then stops as usual, after step N, saving its state.
 * - `N:until-killed`: the same, but the first signal does not end the wait either: the process stays at step N
 *   until a second signal (or SIGKILL) ends it.
 */
import { UsageError } from '../errors.js';

export const HOLD_ENV = 'T5CLS_HOLD_AFTER_STEP';

export interface StepHold {
  step: number;
  untilKilled: boolean;
}

/** The hold asked for in `env`, or undefined; a malformed value is an error naming the variable. */
export function stepHoldFromEnv(env: NodeJS.ProcessEnv = process.env): StepHold | undefined {
  const raw = env[HOLD_ENV];
  if (raw === undefined || raw === '') return undefined;
  const m = /^(\d+)(:until-killed)?$/.exec(raw.trim());
  if (!m || Number(m[1]) < 1)
    throw new UsageError(`${HOLD_ENV}="${raw}": expected a step number ≥ 1, optionally followed by ":until-killed"`);
  return { step: Number(m[1]), untilKilled: m[2] !== undefined };
}

/**
 * Waits as `hold` says once `steps` reaches its step: until `stopped()` turns true, or forever with `untilKilled`.
 * A timer keeps the process alive meanwhile (signal listeners alone do not).
 */
export async function holdAtStep(
  hold: StepHold | undefined,
  steps: number,
  stopped: () => boolean,
  say: (line: string) => void,
): Promise<void> {
  if (!hold || hold.step !== steps) return;
  say(`holding after step ${steps} (${HOLD_ENV})`);
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      if (!hold.untilKilled && stopped()) {
        clearInterval(timer);
        resolve();
      }
    }, 10);
  });
}

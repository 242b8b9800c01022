/** Stopping a run cleanly: SIGINT/SIGTERM after the current step, and the error that says how to resume. */
import { T5clsError } from '../errors.js';

/** SIGINT / SIGTERM stopped the run after a step; the state is saved. Exit code 130 / 143, as a shell reports it. */
export class TrainingInterrupted extends T5clsError {
  constructor(
    readonly signal: 'SIGINT' | 'SIGTERM',
    readonly stateDir: string,
    message: string,
  ) {
    super(message, signal === 'SIGINT' ? 130 : 143);
  }
}

/**
 * The first SIGINT or SIGTERM asks the loop to stop after the current step; our handlers are then removed, so a
 * second one ends the process at once by the signal's default action.
 */
export function watchStopSignals(say: (line: string) => void): { signal: 'SIGINT' | 'SIGTERM' | undefined; dispose(): void } {
  const watcher = {
    signal: undefined as 'SIGINT' | 'SIGTERM' | undefined,
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
  function onSignal(signal: NodeJS.Signals): void {
    watcher.signal = signal === 'SIGTERM' ? 'SIGTERM' : 'SIGINT';
    watcher.dispose();
    say(`${signal}: finishing the current step and saving the state (${signal === 'SIGINT' ? 'Ctrl-C' : 'SIGTERM'} again quits at once)`);
  }
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return watcher;
}

/** A path as one shell word. */
export function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

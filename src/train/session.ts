/**
 * One process's part of a run (a run stopped and resumed has several): the optimizer and the dropout stream, fresh
 * or restored from the saved state, the run log and TensorBoard, the stop-signal watcher. Train and pretrain open one
 * and hand it to the loop (loop.ts).
 */
import { DropoutStream } from '../model/dropout_stream.js';
import type { T5ForConditionalGeneration } from '../model/modeling_t5.js';
import type { SavableTokenizer } from './checkpoint.js';
import type { StepHold } from './hold.js';
import { RunLog } from './run_log.js';
import { removePartials, restoreOptimizerState, type LoadedRunState, type RunStateBase } from './state.js';
import { makeOptimizer } from './step.js';
import { watchStopSignals } from './stop_signals.js';
import { SummaryWriter } from './tensorboard.js';
import type { Adafactor, AdamW } from './optimizers/index.js';

/** What a saved state must hold for a session to continue from it (train's and pretrain's both do). */
export interface ResumableState extends RunStateBase {
  dropout: { seed: number; counter: number };
  progress: { epoch: number; steps: number };
}

export interface SessionOptions {
  model: T5ForConditionalGeneration;
  /** Saved with the run's first state, for `--resume`. */
  tokenizer: SavableTokenizer;
  /** The optimizer and its learning rate. */
  optimizer: Parameters<typeof makeOptimizer>[0];
  /** The dropout stream's seed in a fresh run. */
  seed: number;
  logFile: string;
  tensorboardDir: string;
  /** Every option of the command: a fresh run's log starts with them. */
  record: Record<string, unknown>;
  stateDir: string;
  /** Where to wait for a signal (src/train/hold.ts); read once by the caller. */
  hold?: StepHold;
  resume?: LoadedRunState<ResumableState>;
  say: (line: string) => void;
}

export interface RunSession {
  model: T5ForConditionalGeneration;
  tokenizer: SavableTokenizer;
  stateDir: string;
  optimizer: Adafactor | AdamW;
  /** The learning rate the schedule warms up to; undefined under Adafactor's own schedule. */
  baseLr: number | undefined;
  /** Where the model's dropout masks come from; saved with every state. */
  dropout: DropoutStream;
  log: RunLog;
  tb: SummaryWriter;
  stop: ReturnType<typeof watchStopSignals>;
  hold: StepHold | undefined;
  say: (line: string) => void;
  /** Stops watching for signals, closes TensorBoard and frees the optimizer's state. */
  close(): void;
}

export async function openRunSession(o: SessionOptions): Promise<RunSession> {
  const { optimizer, baseLr } = makeOptimizer(o.optimizer);
  try {
    const log = new RunLog(o.logFile);
    let dropout: DropoutStream;
    if (o.resume) {
      const { state, snapshotDir } = o.resume;
      await restoreOptimizerState(optimizer, o.resume.optimizer, state.optimizer.order, o.model, snapshotDir);
      dropout = new DropoutStream(state.dropout.seed, state.dropout.counter);
      removePartials(o.stateDir);
      log.line(`resumed from ${snapshotDir}: epoch ${state.progress.epoch}, step ${state.progress.steps}`);
    } else {
      dropout = new DropoutStream(o.seed);
      log.options(o.record);
    }
    // A resumed run logs again from the step after its saved state: TensorBoard drops what the stopped run logged there.
    const tb = new SummaryWriter(o.tensorboardDir, o.resume ? { purgeStep: o.resume.state.progress.steps + 1 } : {});
    const stop = watchStopSignals(o.say);
    const { model, tokenizer, stateDir, hold, say } = o;
    return {
      model,
      tokenizer,
      stateDir,
      optimizer,
      baseLr,
      dropout,
      log,
      tb,
      stop,
      hold,
      say,
      close() {
        stop.dispose();
        tb.close();
        optimizer.dispose();
      },
    };
  } catch (e) {
    optimizer.dispose();
    throw e;
  }
}

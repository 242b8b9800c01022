/**
 * V8 marking on the main thread while the cpu engine runs.
 *
 * Every cpu-engine tensor is a JavaScript ArrayBuffer; a large T5's training step allocates gigabytes of them, and
 * V8 starts a marking cycle for every few dozen megabytes of new buffers (about 90 per t5-base step, on a JS heap
 * of some 60 MB). With concurrent marking those cycles run on helper threads that take the cores ONNX Runtime's
 * matrix products need: measured on 2 cores, t5-base AdamW steps of 16–20 s with it and 12.7–15 s without, the
 * products at 55–67 GFLOP/s against 77–88. Marking so small a heap on the main thread costs little.
 *
 * V8 reads this flag each time it starts a marking cycle, so it can be turned off after start-up (the engine does
 * it once, when the cpu backend starts). `T5CLS_CONCURRENT_GC=1`, or a `--concurrent-marking` given to node, keeps
 * V8's default.
 */
import * as v8 from 'node:v8';
import { CONCURRENT_GC_ENV } from '../flags.js';

let applied = false;

/** Turns concurrent marking off for the rest of the process unless asked not to; true when it did. */
export function keepMarkingOnMainThread(): boolean {
  if (applied) return false;
  if (process.env[CONCURRENT_GC_ENV] === '1') return false;
  const nodeFlags = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].join(' ');
  if (/concurrent[-_]marking/.test(nodeFlags)) return false;
  v8.setFlagsFromString('--no-concurrent-marking');
  applied = true;
  return true;
}

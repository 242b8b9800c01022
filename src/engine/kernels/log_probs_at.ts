/**
 * `T5clsLogProbsAt`: log-softmax values at (row, token) pairs, each row's log-sum-exp computed once (scoring several
 * continuations per row; no gradient).
 */
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs';

import { tf } from '../../tf.js';
import { scratch } from './kernel_support.js';
import { rowLogSumExp } from './token_nll.js';
import { storageFor } from '../tfjs_internals.js';

export const logProbsAtKernel: KernelFunc = ({ inputs, backend }) => {
  const { logits, rows, tokens } = inputs as { logits: TensorInfo; rows: TensorInfo; tokens: TensorInfo };
  const storage = storageFor(backend);
  const vocab = logits.shape[logits.shape.length - 1]!;
  const count = tf.util.sizeFromShape(rows.shape);
  const out = storage.alloc([count], 'float32');
  const sums = scratch(storage, 4);
  const lv = storage.read(logits) as Float32Array;
  const rv = storage.read(rows);
  const tv = storage.read(tokens);
  const ov = storage.read(out.info) as Float32Array;
  const lse = rowLogSumExp(backend, lv, vocab, storage.read(sums) as Float32Array);
  const numRows = vocab === 0 ? 0 : lv.length / vocab;
  const done = new Map<number, number>();
  for (let p = 0; p < count; p++) {
    const r = rv[p]!;
    const t = tv[p]!;
    if (r < 0 || r >= numRows || t < 0 || t >= vocab) {
      storage.dispose(sums);
      storage.dispose(out.info);
      throw new Error(`T5clsLogProbsAt: pair ${p} (row ${r}, token ${t}) is outside ${numRows} rows of ${vocab}`);
    }
    let l = done.get(r);
    if (l === undefined) done.set(r, (l = lse(r)));
    ov[p] = lv[r * vocab + t]! - l;
  }
  storage.dispose(sums);
  return out.info;
};

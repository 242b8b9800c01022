import { tf } from '../tf.js';
import { fusedAvailable, fusedLogProbsAt, fusedTokenNll } from '../engine/ops.js';
import { IGNORE_INDEX } from '../labels.js';

/**
 * Negative log-likelihood of each label token: logsumexp(logits) - logits[label], 0 where the label is -100.
 * logits [batch, length, vocab], labels [batch, length] → [batch, length].
 */
export function tokenNll(logits: tf.Tensor, labels: tf.Tensor): tf.Tensor2D {
  if (logits.dtype === 'float32' && fusedAvailable()) {
    return fusedTokenNll(logits, labels.dtype === 'int32' ? labels : tf.cast(labels, 'int32')) as tf.Tensor2D;
  }
  return tf.tidy(() => {
    const vocab = logits.shape[logits.shape.length - 1]!;
    const valid = tf.notEqual(labels, IGNORE_INDEX);
    const safe = tf.where(valid, labels, tf.zerosLike(labels));
    const picked = tf.sum(tf.mul(logits, tf.oneHot(tf.cast(safe, 'int32'), vocab)), -1);
    const nll = tf.sub(tf.logSumExp(logits, -1), picked);
    return tf.mul(nll, tf.cast(valid, 'float32')) as tf.Tensor2D;
  });
}

/** Mean cross-entropy over the label positions that are not -100, as HF T5ForConditionalGeneration computes it. */
export function sequenceCrossEntropy(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const count = tf.sum(tf.cast(tf.notEqual(labels, IGNORE_INDEX), 'float32'));
    return tf.div(tf.sum(tokenNll(logits, labels)), count) as tf.Scalar;
  });
}

/**
 * log softmax(logits[rows[p]])[tokens[p]] for every pair p: logits [numRows, vocab] → [pairs]. A row may appear in
 * several pairs (several continuations of one prefix).
 */
export function logProbsAt(logits: tf.Tensor2D, rows: number[], tokens: number[]): tf.Tensor1D {
  return tf.tidy(() => {
    const r = tf.tensor1d(rows, 'int32');
    const t = tf.tensor1d(tokens, 'int32');
    if (logits.dtype === 'float32' && fusedAvailable()) return fusedLogProbsAt(logits, r, t) as tf.Tensor1D;
    return tf.neg(tf.reshape(tokenNll(tf.expandDims(tf.gather(logits, r), 0), tf.expandDims(t, 0)), [rows.length])) as tf.Tensor1D;
  });
}

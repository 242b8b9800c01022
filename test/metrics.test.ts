import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classificationMetrics } from '../src/eval/metrics.js';

function close(actual: number, expected: number, what: string): void {
  assert.ok(Math.abs(actual - expected) < 1e-12, `${what}: ${actual} != ${expected}`);
}

test('three classes, no invalid predictions', () => {
  const yTrue = [0, 0, 0, 1, 1, 2, 2, 2, 2, 2];
  const yPred = [0, 0, 1, 1, 0, 2, 2, 1, 0, 2];
  const m = classificationMetrics(yTrue, yPred, 3);
  // Confusion (rows true, cols pred):
  //   t0: 2 1 0     t1: 1 1 0     t2: 1 1 3
  assert.deepEqual(m.confusion, [
    [2, 1, 0],
    [1, 1, 0],
    [1, 1, 3],
  ]);
  assert.equal(m.invalid, 0);
  // correct = 2 + 1 + 3 = 6 of 10
  close(m.accuracy, 0.6, 'accuracy');
  // class 0: tp 2, fp (1 + 1) = 2, fn 1 -> P 2/4, R 2/3, F1 = 2*2/(2*2+2+1) = 4/7
  // class 1: tp 1, fp (1 + 1) = 2, fn 1 -> P 1/3, R 1/2, F1 = 2/(2+2+1) = 2/5
  // class 2: tp 3, fp 0, fn 2        -> P 1,   R 3/5, F1 = 6/(6+0+2) = 3/4
  const expected = [
    { precision: 0.5, recall: 2 / 3, f1: 4 / 7, support: 3 },
    { precision: 1 / 3, recall: 0.5, f1: 0.4, support: 2 },
    { precision: 1, recall: 0.6, f1: 0.75, support: 5 },
  ];
  m.perClass.forEach((c, i) => {
    close(c.precision, expected[i]!.precision, `P${i}`);
    close(c.recall, expected[i]!.recall, `R${i}`);
    close(c.f1, expected[i]!.f1, `F${i}`);
    assert.equal(c.support, expected[i]!.support);
  });
  // macro = (4/7 + 2/5 + 3/4) / 3 = 0.573809523809...
  close(m.macroF1, (4 / 7 + 0.4 + 0.75) / 3, 'macro');
  close(m.macroF1, 0.5738095238095238, 'macro (decimal)');
  // weighted = (4/7*3 + 2/5*2 + 3/4*5) / 10 = (12/7 + 0.8 + 3.75) / 10 = 0.626428571428...
  close(m.weightedF1, 0.6264285714285714, 'weighted');
  // micro: tp 6, fp 4, fn 4 -> 12/20 = accuracy
  close(m.microF1, 0.6, 'micro');
});

test('invalid predictions, a class never predicted and a class absent altogether', () => {
  const yTrue = [0, 0, 1, 1, 1, 2, 2, 0];
  const yPred = [0, -1, 1, 0, -1, 1, 0, 0];
  const m = classificationMetrics(yTrue, yPred, 4);
  // Confusion with the extra "invalid" column (cols 0, 1, 2, 3, invalid):
  //   t0: 2 0 0 0 1   (#0 -> 0, #1 -> invalid, #7 -> 0)
  //   t1: 1 1 0 0 1   (#2 -> 1, #3 -> 0, #4 -> invalid)
  //   t2: 1 1 0 0 0   (#5 -> 1, #6 -> 0)
  //   t3: 0 0 0 0 0
  assert.deepEqual(m.confusion, [
    [2, 0, 0, 0, 1],
    [1, 1, 0, 0, 1],
    [1, 1, 0, 0, 0],
    [0, 0, 0, 0, 0],
  ]);
  assert.equal(m.invalid, 2);
  // correct = 2 + 1 = 3 of 8
  close(m.accuracy, 3 / 8, 'accuracy');
  // class 0: tp 2, fp 2 (from t1, t2), fn 1 (the invalid) -> P 1/2, R 2/3, F1 4/7
  // class 1: tp 1, fp 1 (from t2), fn 2 (one -> 0, one invalid) -> P 1/2, R 1/3, F1 2/(2+1+2) = 2/5
  // class 2: never predicted: tp 0, fp 0, fn 2 -> P 0 (0/0 -> 0), R 0, F1 0
  // class 3: no support, never predicted -> all 0
  // The invalid predictions add no false positive anywhere.
  assert.deepEqual(
    m.perClass.map((c) => c.support),
    [3, 3, 2, 0],
  );
  close(m.perClass[0]!.precision, 0.5, 'P0');
  close(m.perClass[0]!.recall, 2 / 3, 'R0');
  close(m.perClass[0]!.f1, 4 / 7, 'F0');
  close(m.perClass[1]!.precision, 0.5, 'P1');
  close(m.perClass[1]!.recall, 1 / 3, 'R1');
  close(m.perClass[1]!.f1, 0.4, 'F1');
  for (const c of [2, 3]) {
    assert.equal(m.perClass[c]!.precision, 0);
    assert.equal(m.perClass[c]!.recall, 0);
    assert.equal(m.perClass[c]!.f1, 0);
  }
  // macro over all 4 classes = (4/7 + 2/5 + 0 + 0) / 4 = 0.242857142857...
  close(m.macroF1, 0.24285714285714285, 'macro');
  // weighted = (4/7*3 + 2/5*3 + 0*2 + 0*0) / 8 = (1.714285714... + 1.2) / 8 = 0.364285714285...
  close(m.weightedF1, 0.36428571428571427, 'weighted');
  // micro: tp 3, fp 2 + 1 = 3, fn 1 + 2 + 2 = 5 -> 6 / (6 + 3 + 5) = 3/7 (> accuracy 3/8, since 2 predictions
  // are not false positives of any class)
  close(m.microF1, 3 / 7, 'micro');
});

test('all correct, all invalid', () => {
  const perfect = classificationMetrics([1, 0, 1], [1, 0, 1], 2);
  assert.equal(perfect.accuracy, 1);
  assert.equal(perfect.macroF1, 1);
  assert.equal(perfect.microF1, 1);
  assert.equal(perfect.weightedF1, 1);

  const none = classificationMetrics([1, 0, 1], [-1, -1, -1], 2);
  assert.equal(none.accuracy, 0);
  assert.equal(none.macroF1, 0);
  assert.equal(none.microF1, 0);
  assert.equal(none.weightedF1, 0);
  assert.deepEqual(none.confusion, [
    [0, 0, 1],
    [0, 0, 2],
  ]);
});

test('rejects malformed input', () => {
  assert.throws(() => classificationMetrics([0, 1], [0], 2), RangeError);
  assert.throws(() => classificationMetrics([], [], 2), RangeError);
  assert.throws(() => classificationMetrics([2], [0], 2), /true label #0 is 2/);
  assert.throws(() => classificationMetrics([0], [-2], 2), /prediction #0 is -2/);
  assert.throws(() => classificationMetrics([0], [0.5], 2), RangeError);
  assert.throws(() => classificationMetrics([0], [0], 0), RangeError);
});

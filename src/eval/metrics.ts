/** Prediction value meaning "the model's output is not any class" (e.g. generated text that maps to no label). */
export const INVALID_PREDICTION = -1;

export interface ClassMetrics {
  precision: number;
  recall: number;
  f1: number;
  /** Number of examples whose true label is this class. */
  support: number;
}

export interface ClassificationMetrics {
  accuracy: number;
  macroF1: number;
  microF1: number;
  weightedF1: number;
  perClass: ClassMetrics[];
  /**
   * `confusion[t][p]` counts examples with true class `t` predicted as `p`. When any prediction is invalid the rows
   * have one extra last column (index `numClasses`) counting the invalid predictions of that true class.
   */
  confusion: number[][];
  /** Number of invalid predictions (-1). */
  invalid: number;
}

/**
 * Accuracy, F1 scores and the confusion matrix, with the semantics of scikit-learn's `accuracy_score` and
 * `f1_score(y_true, y_pred, labels=range(numClasses), average=..., zero_division=0)`:
 *
 * - Every class `0..numClasses-1` takes part in the averages, including classes that never occur in `yTrue` or
 *   `yPred` (their F1 is 0 and they pull the macro average down; their weight in the weighted average is 0).
 * - A ratio whose denominator is 0 counts as 0 (a class never predicted has precision 0).
 * - A prediction of -1 (invalid output) is wrong and belongs to no class: it is a false negative of the true class
 *   and a false positive of none. Hence with invalid predictions micro precision (correct / valid predictions) is
 *   above micro recall (= accuracy) and micro F1 = 2·correct / (2·n − invalid) is above accuracy; without them
 *   micro F1 equals accuracy.
 */
export function classificationMetrics(yTrue: number[], yPred: number[], numClasses: number): ClassificationMetrics {
  if (!Number.isInteger(numClasses) || numClasses < 1) {
    throw new RangeError(`classificationMetrics: numClasses must be a positive integer, got ${numClasses}`);
  }
  if (yTrue.length !== yPred.length) {
    throw new RangeError(`classificationMetrics: ${yTrue.length} true labels but ${yPred.length} predictions`);
  }
  const n = yTrue.length;
  if (n === 0) throw new RangeError('classificationMetrics: no examples');

  const confusion = Array.from({ length: numClasses }, () => new Array<number>(numClasses + 1).fill(0));
  let invalid = 0;
  for (let i = 0; i < n; i++) {
    const t = yTrue[i]!;
    const p = yPred[i]!;
    if (!Number.isInteger(t) || t < 0 || t >= numClasses) {
      throw new RangeError(`classificationMetrics: true label #${i} is ${t}, expected an integer in 0..${numClasses - 1}`);
    }
    if (!Number.isInteger(p) || p < INVALID_PREDICTION || p >= numClasses) {
      throw new RangeError(`classificationMetrics: prediction #${i} is ${p}, expected an integer in 0..${numClasses - 1} or -1 (invalid)`);
    }
    if (p === INVALID_PREDICTION) {
      confusion[t]![numClasses]!++;
      invalid++;
    } else {
      confusion[t]![p]!++;
    }
  }

  const div = (a: number, b: number): number => (b === 0 ? 0 : a / b);
  const perClass: ClassMetrics[] = [];
  let tpSum = 0;
  let fpSum = 0;
  let fnSum = 0;
  for (let c = 0; c < numClasses; c++) {
    const tp = confusion[c]![c]!;
    let support = 0;
    for (let p = 0; p <= numClasses; p++) support += confusion[c]![p]!;
    let predicted = 0;
    for (let t = 0; t < numClasses; t++) predicted += confusion[t]![c]!;
    const fp = predicted - tp;
    const fn = support - tp;
    tpSum += tp;
    fpSum += fp;
    fnSum += fn;
    perClass.push({
      precision: div(tp, tp + fp),
      recall: div(tp, tp + fn),
      // As scikit-learn >= 1.3 computes it: from the counts, so an undefined precision or recall does not leak in.
      f1: div(2 * tp, 2 * tp + fp + fn),
      support,
    });
  }

  const macroF1 = perClass.reduce((s, m) => s + m.f1, 0) / numClasses;
  const weightedF1 = div(
    perClass.reduce((s, m) => s + m.f1 * m.support, 0),
    n,
  );
  const microF1 = div(2 * tpSum, 2 * tpSum + fpSum + fnSum);

  return {
    accuracy: tpSum / n,
    macroF1,
    microF1,
    weightedF1,
    perClass,
    confusion: invalid > 0 ? confusion : confusion.map((row) => row.slice(0, numClasses)),
    invalid,
  };
}

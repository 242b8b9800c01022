import type { Rng } from '../random.js';

/** The integers 0..n-1 in uniformly random order. */
export function randomPermutation(n: number, rng: Rng): number[] {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`randomPermutation: n must be a non-negative integer, got ${n}`);
  return rng.shuffle(Array.from({ length: n }, (_, i) => i));
}

/**
 * `numSamples` indices into `labels`, drawn independently WITH replacement, index i with probability proportional
 * to 1 / (number of examples with label labels[i]): the distribution of torch's
 * `WeightedRandomSampler(weights, numSamples, replacement=True)` with class-balancing weights. Every class present
 * is then drawn equally often on average, rare examples repeat within an epoch, and frequent ones are skipped.
 *
 * Drawn as: a class uniformly among the distinct labels, then an example uniformly within it (the same
 * distribution, without floating-point cumulative weights).
 */
export function weightedRandomSampler(labels: number[], rng: Rng, numSamples = labels.length): number[] {
  if (!Number.isInteger(numSamples) || numSamples < 0) {
    throw new RangeError(`weightedRandomSampler: numSamples must be a non-negative integer, got ${numSamples}`);
  }
  if (numSamples === 0) return [];
  if (labels.length === 0) throw new RangeError('weightedRandomSampler: no labels to sample from');
  const byClass = new Map<number, number[]>();
  labels.forEach((label, i) => {
    if (!Number.isInteger(label)) throw new RangeError(`weightedRandomSampler: label #${i} is ${label}, expected an integer`);
    const members = byClass.get(label);
    if (members) members.push(i);
    else byClass.set(label, [i]);
  });
  // Classes in ascending label order, so the draws depend only on the labels and the generator.
  const classes = [...byClass.keys()].sort((a, b) => a - b).map((c) => byClass.get(c)!);
  const out = new Array<number>(numSamples);
  for (let k = 0; k < numSamples; k++) {
    const members = classes[rng.int(classes.length)]!;
    out[k] = members[rng.int(members.length)]!;
  }
  return out;
}

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng, type RngState } from '../src/random.js';
import { randomPermutation, weightedRandomSampler } from '../src/train/sampler.js';

// Pearson chi-square statistic of observed counts against equal expected counts.
function chiSquareUniform(counts: number[]): number {
  const total = counts.reduce((a, b) => a + b, 0);
  const expected = total / counts.length;
  return counts.reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
}

// Upper 0.1% points of the chi-square distribution (standard tables): a correct generator fails one of these
// checks with probability 0.001; the seeds are fixed, so the tests are deterministic anyway.
const CHI2_999 = { 2: 13.816, 5: 20.515, 9: 27.877, 23: 49.728 } as const;

test('xoshiro128** reproduces the reference output', () => {
  // Outputs of Vigna's xoshiro128starstar.c from state {1, 2, 3, 4} (the test vector of Rust's rand_xoshiro).
  const rng = Rng.fromState({ algorithm: 'xoshiro128**', s: [1, 2, 3, 4] });
  const got = Array.from({ length: 10 }, () => rng.nextUint32());
  assert.deepEqual(got, [11520, 0, 5927040, 70819200, 2031721883, 1637235492, 1287239034, 3734860849, 3729100597, 4258142804]);
});

test('same seed, same sequence; different seeds differ', () => {
  const draw = (rng: Rng) => [rng.next(), rng.int(1000), rng.next(), rng.shuffle([1, 2, 3, 4, 5, 6, 7, 8])];
  assert.deepEqual(draw(new Rng(42)), draw(new Rng(42)));
  assert.notDeepEqual(draw(new Rng(42)), draw(new Rng(43)));
  assert.notDeepEqual(draw(new Rng(1)), draw(new Rng(1 + 2 ** 32))); // high bits of the seed count too
  assert.deepEqual(randomPermutation(50, new Rng(7)), randomPermutation(50, new Rng(7)));
  assert.deepEqual(weightedRandomSampler([0, 0, 0, 1], new Rng(7), 20), weightedRandomSampler([0, 0, 0, 1], new Rng(7), 20));
});

test('a saved state (through JSON) continues the sequence exactly', () => {
  const a = new Rng(2024);
  for (let i = 0; i < 37; i++) a.next();
  a.int(7);
  const saved = JSON.parse(JSON.stringify(a.getState())) as RngState;
  const continued = [a.next(), a.int(10), ...randomPermutation(20, a), ...weightedRandomSampler([0, 1, 1, 2], a, 30)];

  const b = new Rng(1); // a different seed: setState must replace everything
  b.setState(saved);
  const resumed = [b.next(), b.int(10), ...randomPermutation(20, b), ...weightedRandomSampler([0, 1, 1, 2], b, 30)];
  assert.deepEqual(resumed, continued);
  assert.deepEqual(Rng.fromState(saved).nextUint32(), Rng.fromState(saved).nextUint32());

  assert.throws(() => b.setState({ algorithm: 'xoshiro128**', s: [0, 0, 0, 0] }), RangeError);
  assert.throws(() => b.setState({ algorithm: 'xoshiro128**', s: [1, 2, 3, 2 ** 32] }), RangeError);
  assert.throws(() => b.setState({ algorithm: 'mt19937', s: [1, 2, 3, 4] } as unknown as RngState), RangeError);
});

test('next() and int() are uniform', () => {
  const rng = new Rng(99);
  const N = 100_000;
  let sum = 0;
  for (let i = 0; i < N; i++) {
    const x = rng.next();
    assert.ok(x >= 0 && x < 1);
    sum += x;
  }
  // Mean of N uniforms: sd = sqrt(1/12 / N) = 0.00091; allow 5 sd.
  assert.ok(Math.abs(sum / N - 0.5) < 5 * Math.sqrt(1 / 12 / N), `mean ${sum / N}`);

  const counts = new Array(6).fill(0);
  for (let i = 0; i < 60_000; i++) counts[rng.int(6)]++;
  assert.ok(chiSquareUniform(counts) < CHI2_999[5], `int(6) counts ${counts}`);

  assert.equal(rng.int(1), 0);
  const big = rng.int(2 ** 32);
  assert.ok(Number.isInteger(big) && big >= 0 && big < 2 ** 32);
  for (const bad of [0, -1, 2.5, 2 ** 32 + 1, NaN]) assert.throws(() => rng.int(bad), RangeError);
  assert.throws(() => new Rng(-1), RangeError);
  assert.throws(() => new Rng(1.5), RangeError);
});

test('randomPermutation is a permutation and all orders are equally likely', () => {
  const rng = new Rng(5);
  const p = randomPermutation(1000, rng);
  assert.deepEqual([...p].sort((a, b) => a - b), Array.from({ length: 1000 }, (_, i) => i));
  assert.deepEqual(randomPermutation(0, rng), []);

  // n = 4: 24 orders, 24 000 draws, 1000 expected each; chi-square with 23 degrees of freedom.
  const counts = new Map<string, number>();
  for (let i = 0; i < 24_000; i++) {
    const key = randomPermutation(4, rng).join('');
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  assert.equal(counts.size, 24);
  assert.ok(chiSquareUniform([...counts.values()]) < CHI2_999[23], `permutation counts ${[...counts.values()]}`);
});

test('weightedRandomSampler balances an imbalanced label list, with replacement', () => {
  // 1000 / 100 / 10 examples of classes 0 / 1 / 2 (interleaved, so indices do not reveal the class).
  const labels: number[] = [];
  for (let i = 0; i < 1000; i++) labels.push(0);
  for (let i = 0; i < 100; i++) labels.splice(i * 10 + 3, 0, 1);
  for (let i = 0; i < 10; i++) labels.splice(i * 100 + 7, 0, 2);
  assert.equal(labels.length, 1110);
  const rare = labels.flatMap((l, i) => (l === 2 ? [i] : []));
  assert.equal(rare.length, 10);

  const rng = new Rng(123);
  const epochs = 20;
  const classCounts = [0, 0, 0];
  const rareCounts = new Map<number, number>(rare.map((i) => [i, 0]));
  for (let e = 0; e < epochs; e++) {
    const idx = weightedRandomSampler(labels, rng);
    assert.equal(idx.length, labels.length); // default: one epoch = len(labels) draws
    const epochCounts = [0, 0, 0];
    for (const i of idx) {
      assert.ok(Number.isInteger(i) && i >= 0 && i < labels.length);
      epochCounts[labels[i]!]!++;
      if (labels[i] === 2) rareCounts.set(i, rareCounts.get(i)! + 1);
    }
    // Per epoch each class count is Binomial(1110, 1/3): sd = sqrt(1110 * 1/3 * 2/3) = 15.7; allow 5 sd (78).
    for (const c of epochCounts) assert.ok(Math.abs(c - 370) < 5 * 15.71, `epoch ${e} class counts ${epochCounts}`);
    epochCounts.forEach((c, k) => (classCounts[k]! += c));
    if (e === 0) {
      // With replacement: ~370 draws over 10 rare examples, so they repeat (each ~37 times, P(<2) is negligible).
      for (const i of rare) assert.ok(idx.filter((j) => j === i).length >= 2, `rare example ${i} not repeated`);
    }
  }
  // Over 20 epochs (22 200 draws): fraction sd = sqrt((1/3)(2/3) / 22200) = 0.00316; allow 5 sd.
  const total = epochs * labels.length;
  for (const c of classCounts) assert.ok(Math.abs(c / total - 1 / 3) < 5 * 0.00316, `class counts ${classCounts}`);
  assert.ok(chiSquareUniform(classCounts) < CHI2_999[2], `class counts ${classCounts}`);
  // Within the rare class every example is equally likely (chi-square, 9 degrees of freedom).
  assert.ok(chiSquareUniform([...rareCounts.values()]) < CHI2_999[9], `rare counts ${[...rareCounts.values()]}`);

  assert.deepEqual(weightedRandomSampler(labels, rng, 0), []);
  assert.equal(weightedRandomSampler(labels, rng, 5000).length, 5000);
  assert.deepEqual(weightedRandomSampler([4], rng, 3), [0, 0, 0]);
  assert.throws(() => weightedRandomSampler([], rng, 3), RangeError);
  assert.throws(() => weightedRandomSampler([0, 0.5], rng), RangeError);
});

/**
 * Span corruption against HF's definitions: the lengths table below was computed with
 * `compute_input_and_target_lengths` of HF's examples/flax/language-modeling/run_t5_mlm_flax.py (Python rounding),
 * as [noise density, mean span length, [[input length, raw tokens, target length], …]].
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  corruptSpans,
  packSequences,
  randomSpansNoiseMask,
  roundHalfEven,
  spanCorruptionLengths,
  T5_SPAN_CORRUPTION,
} from '../src/data/span_corruption.js';
import { Rng } from '../src/random.js';

const HF_LENGTHS: [number, number, [number, number, number][]][] = [
  [0.15, 1, [[8, 8, 3], [16, 16, 5], [30, 30, 9], [32, 32, 11], [64, 64, 21], [100, 100, 31], [128, 128, 39], [256, 256, 77], [512, 512, 155]]],
  [0.15, 2, [[8, 8, 2], [16, 16, 4], [30, 32, 8], [32, 34, 8], [64, 68, 16], [100, 107, 25], [128, 138, 32], [256, 276, 62], [512, 552, 126]]],
  [0.15, 3, [[8, 8, 2], [16, 17, 5], [30, 32, 8], [32, 34, 8], [64, 70, 14], [100, 110, 22], [128, 141, 29], [256, 284, 58], [512, 568, 114]]],
  [0.15, 5, [[8, 8, 2], [16, 17, 5], [30, 33, 7], [32, 35, 7], [64, 72, 14], [100, 113, 21], [128, 145, 27], [256, 290, 54], [512, 581, 105]]],
  [0.3, 1, [[8, 8, 5], [16, 16, 11], [30, 30, 19], [32, 32, 21], [64, 64, 39], [100, 100, 61], [128, 128, 77], [256, 256, 155], [512, 512, 309]]],
  [0.3, 2, [[8, 8, 4], [16, 18, 8], [30, 34, 16], [32, 36, 18], [64, 74, 34], [100, 116, 54], [128, 150, 68], [256, 300, 136], [512, 602, 272]]],
  [0.3, 3, [[8, 9, 5], [16, 19, 9], [30, 36, 16], [32, 39, 17], [64, 79, 33], [100, 124, 50], [128, 159, 65], [256, 319, 129], [512, 639, 257]]],
  [0.3, 5, [[8, 9, 5], [16, 20, 8], [30, 39, 15], [32, 41, 15], [64, 83, 31], [100, 130, 48], [128, 167, 61], [256, 336, 122], [512, 673, 243]]],
  [0.5, 1, [[8, 8, 9], [16, 16, 17], [30, 30, 31], [32, 32, 33], [64, 64, 65], [100, 100, 101], [128, 128, 129], [256, 256, 257], [512, 512, 513]]],
  [0.5, 2, [[8, 10, 8], [16, 20, 16], [30, 38, 30], [32, 42, 32], [64, 84, 64], [100, 132, 100], [128, 170, 128], [256, 340, 256], [512, 682, 512]]],
  [0.5, 3, [[8, 10, 8], [16, 22, 16], [30, 44, 30], [32, 46, 32], [64, 94, 64], [100, 148, 100], [128, 190, 128], [256, 382, 256], [512, 766, 512]]],
  [0.5, 5, [[8, 12, 8], [16, 25, 15], [30, 48, 30], [32, 52, 32], [64, 105, 63], [100, 165, 99], [128, 212, 128], [256, 425, 255], [512, 852, 512]]],
];

test('spanCorruptionLengths equals HF compute_input_and_target_lengths over 108 settings', () => {
  for (const [noiseDensity, meanNoiseSpanLength, rows] of HF_LENGTHS) {
    for (const [input, raw, target] of rows) {
      assert.deepEqual(spanCorruptionLengths(input, { noiseDensity, meanNoiseSpanLength }), { rawLength: raw, targetLength: target }, `${input} ${noiseDensity} ${meanNoiseSpanLength}`);
    }
  }
});

test('roundHalfEven rounds ties to even as Python does', () => {
  assert.deepEqual([0.5, 1.5, 2.5, 4.5, -0.5, -1.5, 2.4, 2.6, 3].map(roundHalfEven), [0, 2, 2, 4, -0, -2, 2, 3, 3]);
});

/** The runs of a mask as [value, length] pairs. */
function runs(mask: Uint8Array): [number, number][] {
  const out: [number, number][] = [];
  for (const v of mask) {
    const last = out[out.length - 1];
    if (last && last[0] === v) last[1]++;
    else out.push([v, 1]);
  }
  return out;
}

test('randomSpansNoiseMask: exact noise and span counts, starts with non-noise, ends with noise, varies, repeats per seed', () => {
  const rng = new Rng(7);
  const seen = new Set<string>();
  const noiseAt = new Float64Array(70);
  for (let i = 0; i < 400; i++) {
    const mask = randomSpansNoiseMask(70, T5_SPAN_CORRUPTION, rng);
    const r = runs(mask);
    // 70 tokens: round(10.5) = 10 noise tokens (ties to even) in round(10 / 3) = 3 spans.
    assert.equal(mask.reduce((a, b) => a + b, 0), 10);
    assert.equal(r.length, 6);
    assert.equal(r[0]![0], 0);
    assert.equal(r[r.length - 1]![0], 1);
    seen.add(mask.join(''));
    mask.forEach((v, j) => (noiseAt[j] += v));
  }
  assert.ok(seen.size > 390, `${seen.size} distinct masks of 400`);
  // Every position but the first can be noise; the last is always noise (spans end the sequence).
  assert.equal(noiseAt[0], 0);
  assert.equal(noiseAt[69], 400);
  assert.ok(noiseAt.slice(1, 69).every((n) => n > 0));
  const a = randomSpansNoiseMask(568, T5_SPAN_CORRUPTION, new Rng(3));
  const b = randomSpansNoiseMask(568, T5_SPAN_CORRUPTION, new Rng(3));
  assert.deepEqual(a, b);
  assert.equal(a.reduce((x, y) => x + y, 0), 85);
  assert.equal(runs(a).length, 2 * 28);
});

test('corruptSpans: sentinels in order in the input, each followed by its span in the target, both ending in EOS', () => {
  const tokens = [10, 11, 12, 13, 14, 15, 16, 17];
  const mask = Uint8Array.from([0, 1, 1, 0, 0, 1, 0, 1]);
  const sentinel = (k: number) => 99 - k;
  assert.deepEqual(corruptSpans(tokens, mask, sentinel, 1), {
    inputIds: [10, 99, 13, 14, 98, 16, 97, 1],
    labels: [99, 11, 12, 98, 15, 97, 17, 1],
  });
});

test('a packed row corrupts to exactly the input and target lengths HF computes', () => {
  const rng = new Rng(11);
  for (const inputLength of [16, 64, 128, 512]) {
    const { rawLength, targetLength } = spanCorruptionLengths(inputLength, T5_SPAN_CORRUPTION);
    const texts = Array.from({ length: 40 }, (_, t) => [...Array.from({ length: 5 + ((t * 7) % 50) }, (_, i) => 100 + t * 60 + i), 1]);
    const rows = packSequences(texts, rawLength);
    const total = texts.reduce((n, t) => n + t.length, 0);
    assert.equal(rows.length, Math.floor(total / rawLength));
    assert.deepEqual(rows.flat(), texts.flat().slice(0, rows.length * rawLength));
    for (const row of rows) {
      const ex = corruptSpans(row, randomSpansNoiseMask(rawLength, T5_SPAN_CORRUPTION, rng), (k) => 32099 - k, 1);
      assert.equal(ex.inputIds.length, inputLength);
      assert.equal(ex.labels.length, targetLength);
    }
  }
});

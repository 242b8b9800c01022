/**
 * T5's span-corruption objective (Raffel et al. 2020, §3.1.4), as HF's `run_t5_mlm_flax.py` and T5's
 * `random_spans_helper` define it:
 *
 * - texts are tokenized with EOS, concatenated and cut into sequences of `rawLength` tokens, chosen so that after
 *   corruption every input has exactly `inputLength` tokens and every target `targetLength` (both ending in EOS);
 * - in each sequence round(rawLength × noiseDensity) tokens are noise, in round(noise / meanNoiseSpanLength) spans;
 *   spans alternate non-noise, noise, non-noise, …, starting with non-noise, all such masks equally likely;
 * - the input keeps the non-noise tokens and replaces noise span k by the sentinel `<extra_id_k>`; the target is
 *   each sentinel followed by the span it replaced, then EOS.
 *
 * Rounding is half-to-even, as numpy's and Python's `round` are, so lengths equal HF's for every setting.
 */
import type { Rng } from '../random.js';

export interface SpanCorruptionOptions {
  /** Share of tokens that are noise (T5: 0.15). */
  noiseDensity: number;
  /** Mean length of a noise span (T5: 3). */
  meanNoiseSpanLength: number;
}

export const T5_SPAN_CORRUPTION: SpanCorruptionOptions = { noiseDensity: 0.15, meanNoiseSpanLength: 3 };

/** Rounds to the nearest integer, ties to even (Python's `round`, numpy's `np.round`). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function corruptedLengths(rawLength: number, o: SpanCorruptionOptions): { input: number; target: number } {
  const noise = roundHalfEven(rawLength * o.noiseDensity);
  const spans = roundHalfEven(noise / o.meanNoiseSpanLength);
  return { input: rawLength - noise + spans + 1, target: noise + spans + 1 };
}

/**
 * The raw token count of a sequence whose corrupted input has `inputLength` tokens, and the target length that
 * comes with it (HF's `compute_input_and_target_lengths`; 512 → 568 raw tokens, 114 target tokens).
 */
export function spanCorruptionLengths(inputLength: number, o: SpanCorruptionOptions): { rawLength: number; targetLength: number } {
  let rawLength = inputLength;
  while (corruptedLengths(rawLength + 1, o).input <= inputLength) rawLength++;
  let targetLength = corruptedLengths(rawLength, o).target;
  // As T5 does: with density 0.5, trim one token so that targets are no longer than inputs.
  if (o.noiseDensity === 0.5 && targetLength > corruptedLengths(rawLength, o).input) {
    rawLength--;
    targetLength--;
  }
  return { rawLength, targetLength };
}

/** `items` split at random into `segments` non-empty runs (all splits equally likely); their lengths in order. */
function randomSegmentation(items: number, segments: number, rng: Rng): number[] {
  // Choose segments - 1 of the items - 1 gaps between items as cuts (a partial Fisher-Yates shuffle).
  const gaps = Array.from({ length: items - 1 }, (_, i) => i);
  for (let i = 0; i < segments - 1; i++) {
    const j = i + rng.int(gaps.length - i);
    [gaps[i], gaps[j]] = [gaps[j]!, gaps[i]!];
  }
  const cuts = gaps.slice(0, segments - 1).sort((a, b) => a - b);
  const lengths: number[] = [];
  let start = 0;
  for (const c of cuts) {
    lengths.push(c + 1 - start);
    start = c + 1;
  }
  lengths.push(items - start);
  return lengths;
}

/** A noise mask of `length` tokens (1 = noise) as T5's `random_spans_noise_mask` draws it. */
export function randomSpansNoiseMask(length: number, o: SpanCorruptionOptions, rng: Rng): Uint8Array {
  if (length < 2) throw new RangeError(`span corruption needs at least 2 tokens, got ${length}`);
  const noise = Math.min(Math.max(roundHalfEven(length * o.noiseDensity), 1), length - 1);
  const spans = Math.max(roundHalfEven(noise / o.meanNoiseSpanLength), 1);
  const noiseLengths = randomSegmentation(noise, spans, rng);
  const keepLengths = randomSegmentation(length - noise, spans, rng);
  const mask = new Uint8Array(length);
  let pos = 0;
  for (let s = 0; s < spans; s++) {
    pos += keepLengths[s]!;
    mask.fill(1, pos, pos + noiseLengths[s]!);
    pos += noiseLengths[s]!;
  }
  return mask;
}

export interface CorruptedExample {
  inputIds: number[];
  labels: number[];
}

/** Applies a noise mask: noise span k becomes `sentinel(k)` in the input; the target holds the spans. */
export function corruptSpans(
  tokens: readonly number[],
  mask: Uint8Array,
  sentinel: (k: number) => number,
  eosId: number,
): CorruptedExample {
  const inputIds: number[] = [];
  const labels: number[] = [];
  let span = -1;
  for (let i = 0; i < tokens.length; i++) {
    const startsSpan = mask[i] === 1 && (i === 0 || mask[i - 1] === 0);
    if (startsSpan) {
      span++;
      inputIds.push(sentinel(span));
      labels.push(sentinel(span));
    }
    (mask[i] === 1 ? labels : inputIds).push(tokens[i]!);
  }
  inputIds.push(eosId);
  labels.push(eosId);
  return { inputIds, labels };
}

/**
 * Token sequences (each text's ids ending in EOS) concatenated and cut into rows of `rawLength`; the remainder that
 * does not fill a row is left out, as HF does.
 */
export function packSequences(texts: readonly (readonly number[])[], rawLength: number): number[][] {
  const rows: number[][] = [];
  let row: number[] = [];
  for (const ids of texts) {
    for (const id of ids) {
      row.push(id);
      if (row.length === rawLength) {
        rows.push(row);
        row = [];
      }
    }
  }
  return rows;
}

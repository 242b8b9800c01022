/** Seeded random numbers, for every layer that draws them (data, span corruption, training order). */

/** The complete generator state; plain JSON, so it can be stored in a checkpoint and restored exactly. */
export interface RngState {
  algorithm: 'xoshiro128**';
  /** The four 32-bit state words, as unsigned integers; not all zero. */
  s: [number, number, number, number];
}

const TWO_POW_32 = 2 ** 32;

/**
 * Seeded pseudo-random generator: xoshiro128** 1.1 (Blackman & Vigna). A seed (a non-negative safe integer) is
 * expanded into the state with splitmix32 (golden-ratio increment, MurmurHash3 finalizer) over its low 32 bits,
 * XORed with a second such stream over its high bits when those are not zero.
 */
export class Rng {
  private s = new Uint32Array(4);

  constructor(seed: number) {
    if (!Number.isSafeInteger(seed) || seed < 0) {
      throw new RangeError(`Rng: seed must be a non-negative integer, got ${seed}`);
    }
    const lo = splitmix32(seed >>> 0);
    for (let i = 0; i < 4; i++) this.s[i] = lo();
    const hiBits = Math.floor(seed / TWO_POW_32);
    if (hiBits !== 0) {
      const hi = splitmix32(hiBits >>> 0);
      for (let i = 0; i < 4; i++) this.s[i] = this.s[i]! ^ hi();
    }
    if (this.s.every((w) => w === 0)) this.s[0] = 1;
  }

  static fromState(state: RngState): Rng {
    const rng = new Rng(0);
    rng.setState(state);
    return rng;
  }

  getState(): RngState {
    return { algorithm: 'xoshiro128**', s: [this.s[0]!, this.s[1]!, this.s[2]!, this.s[3]!] };
  }

  setState(state: RngState): void {
    const words = state?.s;
    if (
      state?.algorithm !== 'xoshiro128**' ||
      !Array.isArray(words) ||
      words.length !== 4 ||
      !words.every((w) => Number.isInteger(w) && w >= 0 && w < TWO_POW_32) ||
      words.every((w) => w === 0)
    ) {
      throw new RangeError('Rng.setState: expected { algorithm: "xoshiro128**", s: four uint32 words, not all zero }');
    }
    this.s.set(words);
  }

  /** The next raw 32-bit output, as an unsigned integer. */
  nextUint32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1]!, 5), 7), 9) >>> 0;
    const t = s[1]! << 9;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return result;
  }

  /** A float in [0, 1) with 53 random bits (two outputs). */
  next(): number {
    const a = this.nextUint32() >>> 5; // 27 bits
    const b = this.nextUint32() >>> 6; // 26 bits
    return (a * 67108864 + b) / 9007199254740992;
  }

  /** A uniform integer in [0, n), without modulo bias; `n` is an integer in 1..2^32. */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > TWO_POW_32) {
      throw new RangeError(`Rng.int: n must be an integer in 1..2^32, got ${n}`);
    }
    // Draws at or above the largest multiple of n are rejected so that every residue is equally likely.
    const limit = TWO_POW_32 - (TWO_POW_32 % n);
    let u: number;
    do u = this.nextUint32();
    while (u >= limit);
    return u % n;
  }

  /** Shuffles `arr` in place (Fisher–Yates) and returns it. */
  shuffle<T>(arr: T[]): T[] {
    for (let i = arr.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = arr[i]!;
      arr[i] = arr[j]!;
      arr[j] = tmp;
    }
    return arr;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

function splitmix32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
}

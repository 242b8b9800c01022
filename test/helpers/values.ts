/** Deterministic values in [-scale, scale) from a 32-bit LCG, so every backend and library sees identical inputs. */
export function values(n: number, seed: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = scale * (s / 2 ** 31 - 1);
  }
  return out;
}

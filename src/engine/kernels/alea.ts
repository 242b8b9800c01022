/**
 * Johannes Baagøe's Alea generator with his Mash seed hash, exactly as the `seedrandom` package (3.x) implements
 * `seedrandom.alea`, which tfjs's `randomUniform` draws from: the same seed gives the same stream of numbers in
 * [0, 1), so fused kernels can reproduce tfjs's random tensors without building them.
 */
export interface AleaState {
  s0: number;
  s1: number;
  s2: number;
  c: number;
}

/** The generator's state right after seeding (for loops that step it inline; see `alea` for one step). */
export function aleaState(seed: string): AleaState {
  let n = 0xefc8249d;
  const mash = (data: string): number => {
    for (let i = 0; i < data.length; i++) {
      n += data.charCodeAt(i);
      let h = 0.02519603282416938 * n;
      n = h >>> 0;
      h -= n;
      h *= n;
      n = h >>> 0;
      h -= n;
      n += h * 0x100000000;
    }
    return (n >>> 0) * 2.3283064365386963e-10;
  };
  const c = 1;
  let s0 = mash(' ');
  let s1 = mash(' ');
  let s2 = mash(' ');
  s0 -= mash(seed);
  if (s0 < 0) s0 += 1;
  s1 -= mash(seed);
  if (s1 < 0) s1 += 1;
  s2 -= mash(seed);
  if (s2 < 0) s2 += 1;
  return { s0, s1, s2, c };
}

export function alea(seed: string): () => number {
  const st = aleaState(seed);
  return () => {
    const t = 2091639 * st.s0 + st.c * 2.3283064365386963e-10;
    st.s0 = st.s1;
    st.s1 = st.s2;
    return (st.s2 = t - (st.c = t | 0));
  };
}

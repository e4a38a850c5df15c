/**
 * A seeded pseudo-random generator, so that a bootstrap interval is the same on every run:
 * sfc32 seeded through splitmix32 (C. Doty-Humphrey's PractRand, https://pracrand.sourceforge.net/:
 * sfc32 passes its tests to 2^60 bytes). `fill` writes many 32-bit draws at once: a call per
 * draw cost the bootstrap most of its time.
 */
export interface Random {
  /** One draw in [0, 1). */
  next(): number;
  /** Fills `out` with draws in [0, 2^32). */
  fill(out: Uint32Array): void;
}

export function seededRandom(seed: number): Random {
  let s = seed >>> 0;
  const splitmix = (): number => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  const state = Uint32Array.of(splitmix(), splitmix(), splitmix(), splitmix());
  const fill = (out: Uint32Array): void => {
    let a = state[0] as number;
    let b = state[1] as number;
    let c = state[2] as number;
    let d = state[3] as number;
    for (let i = 0; i < out.length; i++) {
      const t = (((a + b) | 0) + d) | 0;
      d = (d + 1) | 0;
      a = b ^ (b >>> 9);
      b = (c + (c << 3)) | 0;
      c = (c << 21) | (c >>> 11);
      c = (c + t) | 0;
      out[i] = t;
    }
    state[0] = a;
    state[1] = b;
    state[2] = c;
    state[3] = d;
  };
  const one = new Uint32Array(1);
  return {
    next() {
      fill(one);
      return (one[0] as number) / 4294967296;
    },
    fill,
  };
}

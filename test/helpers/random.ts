/**
 * A seeded pseudo-random number generator (mulberry32) for generated test cases: small, fast, and the same
 * sequence for the same seed, so a failure names a case that can be found again.
 *
 * @example
 * const next = seededRandom(12);
 * const n = Math.floor(next() * 10); // 0..9, the same every run
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

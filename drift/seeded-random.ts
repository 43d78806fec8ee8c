// Seeded randomness, so a computation that draws random numbers gives the same answer when run
// again on the same input (a retried activity, a benchmark, a test).

/** mulberry32: a small, well-mixed 32-bit PRNG; different seeds give independent streams. */
export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

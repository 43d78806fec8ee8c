// Seeded randomness for tests and benchmarks, so every run draws the same numbers.
export { mulberry32 } from '../../drift/seeded-random.ts';

/** Standard normal draws (Box-Muller) from a uniform source. */
export function gaussian(rand: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
}

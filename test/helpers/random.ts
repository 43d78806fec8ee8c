// Seeded randomness for tests and benchmarks, so every run draws the same numbers.
import { mulberry32 } from '../../drift/seeded-random.ts';

export { mulberry32 };

/** Standard normal draws (Box-Muller) from a uniform source. */
export function gaussian(rand: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
}

/**
 * `n` embeddings whose dimension j is normal with standard deviation `scale[j]` (seeded), each
 * passed through `change` (a drift to apply) before it is returned.
 */
export function scaledGaussianRows(scale: number[], n: number, seed: number, change: (v: number[]) => void = () => {}): number[][] {
  const g = gaussian(mulberry32(seed));
  return Array.from({ length: n }, () => {
    const v = scale.map((s) => g() * s);
    change(v);
    return v;
  });
}

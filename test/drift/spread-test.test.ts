// The spread test: its level under no drift, and its power on changes of spread that neither KS
// on the top components nor the classifier's single dimensions see (a direction mixing many
// low-variance dimensions, a new correlation between two of them).
import { describe, expect, it } from 'vitest';
import { fitPca, projectPca } from '../../drift/pca.ts';
import { driftReport } from '../../drift/report.ts';
import { rowMatrix } from '../../drift/row-matrix.ts';
import { spreadTest } from '../../drift/spread-test.ts';
import { gaussian, mulberry32 } from '../helpers/random.ts';

// Embeddings whose variance decays along the dimensions to a floor, as a detector's do: the
// low-variance dimensions have nearly equal variances.
const d = 48;
const scale = Array.from({ length: d }, (_, j) => Math.exp(-j / 6) + 0.05);
const window = (n: number, seed: number, change: (v: number[]) => void = () => {}) => {
  const g = gaussian(mulberry32(seed));
  return Array.from({ length: n }, () => {
    const v = scale.map((s) => g() * s);
    change(v);
    return v;
  });
};

/** The spread test as the report runs it: on the scores of the PCA fitted on both windows. */
async function pooledSpread(reference: number[][], current: number[][], permutations = 199) {
  const pooled = rowMatrix([...reference, ...current]);
  const pca = await fitPca(pooled);
  const scores = await projectPca(pca, pooled);
  const n = reference.length;
  return spreadTest(
    scores.map((c) => c.subarray(0, n)),
    scores.map((c) => c.subarray(n)),
    pca.explainedVariance,
    { permutations },
  );
}

// A unit direction spread over the 16 lowest-variance dimensions: no single dimension carries
// more than a small part of a change along it.
const direction = (() => {
  const g = gaussian(mulberry32(77));
  const u = scale.map((_, j) => (j >= 32 ? g() : 0));
  const norm = Math.hypot(...u);
  return u.map((x) => x / norm);
})();
const along = (v: number[]) => v.reduce((acc, x, j) => acc + x * direction[j], 0);

describe('spread test', () => {
  it('keeps its level: reference and window drawn alike, p < 0.05 about 5% of the time or less (windows of 50 and 200)', async () => {
    let below = 0;
    for (let t = 0; t < 100; t++) {
      const w = t % 2 ? 200 : 50;
      if ((await pooledSpread(window(200, 1000 + t), window(w, 5000 + t))).pvalue < 0.05) below++;
    }
    // Binomial(100, 0.05): 5 expected; 11 or more has probability below 0.012.
    expect(below).toBeLessThan(11);
  });

  it('finds a doubled variance along a direction mixed over many low-variance dimensions, which KS on the top components misses', async () => {
    // Larger windows than the defaults: at 200 against 200 such a direction is barely told from
    // the pooled axes' noise (bench/results/drift.md has the power at 200).
    const reference = window(1000, 1);
    const current = window(1000, 2, (v) => {
      const by = (Math.SQRT2 - 1) * along(v);
      for (let j = 0; j < d; j++) v[j] += by * direction[j];
    });
    const report = await driftReport({ reference, current });
    expect(report.spread.drifted).toBe(true);
    expect(report.drift).toBe(true);
    expect(report.spread.blocks[0].varianceRatio).toBeGreaterThan(1.5);
    expect(report.summary).toMatch(/the spread changed along (pooled axis|a direction in the plane of pooled axes) \d+( and \d+)? \(variance x\d/);
    expect(report.components.some((c) => c.drifted)).toBe(false);
  });

  it('finds two low-variance dimensions that start to move together (correlation 0 -> 0.8), each keeping its variance', async () => {
    const reference = window(200, 3);
    const current = window(200, 4, (v) => {
      const [za, zb] = [v[40] / scale[40], v[41] / scale[41]];
      v[41] = (0.8 * za + 0.6 * zb) * scale[41];
    });
    const report = await driftReport({ reference, current });
    expect(report.spread.drifted).toBe(true);
    // Along their difference the spread shrinks about fivefold.
    expect(Math.min(...report.spread.blocks.map((a) => a.varianceRatio))).toBeLessThan(0.5);
  });

  it('finds in the plane of two axes a change that neither axis shows alone', async () => {
    // Two pooled axes, uncorrelated over the pooled frames: the window moves along their sum, the
    // reference along their difference, each axis keeping unit variance in both windows.
    const g = gaussian(mulberry32(21));
    const correlated = (m: number, rho: number) => {
      const x = Float64Array.from({ length: m }, () => g());
      const y = x.map((v) => rho * v + Math.sqrt(1 - rho * rho) * g());
      return [x, y];
    };
    const reference = correlated(300, -0.8);
    const current = correlated(300, 0.8);
    const singles = await spreadTest(reference, current, [1, 1], { neighbours: 0, permutations: 199 });
    const planes = await spreadTest(reference, current, [1, 1], { neighbours: 1, permutations: 199 });
    expect(singles.pvalue).toBeGreaterThan(0.05);
    expect(planes.pvalue).toBeCloseTo(1 / 200, 12);
    // Along the sum the window spreads 1.8 and the reference 0.2: about nine times.
    expect(planes.blocks[0]).toMatchObject({ components: [1, 2] });
    expect(planes.blocks[0].varianceRatio).toBeGreaterThan(6);
  });

  it('gives the same answer when run again on the same windows (a retried check)', async () => {
    const reference = window(200, 5);
    const current = window(100, 6, (v) => (v[44] *= 1.3));
    const [a, b] = [await pooledSpread(reference, current, 499), await pooledSpread(reference, current, 499)];
    expect(b).toEqual(a);
  });

  it('loses nothing to a window without spread on an axis: the statistic is infinite and the p-value the smallest', async () => {
    const flat = [Float64Array.from({ length: 20 }, (_, i) => (i % 2 ? 1 : -1)), new Float64Array(20)];
    // Scores of pooled axes are uncorrelated over the pooled frames: the second axis's pattern is
    // orthogonal to the first's.
    const spread = [Float64Array.from({ length: 20 }, (_, i) => (i % 2 ? 1 : -1)), Float64Array.from({ length: 20 }, (_, i) => (i % 4 < 2 ? 1 : -1))];
    const result = await spreadTest(flat, spread, [1, 0.5], { permutations: 99 });
    expect(result.blocks[0]).toMatchObject({ components: [2], varianceRatio: Infinity });
    expect(result.pvalue).toBeCloseTo(1 / 100, 12);
  });
});

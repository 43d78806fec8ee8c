// The spread test: its level under no drift, and its power on changes of spread that neither KS
// on the top components nor the classifier's single dimensions see (a direction mixing many
// low-variance dimensions, a new correlation between two of them).
import { describe, expect, it } from 'vitest';
import { fitPca, projectPca } from '../../drift/pca.ts';
import { driftReport } from '../../drift/report.ts';
import { rowMatrix } from '../../drift/row-matrix.ts';
import { spreadTest } from '../../drift/spread-test.ts';
import { gaussian, mulberry32, scaledGaussianRows } from '../helpers/random.ts';

// Embeddings whose variance decays along the dimensions to a floor, as a detector's do: the
// low-variance dimensions have nearly equal variances.
const d = 48;
const scale = Array.from({ length: d }, (_, j) => Math.exp(-j / 6) + 0.05);
const window = (n: number, seed: number, change?: (v: number[]) => void) => scaledGaussianRows(scale, n, seed, change);

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
    // the pooled axes' noise.
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
    // Two axes, nearly uncorrelated over the pooled frames: the window moves along their sum, the
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

  it('does not take a shifted mean for a change of spread, with windows of different sizes', async () => {
    // Moments about the pooled mean would turn this mean shift into a variance ratio of about 0.5.
    const reference = window(200, 31);
    const current = window(1000, 32, (v) => (v[40] += 1.5 * scale[40]));
    const report = await driftReport({ reference, current });
    expect(report.spread.drifted).toBe(false);
    expect(report.spread.pvalue).toBeGreaterThan(0.05);
  });

  it('reports the variance ratio it finds, a reference smaller than the window and windows thinned to maxRows alike', async () => {
    const g = gaussian(mulberry32(41));
    const column = (m: number, sd: number) => Float64Array.from({ length: m }, () => sd * g());
    // Axis 1 three times as variable in the current window; axis 2 unchanged.
    const reference = [column(150, 1), column(150, 1)];
    const current = [column(600, Math.sqrt(3)), column(600, 1)];
    for (const maxRows of [2000, 100]) {
      const result = await spreadTest(reference, current, [2, 1], { permutations: 199, maxRows });
      expect(result.pvalue).toBeCloseTo(1 / 200, 12);
      expect(result.blocks[0].components).toContain(1);
      expect(result.blocks[0].varianceRatio).toBeGreaterThan(2.2);
      expect(result.blocks[0].varianceRatio).toBeLessThan(4.2);
    }
  });

  it("finds a plane's most changed direction as a scan over every direction of the plane does", async () => {
    const g = gaussian(mulberry32(51));
    const plane = (m: number, a: number, b: number, rho: number) => {
      const x = Array.from({ length: m }, () => g());
      return [x.map((v) => a * v + 0.3), x.map((v) => b * (rho * v + Math.sqrt(1 - rho * rho) * g()) - 0.2)];
    };
    const [ref, cur] = [plane(80, 1, 0.8, 0.1), plane(60, 1.3, 0.6, 0.7)];
    const result = await spreadTest(ref, cur, [1, 0.7], { neighbours: 1, permutations: 99, top: 3 });
    const pair = result.blocks.find((b) => b.components.length === 2)!;
    const variance = (xs: number[]) => {
      const m = xs.reduce((s, x) => s + x, 0) / xs.length;
      return xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - 1);
    };
    let extreme = 1;
    for (let t = 0; t < Math.PI; t += 1e-4) {
      const along = (w: number[][]) => w[0].map((x, i) => x * Math.cos(t) + w[1][i] * Math.sin(t));
      const r = variance(along(cur)) / variance(along(ref));
      extreme = Math.max(extreme, r, 1 / r);
    }
    expect(Math.max(pair.varianceRatio, 1 / pair.varianceRatio)).toBeCloseTo(extreme, 4);
  });

  it('gives p-values spread evenly under no drift (not only rarely small: a broken relabelling makes them all large)', async () => {
    const g = gaussian(mulberry32(61));
    const windowOf = (m: number) => [0, 1, 2].map((j) => Float64Array.from({ length: m }, () => (3 - j) * g()));
    const ps: number[] = [];
    for (let t = 0; t < 200; t++) ps.push((await spreadTest(windowOf(30), windowOf(20), [9, 4, 1], { permutations: 99, seed: t })).pvalue);
    const share = (cut: number) => ps.filter((p) => p <= cut).length / ps.length;
    // Binomial(200, q): these bands are about three standard deviations wide.
    expect(share(0.5)).toBeGreaterThan(0.39);
    expect(share(0.5)).toBeLessThan(0.61);
    expect(share(0.1)).toBeGreaterThan(0.03);
    expect(share(0.1)).toBeLessThan(0.17);
  });

  it('refuses a window with a non-finite value, naming where it is, instead of testing NaN', async () => {
    const current = window(50, 71);
    current[7][3] = Number.NaN;
    await expect(driftReport({ reference: window(50, 72), current })).rejects.toThrow(
      "the current window's embedding 7 holds a non-finite value (NaN) at dimension 3",
    );
  });

  it('gives the same answer when run again on the same windows (a retried check)', async () => {
    const reference = window(200, 5);
    const current = window(100, 6, (v) => (v[44] *= 1.3));
    const [a, b] = [await pooledSpread(reference, current, 499), await pooledSpread(reference, current, 499)];
    expect(b).toEqual(a);
  });

  it('loses nothing to a window without spread on an axis: the statistic is infinite and the p-value the smallest', async () => {
    const flat = [Float64Array.from({ length: 20 }, (_, i) => (i % 2 ? 1 : -1)), new Float64Array(20)];
    const spread = [Float64Array.from({ length: 20 }, (_, i) => (i % 2 ? 1 : -1)), Float64Array.from({ length: 20 }, (_, i) => (i % 4 < 2 ? 1 : -1))];
    const result = await spreadTest(flat, spread, [1, 0.5], { permutations: 99 });
    expect(result.blocks[0]).toMatchObject({ components: [2], varianceRatio: Infinity });
    expect(result.pvalue).toBeCloseTo(1 / 100, 12);
  });
});

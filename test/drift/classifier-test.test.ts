// The classifier two-sample test: its Mann-Whitney step against scipy, its level under no drift,
// and its power on shifts the KS-on-PCA family cannot see (off the top components).
import { describe, expect, it } from 'vitest';
import { classifierTest, mannWhitneyGreater } from '../../drift/classifier-test.ts';
import { driftReport } from '../../drift/report.ts';
import { gaussian, mulberry32, scaledGaussianRows } from '../helpers/random.ts';

const rel = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);

describe('Mann-Whitney U, one-sided', () => {
  it('matches scipy.stats.mannwhitneyu(b, a, alternative="greater", method="asymptotic"), ties included', () => {
    // scipy 1.17.1: U = 35.0, p = 0.0849954439735709.
    const small = mannWhitneyGreater([0.1, 0.4, 0.4, 0.9, 1.3, 2.0, 0.4, 0.7], [0.5, 1.1, 1.3, 2.5, 3.0, 0.4]);
    expect(small.auc).toBeCloseTo(35 / 48, 12);
    expect(rel(small.pvalue, 0.0849954439735709)).toBeLessThan(1e-6);
    // Two-decimal normal draws (many ties): seed 11, 300 and 120 values, the second shifted by
    // 0.3; scipy gives U = 20641.5, p = 0.009386251073645142.
    const g = gaussian(mulberry32(11));
    const a = Array.from({ length: 300 }, () => Math.round(g() * 100) / 100);
    const b = Array.from({ length: 120 }, () => Math.round((g() + 0.3) * 100) / 100);
    const large = mannWhitneyGreater(a, b);
    expect(large.auc).toBeCloseTo(20641.5 / (300 * 120), 12);
    expect(rel(large.pvalue, 0.009386251073645142)).toBeLessThan(1e-6);
  });
});

describe('classifier two-sample test', () => {
  // Embeddings whose variance decays along the dimensions, as a detector's do: the last
  // dimensions carry almost nothing, so the top principal components never look at them.
  const d = 48;
  const scale = Array.from({ length: d }, (_, j) => Math.exp(-j / 6));
  const window = (n: number, seed: number, change?: (v: number[]) => void) => scaledGaussianRows(scale, n, seed, change);
  const reference = window(2000, 1);

  it('keeps its level: over 30 windows of an unchanged stream, the report raises at most the rate alpha allows', async () => {
    let alarms = 0;
    let belowFivePercent = 0;
    for (let t = 0; t < 30; t++) {
      const current = window(200, 100 + t);
      const report = await driftReport({ reference: reference.slice(0, 400), current });
      if (report.drift) alarms++;
      if (report.classifier.pvalue < 0.05) belowFivePercent++;
    }
    // alpha 0.05 shared by the families: about 1.5 alarms expected; 5 or more would break the level.
    expect(alarms).toBeLessThan(5);
    expect(belowFivePercent).toBeLessThan(5);
  });

  it('keeps its level on small windows too: reference and window drawn alike, 200 times, p < 0.05 about 5% of the time or less', () => {
    // Held-out scores pooled over folds whose models learnt each other's chance differences
    // flagged about twice the nominal rate here; the two cross-fitted halves do not.
    let below = 0;
    for (let t = 0; t < 200; t++) if (classifierTest(window(200, 300 + t), window(50, 600 + t)).pvalue < 0.05) below++;
    // Binomial(200, 0.05): 10 expected, 17 or more has probability below 0.02.
    expect(below).toBeLessThan(17);
  });

  it('flags a one-standard-deviation mean shift along a low-variance dimension that KS on PCA misses, and names it', async () => {
    const current = window(300, 7, (v) => (v[40] += scale[40]));
    const report = await driftReport({ reference, current });
    expect(report.components.some((c) => c.drifted)).toBe(false);
    expect(report.classifier.drifted).toBe(true);
    expect(report.drift).toBe(true);
    expect(report.classifier.topFeatures[0]).toMatchObject({ dimension: 40, kind: 'mean' });
    expect(report.summary).toMatch(/a classifier tells the windows apart .* leaning on dim 40 mean/);
  });

  it('flags a doubled variance along a low-variance dimension as a change of spread', async () => {
    const current = window(300, 8, (v) => (v[40] *= Math.SQRT2));
    const result = classifierTest(reference, current);
    // Significant after the families' correction.
    expect(result.pvalue).toBeLessThan(0.05 / 4);
    expect(result.topFeatures[0]).toMatchObject({ dimension: 40, kind: 'spread' });
    expect((await driftReport({ reference, current })).components.some((c) => c.drifted)).toBe(false);
  });
});

// The drift statistics against their reference implementations (scipy.stats.ks_2samp with
// method='auto', sklearn.decomposition.PCA), on fixtures drift/fixtures/generate.py wrote.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { benjaminiHochberg, bonferroni } from '../../drift/corrections.ts';
import { ks2samp } from '../../drift/ks.ts';
import { fitPca, projectPca } from '../../drift/pca.ts';
import { driftReport } from '../../drift/report.ts';
import { rowMatrix } from '../../drift/row-matrix.ts';
import { gaussian, mulberry32 } from '../helpers/random.ts';

const fixture = JSON.parse(fs.readFileSync(path.join(import.meta.dirname, '../../drift/fixtures/scipy-reference.json'), 'utf8'));
const rel = (a: number, b: number) => (a === b ? 0 : Math.abs(a - b) / Math.max(Math.abs(b), 1e-300));

describe('two-sample KS test', () => {
  for (const c of fixture.ks as { name: string; a: number[]; b: number[]; statistic: number; pvalue: number }[]) {
    it(`matches scipy: ${c.name} (n=${c.a.length}, m=${c.b.length})`, () => {
      const r = ks2samp(c.a, c.b);
      expect(rel(r.statistic, c.statistic)).toBeLessThan(1e-6);
      expect(rel(r.pvalue, c.pvalue)).toBeLessThan(1e-6);
      expect(r.method).toBe(Math.max(c.a.length, c.b.length) <= 10_000 ? 'exact' : 'asymp');
    });
  }
});

describe('PCA', () => {
  it('explains variance as scikit-learn does', async () => {
    const { X, components, explained_variance, explained_variance_ratio } = fixture.pca;
    const model = await fitPca(rowMatrix(X), { components });
    model.explainedVariance.forEach((v, i) => expect(rel(v, explained_variance[i])).toBeLessThan(1e-6));
    model.explainedVarianceRatio.forEach((v, i) => expect(rel(v, explained_variance_ratio[i])).toBeLessThan(1e-6));
    expect((await fitPca(rowMatrix(X), { varianceTarget: explained_variance_ratio[0] + explained_variance_ratio[1] - 1e-9 })).components).toHaveLength(2);
  });

  it('projects rows onto unit axes whose scores have the explained variance, at sizes the fast paths split', async () => {
    // 9 components, 8,199 rows (two of onnxruntime's runs of 4,096 rows and a partial third),
    // a mean 3 times the spread: each projected column has the variance the fit reported.
    const rand = mulberry32(5);
    const rows = Array.from({ length: 8199 }, () => Array.from({ length: 13 }, (_, j) => (rand() - 0.5) * (j + 1) + 3));
    const model = await fitPca(rowMatrix(rows), { components: 9 });
    const scores = await projectPca(model, rowMatrix(rows));
    expect(scores).toHaveLength(9);
    scores.forEach((column, k) => {
      const naive = rows.map((r) => r.reduce((s, x, j) => s + (x - model.mean[j]) * model.components[k][j], 0));
      column.forEach((v, i) => expect(v).toBeCloseTo(naive[i], 10));
      const variance = column.reduce((s, v) => s + v * v, 0) / (rows.length - 1);
      expect(rel(variance, model.explainedVariance[k])).toBeLessThan(1e-9);
      expect(rel(Math.hypot(...model.components[k]), 1)).toBeLessThan(1e-12);
    });
  });
});

describe('corrections', () => {
  it('adjusts p-values by Bonferroni and Benjamini-Hochberg', () => {
    const p = [0.01, 0.04, 0.03, 0.2];
    expect(bonferroni(p)).toEqual([0.04, 0.16, 0.12, 0.8]);
    // BH: sorted 0.01, 0.03, 0.04, 0.2 -> 0.04, 0.0533, 0.0533, 0.2
    const bh = benjaminiHochberg(p);
    expect(bh[0]).toBeCloseTo(0.04, 12);
    expect(bh[1]).toBeCloseTo(0.16 / 3, 12);
    expect(bh[2]).toBeCloseTo(0.16 / 3, 12);
    expect(bh[3]).toBeCloseTo(0.2, 12);
  });
});

describe('drift report', () => {
  // Embeddings from a fixed random linear map of Gaussian factors; a shift moves one factor.
  function window(n: number, seed: number, shift = 0): number[][] {
    const gauss = gaussian(mulberry32(seed));
    const mix = Array.from({ length: 16 }, (_, i) => Array.from({ length: 6 }, (_, j) => Math.sin(i * 7 + j * 3 + 1)));
    return Array.from({ length: n }, () => {
      const f = Array.from({ length: 6 }, (_, j) => gauss() * (6 - j) + (j === 0 ? shift : 0));
      return mix.map((row) => row.reduce((acc, w, j) => acc + w * f[j], 0));
    });
  }

  it('flags a large shift, not an unchanged window, and not a tiny shift in a huge window', async () => {
    const reference = window(2000, 1);
    const shifted = await driftReport({ reference, current: window(200, 2, 4) });
    expect(shifted.drift).toBe(true);
    expect(shifted.components.some((c) => c.drifted)).toBe(true);
    expect((await driftReport({ reference, current: window(200, 3) })).drift).toBe(false);
    const tiny = await driftReport({ reference: window(9000, 4), current: window(9000, 5, 1.2) });
    expect(tiny.components.some((c) => c.significant)).toBe(true);
    expect(tiny.drift).toBe(false);
    expect(tiny.summary).toContain('below the minimum effect');
  });

  it('tests confidences and detections per frame in the same report', async () => {
    const reference = window(300, 6);
    const report = await driftReport({
      reference,
      current: window(100, 7),
      referenceScores: Array.from({ length: 500 }, (_, i) => 0.9 - (i % 10) / 100),
      currentScores: Array.from({ length: 200 }, (_, i) => 0.5 - (i % 10) / 100),
      referenceDetections: Array.from({ length: 300 }, (_, i) => 3 + (i % 3)),
      currentDetections: Array.from({ length: 100 }, (_, i) => 3 + (i % 3)),
    });
    expect(report.confidence?.drifted).toBe(true);
    expect(report.confidence?.currentMean).toBeLessThan(report.confidence!.referenceMean);
    expect(report.detectionsPerFrame?.drifted).toBe(false);
  });
});

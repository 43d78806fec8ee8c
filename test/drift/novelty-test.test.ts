// The novelty test: its null law against scipy, its level under no drift, and a new kind of scene
// in 5% of the window, which moves no distribution enough for KS or the classifier's AUC.
import { describe, expect, it } from 'vitest';
import { negativeHypergeometricTail, noveltyTest } from '../../drift/novelty-test.ts';
import { driftReport } from '../../drift/report.ts';
import { gaussian, mulberry32 } from '../helpers/random.ts';

describe('negative hypergeometric tail', () => {
  it('matches scipy.stats.nhypergeom(m + n, m, k).sf(x - 1)', () => {
    // scipy 1.17.1
    const cases: [number, number, number, number, number][] = [
      [5, 200, 200, 2, 0.10760836184753964],
      [12, 200, 200, 2, 0.0014801669493468284],
      [1, 50, 30, 1, 0.625],
      [30, 1000, 999, 10, 0.00048199846295504667],
      [3, 20, 7, 3, 0.9086956521739132],
    ];
    for (const [x, m, n, k, scipy] of cases) expect(Math.abs(negativeHypergeometricTail(x, m, n, k) - scipy) / scipy).toBeLessThan(1e-8);
    expect(negativeHypergeometricTail(0, 10, 10, 1)).toBe(1);
    expect(negativeHypergeometricTail(11, 10, 10, 1)).toBe(0);
  });
});

describe('novelty test', () => {
  const d = 32;
  const scale = Array.from({ length: d }, (_, j) => Math.exp(-j / 8));
  const frames = (n: number, seed: number, offset = 0) => {
    const g = gaussian(mulberry32(seed));
    return Array.from({ length: n }, () => scale.map((s, j) => g() * s + (j === 0 ? offset : 0)));
  };

  it('keeps its level: over 200 windows of an unchanged stream, p < 0.05 about 5% of the time or less', async () => {
    let below = 0;
    let flagged = 0;
    for (let t = 0; t < 200; t++) {
      const r = noveltyTest(frames(200, 1000 + t), frames(100, 5000 + t));
      if (r.pvalue < 0.05) below++;
      if ((await driftReport({ reference: frames(200, 1000 + t), current: frames(100, 5000 + t) })).novelty.drifted) flagged++;
    }
    // Binomial(200, 0.05): 10 expected, 17 or more has probability below 0.02.
    expect(below).toBeLessThan(17);
    expect(flagged).toBeLessThan(6);
  });

  it('is not fooled by a reference read from a stream, where consecutive frames are nearly the same picture', () => {
    // Each scene three times in a row, barely moved: against the other reference frames every
    // frame would find its twin, and every fresh frame would look novel.
    const g = gaussian(mulberry32(9));
    const reference = frames(150, 10).flatMap((f) => [0, 1, 2].map(() => f.map((x, j) => x + g() * 0.01 * scale[j])));
    let flagged = 0;
    for (let t = 0; t < 20; t++) if (noveltyTest(reference, frames(200, 20 + t)).pvalue < 0.05) flagged++;
    expect(flagged).toBeLessThan(4);
  });

  it('flags a new kind of scene in 5% of the window, names those frames, and the other families miss it', async () => {
    const reference = frames(400, 1);
    // 190 ordinary frames, then 10 from far off the reference's support.
    const current = [...frames(190, 2), ...frames(10, 3, 8)];
    const result = noveltyTest(reference, current);
    expect(result.pvalue).toBeLessThan(0.005);
    expect([...result.novelIndices].slice(0, 10).sort((a, b) => a - b)).toEqual(Array.from({ length: 10 }, (_, i) => 190 + i));
    const report = await driftReport({ reference, current });
    expect(report.novelty.drifted).toBe(true);
    expect(report.components.some((c) => c.drifted)).toBe(false);
    expect(report.classifier.drifted).toBe(false);
    expect(report.drift).toBe(true);
    expect(report.summary).toMatch(/\d+ of 200 frames are unlike every reference frame/);
  });
});

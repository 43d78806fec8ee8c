// Spread test: has the spread of the embeddings changed along some principal direction, beyond
// the top components the KS family tests? A variance change along a low-variance direction, or
// two dimensions that start to move together (a correlation from 0 to 0.8 between two equal-
// variance dimensions is a spread 1.8 times larger along their sum and 5 times smaller along
// their difference), leaves every mean where it was, so neither KS on the top components nor a
// classifier on single dimensions and their squares sees it.
//
// The directions are the principal axes of both windows pooled, every one of them. Pooled axes
// treat the two windows alike: which frames are called "reference" and which "current" does not
// change them, so under no drift the labels are exchangeable given the pooled frames, and a
// permutation test on the labels keeps its level exactly (axes fitted on the reference alone
// would follow its own noise, and any other sample would look narrower along them).
//
// Per axis the statistic is the log ratio of the two windows' mean squares (about the pooled
// mean), divided by its standard error under the axis's own kurtosis (a heavy-tailed axis has a
// noisier ratio, and would otherwise win the maximum by chance). The largest absolute statistic
// over the axes is compared with its distribution over random relabellings (Westfall and Young's
// max-T): one p-value for the family, corrected for the many axes while keeping their
// dependence, and per axis a p-value adjusted the same way.
//
// Written by hand: the permutation tests on npm test one variable, and this is a few loops over
// one matrix of squared scores. The relabellings come from a fixed seed, so a check run again on
// the same windows (an activity retry) gives the same answer.
import { mulberry32 } from './seeded-random.ts';

export interface SpreadTestOptions {
  /** Random relabellings of the pooled frames (the smallest p-value is 1 / (permutations + 1)). */
  permutations?: number;
  /** Axes whose variance is below this share of the largest are left out (numerically zero). */
  minVarianceShare?: number;
  seed?: number;
}

export interface SpreadAxis {
  /** 1-based rank of the pooled principal axis (largest variance first). */
  component: number;
  /** Current window's mean square along the axis over the reference's (2: twice the variance). */
  varianceRatio: number;
  /** Standardised log variance ratio. */
  statistic: number;
  /** Adjusted for testing every axis (max-T over relabellings). */
  adjustedP: number;
}

export interface SpreadTestResult {
  /** Family p-value: the adjusted p of the axis with the largest statistic. */
  pvalue: number;
  /** Axes tested. */
  tested: number;
  /** Axes sorted by adjusted p (then by statistic), at most `top`. */
  axes: SpreadAxis[];
}

/**
 * `reference[k]` and `current[k]` are the two windows' scores on pooled axis k (centred on the
 * pooled mean, as `projectPca` of a PCA fitted on both windows gives them); `variances[k]` is
 * that axis's pooled variance.
 */
export function spreadTest(
  reference: ArrayLike<number>[],
  current: ArrayLike<number>[],
  variances: ArrayLike<number>,
  opts: SpreadTestOptions & { top?: number } = {},
): SpreadTestResult {
  const { permutations = 999, minVarianceShare = 1e-9, seed = 0x5eed, top = 5 } = opts;
  const largest = Math.max(0, ...Array.from(variances));
  const axes = Array.from({ length: variances.length }, (_, k) => k).filter((k) => largest > 0 && variances[k] > largest * minVarianceShare);
  const nRef = reference[0]?.length ?? 0;
  const nCur = current[0]?.length ?? 0;
  const n = nRef + nCur;
  const k = axes.length;
  if (k === 0 || nRef < 2 || nCur < 2) return { pvalue: 1, tested: 0, axes: [] };
  // Squared scores, one row per frame (reference frames first), so a relabelling sums rows.
  const squares = new Float64Array(n * k);
  axes.forEach((axis, j) => {
    for (let i = 0; i < nRef; i++) squares[i * k + j] = reference[axis][i] ** 2;
    for (let i = 0; i < nCur; i++) squares[(nRef + i) * k + j] = current[axis][i] ** 2;
  });
  const total = new Float64Array(k);
  const scale = new Float64Array(k);
  for (let j = 0; j < k; j++) {
    let s = 0;
    let s2 = 0;
    for (let i = 0; i < n; i++) {
      const q = squares[i * k + j];
      s += q;
      s2 += q * q;
    }
    total[j] = s;
    // Var(log mean square) ~ (kurtosis - 1) / n; the kurtosis is the pooled one, which
    // relabelling does not change. Floored so a two-valued axis cannot divide by zero.
    const kurtosis = s2 / n / (s / n) ** 2;
    scale[j] = 1 / Math.sqrt(Math.max(kurtosis - 1, 1e-6) * (1 / nRef + 1 / nCur));
  }
  // The statistic from the sums of the smaller group's squares (the other's is the total less them).
  const small = Math.min(nRef, nCur);
  const smallIsCurrent = nCur <= nRef;
  const statistics = (smallSums: Float64Array, out: Float64Array, ratios?: Float64Array) => {
    for (let j = 0; j < k; j++) {
      const curSum = smallIsCurrent ? smallSums[j] : total[j] - smallSums[j];
      // A window with no spread on an axis the other has gives a ratio of 0 or infinity, and a
      // statistic as extreme as the data can say.
      const ratio = curSum / nCur / ((total[j] - curSum) / nRef);
      out[j] = Math.log(ratio) * scale[j];
      if (ratios) ratios[j] = ratio;
    }
    return out;
  };
  const sums = new Float64Array(k);
  const first = smallIsCurrent ? nRef : 0;
  for (let i = first; i < first + small; i++) for (let j = 0; j < k; j++) sums[j] += squares[i * k + j];
  const ratios = new Float64Array(k);
  const observed = statistics(sums, new Float64Array(k), ratios);
  // Max |statistic| over the axes for each relabelling: a partial Fisher-Yates shuffle picks the
  // smaller group.
  const rand = mulberry32(seed);
  const order = Uint32Array.from({ length: n }, (_, i) => i);
  const maxima = new Float64Array(permutations);
  const permuted = new Float64Array(k);
  for (let b = 0; b < permutations; b++) {
    sums.fill(0);
    for (let i = 0; i < small; i++) {
      const pick = i + Math.floor(rand() * (n - i));
      const row = order[pick];
      order[pick] = order[i];
      order[i] = row;
      const offset = row * k;
      for (let j = 0; j < k; j++) sums[j] += squares[offset + j];
    }
    statistics(sums, permuted);
    let max = 0;
    for (let j = 0; j < k; j++) max = Math.max(max, Math.abs(permuted[j]));
    maxima[b] = max;
  }
  const adjusted = (t: number) => {
    let above = 0;
    for (let b = 0; b < permutations; b++) if (maxima[b] >= t) above++;
    return (above + 1) / (permutations + 1);
  };
  const results: SpreadAxis[] = axes.map((axis, j) => ({
    component: axis + 1,
    varianceRatio: ratios[j],
    statistic: observed[j],
    adjustedP: adjusted(Math.abs(observed[j])),
  }));
  results.sort((a, b) => a.adjustedP - b.adjustedP || Math.abs(b.statistic) - Math.abs(a.statistic));
  return { pvalue: results[0].adjustedP, tested: k, axes: results.slice(0, top) };
}

// Spread test: has the spread of the embeddings changed along some principal direction, beyond
// the top components the KS family tests? A variance change along a low-variance direction, or
// two dimensions that start to move together (a correlation from 0 to 0.8 between two equal-
// variance dimensions is a spread 1.8 times larger along their sum and 5 times smaller along
// their difference), leaves every mean where it was, so neither KS on the top components nor a
// classifier on single dimensions and their squares sees it.
//
// The directions are the principal axes of both windows pooled, every one of them. Pooled axes
// treat the two windows alike: which frames are called "reference" and which "current" does not
// change them, so under no drift, for windows of independent frames, the labels are exchangeable
// given the pooled frames, and a permutation test on the labels keeps its level exactly (axes
// fitted on the reference alone would follow its own noise, and any other sample would look
// narrower along them).
//
// The statistic is the ratio of the current and reference windows' variances (each about its
// own mean, so a shift of the mean is not taken for a change of spread) along a direction, as
// far from 1 either way as any direction in a block gives: every single axis, and every pair of
// axes at most `neighbours` ranks apart, whose most changed direction in their plane solves
// det(C_current - r C_reference) = 0, a quadratic. Pairs matter because neighbouring low-variance
// axes have nearly equal variances, and a change along a direction of theirs is split among them
// (in a scratch run of 30 windows of the drift bench's correlation shift, before this was
// written, pairs up to 3 apart found 0.97 at the spread test's share of alpha, single axes 0.73).
// The largest value over the blocks is compared with its distribution over random relabellings
// (Westfall and Young's max-T): one p-value for the family, corrected for the many blocks while
// keeping their dependence, and per block a p-value adjusted the same way.
//
// Written by hand: the permutation tests on npm test one variable. The window sums of the scores
// and their products, for the observed labelling and every relabelling alike, are one matrix
// product (labellings x frames, times frames x products), run by onnxruntime like the PCA's
// (`onnx-kernels.ts`): in JavaScript loops they took 300 ms a check. The relabellings come from a
// fixed seed, so a check run again on the same windows (an activity retry) gives the same answer.
import { matMul } from './onnx-kernels.ts';
import { mulberry32 } from './seeded-random.ts';

/** Labellings per matrix product: bounds its input (128 x frames float64). */
const RELABELLINGS_PER_PRODUCT = 128;

export interface SpreadTestOptions {
  /** Random relabellings of the pooled frames (the smallest p-value is 1 / (permutations + 1)). */
  permutations?: number;
  /** Pairs of axes at most this many ranks apart are tested as planes (0: single axes only). */
  neighbours?: number;
  /** Axes whose variance is below this share of the largest are left out (numerically zero). */
  minVarianceShare?: number;
  seed?: number;
  /** Blocks reported, most changed first. */
  top?: number;
  /** Frames of each window used at most (evenly spaced): bounds the matrix of products, frames x (2 axes + pairs). */
  maxRows?: number;
}

export interface SpreadBlock {
  /** 1-based ranks of the pooled principal axes (largest variance first): one axis, or the pair whose plane holds the changed direction. */
  components: number[];
  /** Current window's variance along the block's most changed direction over the reference's, each about its own mean (2: twice; 0.5: half). */
  varianceRatio: number;
  /** Adjusted for testing every block (max-T over relabellings). */
  adjustedP: number;
}

export interface SpreadTestResult {
  /** Family p-value: the adjusted p of the most changed block. */
  pvalue: number;
  /** Axes tested. */
  tested: number;
  /** Blocks sorted by how much their spread changed, at most `top`. */
  blocks: SpreadBlock[];
}

/** At most `max` values of a column, evenly spaced (the column itself when it is short enough). */
function evenlySpaced(column: ArrayLike<number>, max: number): ArrayLike<number> {
  if (column.length <= max) return column;
  const step = column.length / max;
  // A loop, not Float64Array.from with a mapping function: V8 runs that through the iterator
  // protocol (9-13 ms against 1-3 for 128 columns of 2,000).
  const out = new Float64Array(max);
  for (let i = 0; i < max; i++) out[i] = column[Math.floor(i * step)];
  return out;
}

/**
 * The ratio r of the current window's variance to the reference's along the direction of a
 * plane where it is furthest from 1 (either way): the roots of det(C - r R) = 0 for the two
 * windows' 2 x 2 covariances C and R. A reference without spread in some direction gives
 * infinity, a window without spread 0.
 */
function planeRatio(c11: number, c22: number, c12: number, r11: number, r22: number, r12: number): number {
  const a = r11 * r22 - r12 * r12;
  if (!(a > 1e-12 * r11 * r22)) return c11 + c22 > 0 ? Infinity : 1;
  const b = c11 * r22 + c22 * r11 - 2 * c12 * r12;
  const c = c11 * c22 - c12 * c12;
  const root = Math.sqrt(Math.max(b * b - 4 * a * c, 0));
  const high = (b + root) / (2 * a);
  const low = Math.max((b - root) / (2 * a), 0);
  return high >= 1 / low ? high : low;
}

/**
 * `referenceScores[k]` and `currentScores[k]` are the two windows' scores on pooled axis k (as
 * `projectPca` of a PCA fitted on both windows gives them); `variances[k]` is that axis's pooled
 * variance. Scores must be finite.
 */
export async function spreadTest(
  referenceScores: ArrayLike<number>[],
  currentScores: ArrayLike<number>[],
  variances: ArrayLike<number>,
  opts: SpreadTestOptions = {},
): Promise<SpreadTestResult> {
  const { permutations = 999, neighbours = 3, minVarianceShare = 1e-9, seed = 0x5eed, top = 5, maxRows = 2000 } = opts;
  const largest = Math.max(0, ...Array.from(variances));
  const axes = Array.from({ length: variances.length }, (_, k) => k).filter((k) => largest > 0 && variances[k] > largest * minVarianceShare);
  const reference = referenceScores.map((column) => evenlySpaced(column, maxRows));
  const current = currentScores.map((column) => evenlySpaced(column, maxRows));
  const nRef = reference[0]?.length ?? 0;
  const nCur = current[0]?.length ?? 0;
  const n = nRef + nCur;
  const k = axes.length;
  // Three frames a window at least: with two, every plane of the window is flat.
  if (k === 0 || nRef < 3 || nCur < 3) return { pvalue: 1, tested: 0, blocks: [] };
  // Blocks: each axis alone, then each pair (a, b) with b - a <= neighbours.
  const pairs: [number, number][] = [];
  for (let a = 0; a < k; a++) for (let b = a + 1; b <= Math.min(k - 1, a + neighbours); b++) pairs.push([a, b]);
  // One row per frame (reference frames first): the k scores, their squares, then the pairs'
  // products; scaled per axis to unit pooled mean square, so no column dwarfs another. A
  // labelling's window sums are the sums of its rows.
  const [SQUARES, PRODUCTS] = [k, 2 * k];
  const width = 2 * k + pairs.length;
  const scale = axes.map((axis) => {
    let sum = 0;
    for (const column of [reference[axis], current[axis]])
      for (let i = 0; i < column.length; i++) {
        if (!Number.isFinite(column[i])) throw new Error(`the spread test needs finite scores: axis ${axis + 1} holds ${column[i]}`);
        sum += column[i] ** 2;
      }
    return sum > 0 ? Math.sqrt(n / sum) : 1;
  });
  const rows = new Float64Array(n * width);
  const z = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < k; j++) z[j] = (i < nRef ? reference[axes[j]][i] : current[axes[j]][i - nRef]) * scale[j];
    const row = i * width;
    for (let j = 0; j < k; j++) {
      rows[row + j] = z[j];
      rows[row + SQUARES + j] = z[j] * z[j];
    }
    for (let p = 0; p < pairs.length; p++) rows[row + PRODUCTS + p] = z[pairs[p][0]] * z[pairs[p][1]];
  }
  const total = new Float64Array(width);
  for (let i = 0; i < n; i++) for (let f = 0; f < width; f++) total[f] += rows[i * width + f];
  // The most extreme ratio per block, as max(r, 1/r), into `out` (or only their maximum), from
  // the current window's sums; the reference's are the totals less them.
  const extremes = (sums: Float64Array, out?: Float64Array, ratios?: Float64Array) => {
    const mean = (j: number) => [sums[j] / nCur, (total[j] - sums[j]) / nRef] as const;
    const covariance = (f: number, a: number, b: number) => {
      const [ca, ra] = mean(a);
      const [cb, rb] = mean(b);
      return [(sums[f] - nCur * ca * cb) / (nCur - 1), (total[f] - sums[f] - nRef * ra * rb) / (nRef - 1)] as const;
    };
    const variance = new Float64Array(2 * k);
    let max = 0;
    const record = (block: number, r: number) => {
      const e = Math.max(r, 1 / r);
      if (e > max) max = e;
      if (out) out[block] = e;
      if (ratios) ratios[block] = r;
    };
    for (let j = 0; j < k; j++) {
      const [c, r] = covariance(SQUARES + j, j, j);
      variance[2 * j] = c;
      variance[2 * j + 1] = r;
      record(j, r > 0 ? c / r : c > 0 ? Infinity : 1);
    }
    for (let p = 0; p < pairs.length; p++) {
      const [a, b] = pairs[p];
      const [c, r] = covariance(PRODUCTS + p, a, b);
      record(k + p, planeRatio(variance[2 * a], variance[2 * b], c, variance[2 * a + 1], variance[2 * b + 1], r));
    }
    return max;
  };
  // Labelling 0 is the observed one; 1..permutations are relabellings, each a row of 0s and 1s
  // over the frames, 1 for the frames called current (a partial Fisher-Yates shuffle picks them).
  // A batch of labellings times the rows gives their sums.
  const rand = mulberry32(seed);
  const order = Uint32Array.from({ length: n }, (_, i) => i);
  const observed = new Float64Array(k + pairs.length);
  const ratios = new Float64Array(k + pairs.length);
  const maxima = new Float64Array(permutations);
  const labellings = permutations + 1;
  for (let start = 0; start < labellings; start += RELABELLINGS_PER_PRODUCT) {
    const batch = Math.min(RELABELLINGS_PER_PRODUCT, labellings - start);
    const labels = new Float64Array(batch * n);
    for (let b = 0; b < batch; b++) {
      if (start + b === 0) {
        labels.fill(1, nRef, n);
        continue;
      }
      for (let i = 0; i < nCur; i++) {
        const pick = i + Math.floor(rand() * (n - i));
        const row = order[pick];
        order[pick] = order[i];
        order[i] = row;
        labels[b * n + row] = 1;
      }
    }
    const sums = await matMul(labels, rows, batch, n, width);
    for (let b = 0; b < batch; b++) {
      const labelling = sums.subarray(b * width, (b + 1) * width);
      if (start + b === 0) extremes(labelling, observed, ratios);
      else maxima[start + b - 1] = extremes(labelling);
    }
  }
  maxima.sort();
  // Relabellings whose largest extreme reaches t, by binary search in the sorted maxima.
  const adjusted = (t: number) => {
    let lo = 0;
    let hi = permutations;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (maxima[mid] >= t) hi = mid;
      else lo = mid + 1;
    }
    return (permutations - lo + 1) / (permutations + 1);
  };
  const blocks: SpreadBlock[] = Array.from({ length: k + pairs.length }, (_, f) => ({
    components: f < k ? [axes[f] + 1] : [axes[pairs[f - k][0]] + 1, axes[pairs[f - k][1]] + 1],
    varianceRatio: ratios[f],
    adjustedP: adjusted(observed[f]),
  }));
  const ranked = Array.from(blocks.keys()).sort((a, b) => (observed[b] > observed[a] ? 1 : observed[b] < observed[a] ? -1 : 0));
  return { pvalue: blocks[ranked[0]].adjustedP, tested: k, blocks: ranked.slice(0, top).map((f) => blocks[f]) };
}

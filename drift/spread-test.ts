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
// The scores are whitened (each pooled axis scaled to unit mean square about the pooled mean), so
// the pooled frames' second moments are the identity. The statistic is the log ratio of the
// current and reference windows' variance along a direction, as far from 0 as any direction in a
// block gives: every single axis, and every pair of axes at most `neighbours` ranks apart, whose
// 2 x 2 window moments give the most changed direction in their plane in closed form (the
// reference's moments are the identity less the window's, so the two share directions). Pairs
// matter because neighbouring low-variance axes have nearly equal variances, and a change along a
// direction of theirs is split among them: on the drift bench's correlation shift, pairs up to 3
// apart found 0.97 of 30 windows at the spread test's share of alpha, single axes 0.73. The
// largest value over the blocks is compared with its distribution over random relabellings
// (Westfall and Young's max-T): one p-value for the family, corrected for the many blocks while
// keeping their dependence, and per block a p-value adjusted the same way.
//
// Written by hand: the permutation tests on npm test one variable. The sums over relabellings are
// one matrix product (relabellings x frames, times frames x products of scores), run by
// onnxruntime like the PCA's (`onnx-kernels.ts`): in JavaScript loops they took 300 ms a check.
// The relabellings come from a fixed seed, so a check run again on the same windows (an activity
// retry) gives the same answer.
import { matMul } from './onnx-kernels.ts';
import { mulberry32 } from './seeded-random.ts';

/** Relabellings per matrix product: bounds its input (128 x frames float64). */
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
  /** Frames of each window used at most (evenly spaced): bounds the products matrix, frames x (axes x (neighbours + 1)). */
  maxRows?: number;
}

export interface SpreadBlock {
  /** 1-based ranks of the pooled principal axes (largest variance first): one axis, or the pair whose plane holds the changed direction. */
  components: number[];
  /** Current window's variance along the most changed direction over the reference's (2: twice; 0.5: half). */
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
  return Float64Array.from({ length: max }, (_, i) => column[Math.floor(i * step)]);
}

/**
 * `referenceScores[k]` and `currentScores[k]` are the two windows' scores on pooled axis k (centred on the
 * pooled mean, as `projectPca` of a PCA fitted on both windows gives them); `variances[k]` is
 * that axis's pooled variance.
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
  if (k === 0 || nRef < 2 || nCur < 2) return { pvalue: 1, tested: 0, blocks: [] };
  // Blocks: each axis alone, then each pair (a, b) with b - a <= neighbours.
  const pairs: [number, number][] = [];
  for (let a = 0; a < k; a++) for (let b = a + 1; b <= Math.min(k - 1, a + neighbours); b++) pairs.push([a, b]);
  // One row of products per frame (reference frames first): the k squares, then the pairs'
  // cross products, of the whitened scores. A relabelling's window moments are sums of rows.
  const width = k + pairs.length;
  const products = new Float64Array(n * width);
  const z = new Float64Array(k);
  const whiten = axes.map((axis) => {
    let sum = 0;
    for (let i = 0; i < nRef; i++) sum += reference[axis][i] ** 2;
    for (let i = 0; i < nCur; i++) sum += current[axis][i] ** 2;
    return Math.sqrt(n / sum);
  });
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < k; j++) z[j] = (i < nRef ? reference[axes[j]][i] : current[axes[j]][i - nRef]) * whiten[j];
    const row = i * width;
    for (let j = 0; j < k; j++) products[row + j] = z[j] * z[j];
    for (let p = 0; p < pairs.length; p++) products[row + k + p] = z[pairs[p][0]] * z[pairs[p][1]];
  }
  const total = new Float64Array(width);
  for (let i = 0; i < n; i++) for (let f = 0; f < width; f++) total[f] += products[i * width + f];
  // The window's variance along a direction with window second moment mu, over the reference's
  // (n - nCur mu) / nRef. A window with no spread where the other has some gives 0 or infinity.
  const ratioOf = (mu: number) => {
    const referenceMoment = (n - nCur * mu) / nRef;
    return referenceMoment > 0 ? mu / referenceMoment : Infinity;
  };
  const small = Math.min(nRef, nCur);
  const smallIsCurrent = nCur <= nRef;
  // For the window moments from the smaller group's sums; the most extreme ratio per block
  // (as max(r, 1/r)) into `out`, or only their maximum when `out` is not given.
  const extremes = (smallSums: Float64Array, out?: Float64Array, ratios?: Float64Array) => {
    const moment = (f: number) => (smallIsCurrent ? smallSums[f] : total[f] - smallSums[f]) / nCur;
    let max = 0;
    const record = (block: number, r: number) => {
      const e = Math.max(r, 1 / r);
      if (e > max) max = e;
      if (out) out[block] = e;
      if (ratios) ratios[block] = r;
    };
    for (let j = 0; j < k; j++) record(j, ratioOf(moment(j)));
    for (let p = 0; p < pairs.length; p++) {
      const [a, b] = pairs[p];
      const [maa, mbb, mab] = [moment(a), moment(b), moment(k + p)];
      const mid = (maa + mbb) / 2;
      const half = Math.sqrt(((maa - mbb) / 2) ** 2 + mab * mab);
      // Of the plane's two directions, the one whose ratio is further from 1.
      const [hi, lo] = [ratioOf(mid + half), ratioOf(Math.max(mid - half, 0))];
      record(k + p, Math.max(hi, 1 / hi) >= Math.max(lo, 1 / lo) ? hi : lo);
    }
    return max;
  };
  const sums = new Float64Array(width);
  const first = smallIsCurrent ? nRef : 0;
  for (let i = first; i < first + small; i++) for (let f = 0; f < width; f++) sums[f] += products[i * width + f];
  const observed = new Float64Array(width);
  const ratios = new Float64Array(width);
  extremes(sums, observed, ratios);
  // The largest extreme over the blocks for each relabelling. A relabelling is a row of 0s and
  // 1s over the frames, 1 for the smaller group (a partial Fisher-Yates shuffle picks it); a
  // batch of them times the products gives their sums.
  const rand = mulberry32(seed);
  const order = Uint32Array.from({ length: n }, (_, i) => i);
  const maxima = new Float64Array(permutations);
  for (let start = 0; start < permutations; start += RELABELLINGS_PER_PRODUCT) {
    const batch = Math.min(RELABELLINGS_PER_PRODUCT, permutations - start);
    const labels = new Float64Array(batch * n);
    for (let b = 0; b < batch; b++)
      for (let i = 0; i < small; i++) {
        const pick = i + Math.floor(rand() * (n - i));
        const row = order[pick];
        order[pick] = order[i];
        order[i] = row;
        labels[b * n + row] = 1;
      }
    const batchSums = await matMul(labels, products, batch, n, width);
    for (let b = 0; b < batch; b++) maxima[start + b] = extremes(batchSums.subarray(b * width, (b + 1) * width));
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
  const blocks: SpreadBlock[] = Array.from({ length: width }, (_, f) => ({
    components: f < k ? [axes[f] + 1] : [axes[pairs[f - k][0]] + 1, axes[pairs[f - k][1]] + 1],
    varianceRatio: ratios[f],
    adjustedP: adjusted(observed[f]),
  }));
  const ranked = Array.from(blocks.keys()).sort((a, b) => (observed[b] > observed[a] ? 1 : observed[b] < observed[a] ? -1 : 0));
  const reported = ranked.slice(0, top).map((f) => blocks[f]);
  return { pvalue: reported[0].adjustedP, tested: k, blocks: reported };
}

// Novelty test: does the current window hold more frames unlike anything in the reference than
// chance allows? A new kind of scene in a few percent of frames (a camera moved, a new site) is
// what a fleet most needs to notice, and it moves a window's distribution too little for KS or a
// classifier's AUC (a perfectly separated 5% cluster lifts the AUC to 0.525 at most).
//
// A frame's novelty is its distance to the nearest reference frame; a reference frame's is its
// distance to the nearest other one. Under no drift the scores of a calibration sample of the
// reference and of the current frames are exchangeable (conformal prediction), so the number of
// current frames above the k-th largest calibration score follows a negative hypergeometric law
// whatever the embedding looks like. A current frame sees one candidate more than a reference
// frame (its nearest neighbour is never itself), which only makes the test conservative.
//
// Written by hand: a few loops over Float64Arrays; the nearest-neighbour libraries on npm build
// indexes for repeated queries, and one check asks each frame once.

export interface NoveltyTestOptions {
  /** Calibration quantile: a frame is novel when farther than all but this share of reference frames are. */
  quantile?: number;
  /** Reference frames whose leave-one-out scores calibrate the threshold (a seeded sample; bounds the work). */
  maxCalibration?: number;
}

export interface NoveltyTestResult {
  /** Current frames farther from the reference than the threshold. */
  novel: number;
  /** Their share of the window, less the share expected by chance (k / (calibration + 1)). */
  excessShare: number;
  /** One-sided p-value of seeing at least `novel` such frames with no drift. */
  pvalue: number;
  /** Indices (in the current window) of the novel frames, farthest first. */
  novelIndices: number[];
  /** Distance beyond which a frame counts as novel. */
  threshold: number;
}

function squaredNorms(rows: ArrayLike<number>[]): Float64Array {
  return Float64Array.from(rows, (r) => {
    let s = 0;
    for (let j = 0; j < r.length; j++) s += r[j] * r[j];
    return s;
  });
}

/** Distance from each query row to its nearest reference row, skipping `self[q]` (a reference index) if given. */
function nearestDistances(queries: ArrayLike<number>[], reference: ArrayLike<number>[], refNorms: Float64Array, self?: number[]): Float64Array {
  const out = new Float64Array(queries.length);
  const d = reference[0].length;
  queries.forEach((q, qi) => {
    let qq = 0;
    for (let j = 0; j < d; j++) qq += q[j] * q[j];
    let best = Infinity;
    for (let r = 0; r < reference.length; r++) {
      if (self && self[qi] === r) continue;
      const row = reference[r];
      let dot = 0;
      for (let j = 0; j < d; j++) dot += q[j] * row[j];
      // |q - r|^2 through norms: one multiply-add per dimension instead of a subtract and two.
      const dist = qq + refNorms[r] - 2 * dot;
      if (dist < best) best = dist;
    }
    out[qi] = Math.sqrt(Math.max(best, 0));
  });
  return out;
}

/**
 * P(X >= x) for X ~ negative hypergeometric: the number of current frames ranked above the k-th
 * calibration frame when `m` current and `n` calibration scores are in exchangeable order.
 * P(X = c) = C(c+k-1, c) C(m-c+n-k, m-c) / C(m+n, m), summed in log space.
 */
export function negativeHypergeometricTail(x: number, m: number, n: number, k: number): number {
  if (x <= 0) return 1;
  if (x > m) return 0;
  const logChoose = (a: number, b: number) => lgamma(a + 1) - lgamma(b + 1) - lgamma(a - b + 1);
  const total = logChoose(m + n, m);
  let below = 0;
  for (let c = 0; c < x; c++) below += Math.exp(logChoose(c + k - 1, c) + logChoose(m - c + n - k, m - c) - total);
  // Summing the shorter side keeps precision: the tail itself when it is small.
  if (below < 0.5) return Math.max(0, 1 - below);
  let tail = 0;
  for (let c = x; c <= m; c++) tail += Math.exp(logChoose(c + k - 1, c) + logChoose(m - c + n - k, m - c) - total);
  return Math.min(1, tail);
}

/** log Gamma by Lanczos (g = 7, 9 terms): relative error about 1e-15 for positive arguments. */
function lgamma(z: number): number {
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012,
    9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (z < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * z))) - lgamma(1 - z);
  const x = z - 1;
  let a = c[0];
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i] / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Deterministic sample of `m` of `n` indices (a fixed-seed shuffle): the same windows give the same report. */
function calibrationSample(n: number, m: number): number[] {
  const idx = Array.from({ length: n }, (_, i) => i);
  if (m >= n) return idx;
  let seed = 0x9e3779b9;
  const rand = () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  for (let i = 0; i < m; i++) {
    const j = i + Math.floor(rand() * (n - i));
    [idx[i], idx[j]] = [idx[j], idx[i]];
  }
  return idx.slice(0, m);
}

export function noveltyTest(reference: ArrayLike<number>[], current: ArrayLike<number>[], opts: NoveltyTestOptions = {}): NoveltyTestResult {
  const { quantile = 0.01, maxCalibration = 1000 } = opts;
  const refNorms = squaredNorms(reference);
  const calibration = calibrationSample(reference.length, maxCalibration);
  const calScores = nearestDistances(
    calibration.map((i) => reference[i]),
    reference,
    refNorms,
    calibration,
  );
  const curScores = nearestDistances(current, reference, refNorms);
  const n = calScores.length;
  const m = curScores.length;
  // The k-th largest calibration score: at least one, so a small reference still has a threshold.
  const k = Math.max(1, Math.floor(quantile * (n + 1)));
  const threshold = Float64Array.from(calScores).sort()[n - k];
  const novelIndices = Array.from(curScores.keys())
    .filter((i) => curScores[i] > threshold)
    .sort((a, b) => curScores[b] - curScores[a]);
  const novel = novelIndices.length;
  return {
    novel,
    excessShare: novel / m - k / (n + 1),
    pvalue: negativeHypergeometricTail(novel, m, n, k),
    novelIndices,
    threshold,
  };
}

// Novelty test: does the current window hold more frames unlike anything in the reference than
// chance allows? A new kind of scene in a few percent of frames (a camera moved, a new site) is
// what a fleet most needs to notice, and it moves a window's distribution too little for KS or a
// classifier's AUC (a perfectly separated 5% cluster lifts the AUC to 0.525 at most).
//
// Split conformal prediction: the reference's first half is the neighbourhood, its second half
// the calibration. A frame's novelty is its distance to the nearest frame of the first half, for
// calibration and current frames alike. Under no drift their scores are exchangeable, so the
// number of current frames above the k-th largest calibration score follows a negative
// hypergeometric law whatever the embedding looks like.
//
// Why halves in order and not each reference frame against all the others (leave one out): a
// reference read from a stream holds consecutive frames of a camera, nearly the same picture;
// each would find its twin, the threshold would shrink to the twins' distance, and every current
// frame would look novel. The second half of a time-ordered reference meets the first as a later
// window does.
//
// Written by hand: a few loops over Float64Arrays; the nearest-neighbour libraries on npm build
// indexes for repeated queries, and one check asks each frame once.

export interface NoveltyTestOptions {
  /** A frame is novel when farther than all but this share of the calibration frames (the reference's second half) are. */
  quantile?: number;
  /** Calibration frames at most (evenly spaced over the reference's second half; bounds the work). */
  maxCalibration?: number;
}

export interface NoveltyTestResult {
  /** Current frames farther from the reference's first half than the threshold. */
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

/** Distance from each query row to its nearest reference row. */
function nearestDistances(queries: ArrayLike<number>[], reference: ArrayLike<number>[], refNorms: Float64Array): Float64Array {
  const out = new Float64Array(queries.length);
  const d = reference[0].length;
  queries.forEach((q, qi) => {
    let qq = 0;
    for (let j = 0; j < d; j++) qq += q[j] * q[j];
    let best = Infinity;
    for (let r = 0; r < reference.length; r++) {
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

export function noveltyTest(reference: ArrayLike<number>[], current: ArrayLike<number>[], opts: NoveltyTestOptions = {}): NoveltyTestResult {
  const { quantile = 0.01, maxCalibration = 1000 } = opts;
  if (reference.length < 2) throw new Error('the novelty test needs at least 2 reference rows');
  const middle = Math.floor(reference.length / 2);
  const neighbourhood = reference.slice(0, middle);
  const second = reference.slice(middle);
  const step = Math.max(1, second.length / maxCalibration);
  const calibration = Array.from({ length: Math.min(second.length, maxCalibration) }, (_, i) => second[Math.floor(i * step)]);
  const norms = squaredNorms(neighbourhood);
  const calScores = nearestDistances(calibration, neighbourhood, norms);
  const curScores = nearestDistances(current, neighbourhood, norms);
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

// Classifier two-sample test (C2ST; Lopez-Paz and Oquab, ICLR 2017; alibi-detect's
// ClassifierDrift): can a classifier tell the current window from the reference? It sees the
// whole embedding, so it catches what a test on the top principal components cannot: a shift
// along a low-variance direction, a change of spread.
//
// Features are each dimension standardised over both windows, and its square (so a change of
// spread is as visible to a linear model as a change of mean). An L2-regularised logistic
// regression, with the two windows weighted equally, is trained on one half of each window and
// scores the other half, and the other way round (cross-fitting). Given the model, the held-out
// scores of the two windows are exchangeable under no drift, so a one-sided Mann-Whitney z on
// each half is standard normal. The two z are dependent (each half trained the other's model), so
// they are averaged: the mean of two unit-variance z has variance at most one whatever their
// correlation, which keeps the level.
//
// Why not k folds pooled into one Mann-Whitney, as is common: each fold's model learnt the
// others' chance differences, so the pooled held-out scores carry the same noise twice. On the
// platform's own embeddings at window 50 and 200 (reference and window drawn from one pool), 5
// pooled folds flagged 0.10 and 0.09 of null windows at a nominal 0.025; two cross-fitted halves
// flagged 0.03 and 0.02.
//
// The halves are contiguous (the first and second half of each window, in the order given), not
// interleaved: neighbouring frames of a time-ordered window are alike, and a model that saw one
// would score its neighbour as known. An ordering with a trend inside a window costs power, never
// level.
//
// Written by hand: the JavaScript logistic regressions on npm (ml-logistic-regression, and
// others) have no regularisation or class weights and expose no held-out scoring; this is a
// few loops over Float64Arrays. Normal tail from Numerical Recipes' erfc (relative error below
// 1.2e-7, so tiny p-values keep their magnitude).

export interface ClassifierTestOptions {
  /** L2 penalty on the weights (the loss is a weighted mean, so this is scale-free). */
  l2?: number;
  /** Gradient steps per fold (accelerated gradient descent, step 1/L). */
  iterations?: number;
  /** Features the report names: those with the largest mean absolute weight. */
  topFeatures?: number;
}

export interface ClassifierFeature {
  /** Embedding dimension (0-based). */
  dimension: number;
  /** `mean`: the dimension's value; `spread`: its square (a change of variance). */
  kind: 'mean' | 'spread';
  /** Mean weight of the two halves' models, on standardised features (positive: more in the current window). */
  weight: number;
}

export interface ClassifierTestResult {
  /** Area under the ROC curve of the held-out scores (mean of the two halves): 0.5 means the windows look alike. */
  auc: number;
  /** One-sided p-value of the mean Mann-Whitney z (current windows scored higher than reference). */
  pvalue: number;
  topFeatures: ClassifierFeature[];
}

/** Complementary error function (Numerical Recipes, erfcc): relative error below 1.2e-7. */
function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

const normalUpperTail = (z: number) => 0.5 * erfc(z / Math.SQRT2);

/**
 * Mann-Whitney U for `b` scoring higher than `a`, with average ranks for ties, the tie-corrected
 * variance and a continuity correction; as scipy.stats.mannwhitneyu(b, a, alternative='greater',
 * method='asymptotic'). Returns the AUC (U / (n_a n_b)), the z-score and the p-value.
 */
export function mannWhitneyGreater(a: ArrayLike<number>, b: ArrayLike<number>): { auc: number; z: number; pvalue: number } {
  const na = a.length;
  const nb = b.length;
  const n = na + nb;
  const values = new Float64Array(n);
  values.set(Array.from(a), 0);
  values.set(Array.from(b), na);
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => values[i] - values[j]);
  const ranks = new Float64Array(n);
  let tieTerm = 0;
  for (let i = 0; i < n;) {
    let j = i;
    while (j + 1 < n && values[order[j + 1]] === values[order[i]]) j++;
    const rank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[order[k]] = rank;
    const t = j - i + 1;
    tieTerm += t * t * t - t;
    i = j + 1;
  }
  let rankSumB = 0;
  for (let i = na; i < n; i++) rankSumB += ranks[i];
  const u = rankSumB - (nb * (nb + 1)) / 2;
  const mean = (na * nb) / 2;
  const sd = Math.sqrt(((na * nb) / 12) * (n + 1 - tieTerm / (n * (n - 1))));
  const z = sd > 0 ? (u - mean - 0.5) / sd : 0;
  return { auc: u / (na * nb), z, pvalue: sd > 0 ? normalUpperTail(z) : 1 };
}

/** Rows of [z_1..z_d, z_1^2-1..z_d^2-1], z standardised over all rows; one flat array, row-major. */
function features(rows: ArrayLike<number>[]): { x: Float64Array; width: number } {
  const n = rows.length;
  const d = rows[0].length;
  const mean = new Float64Array(d);
  const sq = new Float64Array(d);
  for (const r of rows)
    for (let j = 0; j < d; j++) {
      mean[j] += r[j];
      sq[j] += r[j] * r[j];
    }
  const sd = new Float64Array(d);
  for (let j = 0; j < d; j++) {
    mean[j] /= n;
    sd[j] = Math.sqrt(Math.max(sq[j] / n - mean[j] * mean[j], 0)) || 1;
  }
  const width = 2 * d;
  const x = new Float64Array(n * width);
  rows.forEach((r, i) => {
    for (let j = 0; j < d; j++) {
      const z = (r[j] - mean[j]) / sd[j];
      x[i * width + j] = z;
      // Centred and scaled to unit variance for Gaussian data, like the linear features.
      x[i * width + d + j] = (z * z - 1) / Math.SQRT2;
    }
  });
  return { x, width };
}

/**
 * Weighted L2-regularised logistic regression by accelerated gradient descent (Nesterov), step
 * 1/L with L bounded through a power iteration. Returns [w..., b].
 */
function fitLogistic(x: Float64Array, width: number, rows: number[], target: Uint8Array, weight: Float64Array, l2: number, iterations: number): Float64Array {
  const p = width + 1;
  // Largest eigenvalue of sum_i weight_i [x_i,1][x_i,1]^T by power iteration: the loss's
  // curvature is at most a quarter of it (plus the penalty).
  let v = new Float64Array(p).fill(1 / Math.sqrt(p));
  let eig = 1;
  for (let it = 0; it < 20; it++) {
    const next = new Float64Array(p);
    for (const i of rows) {
      let dot = v[width];
      const off = i * width;
      for (let j = 0; j < width; j++) dot += x[off + j] * v[j];
      const s = weight[i] * dot;
      for (let j = 0; j < width; j++) next[j] += s * x[off + j];
      next[width] += s;
    }
    eig = Math.hypot(...next);
    if (eig === 0) break;
    v = next.map((e) => e / eig);
  }
  const step = 1 / (0.25 * eig * 1.05 + l2);
  let w = new Float64Array(p);
  let y = new Float64Array(p);
  let t = 1;
  const grad = new Float64Array(p);
  for (let it = 0; it < iterations; it++) {
    grad.fill(0);
    for (const i of rows) {
      const off = i * width;
      let z = y[width];
      for (let j = 0; j < width; j++) z += x[off + j] * y[j];
      const r = weight[i] * (1 / (1 + Math.exp(-z)) - target[i]);
      for (let j = 0; j < width; j++) grad[j] += r * x[off + j];
      grad[width] += r;
    }
    for (let j = 0; j < width; j++) grad[j] += l2 * y[j];
    const next = y.map((yj, j) => yj - step * grad[j]);
    const tNext = (1 + Math.sqrt(1 + 4 * t * t)) / 2;
    y = next.map((nj, j) => nj + ((t - 1) / tNext) * (nj - w[j]));
    w = next;
    t = tNext;
  }
  return w;
}

export function classifierTest(reference: ArrayLike<number>[], current: ArrayLike<number>[], opts: ClassifierTestOptions = {}): ClassifierTestResult {
  const { l2 = 0.01, iterations = 150, topFeatures = 3 } = opts;
  if (reference.length < 2 || current.length < 2) throw new Error('the classifier test needs at least 2 rows in each window (one per half)');
  const rows = [...reference, ...current];
  const n = rows.length;
  const { x, width } = features(rows);
  const target = new Uint8Array(n);
  const weight = new Float64Array(n);
  const half = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const isCurrent = i >= reference.length;
    target[i] = isCurrent ? 1 : 0;
    // The two windows weigh the same whatever their sizes.
    weight[i] = 0.5 / (isCurrent ? current.length : reference.length);
    // Contiguous halves of each window (see the header).
    const [k, size] = isCurrent ? [i - reference.length, current.length] : [i, reference.length];
    half[i] = k < size / 2 ? 0 : 1;
  }
  const weightSum = new Float64Array(width);
  const halves = [0, 1].map((h) => {
    const train: number[] = [];
    for (let i = 0; i < n; i++) if (half[i] !== h) train.push(i);
    // Re-weight the training rows so each window still sums to one half.
    const w = fitLogistic(x, width, train, target, rescaled(weight, train, target), l2, iterations);
    for (let j = 0; j < width; j++) weightSum[j] += w[j] / 2;
    const scored: [number[], number[]] = [[], []];
    for (let i = 0; i < n; i++) {
      if (half[i] !== h) continue;
      let z = w[width];
      for (let j = 0; j < width; j++) z += x[i * width + j] * w[j];
      scored[target[i]].push(z);
    }
    return mannWhitneyGreater(scored[0], scored[1]);
  });
  const z = (halves[0].z + halves[1].z) / 2;
  const d = width / 2;
  const top = Array.from(weightSum, (weight, j) => ({ dimension: j % d, kind: j < d ? ('mean' as const) : ('spread' as const), weight }))
    .sort((a, b) => Math.abs(b.weight) - Math.abs(a.weight))
    .slice(0, topFeatures);
  return { auc: (halves[0].auc + halves[1].auc) / 2, pvalue: normalUpperTail(z), topFeatures: top };
}

function rescaled(weight: Float64Array, rows: number[], target: Uint8Array): Float64Array {
  const sums = [0, 0];
  for (const i of rows) sums[target[i]] += weight[i];
  const out = new Float64Array(weight.length);
  for (const i of rows) out[i] = (0.5 * weight[i]) / sums[target[i]];
  return out;
}

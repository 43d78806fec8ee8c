// Eigenvalues of a symmetric matrix, and eigenvectors for the largest k only, the way LAPACK's
// dsyevx works: Householder reduction to tridiagonal form, implicit QL for the eigenvalues,
// inverse iteration on the tridiagonal matrix for the k vectors wanted, and the reflections
// applied back to those k vectors alone.
//
// Written by hand because no maintained JavaScript library computes a partial symmetric
// eigendecomposition: ml-matrix (JAMA's algorithm) accumulates every eigenvector through every
// QL rotation, 135 ms for a 256 x 256 covariance when a drift check needs 8 of them.
import { symmetricRankUpdate } from './onnx-kernels.ts';

export interface SymmetricEigen {
  /** Every eigenvalue, largest first. */
  values: Float64Array;
  /** Unit eigenvectors of the largest k eigenvalues, in their order. */
  vectors(k: number): Float64Array[];
}

const EPS = 2 ** -52;

interface Tridiagonal {
  diagonal: Float64Array;
  /** offDiagonal[i] = T[i][i+1]; the last entry is 0. */
  offDiagonal: Float64Array;
  /** Householder vector of step k acts on coordinates k+1..n-1; H = I - beta v v'. */
  reflectors: { v: Float64Array; beta: number }[];
}

/**
 * Columns per panel of the blocked reduction. Each panel's reflections reach the rest of the
 * matrix in one onnxruntime product (n / PANEL calls); within a panel they are applied to
 * what the next step reads only.
 */
const PANEL = 16;

/**
 * Q'AQ = T by n - 2 Householder reflections (Golub and Van Loan, algorithm 8.3.1), blocked as
 * LAPACK's dsytrd/dlatrd block it; reads A's upper triangle.
 *
 * Half of the unblocked reduction's work is the rank-two update of the rest of the matrix after
 * every step, n^3 / 6 visits of its entries in JavaScript. Here a panel of steps accumulates its
 * reflectors v and their w, and the rest of the matrix takes A - V W' - W V' once per panel as an
 * onnxruntime product (`symmetricRankUpdate`). What stays in JavaScript is the product A v of
 * every step, corrected for the panel's pending updates: 8 ms for 256 x 256 against 12 unblocked
 * (a drift report's PCA of 256-d embeddings).
 */
async function tridiagonalise(matrix: Float64Array, n: number, scale: number): Promise<Tridiagonal> {
  // A plain loop: Float64Array.from with a mapping function goes through the iterator protocol
  // in V8, 4.7 ms for 256 x 256 against 0.4.
  const a = new Float64Array(n * n);
  for (let i = 0; i < a.length; i++) a[i] = matrix[i] / scale;
  const diagonal = new Float64Array(n);
  const offDiagonal = new Float64Array(n);
  const reflectors: Tridiagonal['reflectors'] = [];
  const u = new Float64Array(n);
  for (let k0 = 0; k0 < n - 2; k0 += PANEL) {
    const b = Math.min(PANEL, n - 2 - k0);
    // Row t of V and W: step k0 + t's v and w by the matrix's coordinates (zero at 0..k0 + t).
    const V = new Float64Array(b * n);
    const W = new Float64Array(b * n);
    for (let t = 0; t < b; t++) {
      const k = k0 + t;
      const row = k * n;
      const m = n - k - 1;
      // Row k as the unblocked reduction would find it: A - V W' - W V' over the earlier steps.
      for (let s = 0; s < t; s++) {
        const vk = V[s * n + k];
        const wk = W[s * n + k];
        for (let j = k; j < n; j++) a[row + j] -= vk * W[s * n + j] + wk * V[s * n + j];
      }
      diagonal[k] = a[row + k];
      const x0 = a[row + k + 1];
      // The tail below the subdiagonal summed on its own, as LAPACK's dlarfg does: from the
      // whole norm less x0^2, a tail under 1e-8 |x0| cancels to 0 and would be thrown away.
      let tailSq = 0;
      for (let j = k + 2; j < n; j++) tailSq += a[row + j] * a[row + j];
      if (tailSq === 0) {
        // Already tridiagonal in this column: the identity (its rows of V and W stay 0).
        offDiagonal[k] = x0;
        reflectors.push({ v: new Float64Array(m), beta: 0 });
        continue;
      }
      const normSq = x0 * x0 + tailSq;
      const alpha = x0 > 0 ? -Math.sqrt(normSq) : Math.sqrt(normSq);
      const v = a.slice(row + k + 1, row + n);
      v[0] = x0 - alpha;
      const beta = 1 / (normSq - alpha * x0);
      offDiagonal[k] = alpha;
      reflectors.push({ v, beta });
      // u = A22 v, A22 the rows and columns from k + 1 as the panel found them: on the upper
      // triangle (half the entries, each used twice), with two running sums to halve the chain
      // of dependent additions. Then less the pending V W' + W V' of the panel's earlier steps.
      u.fill(0, 0, m);
      for (let r = 0; r < m; r++) {
        const start = (k + 1 + r) * n + k + 1;
        const vr = v[r];
        let s0 = a[start + r] * vr;
        let s1 = 0;
        let j = r + 1;
        for (; j + 1 < m; j += 2) {
          const a0 = a[start + j];
          const a1 = a[start + j + 1];
          s0 += a0 * v[j];
          s1 += a1 * v[j + 1];
          u[j] += a0 * vr;
          u[j + 1] += a1 * vr;
        }
        if (j < m) {
          s0 += a[start + j] * v[j];
          u[j] += a[start + j] * vr;
        }
        u[r] += s0 + s1;
      }
      for (let s = 0; s < t; s++) {
        const from = s * n + k + 1;
        let vv = 0;
        let wv = 0;
        for (let j = 0; j < m; j++) {
          vv += V[from + j] * v[j];
          wv += W[from + j] * v[j];
        }
        for (let j = 0; j < m; j++) u[j] -= V[from + j] * wv + W[from + j] * vv;
      }
      // p = beta u, w = p - (beta p'v / 2) v: A22 <- H A22 H = A22 - v w' - w v'.
      let pv = 0;
      for (let j = 0; j < m; j++) {
        u[j] *= beta;
        pv += u[j] * v[j];
      }
      const K = (beta * pv) / 2;
      for (let j = 0; j < m; j++) {
        V[t * n + k + 1 + j] = v[j];
        W[t * n + k + 1 + j] = u[j] - K * v[j];
      }
    }
    // The rows and columns after the panel take its b reflections at once.
    const k1 = k0 + b;
    const m1 = n - k1;
    const block = new Float64Array(m1 * m1);
    for (let r = 0; r < m1; r++) block.set(a.subarray((k1 + r) * n + k1, (k1 + r + 1) * n), r * m1);
    const vt = new Float64Array(m1 * b);
    const wt = new Float64Array(m1 * b);
    for (let r = 0; r < m1; r++)
      for (let t = 0; t < b; t++) {
        vt[r * b + t] = V[t * n + k1 + r];
        wt[r * b + t] = W[t * n + k1 + r];
      }
    const updated = await symmetricRankUpdate(block, vt, wt, m1, b);
    for (let r = 0; r < m1; r++) a.set(updated.subarray(r * m1, (r + 1) * m1), (k1 + r) * n + k1);
  }
  if (n >= 2) {
    diagonal[n - 2] = a[(n - 2) * n + n - 2];
    offDiagonal[n - 2] = a[(n - 2) * n + n - 1];
  }
  diagonal[n - 1] = a[n * n - 1];
  return { diagonal, offDiagonal, reflectors };
}

/**
 * sqrt(a^2 + b^2), through Math.hypot only where the squares would overflow or underflow:
 * Math.hypot's general case is several times slower in V8, and QL calls this n^2 times.
 */
function hypot(a: number, b: number): number {
  const s = a * a + b * b;
  return s > 1e-290 && s < 1e290 ? Math.sqrt(s) : Math.hypot(a, b);
}

/** Eigenvalues of a symmetric tridiagonal matrix by implicit QL (JAMA's tql2 without vectors). */
function tridiagonalEigenvalues(diagonal: Float64Array, offDiagonal: Float64Array): Float64Array {
  const n = diagonal.length;
  const d = Float64Array.from(diagonal);
  const e = Float64Array.from(offDiagonal);
  let f = 0;
  let tst1 = 0;
  for (let l = 0; l < n; l++) {
    tst1 = Math.max(tst1, Math.abs(d[l]) + Math.abs(e[l]));
    let m = l;
    while (m < n - 1 && Math.abs(e[m]) > EPS * tst1) m++;
    let iterations = 0;
    while (m > l && Math.abs(e[l]) > EPS * tst1) {
      if (++iterations > 60) throw new Error('symmetric eigendecomposition did not converge');
      let g = d[l];
      let p = (d[l + 1] - g) / (2 * e[l]);
      let r = hypot(p, 1);
      if (p < 0) r = -r;
      d[l] = e[l] / (p + r);
      d[l + 1] = e[l] * (p + r);
      const dl1 = d[l + 1];
      let h = g - d[l];
      for (let i = l + 2; i < n; i++) d[i] -= h;
      f += h;
      p = d[m];
      let c = 1;
      let c2 = 1;
      let c3 = 1;
      const el1 = e[l + 1];
      let s = 0;
      let s2 = 0;
      for (let i = m - 1; i >= l; i--) {
        c3 = c2;
        c2 = c;
        s2 = s;
        g = c * e[i];
        h = c * p;
        r = hypot(p, e[i]);
        e[i + 1] = s * r;
        s = e[i] / r;
        c = p / r;
        p = c * d[i] - s * g;
        d[i + 1] = h + s * (c * g + s * d[i]);
      }
      p = (-s * s2 * c3 * el1 * e[l]) / dl1;
      e[l] = s * p;
      d[l] = c * p;
    }
    d[l] += f;
    e[l] = 0;
  }
  return d;
}

/**
 * Solver for (T - shift I) x = b by Gaussian elimination with partial pivoting, factored once
 * and used for every iteration of one eigenvector (LAPACK's dlagtf/dlagts in spirit). Zero
 * pivots, which an exact eigenvalue makes, become `tiny`: the solve then blows up along the
 * eigenvector, which is the point.
 */
function shiftedSolver(diagonal: Float64Array, offDiagonal: Float64Array, shift: number, tiny: number): (b: Float64Array) => void {
  const n = diagonal.length;
  const u0 = new Float64Array(n);
  const u1 = new Float64Array(n);
  const u2 = new Float64Array(n);
  const multiplier = new Float64Array(n);
  const swapped = new Uint8Array(n);
  const pivot = (x: number) => (Math.abs(x) < tiny ? (x < 0 ? -tiny : tiny) : x);
  let diag = diagonal[0] - shift;
  let sup = n > 1 ? offDiagonal[0] : 0;
  for (let i = 0; i < n - 1; i++) {
    const sub = offDiagonal[i];
    const nextDiag = diagonal[i + 1] - shift;
    const nextSup = i + 1 < n - 1 ? offDiagonal[i + 1] : 0;
    if (Math.abs(diag) >= Math.abs(sub)) {
      const l = sub / pivot(diag);
      multiplier[i] = l;
      u0[i] = pivot(diag);
      u1[i] = sup;
      diag = nextDiag - l * sup;
      sup = nextSup;
    } else {
      const l = diag / sub;
      multiplier[i] = l;
      swapped[i] = 1;
      u0[i] = sub;
      u1[i] = nextDiag;
      u2[i] = nextSup;
      diag = sup - l * nextDiag;
      sup = -l * nextSup;
    }
  }
  u0[n - 1] = pivot(diag);
  return (b) => {
    for (let i = 0; i < n - 1; i++) {
      if (swapped[i]) {
        const t = b[i];
        b[i] = b[i + 1];
        b[i + 1] = t;
      }
      b[i + 1] -= multiplier[i] * b[i];
    }
    for (let i = n - 1; i >= 0; i--) {
      let s = b[i];
      if (i + 1 < n) s -= u1[i] * b[i + 1];
      if (i + 2 < n) s -= u2[i] * b[i + 2];
      b[i] = s / u0[i];
    }
  };
}

function normalise(x: Float64Array): void {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  const inv = 1 / Math.sqrt(s);
  for (let i = 0; i < x.length; i++) x[i] *= inv;
}

/**
 * Eigenvectors of T for the given eigenvalues (largest first) by inverse iteration. Eigenvalues
 * closer than 1e-3 ||T|| form a cluster whose vectors are kept orthogonal by Gram-Schmidt
 * after each solve, and equal ones are pulled apart by a few ulps, as LAPACK's dstein does.
 */
function tridiagonalEigenvectors(t: Tridiagonal, values: Float64Array, k: number): Float64Array[] {
  const n = t.diagonal.length;
  let norm = 0;
  for (let i = 0; i < n; i++) norm = Math.max(norm, Math.abs(t.diagonal[i]) + Math.abs(t.offDiagonal[i]) + (i > 0 ? Math.abs(t.offDiagonal[i - 1]) : 0));
  const tiny = Math.max(EPS * norm, Number.MIN_VALUE);
  const vectors: Float64Array[] = [];
  let clusterStart = 0;
  let previousShift = Infinity;
  for (let j = 0; j < k; j++) {
    if (j > 0 && values[j - 1] - values[j] > 1e-3 * norm) clusterStart = j;
    let shift = values[j];
    if (j > clusterStart && previousShift - shift < 10 * EPS * Math.max(Math.abs(shift), tiny))
      shift = previousShift - 10 * EPS * Math.max(Math.abs(shift), tiny);
    previousShift = shift;
    const solve = shiftedSolver(t.diagonal, t.offDiagonal, shift, tiny);
    // A fixed start (not random) keeps the fit deterministic; its entries vary so that it is
    // not orthogonal to any eigenvector by construction.
    const x = Float64Array.from({ length: n }, (_, i) => 1 + ((i * 7919 + j * 104729) % 1009) / 1009);
    for (let iteration = 0; iteration < 3; iteration++) {
      solve(x);
      for (let c = clusterStart; c < j; c++) {
        const other = vectors[c];
        let dot = 0;
        for (let i = 0; i < n; i++) dot += x[i] * other[i];
        for (let i = 0; i < n; i++) x[i] -= dot * other[i];
      }
      normalise(x);
    }
    vectors.push(x);
  }
  return vectors;
}

/**
 * Eigenvalues of the symmetric n x n row-major `matrix` (largest first); eigenvectors are
 * computed when asked for, for as many of the largest as asked.
 */
export async function symmetricEigen(matrix: Float64Array, n: number): Promise<SymmetricEigen> {
  if (matrix.length !== n * n) throw new Error(`symmetricEigen: expected ${n * n} entries, got ${matrix.length}`);
  // Worked on A / max|A|: inverse iteration divides by about eps ||T||, which overflows or
  // underflows for entries far from 1 (a zero matrix: every vector is an eigenvector).
  let scale = 0;
  for (let i = 0; i < n; i++) for (let j = i; j < n; j++) scale = Math.max(scale, Math.abs(matrix[i * n + j]));
  if (scale === 0) {
    const unit = (j: number) => Float64Array.from({ length: n }, (_, i) => (i === j ? 1 : 0));
    return { values: new Float64Array(n), vectors: (k) => Array.from({ length: Math.min(k, n) }, (_, j) => unit(j)) };
  }
  const t = await tridiagonalise(matrix, n, scale);
  const values = tridiagonalEigenvalues(t.diagonal, t.offDiagonal).sort().reverse();
  const vectors = (k: number) => {
    const xs = tridiagonalEigenvectors(t, values, Math.min(k, n));
    // Back to A's coordinates: x <- H_0 H_1 ... H_{n-3} z.
    for (const x of xs) {
      for (let s = t.reflectors.length - 1; s >= 0; s--) {
        const { v, beta } = t.reflectors[s];
        if (beta === 0) continue;
        let dot = 0;
        for (let i = 0; i < v.length; i++) dot += v[i] * x[s + 1 + i];
        const f = beta * dot;
        for (let i = 0; i < v.length; i++) x[s + 1 + i] -= f * v[i];
      }
    }
    return xs;
  };
  return { values: values.map((v) => v * scale), vectors };
}

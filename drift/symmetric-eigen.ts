// Eigenvalues of a symmetric matrix, and eigenvectors for the largest k only, the way LAPACK's
// dsyevx works: Householder reduction to tridiagonal form, implicit QL for the eigenvalues,
// inverse iteration on the tridiagonal matrix for the k vectors wanted, and the reflections
// applied back to those k vectors alone.
//
// Written by hand because no maintained JavaScript library computes a partial symmetric
// eigendecomposition: ml-matrix (JAMA's algorithm) accumulates every eigenvector through every
// QL rotation, 135 ms for a 256 x 256 covariance when a drift check needs 8 of them.

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

/** Q'AQ = T by n - 2 Householder reflections (Golub and Van Loan, algorithm 8.3.1); reads A's upper triangle. */
function tridiagonalise(matrix: Float64Array, n: number, scale: number): Tridiagonal {
  const a = Float64Array.from(matrix, (v) => v / scale);
  const diagonal = new Float64Array(n);
  const offDiagonal = new Float64Array(n);
  const reflectors: Tridiagonal['reflectors'] = [];
  const p = new Float64Array(n);
  for (let k = 0; k < n - 2; k++) {
    const m = n - k - 1;
    const row = k * n + k + 1; // a[k][k+1..n-1], the column below the diagonal by symmetry
    let normSq = 0;
    for (let i = 0; i < m; i++) normSq += a[row + i] * a[row + i];
    const x0 = a[row];
    diagonal[k] = a[k * n + k];
    const tail = normSq - x0 * x0;
    if (tail <= 0) {
      // Already tridiagonal in this column: the identity.
      offDiagonal[k] = x0;
      reflectors.push({ v: new Float64Array(m), beta: 0 });
      continue;
    }
    const alpha = x0 > 0 ? -Math.sqrt(normSq) : Math.sqrt(normSq);
    const v = a.slice(row, row + m);
    v[0] = x0 - alpha;
    const beta = 1 / (normSq - alpha * x0);
    offDiagonal[k] = alpha;
    reflectors.push({ v, beta });
    // A22 <- H A22 H = A22 - v w' - w v', w = p - (beta p'v / 2) v, p = beta A22 v, on the
    // upper triangle only (rows stay contiguous, half the work of the full square).
    const base = (k + 1) * n + k + 1;
    p.fill(0, 0, m);
    for (let i = 0; i < m; i++) {
      const r = base + i * n;
      const vi = v[i];
      let s = a[r + i] * vi;
      for (let j = i + 1; j < m; j++) {
        const aij = a[r + j];
        s += aij * v[j];
        p[j] += aij * vi;
      }
      p[i] += s;
    }
    let pv = 0;
    for (let i = 0; i < m; i++) {
      p[i] *= beta;
      pv += p[i] * v[i];
    }
    const K = (beta * pv) / 2;
    for (let i = 0; i < m; i++) p[i] -= K * v[i];
    for (let i = 0; i < m; i++) {
      const r = base + i * n;
      const vi = v[i];
      const wi = p[i];
      for (let j = i; j < m; j++) a[r + j] -= vi * p[j] + wi * v[j];
    }
  }
  if (n >= 2) {
    diagonal[n - 2] = a[(n - 2) * n + n - 2];
    offDiagonal[n - 2] = a[(n - 2) * n + n - 1];
  }
  diagonal[n - 1] = a[n * n - 1];
  return { diagonal, offDiagonal, reflectors };
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
      let r = Math.hypot(p, 1);
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
        r = Math.hypot(p, e[i]);
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
export function symmetricEigen(matrix: Float64Array, n: number): SymmetricEigen {
  if (matrix.length !== n * n) throw new Error(`symmetricEigen: expected ${n * n} entries, got ${matrix.length}`);
  // Worked on A / max|A|: inverse iteration divides by about eps ||T||, which overflows or
  // underflows for entries far from 1 (a zero matrix: every vector is an eigenvector).
  let scale = 0;
  for (let i = 0; i < matrix.length; i++) scale = Math.max(scale, Math.abs(matrix[i]));
  if (scale === 0) {
    const unit = (j: number) => Float64Array.from({ length: n }, (_, i) => (i === j ? 1 : 0));
    return { values: new Float64Array(n), vectors: (k) => Array.from({ length: Math.min(k, n) }, (_, j) => unit(j)) };
  }
  const t = tridiagonalise(matrix, n, scale);
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

// The partial symmetric eigensolver on matrices built from a known spectrum (A = Q diag Q' with
// Q a product of random reflections): eigenvalues, residuals and orthogonality, including the
// repeated and nearly repeated eigenvalues a covariance's noise floor produces.
import { describe, expect, it } from 'vitest';
import { symmetricEigen } from '../../drift/symmetric-eigen.ts';
import { gaussian, mulberry32 } from '../helpers/random.ts';

/** Row-major Q diag(values) Q' and Q's columns, Q the product of `n` random reflections. */
function withSpectrum(values: number[], seed: number): { matrix: Float64Array; axes: Float64Array[] } {
  const n = values.length;
  const g = gaussian(mulberry32(seed));
  const axes = Array.from({ length: n }, (_, i) => Float64Array.from({ length: n }, (_, j) => (i === j ? 1 : 0)));
  for (let r = 0; r < n; r++) {
    const v = Float64Array.from({ length: n }, g);
    const vv = v.reduce((s, x) => s + x * x, 0);
    for (const q of axes) {
      const f = (2 * q.reduce((s, x, j) => s + x * v[j], 0)) / vv;
      for (let j = 0; j < n; j++) q[j] -= f * v[j];
    }
  }
  const matrix = new Float64Array(n * n);
  axes.forEach((q, k) => {
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) matrix[i * n + j] += values[k] * q[i] * q[j];
  });
  return { matrix, axes };
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

function expectEigenpairs(matrix: Float64Array, n: number, values: ArrayLike<number>, vectors: Float64Array[]) {
  const scale = Math.max(...Array.from(values, Math.abs), 1e-300);
  vectors.forEach((x, k) => {
    expect(Math.abs(dot(x, x) - 1)).toBeLessThan(1e-12);
    for (let i = 0; i < n; i++) expect(Math.abs(dot(matrix.subarray(i * n, i * n + n), x) - values[k] * x[i]) / scale).toBeLessThan(1e-12);
    for (let j = 0; j < k; j++) expect(Math.abs(dot(x, vectors[j]))).toBeLessThan(1e-12);
  });
}

describe('symmetricEigen', async () => {
  it('finds every eigenvalue, largest first, and the axes of distinct ones', async () => {
    const spectrum = Array.from({ length: 40 }, (_, i) => 100 / (i + 1) - 1);
    const { matrix, axes } = withSpectrum(spectrum, 1);
    const eigen = await symmetricEigen(matrix, 40);
    eigen.values.forEach((v, i) => expect(Math.abs(v - spectrum[i]) / 100).toBeLessThan(1e-13));
    const vectors = eigen.vectors(8);
    expect(vectors).toHaveLength(8);
    expectEigenpairs(matrix, 40, eigen.values, vectors);
    vectors.forEach((x, k) => expect(Math.abs(Math.abs(dot(x, axes[k])) - 1)).toBeLessThan(1e-12));
  });

  it('keeps the vectors of repeated and nearly repeated eigenvalues orthogonal', async () => {
    // A noise floor: three spikes over 57 eigenvalues equal to 1 or within 1e-9 of each other.
    const spectrum = [50, 20, 20, ...Array.from({ length: 57 }, (_, i) => (i < 30 ? 1 : 1 - (i - 30) * 1e-11))];
    const { matrix } = withSpectrum(spectrum, 2);
    const eigen = await symmetricEigen(matrix, 60);
    eigen.values.forEach((v, i) => expect(Math.abs(v - spectrum[i]) / 50).toBeLessThan(1e-13));
    expectEigenpairs(matrix, 60, eigen.values, eigen.vectors(60));
  });

  it('reduces across several panels, through columns found already reduced inside a panel', async () => {
    // Three blocks on the diagonal (5, 40 and 30 rows): the step on the first block's last row
    // finds nothing to annihilate, and the next steps of the same panel reduce the second block.
    const sizes = [5, 40, 30];
    const n = sizes.reduce((s, x) => s + x, 0);
    const matrix = new Float64Array(n * n);
    const spectrum: number[] = [];
    let offset = 0;
    sizes.forEach((size, b) => {
      const values = Array.from({ length: size }, (_, i) => (b + 1) * 10 - i * 0.2 * (b + 1));
      spectrum.push(...values);
      const block = withSpectrum(values, 10 + b).matrix;
      for (let i = 0; i < size; i++) for (let j = 0; j < size; j++) matrix[(offset + i) * n + offset + j] = block[i * size + j];
      offset += size;
    });
    spectrum.sort((x, y) => y - x);
    const eigen = await symmetricEigen(matrix, n);
    eigen.values.forEach((v, i) => expect(Math.abs(v - spectrum[i]) / 30).toBeLessThan(1e-13));
    expectEigenpairs(matrix, n, eigen.values, eigen.vectors(n));
  });

  it('gives the same answer at every size around a panel edge, reading the upper triangle only', async () => {
    for (const n of [3, 17, 18, 19, 33, 34]) {
      const spectrum = Array.from({ length: n }, (_, i) => n - i + (i % 3) * 0.25);
      spectrum.sort((x, y) => y - x);
      const { matrix } = withSpectrum(spectrum, 20 + n);
      // Garbage below the diagonal: the solver is documented to read the upper triangle.
      const upperOnly = Float64Array.from(matrix);
      for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) upperOnly[i * n + j] = (i + j) % 2 ? Infinity : NaN;
      const eigen = await symmetricEigen(upperOnly, n);
      eigen.values.forEach((v, i) => expect(Math.abs(v - spectrum[i]) / n).toBeLessThan(1e-13));
      expectEigenpairs(matrix, n, eigen.values, eigen.vectors(n));
    }
  });

  it('keeps entries far smaller than the subdiagonal, which a norm less x0^2 would cancel', async () => {
    // Tridiagonal but for two entries about 1e-9 of the subdiagonal: dropping them moves the
    // eigenpairs by about that much, far beyond the residuals asked for.
    const n = 20;
    const matrix = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      matrix[i * n + i] = i + 1;
      if (i + 1 < n) matrix[i * n + i + 1] = matrix[(i + 1) * n + i] = 0.5;
    }
    for (const [i, j, x] of [
      [0, 2, 1e-9],
      [5, 9, 3e-9],
    ])
      matrix[i * n + j] = matrix[j * n + i] = x;
    const eigen = await symmetricEigen(matrix, n);
    expectEigenpairs(matrix, n, eigen.values, eigen.vectors(n));
  });

  it('handles a rank-deficient matrix, an already diagonal one and the smallest sizes', async () => {
    const low = withSpectrum([9, 4, 0, 0, 0, 0, 0], 3);
    const e = await symmetricEigen(low.matrix, 7);
    expect(Math.abs(e.values[2])).toBeLessThan(1e-14 * 9);
    expectEigenpairs(low.matrix, 7, e.values, e.vectors(7));
    const diagonal = Float64Array.from({ length: 16 }, (_, i) => (i % 5 === 0 ? i % 3 : 0));
    const d = await symmetricEigen(diagonal, 4);
    expectEigenpairs(diagonal, 4, d.values, d.vectors(4));
    expect((await symmetricEigen(Float64Array.of(-2), 1)).vectors(1)).toEqual([Float64Array.of(1)]);
    const two = Float64Array.of(2, 1, 1, 2);
    const t = await symmetricEigen(two, 2);
    expect(Array.from(t.values)).toEqual([3, 1]);
    expectEigenpairs(two, 2, t.values, t.vectors(2));
  });

  it('gives finite unit vectors for a zero matrix and for entries far from 1 (identical frames, tiny or huge spreads)', async () => {
    const zero = await symmetricEigen(new Float64Array(9), 3);
    expect(Array.from(zero.values)).toEqual([0, 0, 0]);
    expectEigenpairs(new Float64Array(9), 3, zero.values, zero.vectors(3));
    for (const scale of [1e-200, 1e200]) {
      const spectrum = [5, 3, 3, 1, 0].map((v) => v * scale);
      const { matrix } = withSpectrum(spectrum, 4);
      const e = await symmetricEigen(matrix, 5);
      e.values.forEach((v, i) => expect(Math.abs(v - spectrum[i]) / (5 * scale)).toBeLessThan(1e-13));
      expectEigenpairs(matrix, 5, e.values, e.vectors(5));
    }
  });

  it('refuses a matrix whose size does not match', async () => {
    await expect(symmetricEigen(new Float64Array(5), 2)).rejects.toThrow(/expected 4 entries, got 5/);
  });
});

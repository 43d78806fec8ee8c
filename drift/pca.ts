// PCA fitted on the reference window, as scikit-learn's PCA computes it (centred data,
// explained variance with n - 1), through ml-matrix's symmetric eigendecomposition of the
// covariance: a D x D problem however many frames the window holds.
import { EigenvalueDecomposition, Matrix } from 'ml-matrix';

export interface PcaModel {
  mean: Float64Array;
  /** components[k] is the k-th principal axis (unit length), largest variance first. */
  components: Float64Array[];
  explainedVariance: number[];
  explainedVarianceRatio: number[];
}

/** Rows per block of the covariance product: a block of 256-d rows stays in the CPU's cache. */
const BLOCK_ROWS = 128;

/**
 * Upper triangle of the centred cross-product X'X (row-major, d padded to a multiple of 4), by
 * blocks of rows.
 *
 * Written by hand because no maintained JavaScript library has a fast X'X: ml-matrix's
 * `transpose().mmul()` copies the data into nested arrays and runs several times slower. Each
 * block is copied centred and transposed into one contiguous array; entries are computed four
 * by four (a 4 x 4 tile of sums in registers, 8 loads for 16 multiply-adds).
 */
function centredCrossProduct(rows: ArrayLike<number>[], mean: Float64Array): { cross: Float64Array; stride: number } {
  const d = mean.length;
  const stride = Math.ceil(d / 4) * 4;
  const cross = new Float64Array(stride * stride);
  // Padding rows (d..stride) stay zero and add nothing.
  const block = new Float64Array(stride * BLOCK_ROWS);
  for (let start = 0; start < rows.length; start += BLOCK_ROWS) {
    const m = Math.min(BLOCK_ROWS, rows.length - start);
    if (m < BLOCK_ROWS) block.fill(0);
    for (let i = 0; i < m; i++) {
      const r = rows[start + i];
      for (let j = 0; j < d; j++) block[j * BLOCK_ROWS + i] = r[j] - mean[j];
    }
    for (let a = 0; a < stride; a += 4) {
      const a0 = a * BLOCK_ROWS;
      const a1 = a0 + BLOCK_ROWS;
      const a2 = a1 + BLOCK_ROWS;
      const a3 = a2 + BLOCK_ROWS;
      for (let b = a; b < stride; b += 4) {
        const b0 = b * BLOCK_ROWS;
        const b1 = b0 + BLOCK_ROWS;
        const b2 = b1 + BLOCK_ROWS;
        const b3 = b2 + BLOCK_ROWS;
        let s00 = 0,
          s01 = 0,
          s02 = 0,
          s03 = 0,
          s10 = 0,
          s11 = 0,
          s12 = 0,
          s13 = 0;
        let s20 = 0,
          s21 = 0,
          s22 = 0,
          s23 = 0,
          s30 = 0,
          s31 = 0,
          s32 = 0,
          s33 = 0;
        for (let i = 0; i < m; i++) {
          const x0 = block[a0 + i],
            x1 = block[a1 + i],
            x2 = block[a2 + i],
            x3 = block[a3 + i];
          const y0 = block[b0 + i],
            y1 = block[b1 + i],
            y2 = block[b2 + i],
            y3 = block[b3 + i];
          s00 += x0 * y0;
          s01 += x0 * y1;
          s02 += x0 * y2;
          s03 += x0 * y3;
          s10 += x1 * y0;
          s11 += x1 * y1;
          s12 += x1 * y2;
          s13 += x1 * y3;
          s20 += x2 * y0;
          s21 += x2 * y1;
          s22 += x2 * y2;
          s23 += x2 * y3;
          s30 += x3 * y0;
          s31 += x3 * y1;
          s32 += x3 * y2;
          s33 += x3 * y3;
        }
        let o = a * stride + b;
        cross[o] += s00;
        cross[o + 1] += s01;
        cross[o + 2] += s02;
        cross[o + 3] += s03;
        o += stride;
        cross[o] += s10;
        cross[o + 1] += s11;
        cross[o + 2] += s12;
        cross[o + 3] += s13;
        o += stride;
        cross[o] += s20;
        cross[o + 1] += s21;
        cross[o + 2] += s22;
        cross[o + 3] += s23;
        o += stride;
        cross[o] += s30;
        cross[o + 1] += s31;
        cross[o + 2] += s32;
        cross[o + 3] += s33;
      }
    }
  }
  return { cross, stride };
}

export function fitPca(rows: ArrayLike<number>[], opts: { components?: number; varianceTarget?: number } = {}): PcaModel {
  const n = rows.length;
  if (n < 2) throw new Error('PCA needs at least two reference rows');
  const d = rows[0].length;
  const mean = new Float64Array(d);
  for (const r of rows) for (let j = 0; j < d; j++) mean[j] += r[j];
  for (let j = 0; j < d; j++) mean[j] /= n;
  const { cross, stride } = centredCrossProduct(rows, mean);
  const C = new Matrix(d, d);
  for (let a = 0; a < d; a++)
    for (let b = a; b < d; b++) {
      const v = cross[a * stride + b] / (n - 1);
      C.set(a, b, v);
      C.set(b, a, v);
    }
  const eig = new EigenvalueDecomposition(C, { assumeSymmetric: true });
  const values = eig.realEigenvalues;
  const vectors = eig.eigenvectorMatrix;
  const order = values.map((v, i) => [v, i] as const).sort((x, y) => y[0] - x[0]);
  const total = values.reduce((s, v) => s + Math.max(v, 0), 0);
  let k = Math.min(opts.components ?? d, d, n - 1);
  if (opts.varianceTarget !== undefined) {
    let acc = 0;
    k = 0;
    while (k < order.length && acc / total < opts.varianceTarget) acc += Math.max(order[k++][0], 0);
  }
  const chosen = order.slice(0, k);
  return {
    mean,
    components: chosen.map(([, i]) => Float64Array.from(vectors.getColumn(i))),
    explainedVariance: chosen.map(([v]) => Math.max(v, 0)),
    explainedVarianceRatio: chosen.map(([v]) => Math.max(v, 0) / total),
  };
}

/** Projects rows onto the model's components: one column of scores per component. */
export function projectPca(model: PcaModel, rows: ArrayLike<number>[]): Float64Array[] {
  const { mean, components } = model;
  const d = mean.length;
  const k = components.length;
  const out = components.map(() => new Float64Array(rows.length));
  const zero = new Float64Array(d);
  // Eight components per pass over a row, summed in registers: a row is read once per eight
  // (missing components past the last read zeros and are not written).
  for (let c = 0; c < k; c += 8) {
    const w = Array.from({ length: 8 }, (_, q) => (c + q < k ? components[c + q] : zero));
    const [w0, w1, w2, w3, w4, w5, w6, w7] = w;
    const sums = new Float64Array(8);
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i];
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      let s4 = 0;
      let s5 = 0;
      let s6 = 0;
      let s7 = 0;
      for (let j = 0; j < d; j++) {
        const x = r[j] - mean[j];
        s0 += x * w0[j];
        s1 += x * w1[j];
        s2 += x * w2[j];
        s3 += x * w3[j];
        s4 += x * w4[j];
        s5 += x * w5[j];
        s6 += x * w6[j];
        s7 += x * w7[j];
      }
      sums[0] = s0;
      sums[1] = s1;
      sums[2] = s2;
      sums[3] = s3;
      sums[4] = s4;
      sums[5] = s5;
      sums[6] = s6;
      sums[7] = s7;
      for (let q = 0; q < 8 && c + q < k; q++) out[c + q][i] = sums[q];
    }
  }
  return out;
}

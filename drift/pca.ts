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

export function fitPca(rows: ArrayLike<number>[], opts: { components?: number; varianceTarget?: number } = {}): PcaModel {
  const n = rows.length;
  if (n < 2) throw new Error('PCA needs at least two reference rows');
  const d = rows[0].length;
  const mean = new Float64Array(d);
  for (const r of rows) for (let j = 0; j < d; j++) mean[j] += r[j] / n;
  // Covariance accumulated row by row: no n x d copy of the data is made.
  const cov = new Float64Array(d * d);
  const centred = new Float64Array(d);
  for (const r of rows) {
    for (let j = 0; j < d; j++) centred[j] = r[j] - mean[j];
    for (let a = 0; a < d; a++) {
      const ca = centred[a];
      if (ca === 0) continue;
      for (let b = a; b < d; b++) cov[a * d + b] += ca * centred[b];
    }
  }
  const C = new Matrix(d, d);
  for (let a = 0; a < d; a++)
    for (let b = a; b < d; b++) {
      const v = cov[a * d + b] / (n - 1);
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
  const d = model.mean.length;
  const out = model.components.map(() => new Float64Array(rows.length));
  rows.forEach((r, i) => {
    model.components.forEach((axis, k) => {
      let s = 0;
      for (let j = 0; j < d; j++) s += (r[j] - model.mean[j]) * axis[j];
      out[k][i] = s;
    });
  });
  return out;
}

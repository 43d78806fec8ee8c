// PCA fitted on the reference window, as scikit-learn's PCA computes it (centred data,
// explained variance with n - 1), through the symmetric eigendecomposition of the covariance:
// a D x D problem however many frames the window holds.
import { crossProductAndSums, projectRows } from './onnx-kernels.ts';
import type { RowMatrix } from './row-matrix.ts';
import { symmetricEigen } from './symmetric-eigen.ts';

export interface PcaModel {
  mean: Float64Array;
  /** components[k] is the k-th principal axis (unit length), largest variance first. */
  components: Float64Array[];
  explainedVariance: number[];
  explainedVarianceRatio: number[];
}

/**
 * Fits the PCA: X'X and the column sums by onnxruntime (`onnx-kernels.ts`), the covariance
 * (X'X - n mean mean') / (n - 1) as scikit-learn's covariance solver forms it, then every
 * eigenvalue and the eigenvectors of the chosen components only (`symmetric-eigen.ts`).
 */
export async function fitPca(x: RowMatrix, opts: { components?: number; varianceTarget?: number } = {}): Promise<PcaModel> {
  const n = x.rows;
  if (n < 2) throw new Error('PCA needs at least two reference rows');
  const d = x.cols;
  const { gram, sums } = await crossProductAndSums(x);
  const mean = sums.map((s) => s / n);
  const covariance = new Float64Array(d * d);
  for (let a = 0; a < d; a++) for (let b = 0; b < d; b++) covariance[a * d + b] = (gram[a * d + b] - n * mean[a] * mean[b]) / (n - 1);
  const eigen = await symmetricEigen(covariance, d);
  const values = eigen.values.map((v) => Math.max(v, 0));
  const total = values.reduce((s, v) => s + v, 0);
  let k = Math.min(opts.components ?? d, d, n - 1);
  if (opts.varianceTarget !== undefined) {
    let acc = 0;
    k = 0;
    while (k < d && acc / total < opts.varianceTarget) acc += values[k++];
  }
  const explainedVariance = [...values.subarray(0, k)];
  return {
    mean,
    components: eigen.vectors(k),
    explainedVariance,
    explainedVarianceRatio: explainedVariance.map((v) => v / total),
  };
}

/** Projects rows onto the model's components: one column of scores per component. */
export function projectPca(model: PcaModel, x: RowMatrix): Promise<Float64Array[]> {
  return projectRows(x, model.mean, model.components);
}

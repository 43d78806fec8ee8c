// Embeddings as one row-major float64 array, the form the drift statistics read: onnxruntime
// reads chunks of it without a copy, and one copy serves the PCA fit and the projection.

export interface RowMatrix {
  data: Float64Array;
  rows: number;
  cols: number;
}

/** Copies rows of equal length into a RowMatrix (one pass; every later step reads views of it). */
export function rowMatrix(rows: ArrayLike<number>[]): RowMatrix {
  const cols = rows.length ? rows[0].length : 0;
  const data = new Float64Array(rows.length * cols);
  rows.forEach((r, i) => {
    if (r.length !== cols) throw new Error(`row ${i} has ${r.length} values, row 0 has ${cols}`);
    data.set(r, i * cols);
  });
  return { data, rows: rows.length, cols };
}

// The steps of a drift check that scale with the window, X'X (PCA fit), X W (projection onto the
// components) and the spread test's sums over relabellings, and the eigensolver's blocked
// updates, run by onnxruntime: its multi-threaded matrix products in float64.
// Hand-written JavaScript ran about 3.5 GFLOP/s on one thread: 900 ms for X'X of 50,000 x 256,
// seven times scikit-learn's whole fit. onnxruntime is already the platform's
// numeric engine, so this costs no new native dependency.
import protobuf from 'protobufjs';
import * as ort from 'onnxruntime-node';
import type { RowMatrix } from './row-matrix.ts';

/**
 * Rows per onnxruntime run: bounds the copies its graphs make (4,096 x 256 float64 is 8 MB), and
 * X'X is fastest at this size (50,000 x 256, interleaved in one process: 42 ms, against 44 at
 * 2,048 rows and 59 at 16,384).
 */
const CHUNK_ROWS = 4096;

// onnx.proto's enum values used below.
const DOUBLE = 11; // TensorProto.DataType
const ATTRIBUTE_INT = 2; // AttributeProto.AttributeType
const ATTRIBUTE_INTS = 7;

interface OnnxNode {
  op: string;
  inputs: string[];
  outputs: string[];
  attributes?: Record<string, number | number[]>;
}

/**
 * A float64 ONNX model (opset 11) encoded field by field with protobufjs's writer, by
 * onnx.proto's field numbers. The graphs here are a few nodes each; building them in code keeps
 * the project from shipping generated binaries for them. Dimensions are named, so free.
 */
function onnxModel(nodes: OnnxNode[], inputs: Record<string, string[]>, outputs: Record<string, string[]>): Uint8Array {
  const w = protobuf.Writer.create();
  const field = (number: number, wire: 0 | 2) => w.uint32((number << 3) | wire);
  const valueInfo = (fieldNumber: number, name: string, dims: string[]) => {
    field(fieldNumber, 2).fork(); // GraphProto.input or .output: ValueInfoProto
    field(1, 2).string(name);
    field(2, 2).fork(); // type: TypeProto
    field(1, 2).fork(); // tensor_type
    field(1, 0).int32(DOUBLE); // elem_type
    field(2, 2).fork(); // shape: TensorShapeProto
    for (const dim of dims) {
      field(1, 2).fork(); // dim
      field(2, 2).string(dim); // dim_param
      w.ldelim();
    }
    w.ldelim().ldelim().ldelim().ldelim();
  };
  field(1, 0).int64(8); // ModelProto.ir_version
  field(8, 2).fork(); // opset_import
  field(2, 0).int64(11); // version
  w.ldelim();
  field(7, 2).fork(); // ModelProto.graph
  for (const node of nodes) {
    field(1, 2).fork(); // GraphProto.node
    for (const input of node.inputs) field(1, 2).string(input);
    for (const output of node.outputs) field(2, 2).string(output);
    field(4, 2).string(node.op); // op_type
    for (const [name, value] of Object.entries(node.attributes ?? {})) {
      field(5, 2).fork(); // NodeProto.attribute
      field(1, 2).string(name);
      if (Array.isArray(value))
        for (const v of value) field(8, 0).int64(v); // ints
      else field(3, 0).int64(value); // i
      field(20, 0).int32(Array.isArray(value) ? ATTRIBUTE_INTS : ATTRIBUTE_INT);
      w.ldelim();
    }
    w.ldelim();
  }
  field(2, 2).string('drift'); // GraphProto.name
  for (const [name, dims] of Object.entries(inputs)) valueInfo(11, name, dims);
  for (const [name, dims] of Object.entries(outputs)) valueInfo(12, name, dims);
  w.ldelim();
  return w.finish();
}

/**
 * x [n, d] -> gram = x'x [d, d] and sums = column sums [d]. onnxruntime's optimiser folds the
 * Transpose into the MatMul (a transposed-operand product, no copy of x). Measured on 4,096 x
 * 256 chunks (2 cores, AVX-512): 3.9 ms, against 4.1 for x'x in column halves skipping the
 * lower block (Split copies x, and the smaller products run slower per flop) and 4.2 for Gemm
 * with transA; numpy's x.T @ x, which computes one triangle only, takes 3.5.
 */
const crossProductModel = () =>
  onnxModel(
    [
      { op: 'Transpose', inputs: ['x'], outputs: ['xt'] },
      { op: 'MatMul', inputs: ['xt', 'x'], outputs: ['gram'] },
      { op: 'ReduceSum', inputs: ['x'], outputs: ['sums'], attributes: { axes: [0], keepdims: 0 } },
    ],
    { x: ['n', 'd'] },
    { gram: ['d', 'd'], sums: ['d'] },
  );

/** x [n, d], mean [d], axes [d, k] -> scores = (x - mean) axes [n, k]. */
const projectionModel = () =>
  onnxModel(
    [
      { op: 'Sub', inputs: ['x', 'mean'], outputs: ['centred'] },
      { op: 'MatMul', inputs: ['centred', 'axes'], outputs: ['scores'] },
    ],
    { x: ['n', 'd'], mean: ['d'], axes: ['d', 'k'] },
    { scores: ['n', 'k'] },
  );

/** a [m, k] b [k, n] -> product [m, n]. */
const matMulModel = () => onnxModel([{ op: 'MatMul', inputs: ['a', 'b'], outputs: ['product'] }], { a: ['m', 'k'], b: ['k', 'n'] }, { product: ['m', 'n'] });

/** a [m, m], left [m, c], right [m, c] -> a - left right' [m, m]. */
const rankUpdateModel = () =>
  onnxModel(
    [
      { op: 'Transpose', inputs: ['right'], outputs: ['rightT'] },
      { op: 'MatMul', inputs: ['left', 'rightT'], outputs: ['product'] },
      { op: 'Sub', inputs: ['a', 'product'], outputs: ['updated'] },
    ],
    { a: ['m', 'm'], left: ['m', 'c'], right: ['m', 'c'] },
    { updated: ['m', 'm'] },
  );

/**
 * A - V W' - W V' for the row-major m x m matrix A and m x b matrices V and W (LAPACK's dsyr2k),
 * as one product: [V W] [W V]' = V W' + W V'.
 */
export async function symmetricRankUpdate(a: Float64Array, v: Float64Array, w: Float64Array, m: number, b: number): Promise<Float64Array> {
  if (a.length !== m * m || v.length !== m * b || w.length !== m * b)
    throw new Error(`symmetricRankUpdate: ${a.length}, ${v.length} and ${w.length} values for m = ${m}, b = ${b}`);
  const left = new Float64Array(m * 2 * b);
  const right = new Float64Array(m * 2 * b);
  for (let r = 0; r < m; r++) {
    left.set(v.subarray(r * b, r * b + b), r * 2 * b);
    left.set(w.subarray(r * b, r * b + b), r * 2 * b + b);
    right.set(w.subarray(r * b, r * b + b), r * 2 * b);
    right.set(v.subarray(r * b, r * b + b), r * 2 * b + b);
  }
  const session = await sessionFor('rank update', rankUpdateModel);
  const out = await session.run({
    a: new ort.Tensor('float64', a, [m, m]),
    left: new ort.Tensor('float64', left, [m, 2 * b]),
    right: new ort.Tensor('float64', right, [m, 2 * b]),
  });
  return out.updated.data as Float64Array;
}

/** The product of two row-major float64 matrices, a (m x k) times b (k x n). */
export async function matMul(a: Float64Array, b: Float64Array, m: number, k: number, n: number): Promise<Float64Array> {
  if (a.length !== m * k || b.length !== k * n) throw new Error(`matMul: ${a.length} and ${b.length} values for ${m} x ${k} times ${k} x ${n}`);
  const session = await sessionFor('matmul', matMulModel);
  const out = await session.run({ a: new ort.Tensor('float64', a, [m, k]), b: new ort.Tensor('float64', b, [k, n]) });
  return out.product.data as Float64Array;
}

// Keyed by model: four, and every dimension is free, so one session serves every size.
const sessions = new Map<string, Promise<ort.InferenceSession>>();

/**
 * One session per model and process, made on first use; onnxruntime sizes its threads to the
 * cores. Its threads do not spin after a run (as the detector's do not, models/sessions.ts):
 * they would hold cores the worker's other activities need. A failed creation is forgotten, so
 * the next check tries again.
 */
function sessionFor(key: string, model: () => Uint8Array): Promise<ort.InferenceSession> {
  let session = sessions.get(key);
  if (!session) {
    session = ort.InferenceSession.create(model(), { interOpNumThreads: 1, extra: { session: { intra_op: { allow_spinning: '0' } } } });
    sessions.set(key, session);
    session.catch(() => sessions.delete(key));
  }
  return session;
}

/**
 * Runs `session` over the matrix in chunks of CHUNK_ROWS rows (input `x`, a view: nothing is
 * copied), with `fixed` inputs the same for every chunk, and hands each chunk's outputs to
 * `take` in order.
 */
async function overChunks(
  session: ort.InferenceSession,
  x: RowMatrix,
  fixed: Record<string, ort.Tensor>,
  take: (outputs: ort.InferenceSession.ReturnType, start: number) => void,
): Promise<void> {
  for (let start = 0; start < x.rows; start += CHUNK_ROWS) {
    const m = Math.min(CHUNK_ROWS, x.rows - start);
    const chunk = new ort.Tensor('float64', x.data.subarray(start * x.cols, (start + m) * x.cols), [m, x.cols]);
    take(await session.run({ x: chunk, ...fixed }), start);
  }
}

/**
 * X'X (d x d, row-major) and the column sums of X. Uncentred, as scikit-learn's covariance
 * solver computes it: centring would cost a pass over the rows in JavaScript, and in float64
 * the subtraction of n mean mean' loses only digits a mean 1e4 times the spread would cost.
 */
export async function crossProductAndSums(x: RowMatrix): Promise<{ gram: Float64Array; sums: Float64Array }> {
  const d = x.cols;
  const gram = new Float64Array(d * d);
  const sums = new Float64Array(d);
  await overChunks(await sessionFor('cross-product', crossProductModel), x, {}, (out) => {
    const part = out.gram.data as Float64Array;
    for (let i = 0; i < part.length; i++) gram[i] += part[i];
    const partSums = out.sums.data as Float64Array;
    for (let j = 0; j < d; j++) sums[j] += partSums[j];
  });
  return { gram, sums };
}

/** (X - mean) projected on each axis: one column of scores per axis. */
export async function projectRows(x: RowMatrix, mean: Float64Array, axes: Float64Array[]): Promise<Float64Array[]> {
  const d = mean.length;
  const k = axes.length;
  if (x.cols !== d) throw new Error(`rows have ${x.cols} values, the axes ${d}`);
  const columns = axes.map(() => new Float64Array(x.rows));
  if (x.rows === 0 || k === 0) return columns;
  const axesMatrix = new Float64Array(d * k);
  axes.forEach((axis, c) => axis.forEach((v, j) => (axesMatrix[j * k + c] = v)));
  const fixed = { mean: new ort.Tensor('float64', mean, [d]), axes: new ort.Tensor('float64', axesMatrix, [d, k]) };
  await overChunks(await sessionFor('projection', projectionModel), x, fixed, (out, start) => {
    const scores = out.scores.data as Float64Array;
    const m = scores.length / k;
    for (let i = 0; i < m; i++) for (let c = 0; c < k; c++) columns[c][start + i] = scores[i * k + c];
  });
  return columns;
}

// onnxruntime-node sessions of one model version each: the detector (batched frames in,
// detections + embeddings out) and the box model (a region in, a refined box out).
import * as ort from 'onnxruntime-node';
import { checkSignature, ModelContractError, parseModelMetadata, type BoxMetadata, type DetectionMetadata } from './contract.ts';
import { decodeRgb, letterboxInto, roiFromEncoded, roiFromImage, type RgbImage } from './preprocess.ts';

export interface Detection {
  className: string;
  score: number;
  /** Box normalized to the frame (0..1). */
  x1: number;
  y1: number;
  x2: number;
  y2: number;
  /** Unit-length object embedding, read by the detector at the detection's centre. */
  embedding: number[];
}

export interface FrameResult {
  detections: Detection[];
  embedding: Float32Array;
}

/** Some frames of a batch do not decode; the others are fine to score without them. */
export class UndecodableFramesError extends Error {
  constructor(readonly failures: { index: number; message: string }[]) {
    super(`${failures.length} frame(s) cannot be decoded: ${failures.map((f) => `#${f.index}: ${f.message}`).join('; ')}`);
    this.name = 'UndecodableFramesError';
  }
}

export interface SessionOptions {
  intraOpThreads: number;
  minScore: number;
}

async function createSession(bytes: Uint8Array, threads: number): Promise<ort.InferenceSession> {
  try {
    return await ort.InferenceSession.create(bytes, {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      // onnxruntime's threads spin for work after a run by default, holding cores that the
      // batch being stored and the next being decoded need (measured: 20 batches beside 30 ms of
      // other work each used 3.2 s of CPU spinning, 2.6 s without).
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    });
  } catch (err) {
    throw new ModelContractError(`onnxruntime cannot load the model: ${(err as Error).message.split('\n')[0]}`);
  }
}

export class DetectorSession {
  private constructor(
    readonly meta: DetectionMetadata,
    private readonly session: ort.InferenceSession,
    private readonly opts: SessionOptions,
  ) {}

  /** Loads, checks the contract, and runs one warm-up batch so the first real batch is not slow. */
  static async load(bytes: Uint8Array, opts: SessionOptions): Promise<DetectorSession> {
    const meta = parseModelMetadata(bytes);
    if (meta.kind !== 'detection') throw new ModelContractError(`expected a detection model, got kind "${meta.kind}"`);
    const session = await createSession(bytes, opts.intraOpThreads);
    checkSignature('detection', session.inputNames, session.outputNames);
    const detector = new DetectorSession(meta, session, opts);
    await detector.probe();
    return detector;
  }

  /** One run on a blank input: proves the graph executes and has the promised output shapes. */
  async probe(): Promise<void> {
    const s = this.meta.inputSize;
    const out = await this.run(new Float32Array(3 * s * s).fill(0.5), 1);
    const k = this.meta.maxDetections;
    const expect = (name: string, dims: number[]) => {
      const got = out[name].dims;
      if (got.length !== dims.length || got.some((d, i) => d !== dims[i])) {
        throw new ModelContractError(`output ${name} has shape [${got.join(', ')}], the contract says [${dims.join(', ')}]`);
      }
    };
    expect('boxes', [1, k, 4]);
    expect('scores', [1, k]);
    expect('class_ids', [1, k]);
    expect('embedding', [1, this.meta.embeddingDim]);
    expect('object_embeddings', [1, k, this.meta.objectEmbeddingDim]);
  }

  private run(input: Float32Array, n: number) {
    const s = this.meta.inputSize;
    return this.session.run({ images: new ort.Tensor('float32', input, [n, 3, s, s]) });
  }

  /** Scores a batch of encoded frames (PNG/JPEG) in one session.run. */
  async detect(images: Uint8Array[]): Promise<{ frames: FrameResult[]; timings: Record<string, number> }> {
    const t0 = performance.now();
    const settled = await Promise.allSettled(images.map((b) => decodeRgb(b)));
    const failures = settled.flatMap((r, index) =>
      r.status === 'rejected' ? [{ index, message: r.reason instanceof Error ? r.reason.message : String(r.reason) }] : [],
    );
    if (failures.length) throw new UndecodableFramesError(failures);
    const decoded = settled.map((r) => (r as PromiseFulfilledResult<Awaited<ReturnType<typeof decodeRgb>>>).value);
    const t1 = performance.now();
    const s = this.meta.inputSize;
    const input = new Float32Array(images.length * 3 * s * s);
    const scales = decoded.map((img, i) => letterboxInto(img, s, input, i * 3 * s * s).scale);
    const t2 = performance.now();
    const out = await this.run(input, images.length);
    const t3 = performance.now();
    const k = this.meta.maxDetections;
    const boxes = out.boxes.data as Float32Array;
    const scores = out.scores.data as Float32Array;
    const classIds = out.class_ids.data as BigInt64Array;
    const emb = out.embedding.data as Float32Array;
    const d = this.meta.embeddingDim;
    const objects = out.object_embeddings.data as Float32Array;
    const od = this.meta.objectEmbeddingDim;
    const frames = decoded.map((img, i) => {
      const detections: Detection[] = [];
      // Boxes are normalized to the letterboxed input; x_px = x * S / scale, then / frame size.
      const fx = s / scales[i] / img.width;
      const fy = s / scales[i] / img.height;
      for (let j = 0; j < k; j++) {
        const score = scores[i * k + j];
        if (score < this.opts.minScore) break; // sorted descending
        const b = (i * k + j) * 4;
        const cls = Number(classIds[i * k + j]);
        const o = (i * k + j) * od;
        detections.push({
          className: this.meta.classNames[cls] ?? `class_${cls}`,
          score,
          x1: Math.min(1, Math.max(0, boxes[b] * fx)),
          y1: Math.min(1, Math.max(0, boxes[b + 1] * fy)),
          x2: Math.min(1, Math.max(0, boxes[b + 2] * fx)),
          y2: Math.min(1, Math.max(0, boxes[b + 3] * fy)),
          embedding: Array.from(objects.subarray(o, o + od)),
        });
      }
      return { detections, embedding: emb.slice(i * d, (i + 1) * d) };
    });
    const t4 = performance.now();
    return { frames, timings: { decode: t1 - t0, preprocess: t2 - t1, inference: t3 - t2, postprocess: t4 - t3 } };
  }

  /** Bare session.run on a prepared tensor, for benchmarks against the wrapper. */
  runRaw(input: Float32Array, n: number) {
    return this.run(input, n);
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

export interface Region {
  x1: number;
  y1: number;
  x2: number;
  y2: number;
}

export interface RefinedBox {
  box: Region;
  score: number;
  bytesDecoded: number;
  frameBytes: number;
  timings: Record<string, number>;
}

interface PendingRegion {
  roi: Float32Array;
  resolve: (out: { box: Float32Array; score: number }) => void;
  reject: (err: unknown) => void;
}

/**
 * Regions asked while a run is in flight wait and go together in the next run, up to `maxBatch`
 * (dynamic batching with no added delay: an idle model runs a lone region at once). Under load
 * each session.run was a hop to onnxruntime's threads and back through a busy event loop; 16
 * reviewers' regions now cost about one run.
 *
 * Written by hand: DataLoader, the usual npm batcher, gathers what is asked within one tick of
 * the event loop, and HTTP requests arrive in different ticks; the batch must gather for as long
 * as the previous run takes.
 */
class RegionBatcher {
  private pending: PendingRegion[] = [];
  private running = false;

  constructor(
    private readonly run: (input: Float32Array, n: number) => Promise<ort.InferenceSession.OnnxValueMapType>,
    private readonly roiLength: number,
    private readonly maxBatch: number,
  ) {}

  refine(roi: Float32Array): Promise<{ box: Float32Array; score: number }> {
    return new Promise((resolve, reject) => {
      this.pending.push({ roi, resolve, reject });
      if (!this.running) void this.drain();
    });
  }

  private async drain() {
    this.running = true;
    while (this.pending.length) {
      const batch = this.pending.splice(0, this.maxBatch);
      const input = batch.length === 1 ? batch[0].roi : new Float32Array(batch.length * this.roiLength);
      if (batch.length > 1) batch.forEach((b, i) => input.set(b.roi, i * this.roiLength));
      try {
        const out = await this.run(input, batch.length);
        const boxes = out.box.data as Float32Array;
        const scores = out.score.data as Float32Array;
        batch.forEach((b, i) => b.resolve({ box: boxes.slice(4 * i, 4 * i + 4), score: scores[i] }));
      } catch (err) {
        for (const b of batch) b.reject(err);
      }
    }
    this.running = false;
  }
}

export class BoxModelSession {
  private readonly batcher: RegionBatcher;

  private constructor(
    readonly meta: BoxMetadata,
    private readonly session: ort.InferenceSession,
    private readonly maxBatch: number,
  ) {
    this.batcher = new RegionBatcher((input, n) => this.runRaw(input, n), 3 * meta.roiSize * meta.roiSize, maxBatch);
  }

  private async runOne(roi: Float32Array): Promise<{ box: Float32Array; score: number }> {
    const out = await this.runRaw(roi, 1);
    return { box: out.box.data as Float32Array, score: (out.score.data as Float32Array)[0] };
  }

  /** `maxBatch`: regions at most in one run of the model (BOX_ASSIST_MAX_BATCH). */
  static async load(bytes: Uint8Array, opts: Pick<SessionOptions, 'intraOpThreads'> & { maxBatch?: number }): Promise<BoxModelSession> {
    const meta = parseModelMetadata(bytes);
    if (meta.kind !== 'box') throw new ModelContractError(`expected a box model, got kind "${meta.kind}"`);
    const session = await createSession(bytes, opts.intraOpThreads);
    checkSignature('box', session.inputNames, session.outputNames);
    const model = new BoxModelSession(meta, session, opts.maxBatch ?? 32);
    await model.probe();
    return model;
  }

  async probe(): Promise<void> {
    // Two regions: concurrent asks run as one batch, so a graph fixed to one region is refused here.
    const r = this.meta.roiSize;
    const out = await this.runRaw(new Float32Array(2 * 3 * r * r).fill(0.5), 2).catch((err: Error) => {
      throw new ModelContractError(`the box model does not run 2 regions at once (${err.message}); the contract says roi [N, 3, R, R] for any N`);
    });
    if (out.box.dims.join(',') !== '2,4' || out.score.dims.join(',') !== '2') {
      throw new ModelContractError(
        `box model outputs for 2 regions have shapes box [${out.box.dims.join(', ')}] and score [${out.score.dims.join(', ')}]; the contract says [N, 4] and [N] for any N`,
      );
    }
  }

  runRaw(input: Float32Array, n: number) {
    const r = this.meta.roiSize;
    return this.session.run({ roi: new ort.Tensor('float32', input, [n, 3, r, r]) });
  }

  /** Refines a rough region (frame pixels) of an encoded frame, decoding only the part it needs,
   * or of a frame decoded before. */
  async refine(frame: Uint8Array | RgbImage, region: Region): Promise<RefinedBox> {
    const t0 = performance.now();
    const roi = frame instanceof Uint8Array ? await roiFromEncoded(frame, region, this.meta.roiSize) : roiFromImage(frame, region, this.meta.roiSize);
    const t1 = performance.now();
    // maxBatch 1: every region its own run, runs side by side (no batching).
    const out = this.maxBatch > 1 ? await this.batcher.refine(roi.tensor) : await this.runOne(roi.tensor);
    const t2 = performance.now();
    const b = out.box;
    const { x0, y0, side } = roi.geometry;
    const clampX = (v: number) => Math.min(roi.frameWidth, Math.max(0, v));
    const clampY = (v: number) => Math.min(roi.frameHeight, Math.max(0, v));
    return {
      box: { x1: clampX(x0 + b[0] * side), y1: clampY(y0 + b[1] * side), x2: clampX(x0 + b[2] * side), y2: clampY(y0 + b[3] * side) },
      score: out.score,
      bytesDecoded: roi.bytesDecoded,
      frameBytes: roi.frameWidth * roi.frameHeight * 3,
      timings: { crop: t1 - t0, inference: t2 - t1 },
    };
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

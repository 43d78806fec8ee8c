// Detector inference on a thread of its own. onnxruntime-node's `session.run` is synchronous on
// the calling thread (its promise wraps the native call in a setImmediate), so on the main thread
// a batch's inference, and the JavaScript letterboxing before it, block the event loop: the
// previous batch cannot be stored, nor heartbeats, HTTP requests or PGlite served, meanwhile.
// piscina (a maintained worker-thread pool) runs decoding, letterboxing and inference in a worker
// thread instead; the main thread sends encoded frames and gets detections back.
import { Piscina } from 'piscina';
import { ModelContractError, type DetectionMetadata } from './contract.ts';
import type { InferenceReply, InferenceTask, InferenceThreadData } from './inference-thread-worker.ts';
import { UndecodableFramesError, type FrameResult, type SessionOptions } from './sessions.ts';

/** A detector version loaded in the inference threads, used like a DetectorSession. */
export class ThreadedDetector {
  private constructor(
    readonly meta: DetectionMetadata,
    private readonly pool: Piscina<InferenceTask, InferenceReply>,
    private readonly version: string,
    // Kept so a thread that lacks the version (another thread, or one restarted after a crash)
    // can be sent it again.
    private readonly bytes: Uint8Array,
  ) {}

  static async load(pool: Piscina<InferenceTask, InferenceReply>, version: string, bytes: Uint8Array): Promise<ThreadedDetector> {
    const reply = raise(await pool.run({ op: 'load', version, bytes }));
    if (!('meta' in reply)) throw new Error(`the inference thread answered a load with ${Object.keys(reply).join(', ')}`);
    return new ThreadedDetector(reply.meta, pool, version, bytes);
  }

  async detect(images: Uint8Array[]): Promise<{ frames: FrameResult[]; timings: Record<string, number> }> {
    let reply = raise(await this.pool.run({ op: 'detect', version: this.version, images }));
    if ('unknownVersion' in reply) reply = raise(await this.pool.run({ op: 'detect', version: this.version, images, bytes: this.bytes }));
    if (!('frames' in reply)) throw new Error(`the inference thread answered a batch with ${Object.keys(reply).join(', ')}`);
    return reply;
  }

  /** Nothing to free here: the threads drop the versions they have not used for longest. */
  release(): Promise<void> {
    return Promise.resolve();
  }
}

/** Raises the failures a reply carries as the errors the main thread's callers expect. */
function raise(reply: InferenceReply): InferenceReply {
  if ('undecodable' in reply) throw new UndecodableFramesError(reply.undecodable);
  if ('contractError' in reply) throw new ModelContractError(reply.contractError);
  return reply;
}

export function startInferenceThreads(opts: SessionOptions & { threads: number; maxVersions: number }): Piscina<InferenceTask, InferenceReply> {
  const workerData: InferenceThreadData = { intraOpThreads: opts.intraOpThreads, minScore: opts.minScore, maxVersions: opts.maxVersions };
  return new Piscina<InferenceTask, InferenceReply>({
    filename: new URL('./inference-thread-entry.mjs', import.meta.url).href,
    minThreads: opts.threads,
    maxThreads: opts.threads,
    // Loaded sessions live in the threads: an idle thread is kept, not ended.
    idleTimeout: Number.POSITIVE_INFINITY,
    workerData,
  });
}

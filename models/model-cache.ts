// Sessions by model version, loaded from the blob store on first use and kept for the next
// batches. A request resolves its session once and uses it to the end, so a new version
// arriving mid-flight never mixes two versions in one answer; an evicted session is released
// only after its last in-flight request has finished. Detectors run in inference threads
// (models/inference-thread.ts), so a batch's inference never blocks this thread.
import type { Piscina } from 'piscina';
import type { DetectorProvider } from '../activities/scoring.ts';
import { modelKey, sha256Hex, type BlobStore } from '../storage/blob-store.ts';
import type { ModelKind } from './contract.ts';
import { startInferenceThreads, ThreadedDetector } from './inference-thread.ts';
import type { InferenceReply, InferenceTask } from './inference-thread-worker.ts';
import type { RgbImage } from './preprocess.ts';
import { BoxModelSession, type Region, type SessionOptions } from './sessions.ts';

type AnySession = ThreadedDetector | BoxModelSession;

interface Entry<S extends AnySession> {
  session: Promise<S>;
  inFlight: number;
  evicted: boolean;
  lastUsed: number;
}

export interface ModelCacheOptions extends SessionOptions {
  /** Versions kept loaded per kind (the newest used). */
  maxVersions?: number;
  /** Box assist regions at most in one run of the box model (default 32). */
  boxMaxBatch?: number;
  /** Threads running detectors (default 1: each runs onnxruntime with `intraOpThreads`). */
  inferenceThreads?: number;
  /** The file a version is served from (its model, or a variant such as INT8) and the sha256 it
   * was registered with; a file in the store that differs is refused. Without it, a version's
   * own model.onnx is loaded unchecked (tests of the cache alone). */
  registeredArtifact?: (kind: ModelKind, version: string) => Promise<{ key: string; sha256: string } | undefined>;
}

export class ModelCache implements DetectorProvider {
  private readonly entries = { detection: new Map<string, Entry<ThreadedDetector>>(), box: new Map<string, Entry<BoxModelSession>>() };
  private readonly maxVersions: number;
  // Started with the first detector, so a process that only refines boxes starts no thread.
  private threads: Piscina<InferenceTask, InferenceReply> | null = null;

  constructor(
    private readonly store: BlobStore,
    private readonly opts: ModelCacheOptions,
  ) {
    this.maxVersions = opts.maxVersions ?? 3;
  }

  private entry<K extends ModelKind>(kind: K, version: string): Entry<K extends 'detection' ? ThreadedDetector : BoxModelSession> {
    const map = this.entries[kind] as Map<string, Entry<AnySession>>;
    let e = map.get(version);
    if (!e) {
      const session: Promise<AnySession> = (async (): Promise<AnySession> => {
        const artifact = await this.opts.registeredArtifact?.(kind, version);
        const bytes = await this.store.get(artifact?.key ?? modelKey(kind, version));
        // The store is shared with the trainer and with whoever can write to its folder or
        // bucket: a model runs only if it is the file that passed registration.
        if (artifact && sha256Hex(bytes) !== artifact.sha256) {
          throw new Error(`the stored ${kind} model ${version} (${artifact.key}) does not match the sha256 it was registered with; refusing to load it`);
        }
        return kind === 'detection'
          ? ThreadedDetector.load(this.inferenceThreads(), version, bytes)
          : BoxModelSession.load(bytes, { intraOpThreads: this.opts.intraOpThreads, maxBatch: this.opts.boxMaxBatch });
      })();
      e = { session, inFlight: 0, evicted: false, lastUsed: Date.now() };
      map.set(version, e);
      // A version that fails to load is forgotten, so the next request tries again.
      session.catch(() => map.get(version) === e && map.delete(version));
      this.evict(kind);
    }
    return e as never;
  }

  private inferenceThreads() {
    this.threads ??= startInferenceThreads({ ...this.opts, threads: this.opts.inferenceThreads ?? 1, maxVersions: this.maxVersions });
    return this.threads;
  }

  private evict(kind: ModelKind): void {
    const map = this.entries[kind] as Map<string, Entry<AnySession>>;
    if (map.size <= this.maxVersions) return;
    const oldest = [...map.entries()].sort((a, b) => a[1].lastUsed - b[1].lastUsed)[0];
    map.delete(oldest[0]);
    oldest[1].evicted = true;
    if (oldest[1].inFlight === 0) void oldest[1].session.then((s) => s.release()).catch(() => undefined);
  }

  private async use<S extends AnySession, T>(e: Entry<S>, fn: (s: S) => Promise<T>): Promise<T> {
    e.inFlight++;
    e.lastUsed = Date.now();
    try {
      return await fn(await e.session);
    } finally {
      e.inFlight--;
      if (e.evicted && e.inFlight === 0) void e.session.then((s) => s.release()).catch(() => undefined);
    }
  }

  detect(modelVersion: string, images: Uint8Array[]) {
    return this.use(this.entry('detection', modelVersion), (s) => s.detect(images));
  }

  refine(modelVersion: string, frame: Uint8Array | RgbImage, region: Region) {
    return this.use(this.entry('box', modelVersion), (s) => s.refine(frame, region));
  }

  /** Loads a version ahead of its first request (a deploy warms the new model up before switching). */
  async warm(kind: ModelKind, version: string): Promise<void> {
    await this.entry(kind, version).session;
  }

  async close(): Promise<void> {
    for (const map of Object.values(this.entries) as Map<string, Entry<AnySession>>[]) {
      for (const e of map.values()) await e.session.then((s) => s.release()).catch(() => undefined);
      map.clear();
    }
    await this.threads?.destroy();
    this.threads = null;
  }
}

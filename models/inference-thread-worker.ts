// The inference thread's side (models/inference-thread.ts is the other): detector sessions by
// model version, loaded from the bytes the main thread sends, and batches decoded, letterboxed
// and run here. Replies are plain data: an error class does not survive the trip between threads,
// so the two expected failures travel as fields and the main thread raises them again.
import { workerData } from 'node:worker_threads';
import { ModelContractError, type DetectionMetadata } from './contract.ts';
import { DetectorSession, UndecodableFramesError, type FrameResult, type SessionOptions } from './sessions.ts';

export interface InferenceThreadData extends SessionOptions {
  /** Versions a thread keeps loaded (the least recently used goes first). */
  maxVersions: number;
}

export type InferenceTask =
  | { op: 'load'; version: string; bytes: Uint8Array }
  /** `bytes` comes along when the thread said it does not hold the version. */
  | { op: 'detect'; version: string; images: Uint8Array[]; bytes?: Uint8Array };

export type InferenceReply =
  | { meta: DetectionMetadata }
  | { frames: FrameResult[]; timings: Record<string, number> }
  | { unknownVersion: true }
  | { undecodable: { index: number; message: string }[] }
  | { contractError: string };

const opts = workerData as InferenceThreadData;
// Insertion order is recency order: a used version is moved to the end.
const sessions = new Map<string, DetectorSession>();

async function session(version: string, bytes: Uint8Array): Promise<DetectorSession> {
  let s = sessions.get(version);
  if (s) sessions.delete(version);
  else s = await DetectorSession.load(bytes, opts);
  sessions.set(version, s);
  // One task at a time runs on a thread, so an evicted session is never in use.
  while (sessions.size > opts.maxVersions) {
    const [oldest, evicted] = sessions.entries().next().value!;
    sessions.delete(oldest);
    await evicted.release();
  }
  return s;
}

export default async function handle(task: InferenceTask): Promise<InferenceReply> {
  try {
    if (task.op === 'load') return { meta: (await session(task.version, task.bytes)).meta };
    const bytes = task.bytes;
    if (!sessions.has(task.version) && !bytes) return { unknownVersion: true };
    return await (await session(task.version, bytes!)).detect(task.images);
  } catch (err) {
    if (err instanceof UndecodableFramesError) return { undecodable: err.failures };
    if (err instanceof ModelContractError) return { contractError: err.message };
    throw err;
  }
}

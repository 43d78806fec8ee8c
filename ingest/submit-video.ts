// Handing a video to a stream, shared by the HTTP route and the directory source: check it
// (ingest/video-probe.ts), store it content-addressed, add its row and start its `videoIngest`
// workflow. Every check runs before anything is written; the same file twice is one video.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import type { Client } from '@temporalio/client';
import type { Config } from '../config.ts';
import type { Db } from '../db/client.ts';
import { getStream } from '../db/streams.ts';
import { findVideoByHash, insertVideo, type VideoRow } from '../db/videos.ts';
import { ingestRejected } from '../observability/metrics.ts';
import { videoKey, type BlobStore } from '../storage/blob-store.ts';
import { INGEST_QUEUE, StreamIdAttr, videoWorkflowId, type VideoIngestInput } from '../workflows/shared.ts';
import { CAMERA_ID, IngestError } from './ingest-frame.ts';
import { inspectVideo, type VideoLimits } from './video-probe.ts';
import type { DirectorySourceOptions } from './directory-source.ts';
import { defaultSampling, type Sampling } from './video-sampling.ts';

type VideoConfig = Pick<
  Config,
  'VIDEO_MAX_BYTES' | 'VIDEO_MAX_SECONDS' | 'VIDEO_MAX_FRAMES' | 'VIDEO_CODECS' | 'VIDEO_SEGMENT_SECONDS' | 'VIDEO_PARALLEL_SEGMENTS' | 'MAX_FRAME_PIXELS'
>;

export interface SubmitVideoDeps {
  db: Db;
  store: BlobStore;
  temporal: Client;
  config: VideoConfig;
  /** Tests run isolated workers on one server under their own queue name. */
  ingestQueue?: string;
}

export interface SubmitVideoInput {
  streamId: string;
  cameraId: string;
  /** Capture time of the video's first frame; or, for a file written when recording stopped, `endedAt`. */
  startedAt: Date | { endedAt: Date };
  /** The video, in a file the caller owns (it is copied into the store, not moved). */
  file: string;
  fileName: string | null;
  /** The type the client declared; the container must match it. */
  mediaType?: string;
  sampling: Sampling;
  source: 'http' | 'directory';
}

const videoLimits = (c: VideoConfig): VideoLimits => ({
  maxBytes: c.VIDEO_MAX_BYTES,
  maxPixels: c.MAX_FRAME_PIXELS,
  maxSeconds: c.VIDEO_MAX_SECONDS,
  maxFrames: c.VIDEO_MAX_FRAMES,
  codecs: c.VIDEO_CODECS,
});

async function hashFile(file: string, signal: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { signal })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export async function submitVideo(deps: SubmitVideoDeps, input: SubmitVideoInput): Promise<{ video: VideoRow; created: boolean }> {
  try {
    return await submit(deps, input);
  } catch (err) {
    if (err instanceof IngestError) ingestRejected.inc({ reason: `video_${err.reason}` });
    throw err;
  }
}

async function submit(deps: SubmitVideoDeps, input: SubmitVideoInput): Promise<{ video: VideoRow; created: boolean }> {
  if (!CAMERA_ID.test(input.cameraId)) {
    throw new IngestError('cameraId must be 1-100 characters of letters, digits, ".", "_", ":" or "-"', 400, 'camera_id');
  }
  if (!(await getStream(deps.db, input.streamId))) throw new IngestError(`stream ${JSON.stringify(input.streamId)} does not exist`, 404, 'unknown_stream');
  const { size } = await fs.stat(input.file);
  // The hash is read while ffprobe checks the file (both read all of it); a refusal stops it.
  const hashing = new AbortController();
  const hashed = hashFile(input.file, hashing.signal);
  hashed.catch(() => {}); // awaited below, or abandoned by a refusal
  const probe = await inspectVideo(input.file, size, videoLimits(deps.config), input.sampling, input.mediaType).catch((err: unknown) => {
    hashing.abort();
    throw err;
  });
  const hash = await hashed;
  const startedAt = input.startedAt instanceof Date ? input.startedAt : new Date(input.startedAt.endedAt.getTime() - Math.round(probe.durationSeconds * 1000));
  if (Number.isNaN(startedAt.getTime())) throw new IngestError('startedAt must be an ISO 8601 time', 400, 'started_at');
  const existing = await findVideoByHash(deps.db, input.streamId, hash);
  if (existing) {
    // Started again in case the process stopped between the row and the workflow; an already
    // running or finished workflow of this video is left as it is.
    await startVideoIngest(deps, existing);
    return { video: existing, created: false };
  }
  const key = videoKey(hash, probe.container.startsWith('matroska') ? 'mkv' : 'mp4');
  // Blob first, row second, workflow third: each step is repeated harmlessly by a retry.
  await deps.store.putFile(key, input.file);
  const row =
    (await insertVideo(deps.db, {
      streamId: input.streamId,
      cameraId: input.cameraId,
      contentHash: hash,
      storageKey: key,
      fileName: input.fileName,
      sizeBytes: size,
      startedAt,
      source: input.source,
      sampling: input.sampling,
      probe,
    })) ?? (await findVideoByHash(deps.db, input.streamId, hash))!;
  await startVideoIngest(deps, row);
  return { video: row, created: true };
}

async function startVideoIngest(deps: SubmitVideoDeps, video: VideoRow) {
  const input: VideoIngestInput = {
    videoId: video.id,
    segmentSeconds: deps.config.VIDEO_SEGMENT_SECONDS,
    parallelSegments: deps.config.VIDEO_PARALLEL_SEGMENTS,
  };
  try {
    await deps.temporal.workflow.start('videoIngest', {
      taskQueue: deps.ingestQueue ?? INGEST_QUEUE,
      workflowId: videoWorkflowId(video.id),
      args: [input],
      workflowIdConflictPolicy: 'USE_EXISTING',
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
      typedSearchAttributes: [{ key: StreamIdAttr, value: video.streamId }],
      staticSummary: `Video ${video.fileName ?? video.id} into stream ${video.streamId}`,
    });
  } catch (err) {
    // A finished workflow of this video: nothing to start.
    if ((err as Error).name !== 'WorkflowExecutionAlreadyStartedError') throw err;
  }
}

/**
 * How the directory source hands over a dropped video: as an upload at the default sampling,
 * the file's modification time taken as the end of the recording (the file was written then).
 */
export function submitDroppedVideo(deps: SubmitVideoDeps): NonNullable<DirectorySourceOptions['submitVideo']> {
  return async (v) => {
    await submitVideo(deps, { ...v, startedAt: { endedAt: v.modifiedAt }, sampling: defaultSampling, source: 'directory' });
  };
}

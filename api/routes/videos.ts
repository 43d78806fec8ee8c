// Videos into a stream: upload (raw body, streamed to a temporary file, never held in memory),
// progress, and cancel. The checks and the workflow start are ingest/submit-video.ts's.
import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { Hono } from 'hono';
import { z } from 'zod';
import { getVideo, isFinished, listVideos, videoProgress, type VideoRow } from '../../db/videos.ts';
import { IngestError } from '../../ingest/ingest-frame.ts';
import { submitVideo } from '../../ingest/submit-video.ts';
import { VIDEO_MEDIA_TYPES } from '../../ingest/video-probe.ts';
import { samplingSchema, type Sampling } from '../../ingest/video-sampling.ts';
import { videoWorkflowId } from '../../workflows/shared.ts';
import type { ApiDeps, AppEnv } from '../env.ts';
import { defineOperation, handle } from '../operation.ts';
import { assertCameraMaySend } from '../access.ts';
import { ProblemError, UUID } from '../problem.ts';
import { captureTime, videoSchema } from '../schemas.ts';

const uploadQuery = z
  .object({
    cameraId: z.string({ error: 'cameraId is required' }).min(1, 'cameraId is required'),
    startedAt: captureTime('startedAt').optional(),
    sample: z.enum(['fps', 'every', 'keyframes', 'scene'], { error: 'sample must be fps, every, keyframes or scene' }).default('fps'),
    rate: z.coerce.number().positive('rate must be above 0').max(120, 'rate is at most 120 frames per second').default(1),
    every: z.coerce.number().int('every must be a whole number').min(1, 'every is at least 1').max(100_000).default(10),
    sceneThreshold: z.coerce.number().gt(0, 'sceneThreshold lies between 0 and 1').lt(1, 'sceneThreshold lies between 0 and 1').default(0.3),
    fileName: z.string().max(255).optional(),
  })
  .strict();

function samplingOf(q: z.output<typeof uploadQuery>): Sampling {
  const s = {
    fps: { mode: 'fps', rate: q.rate },
    every: { mode: 'every', n: q.every },
    keyframes: { mode: 'keyframes' },
    scene: { mode: 'scene', threshold: q.sceneThreshold },
  }[q.sample];
  return samplingSchema.parse(s);
}

const progressSchema = z.object({
  segmentsDone: z.number().int(),
  segmentsTotal: z.number().int().nullable(),
  framesSampled: z.number().int(),
  framesStored: z.number().int(),
});
const videoView = videoSchema.extend({ progress: progressSchema, workflowId: z.string() });
const videoId = z.object({ id: z.string() });

export const videoOperations = {
  upload: defineOperation({
    method: 'post',
    path: '/v1/streams/{id}/videos',
    summary:
      'Send a video (MP4, MOV, WebM or Matroska as the raw body): it is checked, stored once per stream, split into segments and sampled into frames of the stream by a videoIngest workflow',
    params: z.object({ id: z.string() }),
    query: uploadQuery,
    rawBody: Object.fromEntries(VIDEO_MEDIA_TYPES.map((t) => [t, 'a video file'])),
    responses: { 202: { description: 'accepted; frames follow', schema: videoView }, 200: { description: 'the same file was sent before', schema: videoView } },
    problems: [413, 415, 503],
  }),
  list: defineOperation({
    method: 'get',
    path: '/v1/videos',
    summary: 'Videos, newest first, with their progress',
    query: z.object({ streamId: z.string().max(63).optional(), limit: z.coerce.number().int().min(1).max(500).default(50) }).strict(),
    responses: { 200: { description: 'newest first', schema: z.object({ videos: z.array(videoView) }) } },
  }),
  get: defineOperation({
    method: 'get',
    path: '/v1/videos/{id}',
    summary: 'A video: what ffprobe found, its status, and segments done / total and frames extracted',
    params: videoId,
    responses: { 200: { description: 'the video', schema: videoView } },
  }),
  cancel: defineOperation({
    method: 'post',
    path: '/v1/videos/{id}/cancel',
    summary: 'Stop a video ingest within seconds; frames of finished segments stay',
    params: videoId,
    responses: { 202: { description: 'cancellation requested', schema: videoView } },
    problems: [409, 503],
  }),
};

export function videoRoutes(deps: ApiDeps) {
  const app = new Hono<AppEnv>();

  const view = async (rows: VideoRow[]) => {
    const progress = await videoProgress(deps.db, rows);
    return rows.map((r) => ({ ...r, progress: progress.get(r.id)!, workflowId: videoWorkflowId(r.id) }));
  };
  const temporalOr503 = () => {
    if (!deps.temporal)
      throw new ProblemError(503, 'Unavailable', 'this API process has no Temporal client; videos cannot be ingested', undefined, 'no_temporal');
    return deps.temporal;
  };
  async function videoOr404(id: string) {
    const video = UUID.test(id) ? await getVideo(deps.db, id) : undefined;
    if (!video) throw new ProblemError(404, 'Not found', `video ${JSON.stringify(id)} does not exist`, undefined, 'unknown_video');
    return video;
  }

  handle(app, videoOperations.upload, async (c, { params, query: q }) => {
    assertCameraMaySend(c.get('user'), params.id, q.cameraId);
    const mediaType = (c.req.header('content-type') ?? '').split(';')[0].trim().toLowerCase();
    if (!VIDEO_MEDIA_TYPES.includes(mediaType)) {
      const message = `Content-Type must be one of ${VIDEO_MEDIA_TYPES.join(', ')}, got ${JSON.stringify(mediaType)}`;
      throw new ProblemError(415, 'Video refused', message, [{ field: 'Content-Type', message }], 'content_type');
    }
    const temporal = temporalOr503();
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'video-upload-'));
    try {
      const file = path.join(dir, randomUUID());
      const body = c.req.raw.body;
      await (body ? pipeline(Readable.fromWeb(body as WebReadableStream), createWriteStream(file)) : fs.writeFile(file, ''));
      const { video, created } = await submitVideo(
        { db: deps.db, store: deps.store, temporal, config: deps.config, ingestQueue: deps.ingestQueue },
        {
          streamId: params.id,
          cameraId: q.cameraId,
          startedAt: q.startedAt ?? new Date(),
          file,
          fileName: q.fileName ?? null,
          mediaType,
          sampling: samplingOf(q),
          source: 'http',
        },
      );
      const [v] = await view([video]);
      return c.json(v, created ? 202 : 200);
    } catch (err) {
      if (err instanceof IngestError) {
        const field = { camera_id: 'cameraId', started_at: 'startedAt', type_mismatch: 'Content-Type', too_many_frames: 'sample' }[err.reason] ?? 'body';
        throw new ProblemError(err.status, 'Video refused', err.message, [{ field, message: err.message }], err.reason);
      }
      throw err;
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  handle(app, videoOperations.list, async (c, { query }) => c.json({ videos: await view(await listVideos(deps.db, query)) }));

  handle(app, videoOperations.get, async (c, { params }) => {
    const [v] = await view([await videoOr404(params.id)]);
    return c.json(v);
  });

  handle(app, videoOperations.cancel, async (c, { params }) => {
    const video = await videoOr404(params.id);
    if (isFinished(video.status)) {
      throw new ProblemError(409, 'Conflict', `video ${video.id} has already finished (${video.status})`, undefined, 'video_finished');
    }
    await temporalOr503().workflow.getHandle(videoWorkflowId(video.id)).cancel();
    const [v] = await view([video]);
    return c.json(v, 202);
  });

  return app;
}

// Frame ingestion over HTTP, and reading frames back (the review app shows them).
import { Hono } from 'hono';
import { framePredictions, getFrame } from '../../db/frames.ts';
import { IngestError, ingestFrame } from '../../ingest/ingest-frame.ts';
import type { ApiDeps, AppEnv } from '../env.ts';
import { defineOperation, handle } from '../operation.ts';
import { assertCameraMaySend } from '../access.ts';
import { ProblemError, UUID } from '../problem.ts';
import { listFailedFrames } from '../../db/frame-failures.ts';
import { z } from 'zod';
import { captureTime, frameSchema, predictionSchema } from '../schemas.ts';

const ingestQuery = z.object({
  cameraId: z.string({ error: 'cameraId is required' }).min(1, 'cameraId is required'),
  capturedAt: captureTime('capturedAt').optional(),
});
const failedQuery = z
  .object({
    status: z.literal('failed', { error: 'status must be "failed" (frames the loop set aside)' }),
    streamId: z.string().max(63).optional(),
    limit: z.coerce.number().int().min(1).max(1000).default(100),
  })
  .strict();

const ingested = z.object({ frameId: z.uuid(), created: z.boolean(), storageKey: z.string(), width: z.number().int(), height: z.number().int() });
const failedFrame = frameSchema.pick({ streamId: true, cameraId: true, capturedAt: true, storageKey: true, width: true, height: true }).extend({
  frameId: z.uuid(),
  reason: z.enum(['missing_blob', 'undecodable', 'too_many_pixels']),
  detail: z.string(),
  modelVersion: z.string(),
  failedAt: z.date(),
});
const frameId = z.object({ id: z.string() });

export const frameOperations = {
  ingest: defineOperation({
    method: 'post',
    path: '/v1/streams/{id}/frames',
    summary: 'Ingest a frame (raw PNG or JPEG body); the same bytes twice are stored once',
    params: z.object({ id: z.string() }),
    query: ingestQuery,
    rawBody: { 'image/png': 'a PNG frame', 'image/jpeg': 'a JPEG frame' },
    responses: { 201: { description: 'stored', schema: ingested }, 200: { description: 'already stored (same image)', schema: ingested } },
    problems: [415],
  }),
  failed: defineOperation({
    method: 'get',
    path: '/v1/frames',
    summary: 'Frames the loop set aside (status=failed): missing blob, undecodable, over the pixel limit, with the reason',
    query: failedQuery,
    responses: { 200: { description: 'newest first', schema: z.object({ frames: z.array(failedFrame) }) } },
  }),
  get: defineOperation({
    method: 'get',
    path: '/v1/frames/{id}',
    summary: 'Frame metadata and its predictions (of one model version with ?modelVersion=)',
    params: frameId,
    query: z.object({ modelVersion: z.string().optional() }),
    responses: { 200: { description: 'the frame', schema: z.object({ frame: frameSchema, predictions: z.array(predictionSchema) }) } },
  }),
  image: defineOperation({
    method: 'get',
    path: '/v1/frames/{id}/image',
    summary: 'The frame bytes',
    params: frameId,
    responses: { 200: { description: 'the image as it was ingested', contentType: 'image/png or image/jpeg' } },
  }),
};

export function frameRoutes(deps: ApiDeps) {
  const app = new Hono<AppEnv>();
  const ingestDeps = {
    db: deps.db,
    store: deps.store,
    maxFrameBytes: deps.config.MAX_FRAME_BYTES,
    maxFramePixels: deps.config.MAX_FRAME_PIXELS,
    wakeLoop: (streamId: string) => deps.loopControl.wake(streamId),
  };

  handle(app, frameOperations.ingest, async (c, { params, query: q }) => {
    const streamId = params.id;
    const capturedAt = q.capturedAt ?? new Date();
    const user = c.get('user');
    assertCameraMaySend(user, streamId, q.cameraId);
    const bytes = new Uint8Array(await c.req.arrayBuffer());
    try {
      const result = await ingestFrame(ingestDeps, {
        streamId,
        cameraId: q.cameraId,
        capturedAt,
        contentType: c.req.header('content-type'),
        bytes,
        source: 'http',
      });
      return c.json(result, result.created ? 201 : 200);
    } catch (err) {
      if (err instanceof IngestError) {
        const field = { content_type: 'Content-Type', camera_id: 'cameraId', captured_at: 'capturedAt' }[err.reason] ?? 'body';
        throw new ProblemError(err.status, 'Frame refused', err.message, [{ field, message: err.message }], err.reason);
      }
      throw err;
    }
  });

  // Frames the loop set aside (decode failure, missing blob, over the pixel limit), newest first.
  handle(app, frameOperations.failed, async (c, { query: q }) => {
    return c.json({ frames: await listFailedFrames(deps.db, q) });
  });

  async function frameOr404(id: string) {
    if (!UUID.test(id)) throw new ProblemError(404, 'Not found', `frame ${JSON.stringify(id)} does not exist`, undefined, 'unknown_frame');
    const frame = await getFrame(deps.db, id);
    if (!frame) throw new ProblemError(404, 'Not found', `frame ${JSON.stringify(id)} does not exist`, undefined, 'unknown_frame');
    return frame;
  }

  handle(app, frameOperations.get, async (c, { params, query }) => {
    const frame = await frameOr404(params.id);
    const preds = await framePredictions(deps.db, frame.id, query.modelVersion);
    return c.json({ frame, predictions: preds });
  });

  handle(app, frameOperations.image, async (c, { params }) => {
    const frame = await frameOr404(params.id);
    const bytes = await deps.store.get(frame.storageKey);
    // Content-addressed: the bytes behind a frame id never change.
    return c.body(new Uint8Array(bytes), 200, { 'Content-Type': frame.mediaType, 'Cache-Control': 'private, max-age=31536000, immutable' });
  });

  return app;
}

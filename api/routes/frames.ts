// Frame ingestion over HTTP, and reading frames back (the review app shows them).
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { and, asc, eq } from 'drizzle-orm';
import { frames, predictions } from '../../db/schema.ts';
import { IngestError, ingestFrame } from '../../ingest/ingest-frame.ts';
import { requireRole } from '../auth.ts';
import type { ApiDeps, AppEnv } from '../env.ts';
import { ProblemError, UUID } from '../problem.ts';


export function frameRoutes(deps: ApiDeps) {
  const app = new Hono<AppEnv>();
  const maxFrameBytes = deps.config.MAX_FRAME_BYTES;

  app.post(
    '/v1/streams/:id/frames',
    requireRole('camera', 'lead'),
    // Enforced while the body streams in, so an oversized upload is cut off, not buffered.
    bodyLimit({
      maxSize: maxFrameBytes,
      onError: () => {
        throw new ProblemError(413, 'Payload too large', `the image is larger than the limit of ${maxFrameBytes} bytes`, undefined, 'too_large');
      },
    }),
    async (c) => {
      const cameraId = c.req.query('cameraId') ?? '';
      const capturedAtRaw = c.req.query('capturedAt');
      if (!cameraId) throw new ProblemError(400, 'Invalid input', 'the query parameter cameraId is required', [{ field: 'cameraId', message: 'required' }], 'invalid_input');
      const capturedAt = capturedAtRaw ? new Date(capturedAtRaw) : new Date();
      if (Number.isNaN(capturedAt.getTime())) {
        throw new ProblemError(400, 'Invalid input', `capturedAt ${JSON.stringify(capturedAtRaw)} is not an ISO 8601 time`, [{ field: 'capturedAt', message: 'not an ISO 8601 time' }], 'invalid_input');
      }
      const bytes = new Uint8Array(await c.req.arrayBuffer());
      try {
        const result = await ingestFrame(
          { db: deps.db, store: deps.store, maxFrameBytes },
          { streamId: c.req.param('id'), cameraId, capturedAt, contentType: c.req.header('content-type'), bytes, source: 'http' },
        );
        return c.json(result, result.created ? 201 : 200);
      } catch (err) {
        if (err instanceof IngestError) {
          const field = { content_type: 'Content-Type', camera_id: 'cameraId', captured_at: 'capturedAt' }[err.reason] ?? 'body';
          throw new ProblemError(err.status, 'Frame refused', err.message, [{ field, message: err.message }], err.reason);
        }
        throw err;
      }
    },
  );

  async function frameOr404(id: string) {
    if (!UUID.test(id)) throw new ProblemError(404, 'Not found', `frame ${JSON.stringify(id)} does not exist`, undefined, 'unknown_frame');
    const [frame] = await deps.db.select().from(frames).where(eq(frames.id, id));
    if (!frame) throw new ProblemError(404, 'Not found', `frame ${JSON.stringify(id)} does not exist`, undefined, 'unknown_frame');
    return frame;
  }

  app.get('/v1/frames/:id', async (c) => {
    const frame = await frameOr404(c.req.param('id'));
    const modelVersion = c.req.query('modelVersion');
    const preds = await deps.db
      .select()
      .from(predictions)
      .where(and(eq(predictions.frameId, frame.id), modelVersion ? eq(predictions.modelVersion, modelVersion) : undefined))
      .orderBy(asc(predictions.modelVersion), asc(predictions.rank));
    return c.json({ frame, predictions: preds });
  });

  app.get('/v1/frames/:id/image', async (c) => {
    const frame = await frameOr404(c.req.param('id'));
    const bytes = await deps.store.get(frame.storageKey);
    // Content-addressed: the bytes behind a frame id never change.
    return c.body(new Uint8Array(bytes), 200, { 'Content-Type': frame.mediaType, 'Cache-Control': 'private, max-age=31536000, immutable' });
  });

  return app;
}

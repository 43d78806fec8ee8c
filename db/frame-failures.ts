// Frames the loop set aside: listed for leads (GET /v1/frames?status=failed). They are written by
// persistScoredBatch (db/scoring.ts), in the transaction of the batch they came in.
import { desc, eq } from 'drizzle-orm';
import type { DbOrTx } from './client.ts';
import { frameFailures, frames } from './schema.ts';

export type FailureReason = (typeof frameFailures.$inferSelect)['reason'];

export async function listFailedFrames(db: DbOrTx, q: { streamId?: string; limit: number }) {
  return db
    .select({
      frameId: frameFailures.frameId,
      streamId: frameFailures.streamId,
      cameraId: frames.cameraId,
      capturedAt: frames.capturedAt,
      storageKey: frames.storageKey,
      width: frames.width,
      height: frames.height,
      reason: frameFailures.reason,
      detail: frameFailures.detail,
      modelVersion: frameFailures.modelVersion,
      failedAt: frameFailures.failedAt,
    })
    .from(frameFailures)
    .innerJoin(frames, eq(frames.id, frameFailures.frameId))
    .where(q.streamId ? eq(frameFailures.streamId, q.streamId) : undefined)
    .orderBy(desc(frameFailures.failedAt))
    .limit(q.limit);
}

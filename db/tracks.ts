// Statements about tracks: the live track heads of a camera before a frame (the tracker's state
// between batches), and the detections of a track (where a label is proposed along it).
import { and, desc, eq, gte, isNotNull, lt, or } from 'drizzle-orm';
import { trackFrames, type Box } from '../models/tracker.ts';
import type { VectorIndex } from '../storage/vector-index.ts';
import type { DbOrTx } from './client.ts';
import { frames, predictions } from './schema.ts';
import { predictionId, type ScoredFrameRow } from './scoring.ts';

interface StoredHead extends Box {
  id: string;
  trackId: string;
  cameraId: string;
  className: string;
  seenAt: Date;
}

/**
 * The newest detection of each track seen on each camera in [before - maxGapMs, before), where
 * `before` is that camera's own first frame of the batch: one statement for all cameras.
 */
async function trackHeads(
  db: DbOrTx,
  q: { streamId: string; modelVersion: string; cameras: { cameraId: string; before: Date }[]; maxGapMs: number },
): Promise<StoredHead[]> {
  const rows = await db
    .selectDistinctOn([predictions.trackId], {
      id: predictions.id,
      trackId: predictions.trackId,
      cameraId: frames.cameraId,
      className: predictions.className,
      x1: predictions.x1,
      y1: predictions.y1,
      x2: predictions.x2,
      y2: predictions.y2,
      seenAt: frames.capturedAt,
    })
    .from(predictions)
    .innerJoin(frames, eq(frames.id, predictions.frameId))
    .where(
      and(
        eq(frames.streamId, q.streamId),
        or(
          ...q.cameras.map((c) =>
            and(eq(frames.cameraId, c.cameraId), gte(frames.capturedAt, new Date(c.before.getTime() - q.maxGapMs)), lt(frames.capturedAt, c.before)),
          ),
        ),
        eq(predictions.modelVersion, q.modelVersion),
        isNotNull(predictions.trackId),
      ),
    )
    .orderBy(predictions.trackId, desc(frames.capturedAt));
  return rows.map((r) => ({ ...r, trackId: r.trackId! }));
}

/** The detections of a track, oldest first (at most `limit`). */
export async function trackMembers(db: DbOrTx, trackId: string, limit: number): Promise<string[]> {
  const rows = await db
    .select({ id: predictions.id })
    .from(predictions)
    .innerJoin(frames, eq(frames.id, predictions.frameId))
    .where(eq(predictions.trackId, trackId))
    .orderBy(frames.capturedAt)
    .limit(limit);
  return rows.map((r) => r.id);
}

/**
 * Links a scored batch's detections into tracks (sets each detection's trackId), camera by
 * camera, continuing the tracks live before the batch's first frame of that camera. The state
 * is read from the database (one statement, and one read of the index for all cameras), so a
 * retried batch links the same way.
 */
export async function linkTracks(
  db: DbOrTx,
  index: VectorIndex,
  args: { streamId: string; modelVersion: string; frames: ScoredFrameRow[]; maxGapMs: number },
): Promise<void> {
  const cameras = [...new Set(args.frames.map((f) => f.cameraId))].map((cameraId) => ({
    cameraId,
    before: new Date(Math.min(...args.frames.filter((f) => f.cameraId === cameraId).map((f) => f.capturedAt.getTime()))),
  }));
  if (cameras.length === 0) return;
  const stored = await trackHeads(db, { streamId: args.streamId, modelVersion: args.modelVersion, cameras, maxGapMs: args.maxGapMs });
  const vectors = await index.vectors(
    stored.map((h) => h.id),
    [args.streamId],
  );
  const idOf = (frameId: string, rank: number) => predictionId(frameId, args.modelVersion, rank);
  for (const { cameraId } of cameras) {
    const mine = args.frames.filter((f) => f.cameraId === cameraId);
    const heads = stored
      .filter((h) => h.cameraId === cameraId && vectors.has(h.id))
      .map((h) => ({ ...h, embedding: vectors.get(h.id)!, seenAt: h.seenAt.getTime() }));
    const tracks = trackFrames(
      heads,
      mine.map((f) => ({ capturedAt: f.capturedAt.getTime(), detections: f.detections.map((d) => ({ ...d, id: idOf(f.frameId, d.rank) })) })),
      args.maxGapMs,
    );
    for (const f of mine) for (const d of f.detections) d.trackId = tracks.get(idOf(f.frameId, d.rank)) ?? null;
  }
}

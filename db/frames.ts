// Statements about frames: ingestion's lookups and insert, a frame with its predictions, and
// counts per camera.
import { and, asc, count, eq, inArray } from 'drizzle-orm';
import type { DbOrTx } from './client.ts';
import { frames, predictions } from './schema.ts';

export type FrameRow = typeof frames.$inferSelect;
type NewFrame = typeof frames.$inferInsert;

export async function getFrame(db: DbOrTx, id: string): Promise<FrameRow | undefined> {
  const [frame] = await db.select().from(frames).where(eq(frames.id, id));
  return frame;
}

/** Those of these frame ids that are frames of the stream, with their sizes. */
export async function framesOfStream(db: DbOrTx, streamId: string, ids: string[]) {
  if (ids.length === 0) return [];
  return db
    .select({ id: frames.id, width: frames.width, height: frames.height })
    .from(frames)
    .where(and(eq(frames.streamId, streamId), inArray(frames.id, ids)));
}

/** The frame of a stream with these bytes (frames are stored once per stream and content hash). */
export async function findFrameByHash(db: DbOrTx, streamId: string, contentHash: string) {
  const [row] = await db
    .select({ id: frames.id, storageKey: frames.storageKey, width: frames.width, height: frames.height })
    .from(frames)
    .where(and(eq(frames.streamId, streamId), eq(frames.contentHash, contentHash)));
  return row;
}

/** Inserts a frame; returns its id, or null when the same bytes were stored meanwhile. */
export async function insertFrame(db: DbOrTx, frame: NewFrame): Promise<string | null> {
  const [row] = await db.insert(frames).values(frame).onConflictDoNothing().returning({ id: frames.id });
  return row?.id ?? null;
}

/** The frames of a stream with any of these content hashes: hash -> frame id. */
export async function frameIdsByHash(db: DbOrTx, streamId: string, hashes: string[]): Promise<Map<string, string>> {
  if (hashes.length === 0) return new Map();
  const rows = await db
    .select({ id: frames.id, contentHash: frames.contentHash })
    .from(frames)
    .where(and(eq(frames.streamId, streamId), inArray(frames.contentHash, hashes)));
  return new Map(rows.map((r) => [r.contentHash, r.id]));
}

/** Inserts frames in one statement; returns those it added (the others were stored meanwhile). */
export async function insertFrames(db: DbOrTx, rows: NewFrame[]): Promise<{ id: string; contentHash: string }[]> {
  if (rows.length === 0) return [];
  return db.insert(frames).values(rows).onConflictDoNothing().returning({ id: frames.id, contentHash: frames.contentHash });
}

/** A frame's predictions, of one model version or all, by version and rank. */
export async function framePredictions(db: DbOrTx, frameId: string, modelVersion?: string) {
  return db
    .select()
    .from(predictions)
    .where(and(eq(predictions.frameId, frameId), modelVersion ? eq(predictions.modelVersion, modelVersion) : undefined))
    .orderBy(asc(predictions.modelVersion), asc(predictions.rank));
}

/** The most frames any one camera of the stream has sent. */
export async function maxFramesPerCamera(db: DbOrTx, streamId: string): Promise<number> {
  const rows = await db.select({ n: count() }).from(frames).where(eq(frames.streamId, streamId)).groupBy(frames.cameraId);
  return rows.length ? Math.max(...rows.map((r) => Number(r.n))) : 0;
}

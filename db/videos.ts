// Statements about videos and their segments: the upload's row, the split's segment rows, each
// segment's result, and the progress read by the API and the operations page.
import { and, desc, eq, inArray, isNull, notInArray, sql } from 'drizzle-orm';
import type { DbOrTx } from './client.ts';
import { videos, videoSegments } from './schema.ts';

export type VideoRow = typeof videos.$inferSelect;
type NewVideo = typeof videos.$inferInsert;
export type VideoSegmentRow = typeof videoSegments.$inferSelect;
export type NewVideoSegment = typeof videoSegments.$inferInsert;
export type VideoStatus = 'queued' | 'splitting' | 'extracting' | 'done' | 'failed' | 'cancelled';
const FINISHED: VideoStatus[] = ['done', 'failed', 'cancelled'];
/** Done, failed or cancelled: nothing more happens to the video. */
export const isFinished = (status: string) => (FINISHED as string[]).includes(status);

export async function getVideo(db: DbOrTx, id: string): Promise<VideoRow | undefined> {
  const [row] = await db.select().from(videos).where(eq(videos.id, id));
  return row;
}

export async function findVideoByHash(db: DbOrTx, streamId: string, contentHash: string): Promise<VideoRow | undefined> {
  const [row] = await db
    .select()
    .from(videos)
    .where(and(eq(videos.streamId, streamId), eq(videos.contentHash, contentHash)));
  return row;
}

/** Inserts a video; returns null when the same file reached the stream meanwhile. */
export async function insertVideo(db: DbOrTx, video: NewVideo): Promise<VideoRow | null> {
  const [row] = await db.insert(videos).values(video).onConflictDoNothing().returning();
  return row ?? null;
}

/** Moves a video to `status`; a finished video (done, failed, cancelled) stays as it is. */
export async function setVideoStatus(
  db: DbOrTx,
  id: string,
  status: VideoStatus,
  extra: { error?: string; segmentsTotal?: number; clockOriginSeconds?: number | null } = {},
) {
  await db
    .update(videos)
    .set({ status, ...extra, finishedAt: isFinished(status) ? new Date() : null })
    .where(and(eq(videos.id, id), notInArray(videos.status, FINISHED)));
}

export async function videoSegmentsOf(db: DbOrTx, videoId: string): Promise<VideoSegmentRow[]> {
  return db.select().from(videoSegments).where(eq(videoSegments.videoId, videoId)).orderBy(videoSegments.index);
}

export async function insertSegments(db: DbOrTx, rows: NewVideoSegment[]) {
  if (rows.length) await db.insert(videoSegments).values(rows).onConflictDoNothing();
}

/** Records a segment's result once; a retried segment that finished before keeps the first. */
export async function markSegmentDone(db: DbOrTx, videoId: string, index: number, framesSampled: number, framesStored: number) {
  await db
    .update(videoSegments)
    .set({ framesSampled, framesStored, doneAt: new Date() })
    .where(and(eq(videoSegments.videoId, videoId), eq(videoSegments.index, index), isNull(videoSegments.doneAt)));
}

export interface VideoProgress {
  segmentsDone: number;
  segmentsTotal: number | null;
  /** Frames the sampling took from finished segments. */
  framesSampled: number;
  /** Distinct frames they are in the stream (identical pixels, as in a still scene, are one frame). */
  framesStored: number;
}

/** Progress of each video, from its finished segments. */
export async function videoProgress(db: DbOrTx, rows: VideoRow[]): Promise<Map<string, VideoProgress>> {
  const ids = rows.map((r) => r.id);
  const done = ids.length
    ? await db
        .select({
          videoId: videoSegments.videoId,
          segments: sql<number>`count(${videoSegments.doneAt})::int`,
          sampled: sql<number>`coalesce(sum(${videoSegments.framesSampled}), 0)::int`,
          stored: sql<number>`coalesce(sum(${videoSegments.framesStored}), 0)::int`,
        })
        .from(videoSegments)
        .where(inArray(videoSegments.videoId, ids))
        .groupBy(videoSegments.videoId)
    : [];
  const byId = new Map(done.map((d) => [d.videoId, d]));
  return new Map(
    rows.map((r) => {
      const d = byId.get(r.id);
      return [r.id, { segmentsDone: d?.segments ?? 0, segmentsTotal: r.segmentsTotal, framesSampled: d?.sampled ?? 0, framesStored: d?.stored ?? 0 }];
    }),
  );
}

/** Newest videos first, of one stream or all. */
export async function listVideos(db: DbOrTx, opts: { streamId?: string; limit: number }): Promise<VideoRow[]> {
  return db
    .select()
    .from(videos)
    .where(opts.streamId ? eq(videos.streamId, opts.streamId) : undefined)
    .orderBy(desc(videos.createdAt))
    .limit(opts.limit);
}

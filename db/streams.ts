// Streams: a named source of frames (one or more cameras) with its own loop and policy.
import { and, count, eq, isNotNull, sql } from 'drizzle-orm';
import { defaultSamplingPolicy } from '../policies/sampling-policy.ts';
import type { Db, DbOrTx } from './client.ts';
import { routedTasks } from './task-state.ts';
import { frames, reviewTasks, samplingPolicies, streams } from './schema.ts';

export type StreamRow = typeof streams.$inferSelect;

/** Creates the stream and its policy version 1 (the defaults); returns false if it existed. */
export async function createStream(db: Db, input: { id: string; name: string; createdBy: string }): Promise<{ stream: StreamRow; created: boolean }> {
  return db.transaction(async (tx) => {
    const [inserted] = await tx.insert(streams).values({ id: input.id, name: input.name }).onConflictDoNothing().returning();
    if (inserted) {
      await tx.insert(samplingPolicies).values({ streamId: input.id, version: 1, policy: defaultSamplingPolicy, createdBy: input.createdBy });
      return { stream: inserted, created: true };
    }
    const [existing] = await tx.select().from(streams).where(eq(streams.id, input.id));
    return { stream: existing, created: false };
  });
}

export async function getStream(db: DbOrTx, id: string): Promise<StreamRow | null> {
  const [row] = await db.select().from(streams).where(eq(streams.id, id));
  return row ?? null;
}

export interface StreamSummary extends StreamRow {
  frames: number;
  pendingTasks: number;
}

export async function listStreams(db: DbOrTx): Promise<StreamSummary[]> {
  const rows = await db.select().from(streams).orderBy(streams.id);
  const frameCounts = await db.select({ streamId: frames.streamId, n: count() }).from(frames).groupBy(frames.streamId);
  const pending = await db
    .select({ streamId: reviewTasks.streamId, n: count() })
    .from(reviewTasks)
    .where(and(sql`${reviewTasks.status} <> 'done'`, routedTasks))
    .groupBy(reviewTasks.streamId);
  const fc = new Map(frameCounts.map((r) => [r.streamId, Number(r.n)]));
  const pc = new Map(pending.map((r) => [r.streamId, Number(r.n)]));
  return rows.map((r) => ({ ...r, frames: fc.get(r.id) ?? 0, pendingTasks: pc.get(r.id) ?? 0 }));
}

/** Frames ingested but not yet scored, per stream; every stream gets a value (0 included), so the
 * "frames waiting" alerts and panels always have a series. */
export async function framesWaiting(db: DbOrTx): Promise<{ stream: string; count: number }[]> {
  const rows = await db
    .select({
      stream: streams.id,
      // Qualified by hand: inside the subquery a bare "id" would mean the frame's id.
      count: sql<number>`(select count(*) from frames f where f.stream_id = "streams"."id" and f.seq > "streams"."scored_through_seq" and not exists (select 1 from frame_scores fs where fs.frame_id = f.id))`,
    })
    .from(streams);
  return rows.map((r) => ({ stream: r.stream, count: Number(r.count) }));
}

/** Marks the stream's loop as sleeping until a frame arrives (it found none to score). */
export async function markLoopIdle(db: DbOrTx, streamId: string): Promise<void> {
  await db
    .update(streams)
    .set({ loopIdleSince: sql`now()` })
    .where(eq(streams.id, streamId));
}

/**
 * Clears the stream's idle mark; true when it was set, i.e. the loop sleeps and needs waking.
 * One statement: of two ingests racing on the first frames after a sleep, only one wakes it.
 */
export async function clearLoopIdle(db: DbOrTx, streamId: string): Promise<boolean> {
  const rows = await db
    .update(streams)
    .set({ loopIdleSince: null })
    .where(and(eq(streams.id, streamId), isNotNull(streams.loopIdleSince)))
    .returning({ id: streams.id });
  return rows.length > 0;
}

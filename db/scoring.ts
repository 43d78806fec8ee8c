// Statements of the scoring step: pull a stream's next frames, gather routing inputs, and store
// a scored batch (predictions, embeddings, tasks, cursor) in one transaction.
import { and, asc, count, desc, eq, gt, gte, notExists, or, sql } from 'drizzle-orm';
import type { Detection } from '../models/sessions.ts';
import type { TaskCandidate } from '../policies/route.ts';
import type { DbOrTx } from './client.ts';
import type { FailureReason } from './frame-failures.ts';
import { driftBoosts, frameFailures, frames, frameScores, predictions, reviewTasks, samplingPolicies, streams } from './schema.ts';

export interface PendingFrame {
  id: string;
  seq: number;
  cameraId: string;
  storageKey: string;
  width: number;
  height: number;
}

/**
 * How far behind the cursor the loop still looks for unscored frames. Sequence numbers are
 * handed out at insert, but with several API processes a frame with a lower seq can commit
 * after one with a higher seq has already been scored; the look-back catches such stragglers
 * without rescanning the whole stream each batch.
 */
const STRAGGLER_LOOKBACK = 10_000;

/** The stream's unscored frames at or near its cursor, oldest first. */
export async function nextFrames(db: DbOrTx, streamId: string, limit: number): Promise<PendingFrame[]> {
  const cursor = db.select({ s: streams.scoredThroughSeq }).from(streams).where(eq(streams.id, streamId));
  const scored = db
    .select({ one: sql`1` })
    .from(frameScores)
    .where(eq(frameScores.frameId, frames.id));
  const quarantined = db
    .select({ one: sql`1` })
    .from(frameFailures)
    .where(eq(frameFailures.frameId, frames.id));
  return db
    .select({
      id: frames.id,
      seq: frames.seq,
      cameraId: frames.cameraId,
      storageKey: frames.storageKey,
      width: frames.width,
      height: frames.height,
    })
    .from(frames)
    .where(and(eq(frames.streamId, streamId), gt(frames.seq, sql`(${cursor}) - ${STRAGGLER_LOOKBACK}`), notExists(scored), notExists(quarantined)))
    .orderBy(asc(frames.seq))
    .limit(limit);
}

export async function streamCursor(db: DbOrTx, streamId: string): Promise<number | null> {
  const [row] = await db.select({ s: streams.scoredThroughSeq }).from(streams).where(eq(streams.id, streamId));
  return row ? row.s : null;
}

export async function latestPolicyVersion(db: DbOrTx, streamId: string): Promise<number | null> {
  const [row] = await db
    .select({ version: samplingPolicies.version })
    .from(samplingPolicies)
    .where(eq(samplingPolicies.streamId, streamId))
    .orderBy(desc(samplingPolicies.version))
    .limit(1);
  return row?.version ?? null;
}

/** Tasks routed to a stream since the start of the current UTC day. */
export async function tasksRoutedToday(db: DbOrTx, streamId: string, now: Date): Promise<number> {
  const dayStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
  const [row] = await db
    .select({ n: count() })
    .from(reviewTasks)
    .where(and(eq(reviewTasks.streamId, streamId), gte(reviewTasks.createdAt, dayStart)));
  return row?.n ?? 0;
}

/** Cameras of a stream with an active drift boost; `null` in the set means every camera. */
export async function boostedCameras(db: DbOrTx, streamId: string, now: Date): Promise<Set<string | null>> {
  const rows = await db
    .select({ cameraId: driftBoosts.cameraId })
    .from(driftBoosts)
    .where(and(eq(driftBoosts.streamId, streamId), gt(driftBoosts.expiresAt, now)));
  return new Set(rows.map((r) => r.cameraId));
}

/** How many of a stream's most recently queued frames the diversity filter compares against. */
const DIVERSITY_LOOKBACK = 1000;

/**
 * Embeddings of the stream's most recently queued (or labelled) frames: the diversity filter of
 * the sampling policy compares a batch against them in one query instead of one per frame.
 */
export async function recentTaskEmbeddings(db: DbOrTx, streamId: string, limit = DIVERSITY_LOOKBACK): Promise<number[][]> {
  const rows = await db
    .select({ embedding: frameScores.embedding })
    .from(reviewTasks)
    .innerJoin(frameScores, eq(frameScores.frameId, reviewTasks.frameId))
    .where(eq(reviewTasks.streamId, streamId))
    .orderBy(desc(reviewTasks.createdAt))
    .limit(limit);
  return rows.map((r) => r.embedding);
}

/** Cosine distance, as pgvector's `<=>` computes it. */
export function cosineDistance(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return 1 - dot / Math.sqrt(na * nb);
}

/** A detection with its rank in the frame's output (0 = highest score). */
interface ScoredDetection extends Detection {
  rank: number;
}

export interface ScoredFrameRow {
  frameId: string;
  cameraId: string;
  embedding: number[];
  detections: ScoredDetection[];
}

export interface FrameFailure {
  frameId: string;
  reason: FailureReason;
  detail: string;
}

export class CursorMovedError extends Error {
  constructor(streamId: string) {
    super(`The scoring cursor of stream ${streamId} moved while this batch was scored; the batch will be retried`);
    this.name = 'CursorMovedError';
  }
}

/**
 * Stores a scored batch and advances the cursor, all in one transaction. Every insert is keyed
 * (frame + model version [+ rank]) and skips rows that exist, so a retried batch adds nothing;
 * the cursor moves only from the value the batch started at, so of two overlapping attempts
 * only one commits.
 */
export async function persistScoredBatch(
  db: DbOrTx,
  args: {
    streamId: string;
    modelVersion: string;
    policyVersion: number;
    fromSeq: number;
    toSeq: number;
    frames: ScoredFrameRow[];
    tasks: TaskCandidate[];
    /** Frames of the batch that could not be scored: set aside, never offered again. */
    failures?: FrameFailure[];
  },
): Promise<{ predictions: number; tasksRouted: number }> {
  return db.transaction(async (tx) => {
    const moved = await tx
      .update(streams)
      .set({ scoredThroughSeq: sql`greatest(${streams.scoredThroughSeq}, ${args.toSeq})` })
      .where(and(eq(streams.id, args.streamId), eq(streams.scoredThroughSeq, args.fromSeq)))
      .returning({ id: streams.id });
    if (moved.length === 0) throw new CursorMovedError(args.streamId);

    if (args.frames.length > 0) {
      await tx
        .insert(frameScores)
        .values(
          args.frames.map((f) => ({
            frameId: f.frameId,
            modelVersion: args.modelVersion,
            streamId: args.streamId,
            cameraId: f.cameraId,
            numDetections: f.detections.length,
            embedding: f.embedding,
          })),
        )
        .onConflictDoNothing();
    }
    if (args.failures?.length) {
      await tx
        .insert(frameFailures)
        .values(
          args.failures.map((f) => ({
            frameId: f.frameId,
            streamId: args.streamId,
            reason: f.reason,
            detail: f.detail.slice(0, 1000),
            modelVersion: args.modelVersion,
          })),
        )
        .onConflictDoNothing();
    }
    const predictionRows = args.frames.flatMap((f) => f.detections.map((d) => ({ frameId: f.frameId, modelVersion: args.modelVersion, ...d })));
    if (predictionRows.length > 0) {
      await tx.insert(predictions).values(predictionRows).onConflictDoNothing();
    }

    let tasksRouted = 0;
    if (args.tasks.length > 0) {
      const frameIds = [...new Set(args.tasks.map((t) => t.frameId))];
      const ids = await tx
        .select({ id: predictions.id, frameId: predictions.frameId, rank: predictions.rank })
        .from(predictions)
        .where(and(eq(predictions.modelVersion, args.modelVersion), or(...frameIds.map((id) => eq(predictions.frameId, id)))));
      const predictionId = new Map(ids.map((p) => [`${p.frameId}:${p.rank}`, p.id]));
      const inserted = await tx
        .insert(reviewTasks)
        .values(
          args.tasks.map((t) => ({
            dedupeKey: `${t.frameId}:${args.modelVersion}:${t.rank ?? 'frame'}`,
            streamId: args.streamId,
            cameraId: t.cameraId,
            frameId: t.frameId,
            predictionId: t.rank === null ? null : (predictionId.get(`${t.frameId}:${t.rank}`) ?? null),
            modelVersion: args.modelVersion,
            className: t.className,
            score: t.score,
            reason: t.reason,
            policyVersion: args.policyVersion,
            priority: t.priority,
          })),
        )
        .onConflictDoNothing()
        .returning({ id: reviewTasks.id });
      tasksRouted = inserted.length;
    }
    return { predictions: predictionRows.length, tasksRouted };
  });
}

/** Frames scored per stream and minute since `since`, oldest first. */
export async function framesScoredPerMinute(db: DbOrTx, since: Date): Promise<{ streamId: string; minute: Date; frames: number }[]> {
  const minute = sql<string>`date_trunc('minute', ${frameScores.scoredAt})`;
  const rows = await db
    .select({ streamId: frameScores.streamId, minute, n: count() })
    .from(frameScores)
    .where(gte(frameScores.scoredAt, since))
    .groupBy(frameScores.streamId, minute)
    .orderBy(minute);
  return rows.map((r) => ({ streamId: r.streamId, minute: new Date(r.minute), frames: Number(r.n) }));
}

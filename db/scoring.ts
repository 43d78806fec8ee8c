// Statements of the scoring step: pull a stream's next frames, gather routing inputs, and store
// a scored batch (predictions, embeddings, tasks, cursor) in one transaction.
import { createHash } from 'node:crypto';
import { and, asc, count, desc, eq, gt, gte, inArray, isNotNull, notExists, sql } from 'drizzle-orm';
import type { Detection } from '../models/sessions.ts';
import type { FrameDistances, FrameSelection, TaskCandidate } from '../policies/route.ts';
import { defaultSamplingPolicy, type SamplingPolicy } from '../policies/sampling-policy.ts';
import { policyOrDefault } from './policies.ts';
import { routedTasks } from './task-state.ts';
import type { VectorIndex } from '../storage/vector-index.ts';
import type { DbOrTx } from './client.ts';
import type { FailureReason } from './frame-failures.ts';
import { driftBoosts, frameFailures, frames, frameScores, labels, modelReferences, predictions, reviewTasks, samplingPolicies, streams } from './schema.ts';

export interface PendingFrame {
  id: string;
  seq: number;
  cameraId: string;
  storageKey: string;
  width: number;
  height: number;
  capturedAt: Date;
  ingestedAt: Date;
}

/**
 * How far behind the cursor the loop still looks for unscored frames. Sequence numbers are
 * handed out at insert, but with several API processes a frame with a lower seq can commit
 * after one with a higher seq has already been scored; the look-back catches such stragglers
 * without rescanning the whole stream each batch.
 */
const STRAGGLER_LOOKBACK = 10_000;

/**
 * The stream's unscored frames at or near its cursor, oldest first; with `afterSeq`, only those
 * after it (the frames that follow a batch still being stored).
 */
export async function nextFrames(db: DbOrTx, streamId: string, limit: number, opts: { afterSeq?: number } = {}): Promise<PendingFrame[]> {
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
      capturedAt: frames.capturedAt,
      ingestedAt: frames.ingestedAt,
    })
    .from(frames)
    .where(
      and(
        eq(frames.streamId, streamId),
        gt(frames.seq, sql`(${cursor}) - ${STRAGGLER_LOOKBACK}`),
        opts.afterSeq === undefined ? undefined : gt(frames.seq, opts.afterSeq),
        notExists(scored),
        notExists(quarantined),
      ),
    )
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

/** How many of a stream's most recently queued frames a new frame is compared against. */
const NOVELTY_LOOKBACK = 1000;

/** What the routing step needs to know about a stream for one batch (policies/route.ts). */
export interface RoutingInputs {
  policy: SamplingPolicy;
  /** Cameras with an active drift boost; `null` in the set means every camera. */
  boosted: Set<string | null>;
  /** Tasks routed to the stream since the start of the UTC day of `at`. */
  routedToday: number;
  /** Frames the stream received in the hour before `anchor`: its rate, for pacing the budget. */
  framesLastHour: number;
  /** The ranked selection's values of the stream's most recently scored candidate frames (the
   * policy's pacing window of them; none under the band selection). Labelled frames and
   * near-duplicates of queued ones were no candidates and have no value stored. */
  recentValues: number[];
  /** Frames of the batch that already have a label (an imported dataset's): nobody is asked again. */
  labelled: Set<string>;
  /** Per frame of the batch: cosine distance to the nearest of the stream's last queued (or
   * labelled) frames, by the embedding they were routed with, and to the nearest reference frame
   * of the model scoring it. */
  distances: Map<string, FrameDistances>;
}

/**
 * Everything the routing step reads, in one statement per batch (it was six round trips): the
 * policy version, drift boosts, today's task count, the last hour's frames, the recent selection
 * values and every frame's distances, answered by pgvector so no embeddings travel here. `at`
 * is the batch's clock and `anchor` its newest frame's ingest time, so a retried batch reads the
 * same pacing inputs.
 */
export async function routingInputs(
  db: DbOrTx,
  q: { streamId: string; modelVersion: string; policyVersion: number; at: Date; anchor: Date; batch: { frameId: string; embedding: number[] }[] },
): Promise<RoutingInputs> {
  const dayStart = new Date(Date.UTC(q.at.getUTCFullYear(), q.at.getUTCMonth(), q.at.getUTCDate()));
  const hourBefore = new Date(q.anchor.getTime() - 3600_000);
  const probes = q.batch.length
    ? sql.join(
        q.batch.map((f) => sql`(${f.frameId}, ${`[${f.embedding.join(',')}]`}::vector)`),
        sql`, `,
      )
    : sql`(null::text, null::vector)`;
  const ts = (d: Date) => sql`${d.toISOString()}::timestamptz`;
  type Row = {
    policy: unknown;
    boosted: (string | null)[];
    routed_today: number | string;
    last_hour: number | string;
    recent: number[];
    distances: { frameId: string | null; queued: number | null; reference: number | null }[];
    labelled: string[];
  };
  const batchIds = q.batch.length
    ? sql.join(
        q.batch.map((f) => sql`${f.frameId}::uuid`),
        sql`, `,
      )
    : sql`null::uuid`;
  const result = await db.execute(sql`
    with chosen as (
      select ${samplingPolicies.policy} as policy from ${samplingPolicies}
      where ${samplingPolicies.streamId} = ${q.streamId} and ${samplingPolicies.version} = ${q.policyVersion}
    ), queued as materialized (
      select ${frameScores.embedding} as embedding
      from ${reviewTasks}
      join ${frameScores} on ${frameScores.frameId} = ${reviewTasks.frameId} and ${frameScores.modelVersion} = ${reviewTasks.modelVersion}
      where ${reviewTasks.streamId} = ${q.streamId} and ${reviewTasks.goldLabelId} is null
      order by ${reviewTasks.createdAt} desc
      limit ${NOVELTY_LOOKBACK}
    ), refs as materialized (
      select ${modelReferences.embedding} as embedding from ${modelReferences} where ${modelReferences.modelVersion} = ${q.modelVersion}
    )
    select
      (select policy from chosen) as policy,
      (select coalesce(json_agg(${driftBoosts.cameraId}), '[]'::json) from ${driftBoosts}
        where ${driftBoosts.streamId} = ${q.streamId} and ${driftBoosts.expiresAt} > ${ts(q.at)}) as boosted,
      (select count(*) from ${reviewTasks} where ${reviewTasks.streamId} = ${q.streamId} and ${reviewTasks.createdAt} >= ${ts(dayStart)}
        and ${reviewTasks.goldLabelId} is null) as routed_today,
      -- frames that came with a label (an import) are never routed, so they do not set the pace;
      -- frames reviewers labelled since do (the pace must not fall as the queue is worked)
      (select count(*) from ${frames}
        where ${frames.streamId} = ${q.streamId} and ${frames.ingestedAt} > ${ts(hourBefore)} and ${frames.ingestedAt} <= ${ts(q.anchor)}
        and not exists (select 1 from ${labels} where ${labels.frameId} = ${frames.id} and ${labels.source} = 'import')) as last_hour,
      (select coalesce(json_agg(v), '[]'::json) from (
        select ${frameScores.selectionValue} as v from ${frameScores}
        where ${frameScores.streamId} = ${q.streamId} and ${frameScores.selectionValue} is not null
        -- a batch's rows share one scored_at: the frame id settles which of them the window keeps
        order by ${frameScores.scoredAt} desc, ${frameScores.frameId}
        -- the policy's pacing window under the ranked selection; none under the band selection
        limit (select case when coalesce(policy->>'selection', ${defaultSamplingPolicy.selection}) = 'ranked'
          then coalesce((policy->>'pacingWindow')::int, ${defaultSamplingPolicy.pacingWindow}) else 0 end
          from (select (select policy from chosen) as policy) p)
      ) r) as recent,
      (select json_agg(json_build_object(
          'frameId', b.frame_id,
          'queued', (select min(x.embedding <=> b.e) from queued x),
          'reference', (select min(r.embedding <=> b.e) from refs r)))
        from (values ${probes}) as b(frame_id, e)) as distances,
      (select coalesce(json_agg(distinct ${labels.frameId}), '[]'::json) from ${labels} where ${labels.frameId} in (${batchIds})) as labelled`);
  // Both drivers (node-postgres and PGlite) answer a raw statement with `{ rows }` and parse json.
  const [row] = (result as { rows: Row[] }).rows;
  return {
    policy: policyOrDefault(q.streamId, q.policyVersion, row.policy),
    boosted: new Set(row.boosted),
    routedToday: Number(row.routed_today),
    framesLastHour: Number(row.last_hour),
    recentValues: row.recent.map(Number),
    labelled: new Set(row.labelled),
    distances: new Map(
      row.distances
        .filter((d) => d.frameId !== null)
        .map((d) => [d.frameId!, { queued: d.queued === null ? null : Number(d.queued), reference: d.reference === null ? null : Number(d.reference) }]),
    ),
  };
}

/** A detection with its rank in the frame's output (0 = highest score) and its track, if any. */
interface ScoredDetection extends Detection {
  rank: number;
  trackId?: string | null;
}

export interface ScoredFrameRow {
  frameId: string;
  cameraId: string;
  capturedAt: Date;
  embedding: number[];
  detections: ScoredDetection[];
  /** What the selection made of the frame (its value feeds the paced threshold). */
  selection?: FrameSelection;
  /** The frame came with a label: scored and its selection kept, but never routed, and its value
   * does not feed the paced threshold. */
  labelled?: boolean;
  /** Within the near-duplicate distance of a queued frame: no candidate, so its value does not
   * feed the paced threshold either (its selection scores are kept). */
  nearDuplicate?: boolean;
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
 * The id of a detection: a hash of its key (frame, model version, rank), so a retried batch
 * gives every detection the id it had before, and the vector index (which may be outside the
 * database) keys it the same. Formatted as an RFC 9562 version-8 (custom) UUID.
 */
export function predictionId(frameId: string, modelVersion: string, rank: number): string {
  const h = createHash('sha256').update(`${frameId}:${modelVersion}:${rank}`).digest();
  h[6] = (h[6] & 0x0f) | 0x80;
  h[8] = (h[8] & 0x3f) | 0x80;
  const hex = h.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
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
    /** Where the detections' object embeddings go (written inside this transaction). */
    vectorIndex: VectorIndex;
  },
): Promise<{ predictions: number; tasksRouted: number }> {
  return db.transaction(async (tx) => {
    const moved = await tx
      .update(streams)
      .set({ scoredThroughSeq: sql`greatest(${streams.scoredThroughSeq}, ${args.toSeq})` })
      .where(and(eq(streams.id, args.streamId), eq(streams.scoredThroughSeq, args.fromSeq)))
      .returning({ id: streams.id });
    if (moved.length === 0) throw new CursorMovedError(args.streamId);
    // The frames this batch routes are share-locked (in id order) against an import labelling
    // one of them at the same time (insertImportedLabel holds its frame): an import that holds
    // it first commits before this batch reads labels, and one that comes later waits for the
    // batch's tasks and closes them. Without it, neither saw the other's uncommitted rows.
    const routedFrames = [...new Set(args.tasks.map((t) => t.frameId))].sort();
    if (routedFrames.length) await tx.select({ id: frames.id }).from(frames).where(inArray(frames.id, routedFrames)).orderBy(frames.id).for('share');

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
            selectionValue: f.labelled || f.nearDuplicate ? null : (f.selection?.value ?? null),
            selection: f.selection ?? null,
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
    const predictionRows = args.frames.flatMap((f) =>
      f.detections.map(({ embedding: _, ...d }) => ({
        id: predictionId(f.frameId, args.modelVersion, d.rank),
        frameId: f.frameId,
        modelVersion: args.modelVersion,
        ...d,
      })),
    );
    if (predictionRows.length > 0) {
      await tx.insert(predictions).values(predictionRows).onConflictDoNothing();
    }
    await args.vectorIndex.upsert(
      args.frames.flatMap((f) =>
        f.detections.map((d) => ({
          id: predictionId(f.frameId, args.modelVersion, d.rank),
          vector: d.embedding,
          metadata: {
            frameId: f.frameId,
            streamId: args.streamId,
            cameraId: f.cameraId,
            modelVersion: args.modelVersion,
            className: d.className,
            score: d.score,
            capturedAt: f.capturedAt,
            labelClass: null,
          },
        })),
      ),
      tx,
    );

    // Routing left out the frames labelled when it read its inputs; a label imported since is
    // caught here, so no task asks for it again.
    const labelled = args.tasks.length
      ? new Set((await tx.selectDistinct({ frameId: labels.frameId }).from(labels).where(inArray(labels.frameId, routedFrames))).map((r) => r.frameId))
      : new Set<string>();
    const tasks = args.tasks.filter((t) => !labelled.has(t.frameId));
    let tasksRouted = 0;
    if (tasks.length > 0) {
      const inserted = await tx
        .insert(reviewTasks)
        .values(
          tasks.map((t) => ({
            dedupeKey: `${t.frameId}:${args.modelVersion}:${t.rank ?? 'frame'}`,
            streamId: args.streamId,
            cameraId: t.cameraId,
            frameId: t.frameId,
            predictionId: t.rank === null ? null : predictionId(t.frameId, args.modelVersion, t.rank),
            modelVersion: args.modelVersion,
            className: t.className,
            score: t.score,
            reason: t.reason,
            policyVersion: args.policyVersion,
            selection: t.selection,
            priority: t.priority,
            reviewsNeeded: t.reviewsNeeded,
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

/** Today's selection of a stream (UTC day of `now`): frames scored and routed, tasks by reason. */
export async function selectionToday(db: DbOrTx, streamId: string, now: Date) {
  const dayStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
  const [scored] = await db
    .select({ n: count() })
    .from(frameScores)
    .where(and(eq(frameScores.streamId, streamId), gte(frameScores.scoredAt, dayStart)));
  const byReason = await db
    .select({ reason: reviewTasks.reason, tasks: count(), frames: sql<number>`count(distinct ${reviewTasks.frameId})` })
    .from(reviewTasks)
    .where(and(eq(reviewTasks.streamId, streamId), gte(reviewTasks.createdAt, dayStart), routedTasks))
    .groupBy(reviewTasks.reason);
  const [routed] = await db
    .select({ n: sql<number>`count(distinct ${reviewTasks.frameId})` })
    .from(reviewTasks)
    .where(and(eq(reviewTasks.streamId, streamId), gte(reviewTasks.createdAt, dayStart), routedTasks));
  const [latest] = await db
    .select({ selection: reviewTasks.selection })
    .from(reviewTasks)
    .where(and(eq(reviewTasks.streamId, streamId), isNotNull(reviewTasks.selection), routedTasks))
    .orderBy(desc(reviewTasks.createdAt))
    .limit(1);
  return {
    framesScored: scored?.n ?? 0,
    framesRouted: Number(routed?.n ?? 0),
    tasks: byReason.reduce((sum, r) => sum + r.tasks, 0),
    byReason: Object.fromEntries(byReason.map((r) => [r.reason, { tasks: r.tasks, frames: Number(r.frames) }])),
    /** The bar and target rate the newest routed frame met. */
    latest: latest?.selection ?? null,
  };
}

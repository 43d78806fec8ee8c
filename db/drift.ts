// Statements of the drift monitor: windows of embeddings, reference embeddings, settings,
// reports, boosts and retrain triggers.
import { and, asc, count, desc, eq, gt, gte, inArray, isNull, lte, ne, sql } from 'drizzle-orm';
import { driftSettingsSchema, defaultDriftMonitorSettings, type DriftMonitorSettings } from '../drift/settings.ts';
import type { DriftReport } from '../drift/report.ts';
import type { DbOrTx } from './client.ts';
import { audit } from './audit.ts';
import { deployments, driftBoosts, driftReports, driftSettings, frameScores, modelReferences, predictions, retrainRuns, retrainTriggers } from './schema.ts';

export interface EmbeddingWindow {
  /** The frames, where the window is made of stored frames (a model's held-out reference is not). */
  frameIds?: string[];
  embeddings: number[][];
  scores: number[];
  detections: number[];
}

async function withScores(db: DbOrTx, rows: { frameId: string; embedding: number[]; numDetections: number; modelVersion: string }[]): Promise<EmbeddingWindow> {
  const scores: number[] = [];
  if (rows.length) {
    const preds = await db
      .select({ score: predictions.score })
      .from(predictions)
      .where(
        and(
          inArray(
            predictions.frameId,
            rows.map((r) => r.frameId),
          ),
          eq(predictions.modelVersion, rows[0].modelVersion),
        ),
      );
    for (const p of preds) scores.push(p.score);
  }
  return { frameIds: rows.map((r) => r.frameId), embeddings: rows.map((r) => r.embedding), scores, detections: rows.map((r) => r.numDetections) };
}

type WindowScope = { modelVersion: string; streamId?: string; cameraId?: string };

const scopeFilter = (opts: WindowScope) =>
  and(
    eq(frameScores.modelVersion, opts.modelVersion),
    opts.streamId ? eq(frameScores.streamId, opts.streamId) : undefined,
    opts.cameraId ? eq(frameScores.cameraId, opts.cameraId) : undefined,
  );

/** Up to `limit` frames of the scope, newest or oldest first, thinned by `stride`. */
async function scoredFrames(db: DbOrTx, opts: WindowScope & { limit: number; stride: number; newest: boolean }): Promise<EmbeddingWindow> {
  const order = opts.newest ? [desc(frameScores.scoredAt), desc(frameScores.frameId)] : [asc(frameScores.scoredAt), asc(frameScores.frameId)];
  const rows = await db
    .select({
      frameId: frameScores.frameId,
      embedding: frameScores.embedding,
      numDetections: frameScores.numDetections,
      modelVersion: frameScores.modelVersion,
      streamId: frameScores.streamId,
      cameraId: frameScores.cameraId,
    })
    .from(frameScores)
    .where(scopeFilter(opts))
    .orderBy(...order)
    .limit(opts.limit);
  // Every stride-th frame of each camera, not of the merged sequence: cameras that send in turn
  // would otherwise leave a single camera in the window (four cameras, a stride of 4 or 16).
  const seen = new Map<string, number>();
  const thinned = rows.filter((r) => {
    const key = `${r.streamId}/${r.cameraId}`;
    const i = seen.get(key) ?? 0;
    seen.set(key, i + 1);
    return i % opts.stride === 0;
  });
  return withScores(db, thinned);
}

/** The latest frames scored by `modelVersion` (about `size` after thinning by `stride`), for all
 * streams, one stream, or one camera. */
export async function latestWindow(db: DbOrTx, opts: WindowScope & { size: number; stride?: number }): Promise<EmbeddingWindow> {
  const stride = opts.stride ?? 1;
  return scoredFrames(db, { ...opts, limit: opts.size * stride, stride, newest: true });
}

/** A camera's first frames under `modelVersion` (its own baseline) and its latest, the same
 * number of each and none in both: at most `size` each after thinning, fewer while the camera
 * has not yet sent two full windows. A camera is compared with itself because cameras differ
 * by design (mount, view, lens); against the model's reference, which mixes many cameras, every
 * single camera would look shifted. */
export async function cameraWindows(
  db: DbOrTx,
  opts: Required<Omit<WindowScope, 'cameraId'>> & { cameraId: string; size: number; stride: number },
): Promise<{ baseline: EmbeddingWindow; current: EmbeddingWindow }> {
  const [{ n }] = await db
    .select({ n: sql<number>`count(*)::int` })
    .from(frameScores)
    .where(scopeFilter(opts));
  const limit = Math.min(opts.size * opts.stride, Math.floor(n / 2));
  return {
    baseline: await scoredFrames(db, { ...opts, limit, newest: false }),
    current: await scoredFrames(db, { ...opts, limit, newest: true }),
  };
}

/** Frames of one stream scored in a pinned period (a lead's chosen reference). */
export async function pinnedWindow(
  db: DbOrTx,
  opts: { modelVersion: string; streamId: string; from: Date; to: Date; limit: number },
): Promise<EmbeddingWindow> {
  const rows = await db
    .select({
      frameId: frameScores.frameId,
      embedding: frameScores.embedding,
      numDetections: frameScores.numDetections,
      modelVersion: frameScores.modelVersion,
    })
    .from(frameScores)
    .where(
      and(
        eq(frameScores.modelVersion, opts.modelVersion),
        eq(frameScores.streamId, opts.streamId),
        gte(frameScores.scoredAt, opts.from),
        lte(frameScores.scoredAt, opts.to),
      ),
    )
    .orderBy(asc(frameScores.scoredAt))
    .limit(opts.limit);
  return withScores(db, rows);
}

/**
 * When the detector `modelVersion` was deployed by a retraining run that drift on this stream
 * started (its trigger taken up by the run), or null: such a model was trained on the shifted
 * frames, so the stream's own frames after the deploy are the reference the new world is judged by.
 */
export async function driftStartedDeployment(db: DbOrTx, q: { modelVersion: string; streamId: string }): Promise<Date | null> {
  const [row] = await db
    .select({ at: deployments.createdAt })
    .from(deployments)
    .innerJoin(retrainRuns, and(eq(retrainRuns.id, deployments.version), eq(retrainRuns.trigger, 'drift')))
    .innerJoin(retrainTriggers, and(eq(retrainTriggers.runId, retrainRuns.id), eq(retrainTriggers.streamId, q.streamId)))
    .where(and(eq(deployments.kind, 'detection'), eq(deployments.version, q.modelVersion), eq(deployments.action, 'deploy')))
    .orderBy(desc(deployments.id))
    .limit(1);
  return row?.at ?? null;
}

/**
 * The stream's cameras scored by this model, the busiest first, at most `limit` of them: camera
 * ids come from clients, and a test per camera must not grow without bound. `more` says whether
 * cameras were left out.
 */
export async function cameras(db: DbOrTx, streamId: string, modelVersion: string, limit: number): Promise<{ ids: string[]; more: boolean }> {
  const rows = await db
    .select({ cameraId: frameScores.cameraId })
    .from(frameScores)
    .where(and(eq(frameScores.streamId, streamId), eq(frameScores.modelVersion, modelVersion)))
    .groupBy(frameScores.cameraId)
    .orderBy(desc(count()), asc(frameScores.cameraId))
    .limit(limit + 1);
  return {
    ids: rows
      .slice(0, limit)
      .map((r) => r.cameraId)
      .sort(),
    more: rows.length > limit,
  };
}

export interface ReferenceFile {
  embeddings: number[][];
  scores: number[][];
  num_detections: number[];
}

/** Stores a model's reference embeddings (the reference.json the trainer writes beside it). */
export async function saveModelReference(db: DbOrTx, modelVersion: string, ref: ReferenceFile): Promise<number> {
  if (!ref.embeddings.length) return 0;
  const rows = ref.embeddings.map((embedding, idx) => ({
    modelVersion,
    idx,
    embedding,
    numDetections: ref.num_detections[idx] ?? 0,
    scores: ref.scores[idx] ?? [],
  }));
  for (let i = 0; i < rows.length; i += 200)
    await db
      .insert(modelReferences)
      .values(rows.slice(i, i + 200))
      .onConflictDoNothing();
  return rows.length;
}

export async function modelReference(db: DbOrTx, modelVersion: string): Promise<EmbeddingWindow> {
  const rows = await db.select().from(modelReferences).where(eq(modelReferences.modelVersion, modelVersion)).orderBy(asc(modelReferences.idx));
  return { embeddings: rows.map((r) => r.embedding), scores: rows.flatMap((r) => r.scores), detections: rows.map((r) => r.numDetections) };
}

export async function getDriftSettings(db: DbOrTx, streamId: string): Promise<DriftMonitorSettings> {
  const [row] = await db.select().from(driftSettings).where(eq(driftSettings.streamId, streamId));
  return row ? driftSettingsSchema.parse(row.settings) : defaultDriftMonitorSettings;
}

export async function saveDriftSettings(db: DbOrTx, streamId: string, settings: DriftMonitorSettings, by: string): Promise<void> {
  await db
    .insert(driftSettings)
    .values({ streamId, settings, updatedBy: by })
    .onConflictDoUpdate({ target: driftSettings.streamId, set: { settings, updatedBy: by, updatedAt: sql`now()` } });
}

export interface StoredReportInput {
  checkId: string;
  segmentType: 'global' | 'stream' | 'camera';
  segmentKey: string;
  modelVersion: string;
  /** novelFrameIds: the novelty test's novel frames of the current window, farthest first. */
  report: DriftReport & { reference: string; confirmation: DriftConfirmation; novelFrameIds: string[] };
}

/** Where a segment stands against the confirmation rule (k drifted checks out of the last n). */
export interface DriftConfirmation {
  /** Checks that found drift among the last `ofChecks` (this one included). */
  driftedChecks: number;
  ofChecks: number;
  /** The rule: `needed` drifted checks out of the last `window`. */
  needed: number;
  window: number;
  /** `confirmed`: drift, acted on; `pending`: drift, not yet confirmed; `none`: no drift now. */
  status: 'confirmed' | 'pending' | 'none';
}

/** Stores a report once per (check, segment); returns its id. */
export async function saveReport(db: DbOrTx, r: StoredReportInput): Promise<string> {
  const [row] = await db
    .insert(driftReports)
    .values({
      checkId: r.checkId,
      segmentType: r.segmentType,
      segmentKey: r.segmentKey,
      modelVersion: r.modelVersion,
      drift: r.report.drift,
      maxStatistic: r.report.maxStatistic,
      minAdjustedP: r.report.minAdjustedP,
      windowSize: r.report.windowSize,
      report: r.report,
    })
    .onConflictDoNothing()
    .returning({ id: driftReports.id });
  if (row) return row.id;
  const [existing] = await db
    .select({ id: driftReports.id })
    .from(driftReports)
    .where(and(eq(driftReports.checkId, r.checkId), eq(driftReports.segmentType, r.segmentType), eq(driftReports.segmentKey, r.segmentKey)));
  return existing.id;
}

/**
 * Whether each of a segment's latest reports under a model found drift, newest first, leaving out
 * the check `exceptCheckId` (the one asking: a retried check reads the same earlier reports).
 */
export async function earlierDriftFlags(
  db: DbOrTx,
  q: { segmentType: 'global' | 'stream' | 'camera'; segmentKey: string; modelVersion: string; exceptCheckId: string; limit: number },
): Promise<boolean[]> {
  if (q.limit <= 0) return [];
  const rows = await db
    .select({ drift: driftReports.drift })
    .from(driftReports)
    .where(
      and(
        eq(driftReports.segmentType, q.segmentType),
        eq(driftReports.segmentKey, q.segmentKey),
        eq(driftReports.modelVersion, q.modelVersion),
        ne(driftReports.checkId, q.exceptCheckId),
      ),
    )
    .orderBy(desc(driftReports.createdAt))
    .limit(q.limit);
  return rows.map((r) => r.drift);
}

/** Boosts sampling for a stream (cameraId null) or one camera, unless such a boost is active. */
export async function ensureBoost(db: DbOrTx, opts: { streamId: string; cameraId: string | null; reason: string; until: Date; now: Date }): Promise<boolean> {
  const active = await db
    .select({ id: driftBoosts.id })
    .from(driftBoosts)
    .where(
      and(
        eq(driftBoosts.streamId, opts.streamId),
        opts.cameraId === null ? sql`${driftBoosts.cameraId} is null` : eq(driftBoosts.cameraId, opts.cameraId),
        gt(driftBoosts.expiresAt, opts.now),
      ),
    );
  if (active.length) return false;
  await db.insert(driftBoosts).values({ streamId: opts.streamId, cameraId: opts.cameraId, reason: opts.reason, expiresAt: opts.until });
  return true;
}

/** Records a retraining trigger and reports whether a run should start: not while a run started
 * by drift on the same scope is still under way (its trigger `started`), since that run learns
 * from the same reviews; drift that persists after it ends starts the next one. */
export async function recordTrigger(db: DbOrTx, opts: { dedupeKey: string; reason: string; streamId: string | null; reportId: string }): Promise<boolean> {
  const [underWay] = await db
    .select({ id: retrainTriggers.id })
    .from(retrainTriggers)
    .where(and(eq(retrainTriggers.status, 'started'), opts.streamId === null ? isNull(retrainTriggers.streamId) : eq(retrainTriggers.streamId, opts.streamId)))
    .limit(1);
  if (underWay) return false;
  const rows = await db.insert(retrainTriggers).values(opts).onConflictDoNothing().returning({ id: retrainTriggers.id });
  if (rows.length) await audit(db, 'drift-monitor', 'drift.alert', opts.streamId ?? 'global', { reportId: opts.reportId, reason: opts.reason });
  return rows.length > 0;
}

export async function listReports(db: DbOrTx, opts: { streamId?: string; limit: number; driftOnly?: boolean }) {
  return db
    .select({
      id: driftReports.id,
      segmentType: driftReports.segmentType,
      segmentKey: driftReports.segmentKey,
      modelVersion: driftReports.modelVersion,
      drift: driftReports.drift,
      maxStatistic: driftReports.maxStatistic,
      minAdjustedP: driftReports.minAdjustedP,
      windowSize: driftReports.windowSize,
      createdAt: driftReports.createdAt,
      summary: sql<string>`${driftReports.report}->>'summary'`,
    })
    .from(driftReports)
    .where(
      and(
        opts.streamId ? sql`(${driftReports.segmentKey} = ${opts.streamId} or ${driftReports.segmentKey} like ${opts.streamId + '/%'})` : undefined,
        opts.driftOnly ? eq(driftReports.drift, true) : undefined,
      ),
    )
    .orderBy(desc(driftReports.createdAt))
    .limit(opts.limit);
}

export async function getReport(db: DbOrTx, id: string) {
  const [row] = await db.select().from(driftReports).where(eq(driftReports.id, id));
  return row ?? null;
}

/** A stream's latest drift decisions, newest first: the operations page charts them. */
export async function streamDriftSeries(db: DbOrTx, streamId: string, limit: number) {
  return db
    .select({
      at: driftReports.createdAt,
      p: driftReports.minAdjustedP,
      statistic: driftReports.maxStatistic,
      drift: driftReports.drift,
      summary: sql<string>`${driftReports.report}->>'summary'`,
      // Reports stored before the novelty test have none.
      novelFrameIds: sql<string[]>`coalesce(${driftReports.report}->'novelFrameIds', '[]'::jsonb)`,
    })
    .from(driftReports)
    .where(and(eq(driftReports.segmentType, 'stream'), eq(driftReports.segmentKey, streamId)))
    .orderBy(desc(driftReports.createdAt))
    .limit(limit);
}

// Statements of retraining runs: the run and its steps, the drift triggers a run takes up and
// closes, and the reviews a drift-started run waits for.
import { and, countDistinct, desc, eq, gte, isNull, sql } from 'drizzle-orm';
import type { Db, DbOrTx } from './client.ts';
import { labels, retrainRuns, retrainTriggers, type StepRecord } from './schema.ts';

export type RetrainRun = typeof retrainRuns.$inferSelect;
export type RunStatus = RetrainRun['status'];
export type RunTrigger = RetrainRun['trigger'];

export async function insertRun(db: DbOrTx, run: { id: string; trigger: RunTrigger; reason: string; requestedBy: string }): Promise<void> {
  await db.insert(retrainRuns).values(run).onConflictDoNothing();
}

export async function getRun(db: DbOrTx, id: string): Promise<RetrainRun | undefined> {
  const [run] = await db.select().from(retrainRuns).where(eq(retrainRuns.id, id));
  return run;
}

export async function listRuns(db: DbOrTx, limit: number): Promise<RetrainRun[]> {
  return db.select().from(retrainRuns).orderBy(desc(retrainRuns.createdAt)).limit(limit);
}

export interface StepUpdate {
  runId: string;
  step: StepRecord;
  status?: RunStatus;
  snapshotId?: string;
  candidateVersion?: string;
  metrics?: Record<string, unknown>;
}

/**
 * Replaces the step of that name (or appends it) and optionally sets the run's status and
 * fields, under a row lock. Returns the step as it was before (to time a finished step).
 */
export async function recordStep(db: Db, input: StepUpdate): Promise<{ previous: StepRecord | undefined } | null> {
  return db.transaction(async (tx) => {
    const [run] = await tx.select().from(retrainRuns).where(eq(retrainRuns.id, input.runId)).for('update');
    if (!run) return null;
    const previous = run.steps.find((s) => s.name === input.step.name);
    // Progress of a running step keeps the time it started, so its duration stays right.
    const step = previous?.status === 'running' && input.step.status === 'running' ? { ...input.step, at: previous.at } : input.step;
    await tx
      .update(retrainRuns)
      .set({
        steps: [...run.steps.filter((s) => s.name !== input.step.name), step],
        status: input.status ?? run.status,
        snapshotId: input.snapshotId ?? run.snapshotId,
        candidateVersion: input.candidateVersion ?? run.candidateVersion,
        metrics: input.metrics ? { ...run.metrics, ...input.metrics } : run.metrics,
        updatedAt: sql`now()`,
      })
      .where(eq(retrainRuns.id, input.runId));
    return { previous };
  });
}

/** A drift-started run takes up the pending triggers of its scope (a stream, or global for null). */
export async function takeUpTriggers(db: DbOrTx, runId: string, streamId: string | null): Promise<void> {
  const scope = streamId === null ? isNull(retrainTriggers.streamId) : eq(retrainTriggers.streamId, streamId);
  await db
    .update(retrainTriggers)
    .set({ status: 'started', runId })
    .where(and(eq(retrainTriggers.status, 'pending'), scope));
}

/** The run is over, whatever its outcome: its triggers are done, and drift may start the next. */
export async function closeTriggers(db: DbOrTx, runId: string): Promise<void> {
  await db
    .update(retrainTriggers)
    .set({ status: 'done' })
    .where(and(eq(retrainTriggers.status, 'started'), eq(retrainTriggers.runId, runId)));
}

/** Frames reviewed (labelled) since `since`, of one stream or all. */
export async function countLabelsSince(db: DbOrTx, streamId: string | null, since: Date): Promise<number> {
  const after = gte(labels.createdAt, since);
  const [row] = await db
    .select({ n: countDistinct(labels.frameId) })
    .from(labels)
    .where(streamId ? and(after, eq(labels.streamId, streamId)) : after);
  return row.n;
}

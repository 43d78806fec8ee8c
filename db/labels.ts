// Statements about labels: recent labels with their reviewer, labels with their frames for
// export, and imported labels stored once.
import { and, desc, eq, gte, lte, sql } from 'drizzle-orm';
import { sha256Hex } from '../storage/blob-store.ts';
import type { DbOrTx, Tx } from './client.ts';
import type { LabelBox } from './queue.ts';
import { consensusAnswers, frames, labels, reviewTasks, users } from './schema.ts';
import { claimable, closeTasks, routedTasks } from './task-state.ts';
import type { LabelRow, TaskRow } from './queue.ts';

export interface LabelQuery {
  streamId?: string;
  from?: Date;
  to?: Date;
}

const matching = (q: LabelQuery) =>
  and(
    q.streamId ? eq(labels.streamId, q.streamId) : undefined,
    q.from ? gte(labels.createdAt, q.from) : undefined,
    q.to ? lte(labels.createdAt, q.to) : undefined,
  );

export async function recentLabels(db: DbOrTx, q: LabelQuery & { limit: number }) {
  const rows = await db
    .select({ label: labels, reviewer: users.name })
    .from(labels)
    .leftJoin(users, eq(users.id, labels.reviewerId))
    .where(matching(q))
    .orderBy(desc(labels.createdAt))
    .limit(q.limit);
  return rows.map((r) => ({ ...r.label, reviewer: r.reviewer }));
}

export type LabelWithFrame = { label: typeof labels.$inferSelect; frame: typeof frames.$inferSelect };

/** Labels with their frames, oldest first (an export keeps each frame's newest). */
export async function labelsWithFrames(db: DbOrTx, q: LabelQuery): Promise<LabelWithFrame[]> {
  return db.select({ label: labels, frame: frames }).from(labels).innerJoin(frames, eq(frames.id, labels.frameId)).where(matching(q)).orderBy(labels.createdAt);
}

/** An imported label's identity: its frame and boxes. */
export const importKeyOf = (frameId: string, boxes: LabelBox[]) => sha256Hex(new TextEncoder().encode(JSON.stringify([frameId, boxes])));

export async function importedLabelExists(db: DbOrTx, importKey: string): Promise<boolean> {
  const rows = await db.select({ id: labels.id }).from(labels).where(eq(labels.importKey, importKey));
  return rows.length > 0;
}

/**
 * Stores an imported label (decision `correct`, source `import`) unless the same boxes were
 * imported for the frame before; returns whether it was new. Never touches other labels. The
 * frame's open routed tasks close with it (pending, or with a lapsed lease): the frame is
 * labelled, so nobody should be asked again. A task a reviewer holds stays theirs to finish (their
 * label is then the newer one), as does a consensus task some reviewers already answered.
 * Run it in the transaction that stores the frame, so the loop never sees the frame unlabelled.
 */
export async function insertImportedLabel(tx: Tx, l: { frameId: string; streamId: string; boxes: LabelBox[]; importedBy: string }): Promise<boolean> {
  // Holds the frame against a scoring batch storing its tasks at the same time (it share-locks
  // the frames it routes): one of the two sees the other's rows (READ COMMITTED sees neither's
  // uncommitted ones). `no key update` leaves the batch's foreign-key locks alone.
  await tx.select({ id: frames.id }).from(frames).where(eq(frames.id, l.frameId)).for('no key update');
  const rows = await tx
    .insert(labels)
    .values({
      frameId: l.frameId,
      streamId: l.streamId,
      reviewerId: l.importedBy,
      decision: 'correct',
      boxes: l.boxes,
      source: 'import',
      importKey: importKeyOf(l.frameId, l.boxes),
    })
    .onConflictDoNothing({ target: labels.importKey })
    .returning({ id: labels.id });
  if (rows.length === 0) return false;
  await closeTasks(
    tx,
    and(
      eq(reviewTasks.frameId, l.frameId),
      routedTasks,
      claimable,
      // A consensus task some reviewers already answered is left to finish.
      sql`not exists (select 1 from ${consensusAnswers} where ${consensusAnswers.taskId} = ${reviewTasks.id})`,
    )!,
  );
  return true;
}

/**
 * An answer that is not itself a label (to a gold task, or one of a consensus task's) in the shape
 * of the label a submit returns: the reviewer's reply does not tell them which kind they answered.
 */
export function answerAsLabel(
  answer: { id: string; reviewerId: string; decision: LabelRow['decision']; boxes: LabelBox[]; createdAt: Date },
  task: TaskRow,
): LabelRow {
  return {
    id: answer.id,
    taskId: task.id,
    frameId: task.frameId,
    streamId: task.streamId,
    reviewerId: answer.reviewerId,
    decision: answer.decision,
    boxes: answer.boxes,
    predictionId: task.predictionId,
    policyVersion: task.policyVersion,
    modelVersion: task.modelVersion,
    source: 'review',
    importKey: null,
    createdAt: answer.createdAt,
  };
}

/** Stores the label that decides a task (a reviewer's decision, merged answers, a lead's adjudication). */
export async function insertTaskLabel(
  tx: Tx,
  task: TaskRow,
  l: { reviewerId: string | null; decision: LabelRow['decision']; boxes: LabelBox[]; source: LabelRow['source'] },
): Promise<LabelRow> {
  const [label] = await tx
    .insert(labels)
    .values({
      taskId: task.id,
      frameId: task.frameId,
      streamId: task.streamId,
      predictionId: task.predictionId,
      policyVersion: task.policyVersion,
      modelVersion: task.modelVersion,
      ...l,
    })
    .returning();
  return label;
}

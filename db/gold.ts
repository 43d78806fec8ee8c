// Gold tasks: frames a lead marked as gold go back into the queue, one reviewer at a time, shaped
// like the task that labelled them; each answer is scored against the gold label, and a reviewer
// whose rolling accuracy falls below the pass score is paused from the queue until a lead
// resumes them (CVAT's ground-truth jobs, Label Studio's pause on low accuracy).
import { and, avg, count, desc, eq, exists, gt, isNotNull, isNull, ne, or, sql, type SQLWrapper } from 'drizzle-orm';
import { scoreAgainstGold } from '../policies/gold-score.ts';
import type { Db, DbOrTx, Tx } from './client.ts';
import { reviewerAgreement } from './consensus.ts';
import { answerAsLabel } from './labels.ts';
import { closeTasks } from './task-state.ts';
import type { Decision, LabelBox, LabelRow, TaskRow } from './queue.ts';
import { policyOrDefault } from './policies.ts';
import { consensusAnswers, frameScores, goldAnswers, goldFrames, labels, reviewTasks, samplingPolicies, users } from './schema.ts';

export interface GoldSettings {
  /** Rolling accuracy below which a reviewer is paused. */
  passScore: number;
  /** Answers the rolling accuracy averages. */
  window: number;
  /** Answers a reviewer gives before they can be paused. */
  minAnswers: number;
}

export class GoldError extends Error {
  constructor(
    message: string,
    readonly code: 'not_found' | 'unlabelled' | 'not_paused',
  ) {
    super(message);
    this.name = 'GoldError';
  }
}

/**
 * Marks a frame as gold: the label given (one of the frame's), or its newest, becomes the
 * reference answers are scored against; marking it again with another label moves the reference
 * of its gold tasks not yet answered too (a lead correcting a wrong gold label must not leave
 * reviewers scored, and paused, against it).
 */
export async function markGold(db: Db, frameId: string, markedBy: string, labelId?: string) {
  return db.transaction(async (tx) => {
    const [label] = await tx
      .select()
      .from(labels)
      .where(and(eq(labels.frameId, frameId), labelId ? eq(labels.id, labelId) : undefined))
      .orderBy(desc(labels.createdAt))
      .limit(1);
    if (!label) {
      throw labelId
        ? new GoldError(`label ${labelId} is not a label of frame ${frameId}`, 'not_found')
        : new GoldError(`frame ${frameId} has no label; label it (review or import) before marking it gold`, 'unlabelled');
    }
    const [row] = await tx
      .insert(goldFrames)
      .values({ frameId, streamId: label.streamId, labelId: label.id, markedBy })
      .onConflictDoUpdate({ target: goldFrames.frameId, set: { labelId: label.id, markedBy } })
      .returning();
    await tx
      .update(reviewTasks)
      .set({ goldLabelId: label.id })
      .where(and(eq(reviewTasks.frameId, frameId), isNotNull(reviewTasks.goldLabelId), ne(reviewTasks.status, 'done')));
    return row;
  });
}

/** Stops using a frame as gold; gold tasks of it not yet answered close (answers given stay counted). */
export async function unmarkGold(db: DbOrTx, frameId: string): Promise<boolean> {
  const removed = (await db.delete(goldFrames).where(eq(goldFrames.frameId, frameId)).returning()).length > 0;
  if (removed) await closeTasks(db, and(eq(reviewTasks.frameId, frameId), isNotNull(reviewTasks.goldLabelId), ne(reviewTasks.status, 'done'))!);
  return removed;
}

/** Gold frames with their reference boxes and how often they were answered, newest first. */
export async function listGold(db: DbOrTx, streamId?: string) {
  const answered = db
    .select({ frameId: goldAnswers.frameId, n: count().as('n'), mean: avg(goldAnswers.score).as('mean') })
    .from(goldAnswers)
    .groupBy(goldAnswers.frameId)
    .as('answered');
  const rows = await db
    .select({ gold: goldFrames, boxes: labels.boxes, answers: answered.n, meanScore: answered.mean })
    .from(goldFrames)
    .innerJoin(labels, eq(labels.id, goldFrames.labelId))
    .leftJoin(answered, eq(answered.frameId, goldFrames.frameId))
    .where(streamId ? eq(goldFrames.streamId, streamId) : undefined)
    .orderBy(desc(goldFrames.createdAt));
  return rows.map((r) => ({ ...r.gold, boxes: r.boxes, answers: Number(r.answers ?? 0), meanScore: r.meanScore === null ? null : Number(r.meanScore) }));
}

// A gold task's dedupe key, so a reviewer is given each gold frame once: built here and in SQL alike.
const goldKey = (frameId: string, userId: string) => `gold:${frameId}:${userId}`;
const goldKeySql = (frameId: SQLWrapper, userId: string) => sql`'gold:' || ${frameId} || ':' || ${userId}`;

/**
 * Leases the reviewer a gold task, if a gold frame is left that they have not been given and never
 * labelled or answered in consensus: a copy of the task that labelled the frame (its reason,
 * prediction and scores), or, for an imported label, a whole-frame random-sample task with the
 * selection scores the loop gave the frame. Null when there is none.
 */
export async function claimGoldTask(db: DbOrTx, args: { userId: string; streamId?: string; leaseSeconds: number }): Promise<TaskRow | null> {
  const [pick] = await db
    .select({ gold: goldFrames, label: labels })
    .from(goldFrames)
    .innerJoin(labels, eq(labels.id, goldFrames.labelId))
    .where(
      and(
        args.streamId ? eq(goldFrames.streamId, args.streamId) : undefined,
        sql`not exists (select 1 from ${reviewTasks} where ${reviewTasks.dedupeKey} = ${goldKeySql(goldFrames.frameId, args.userId)})`,
        // Not a frame they labelled (the gold label or any other) or answered in consensus.
        sql`not exists (select 1 from ${labels} mine where mine.frame_id = ${goldFrames.frameId} and mine.reviewer_id = ${args.userId})`,
        sql`not exists (select 1 from ${consensusAnswers} join ${reviewTasks} on ${reviewTasks.id} = ${consensusAnswers.taskId}
          where ${reviewTasks.frameId} = ${goldFrames.frameId} and ${consensusAnswers.reviewerId} = ${args.userId})`,
        // An imported label has no task to copy: the frame must have been scored, for its model.
        or(
          isNotNull(labels.taskId),
          exists(
            db
              .select({ one: sql`1` })
              .from(frameScores)
              .where(eq(frameScores.frameId, goldFrames.frameId)),
          ),
        ),
      ),
    )
    .orderBy(sql`random()`)
    .limit(1);
  if (!pick) return null;
  const shape = await taskShape(db, pick.label);
  const [task] = await db
    .insert(reviewTasks)
    .values({
      ...shape,
      dedupeKey: goldKey(pick.gold.frameId, args.userId),
      frameId: pick.gold.frameId,
      streamId: pick.gold.streamId,
      goldLabelId: pick.label.id,
      status: 'leased',
      leaseOwner: args.userId,
      leaseExpiresAt: sql`now() + make_interval(secs => ${args.leaseSeconds})`,
      attempts: 1,
    })
    .onConflictDoNothing()
    .returning();
  return task ?? null;
}

/** What a gold task looks like: the task that labelled the frame, or a whole-frame task. */
async function taskShape(db: DbOrTx, label: LabelRow) {
  if (label.taskId) {
    const [t] = await db.select().from(reviewTasks).where(eq(reviewTasks.id, label.taskId));
    return {
      cameraId: t.cameraId,
      predictionId: t.predictionId,
      modelVersion: t.modelVersion,
      className: t.className,
      score: t.score,
      reason: t.reason,
      policyVersion: t.policyVersion,
      selection: t.selection,
      priority: t.priority,
    };
  }
  const [scored] = await db
    .select({ modelVersion: frameScores.modelVersion, cameraId: frameScores.cameraId, selection: frameScores.selection })
    .from(frameScores)
    .where(eq(frameScores.frameId, label.frameId))
    .orderBy(desc(frameScores.scoredAt))
    .limit(1);
  const [policy] = await db
    .select({ version: samplingPolicies.version, policy: samplingPolicies.policy })
    .from(samplingPolicies)
    .where(eq(samplingPolicies.streamId, label.streamId))
    .orderBy(desc(samplingPolicies.version))
    .limit(1);
  return {
    cameraId: scored.cameraId,
    predictionId: null,
    modelVersion: scored.modelVersion,
    className: null,
    score: null,
    reason: 'random' as const,
    policyVersion: policy?.version ?? 1,
    // The scores the loop gave the frame when it scored it (as a random sample carries them).
    selection: scored.selection,
    // As the loop gives random samples: below the stream's base priority.
    priority: (policy ? policyOrDefault(label.streamId, policy.version, policy.policy).priority : 0) - 1,
  };
}

/**
 * Stores a reviewer's answer to a gold task (in the caller's transaction, which holds the task),
 * scores it, closes the task and pauses the reviewer if their rolling accuracy fell below the
 * pass score. Returns the answer in the shape of a label, as any submit answers.
 */
export async function answerGold(
  tx: Tx,
  task: TaskRow,
  args: { userId: string; decision: Decision; boxes: LabelBox[] },
  settings: GoldSettings,
): Promise<LabelRow> {
  const [gold] = await tx.select({ boxes: labels.boxes }).from(labels).where(eq(labels.id, task.goldLabelId!));
  const scored = scoreAgainstGold(args.boxes, gold.boxes);
  const [answer] = await tx
    .insert(goldAnswers)
    .values({
      taskId: task.id,
      reviewerId: args.userId,
      frameId: task.frameId,
      streamId: task.streamId,
      goldLabelId: task.goldLabelId!,
      decision: args.decision,
      boxes: args.boxes,
      ...scored,
    })
    .returning();
  await closeTasks(tx, task.id);
  const [standing] = await reviewerStandings(tx, settings, args.userId);
  if (standing?.accuracy != null && standing.answers >= settings.minAnswers && standing.accuracy < settings.passScore) {
    const reason =
      `Your accuracy on check frames is ${standing.accuracy.toFixed(2)} over your last ${standing.answers} answers, ` +
      `below the pass score of ${settings.passScore}. You are paused from the review queue until a lead resumes you.`;
    await tx
      .update(users)
      .set({ queuePausedAt: sql`now()`, queuePausedReason: reason })
      .where(and(eq(users.id, args.userId), isNull(users.queuePausedAt)));
  }
  return answerAsLabel(answer, task);
}

export async function goldAnswerOf(db: DbOrTx, taskId: string) {
  const [row] = await db.select().from(goldAnswers).where(eq(goldAnswers.taskId, taskId));
  return row ?? null;
}

export interface ReviewerStanding {
  reviewerId: string;
  name: string;
  /** Gold answers counted (the last `window` since the reviewer was last resumed). */
  answers: number;
  /** Mean F1 against gold over those answers (null: none yet). */
  accuracy: number | null;
  precision: number | null;
  recall: number | null;
  classAccuracy: number | null;
  pausedAt: Date | null;
  pausedReason: string | null;
  /** Answers to consensus tasks that were merged, and their mean F1 against the merged label. */
  consensusAnswers: number;
  agreement: number | null;
}

/**
 * Every reviewer's rolling accuracy on gold (or one reviewer's): the mean over their last
 * `window` answers since they were last resumed, and their agreement in consensus. Reviewers with
 * no answers are listed too.
 */
export async function reviewerStandings(db: DbOrTx, settings: Pick<GoldSettings, 'window'>, reviewerId?: string): Promise<ReviewerStanding[]> {
  const recent = db
    .select({
      reviewerId: goldAnswers.reviewerId,
      score: goldAnswers.score,
      precision: goldAnswers.precision,
      recall: goldAnswers.recall,
      classAccuracy: goldAnswers.classAccuracy,
      n: sql<number>`row_number() over (partition by ${goldAnswers.reviewerId} order by ${goldAnswers.createdAt} desc)`.as('n'),
    })
    .from(goldAnswers)
    .innerJoin(users, eq(users.id, goldAnswers.reviewerId))
    .where(or(isNull(users.goldSince), gt(goldAnswers.createdAt, users.goldSince)))
    .as('recent');
  const rows = await db
    .select({
      reviewerId: users.id,
      name: users.name,
      answers: sql<number>`count(${recent.score})`,
      accuracy: sql<number | null>`avg(${recent.score})`,
      precision: sql<number | null>`avg(${recent.precision})`,
      recall: sql<number | null>`avg(${recent.recall})`,
      classAccuracy: sql<number | null>`avg(${recent.classAccuracy})`,
      pausedAt: users.queuePausedAt,
      pausedReason: users.queuePausedReason,
    })
    .from(users)
    .leftJoin(recent, and(eq(recent.reviewerId, users.id), sql`${recent.n} <= ${settings.window}`))
    .where(and(eq(users.role, 'reviewer'), reviewerId ? eq(users.id, reviewerId) : undefined))
    .groupBy(users.id)
    .orderBy(users.name);
  const num = (v: unknown) => (v === null ? null : Number(v));
  const agreement = await reviewerAgreement(db);
  return rows.map((r) => ({
    consensusAnswers: agreement.get(r.reviewerId)?.answers ?? 0,
    agreement: agreement.get(r.reviewerId)?.agreement ?? null,
    ...r,
    answers: Number(r.answers),
    accuracy: num(r.accuracy),
    precision: num(r.precision),
    recall: num(r.recall),
    classAccuracy: num(r.classAccuracy),
    pausedAt: r.pausedAt ? new Date(r.pausedAt) : null,
  }));
}

/** Why the reviewer may not claim, or null when they may. */
export async function queuePause(db: DbOrTx, userId: string): Promise<string | null> {
  const [row] = await db.select({ at: users.queuePausedAt, reason: users.queuePausedReason }).from(users).where(eq(users.id, userId));
  return row?.at ? (row.reason ?? 'You are paused from the review queue until a lead resumes you.') : null;
}

/**
 * Lets a paused reviewer claim again; their rolling accuracy starts afresh. Refused for someone
 * who is not a reviewer, or not paused (their window is not cleared for nothing).
 */
export async function resumeReviewer(db: DbOrTx, name: string) {
  const [row] = await db
    .update(users)
    .set({ queuePausedAt: null, queuePausedReason: null, goldSince: sql`now()` })
    .where(and(eq(users.name, name), eq(users.role, 'reviewer'), isNotNull(users.queuePausedAt)))
    .returning({ id: users.id, name: users.name });
  if (row) return row;
  const [user] = await db.select({ role: users.role }).from(users).where(eq(users.name, name));
  throw user?.role === 'reviewer'
    ? new GoldError(`reviewer ${name} is not paused`, 'not_paused')
    : new GoldError(`no reviewer is named ${JSON.stringify(name)}`, 'not_found');
}

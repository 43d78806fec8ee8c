// Consensus tasks: a routed task that several reviewers answer, one after another and never the
// same reviewer twice; the last answer merges them (policies/consensus.ts) into the frame's label,
// or, when they disagree too much, hands the frame to a lead to adjudicate.
import { and, avg, count, desc, eq, inArray, isNotNull, sql } from 'drizzle-orm';
import { mergeAnswers } from '../policies/consensus.ts';
import type { DbOrTx, Tx } from './client.ts';
import { answerAsLabel, insertTaskLabel } from './labels.ts';
import { closeTasks } from './task-state.ts';
import { getPolicy } from './policies.ts';
import type { Decision, LabelBox, LabelRow, TaskRow } from './queue.ts';
import { consensusAnswers, consensusResults, frames, goldAnswers, reviewTasks, users } from './schema.ts';

export class ConsensusError extends Error {
  constructor(
    message: string,
    readonly code: 'not_found' | 'not_needed',
  ) {
    super(message);
    this.name = 'ConsensusError';
  }
}

export async function consensusAnswerOf(db: DbOrTx, taskId: string, reviewerId: string) {
  const [row] = await db
    .select()
    .from(consensusAnswers)
    .where(and(eq(consensusAnswers.taskId, taskId), eq(consensusAnswers.reviewerId, reviewerId)));
  return row ?? null;
}

/**
 * Stores one reviewer's answer to a consensus task, in the caller's transaction (which holds the
 * task). Until the last answer the task goes back to the queue for another reviewer; the last one
 * merges every answer: agreement at or above the policy's `adjudicateBelow` makes the merged boxes
 * the frame's label, below it the task waits for a lead.
 */
export async function answerConsensus(tx: Tx, task: TaskRow, args: { userId: string; decision: Decision; boxes: LabelBox[] }): Promise<LabelRow> {
  const [answer] = await tx
    .insert(consensusAnswers)
    .values({ taskId: task.id, reviewerId: args.userId, decision: args.decision, boxes: args.boxes })
    .returning();
  const answers = await tx.select().from(consensusAnswers).where(eq(consensusAnswers.taskId, task.id)).orderBy(consensusAnswers.createdAt, consensusAnswers.id);
  if (answers.length < task.reviewsNeeded) {
    await tx.update(reviewTasks).set({ status: 'pending', leaseOwner: null, leaseExpiresAt: null }).where(eq(reviewTasks.id, task.id));
    return answerAsLabel(answer, task);
  }
  const { consensus } = await getPolicy(tx, task.streamId, task.policyVersion);
  const result = mergeAnswers(
    answers.map((a) => a.boxes),
    consensus,
  );
  for (const [i, a] of answers.entries()) await tx.update(consensusAnswers).set({ agreement: result.byAnswer[i] }).where(eq(consensusAnswers.id, a.id));
  const agreed = result.agreement >= consensus.adjudicateBelow;
  let labelId: string | null = null;
  if (agreed) {
    labelId = (await insertTaskLabel(tx, task, { reviewerId: null, decision: 'correct', boxes: result.merged, source: 'consensus' })).id;
  }
  await tx.insert(consensusResults).values({
    taskId: task.id,
    frameId: task.frameId,
    streamId: task.streamId,
    merged: result.merged,
    agreement: result.agreement,
    byClass: result.byClass,
    labelId,
  });
  await closeTasks(tx, task.id, { adjudication: agreed ? null : 'needed' });
  return answerAsLabel(answer, task);
}

/** A lead decides a frame the reviewers disagreed on: their boxes become the label. */
export async function adjudicate(db: DbOrTx, args: { taskId: string; leadId: string; boxes: LabelBox[] }): Promise<LabelRow> {
  return db.transaction(async (tx) => {
    const [task] = await tx.select().from(reviewTasks).where(eq(reviewTasks.id, args.taskId)).for('update');
    if (!task) throw new ConsensusError(`task ${args.taskId} does not exist`, 'not_found');
    if (task.adjudication !== 'needed') {
      throw new ConsensusError(
        task.adjudication === 'resolved' ? `task ${task.id} was adjudicated already` : `task ${task.id} does not wait for adjudication`,
        'not_needed',
      );
    }
    const label = await insertTaskLabel(tx, task, { reviewerId: args.leadId, decision: 'correct', boxes: args.boxes, source: 'review' });
    await tx.update(reviewTasks).set({ adjudication: 'resolved' }).where(eq(reviewTasks.id, task.id));
    await tx.update(consensusResults).set({ labelId: label.id }).where(eq(consensusResults.taskId, task.id));
    return label;
  });
}

/** Consensus results, newest first, with every answer and the frame: what the lead page shows. */
export async function listConsensus(db: DbOrTx, q: { streamId?: string; adjudication?: 'needed'; limit: number }) {
  const rows = await db
    .select({
      result: consensusResults,
      task: { id: reviewTasks.id, adjudication: reviewTasks.adjudication },
      frame: { width: frames.width, height: frames.height },
    })
    .from(consensusResults)
    .innerJoin(reviewTasks, eq(reviewTasks.id, consensusResults.taskId))
    .innerJoin(frames, eq(frames.id, consensusResults.frameId))
    .where(and(q.streamId ? eq(consensusResults.streamId, q.streamId) : undefined, q.adjudication ? eq(reviewTasks.adjudication, q.adjudication) : undefined))
    .orderBy(desc(consensusResults.createdAt))
    .limit(q.limit);
  const ids = rows.map((r) => r.result.taskId);
  const answers = ids.length
    ? await db
        .select({ answer: consensusAnswers, reviewer: users.name })
        .from(consensusAnswers)
        .innerJoin(users, eq(users.id, consensusAnswers.reviewerId))
        .where(inArray(consensusAnswers.taskId, ids))
        .orderBy(consensusAnswers.createdAt, consensusAnswers.id)
    : [];
  return rows.map((r) => ({
    ...r.result,
    adjudication: r.task.adjudication,
    width: r.frame.width,
    height: r.frame.height,
    answers: answers
      .filter((a) => a.answer.taskId === r.result.taskId)
      .map((a) => ({ reviewer: a.reviewer, decision: a.answer.decision, boxes: a.answer.boxes, agreement: a.answer.agreement })),
  }));
}

/** Each reviewer's mean agreement with the merged label over their consensus answers. */
export async function reviewerAgreement(db: DbOrTx): Promise<Map<string, { answers: number; agreement: number }>> {
  const rows = await db
    .select({ reviewerId: consensusAnswers.reviewerId, answers: count(), agreement: avg(consensusAnswers.agreement) })
    .from(consensusAnswers)
    .where(isNotNull(consensusAnswers.agreement))
    .groupBy(consensusAnswers.reviewerId);
  return new Map(rows.map((r) => [r.reviewerId, { answers: Number(r.answers), agreement: Number(r.agreement) }]));
}

/** Which reviewers' labels a retraining snapshot leaves out. */
export interface ReviewerQuality {
  /** Mean F1 (against gold, or against the merged label in consensus) below which a reviewer's
   * labels are left out (0: none are). */
  minAccuracy: number;
  /** Answers (of each kind) a reviewer must have given to be judged on it. */
  minAnswers: number;
}

/**
 * Reviewers whose mean F1 over all their gold answers, or over all their merged consensus
 * answers, is below `minAccuracy` (each measure judged once they gave `minAnswers` of that kind).
 * All answers, not the rolling window: a resumed reviewer's labels from before are no better for it.
 * Only users with the reviewer role are judged: leads mark gold, adjudicate and import, and a
 * lead's few queue answers must not take those labels out of training.
 */
export async function reviewersBelow(
  db: DbOrTx,
  q: ReviewerQuality,
): Promise<{ reviewerId: string; name: string; measure: 'gold' | 'agreement'; answers: number; accuracy: number }[]> {
  const gold = await db
    .select({ reviewerId: goldAnswers.reviewerId, name: users.name, answers: count(), accuracy: avg(goldAnswers.score) })
    .from(goldAnswers)
    .innerJoin(users, eq(users.id, goldAnswers.reviewerId))
    .where(eq(users.role, 'reviewer'))
    .groupBy(goldAnswers.reviewerId, users.name)
    .having(and(sql`count(*) >= ${q.minAnswers}`, sql`avg(${goldAnswers.score}) < ${q.minAccuracy}`));
  const agreement = await db
    .select({ reviewerId: consensusAnswers.reviewerId, name: users.name, answers: count(), accuracy: avg(consensusAnswers.agreement) })
    .from(consensusAnswers)
    .innerJoin(users, eq(users.id, consensusAnswers.reviewerId))
    .where(and(isNotNull(consensusAnswers.agreement), eq(users.role, 'reviewer')))
    .groupBy(consensusAnswers.reviewerId, users.name)
    .having(and(sql`count(*) >= ${q.minAnswers}`, sql`avg(${consensusAnswers.agreement}) < ${q.minAccuracy}`));
  return [
    ...gold.map((r) => ({ ...r, measure: 'gold' as const, answers: Number(r.answers), accuracy: Number(r.accuracy) })),
    ...agreement.map((r) => ({ ...r, measure: 'agreement' as const, answers: Number(r.answers), accuracy: Number(r.accuracy) })),
  ].sort((x, y) => x.name.localeCompare(y.name) || x.measure.localeCompare(y.measure));
}

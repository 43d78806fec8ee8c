// The review queue: leases with FOR UPDATE SKIP LOCKED (no two reviewers get one task), decisions
// stored as labels in the same transaction that closes the task, and expired leases returned to
// the queue by the claim query itself, so no sweeper has to run for abandoned work to come back.
import { and, asc, count, desc, eq, getTableColumns, isNotNull, isNull, min, notExists, or, sql, type Placeholder } from 'drizzle-orm';
import { alias } from 'drizzle-orm/pg-core';
import type { Db, DbOrTx } from './client.ts';
import { answerConsensus, consensusAnswerOf } from './consensus.ts';
import { answerGold, claimGoldTask, goldAnswerOf, type GoldSettings } from './gold.ts';
import { answerAsLabel, insertTaskLabel } from './labels.ts';
import { claimable, closedTask, closeTasks, routedTasks } from './task-state.ts';
import { consensusAnswers, frames, labels, predictions, reviewTasks, type LabelBox } from './schema.ts';

export type { LabelBox };

export type TaskRow = typeof reviewTasks.$inferSelect;
export type LabelRow = typeof labels.$inferSelect;

export type Decision = 'accept' | 'reject' | 'correct';

export class QueueError extends Error {
  constructor(
    message: string,
    readonly code: 'not_found' | 'held_by_other' | 'lease_expired' | 'not_leased' | 'already_decided' | 'invalid',
  ) {
    super(message);
    this.name = 'QueueError';
  }
}

/**
 * The caller's current lease if they hold one, else the best open task (priority, then age),
 * leased to them for `leaseSeconds`. Returns null when the queue is empty. `expired` says the
 * task came back from someone's abandoned lease. With `offerGold`, a gold task comes first: one
 * the reviewer skipped, else a new one (db/gold.ts; a lookup and an insert).
 *
 * Taking an open task is one statement, as graphile-worker's getJobs is: the candidate is picked with
 * FOR UPDATE SKIP LOCKED inside the UPDATE, and the lease is stamped with the database's clock,
 * so API processes on machines whose clocks differ agree on when a lease runs out. Round trips
 * are what a claim costs the API process (each is a socket write and a wake-up of Postgres,
 * the largest share of its CPU in a 64-reviewer profile), so a usual claim is that one
 * statement and nothing else.
 */
export async function claimNext(
  db: Db,
  args: { userId: string; streamId?: string; leaseSeconds: number; offerGold?: boolean },
): Promise<{ task: TaskRow; expired: boolean } | null> {
  // Leasing first: most claims come from reviewers who hold no lease, and the lease statement
  // refuses while they hold one, so a usual claim is one round trip. Only when it leases
  // nothing is the reviewer's own lease looked up. (Two claims by one reviewer at the same
  // instant can each lease a task, as they could before: neither sees the other's uncommitted lease.)
  if (!args.offerGold) {
    const leased = await leaseOpenTask(db, args, 'any');
    if (leased) return leased;
  }
  const [own] = await preparedOnce(db, 'queue_own_lease', (name) =>
    db
      .select()
      .from(reviewTasks)
      .where(runningLeaseOf(reviewTasks, sql.placeholder('userId')))
      .limit(1)
      .prepare(name),
  ).execute({ userId: args.userId });
  if (own) return { task: own, expired: false };
  // The lease that stopped the first statement ran out or was answered in between: try once more.
  if (!args.offerGold) return leaseOpenTask(db, args, 'any');
  // A gold task the reviewer skipped or let lapse first, then a new one.
  const gold = (await leaseOpenTask(db, args, 'own gold')) ?? (await claimGoldTask(db, args));
  if (gold) return 'task' in gold ? gold : { task: gold, expired: false };
  return leaseOpenTask(db, args, 'any');
}

/**
 * Tasks `userId` holds in a lease that has not run out (on the database's clock). The status is
 * a literal, not a bound parameter, so a prepared statement's generic plan can still use the
 * partial index on leased tasks.
 */
function runningLeaseOf(tasks: typeof reviewTasks | typeof heldTasks, userId: string | Placeholder) {
  return and(eq(tasks.leaseOwner, userId), sql`${tasks.status} = 'leased'`, sql`${tasks.leaseExpiresAt} > now()`);
}

/** The same table under another name, for the "holds no lease" test inside the lease statement. */
const heldTasks = alias(reviewTasks, 'held');

// The statements every claim and answer runs, built once per top-level database handle (never a
// transaction's: the statement would keep its connection) and prepared under a name, so each
// connection parses them once and drizzle assembles their SQL once. The own-lease lookup and the
// answer then run on Postgres's generic plan; the lease statement keeps getting a custom plan
// each time (drizzle binds its LIMIT, and the generic plan's estimate without it loses). Measured
// with the old and new code in turn on one machine, this took 64 reviewers from 270-283 to
// 398-788 claim+submit/s (bench/results/queue.md). The status constants are literals, not bound
// parameters, so a generic plan can still prove the partial indexes' predicates.
const preparedStatements = new WeakMap<Db, Map<string, unknown>>();
function preparedOnce<T>(db: Db, name: string, prepare: (name: string) => T): T {
  let ofDb = preparedStatements.get(db);
  if (!ofDb) preparedStatements.set(db, (ofDb = new Map()));
  if (!ofDb.has(name)) ofDb.set(name, prepare(name));
  return ofDb.get(name) as T;
}

/** The lease statement's placeholders: userId, leaseSeconds and (`byStream`) streamId. */
function leaseStatement(db: Db, which: 'any' | 'own gold', byStream: boolean) {
  return preparedOnce(db, `queue_lease_${which === 'any' ? 'any' : 'own_gold'}${byStream ? '_of_stream' : ''}`, (name) => {
    const userId = sql.placeholder('userId');
    const candidate = db
      .select({ id: reviewTasks.id, previousStatus: sql<string>`${reviewTasks.status}`.as('previous_status') })
      .from(reviewTasks)
      // `status <> 'done'` is implied by `claimable`; said outright (and as a literal), it lets
      // Postgres walk the partial index review_tasks_(stream_)open_order_idx in the order below.
      .where(
        and(
          sql`${reviewTasks.status} <> 'done'`,
          claimable,
          byStream ? eq(reviewTasks.streamId, sql.placeholder('streamId')) : undefined,
          which === 'own gold'
            ? and(isNotNull(reviewTasks.goldLabelId), eq(reviewTasks.leaseOwner, userId))
            : // A gold task is only ever its reviewer's (one they skipped or let lapse comes back to them).
              or(isNull(reviewTasks.goldLabelId), eq(reviewTasks.leaseOwner, userId)),
          // A consensus task goes to each reviewer once.
          or(
            eq(reviewTasks.reviewsNeeded, 1),
            sql`not exists (select 1 from ${consensusAnswers} where ${consensusAnswers.taskId} = ${reviewTasks.id} and ${consensusAnswers.reviewerId} = ${userId})`,
          ),
        ),
      )
      // Tasks of one batch share their created_at: among them an abandoned lease goes first (it was
      // handed out first), then the id, so the order never depends on the plan Postgres picks.
      .orderBy(desc(reviewTasks.priority), asc(reviewTasks.createdAt), desc(sql`${reviewTasks.status} = 'leased'`), asc(reviewTasks.id))
      .limit(1)
      .for('update', { skipLocked: true })
      .as('candidate');
    return db
      .update(reviewTasks)
      .set({
        status: 'leased',
        leaseOwner: sql`${userId}`,
        leaseExpiresAt: sql`now() + make_interval(secs => ${sql.placeholder('leaseSeconds')})`,
        attempts: sql`${reviewTasks.attempts} + 1`,
      })
      .from(candidate)
      .where(
        and(
          eq(reviewTasks.id, candidate.id),
          notExists(
            db
              .select({ one: sql`1` })
              .from(heldTasks)
              .where(runningLeaseOf(heldTasks, userId)),
          ),
        ),
      )
      .returning({ ...getTableColumns(reviewTasks), previousStatus: candidate.previousStatus })
      .prepare(name);
  });
}

/**
 * Leases the best open task (or, with `own gold`, the best of the reviewer's own returned gold
 * tasks) in one statement, unless the reviewer already holds a running lease.
 */
async function leaseOpenTask(
  db: Db,
  args: { userId: string; streamId?: string; leaseSeconds: number },
  which: 'any' | 'own gold',
): Promise<{ task: TaskRow; expired: boolean } | null> {
  const [claimed] = await leaseStatement(db, which, Boolean(args.streamId)).execute({
    userId: args.userId,
    leaseSeconds: args.leaseSeconds,
    streamId: args.streamId,
  });
  if (!claimed) return null;
  const { previousStatus, ...task } = claimed;
  return { task, expired: previousStatus === 'leased' };
}

export async function getTask(db: DbOrTx, id: string): Promise<TaskRow | null> {
  const [row] = await db.select().from(reviewTasks).where(eq(reviewTasks.id, id));
  return row ?? null;
}

/** Field-by-field: jsonb does not keep key order, so serialized forms cannot be compared. */
function sameBoxes(stored: unknown, boxes: LabelBox[]): boolean {
  const a = stored as LabelBox[];
  return (
    Array.isArray(a) &&
    a.length === boxes.length &&
    a.every((x, i) => x.className === boxes[i].className && x.x1 === boxes[i].x1 && x.y1 === boxes[i].y1 && x.x2 === boxes[i].x2 && x.y2 === boxes[i].y2)
  );
}

/**
 * Stores a reviewer's decision as a label and closes the task, in one transaction. The label's
 * boxes are the ground truth of the task's frame as the reviewer saw it: `accept` keeps the
 * prediction under review, `reject` says it is not an object, `correct` gives the boxes drawn.
 * Submitting the same decision twice returns the first label (a retried request is harmless).
 */
export async function submitDecision(
  db: Db,
  args: { taskId: string; userId: string; decision: Decision; boxes?: LabelBox[] },
  gold: GoldSettings,
): Promise<{ label: LabelRow; replayed: boolean }> {
  const answered = await answerOwnLease(db, args);
  if (answered) return { label: answered, replayed: false };
  return db.transaction(async (tx) => {
    // The lease is judged on the database's clock, the clock that stamped it.
    const [row] = await tx
      .select({ task: reviewTasks, leaseOver: sql<boolean>`${reviewTasks.leaseExpiresAt} <= now()` })
      .from(reviewTasks)
      .where(eq(reviewTasks.id, args.taskId))
      .for('update');
    const task = row?.task;
    if (!task) throw new QueueError(`task ${args.taskId} does not exist`, 'not_found');
    let boxes = args.boxes ?? [];
    if (args.decision === 'accept' && args.boxes === undefined) {
      if (!task.predictionId) throw new QueueError('accepting a whole-frame task needs the boxes of the frame', 'invalid');
      const [p] = await tx.select().from(predictions).where(eq(predictions.id, task.predictionId));
      boxes = [{ className: p.className, x1: p.x1, y1: p.y1, x2: p.x2, y2: p.y2 }];
    }
    if (args.decision === 'reject' && boxes.length > 0)
      throw new QueueError('a rejection carries no boxes; use "correct" to replace the prediction', 'invalid');
    // A consensus task is answered by several reviewers: each one's own answer is what a retry replays.
    const mine = task.reviewsNeeded > 1 ? await consensusAnswerOf(tx, task.id, args.userId) : null;
    if (mine) {
      if (mine.decision === args.decision && sameBoxes(mine.boxes, boxes)) return { label: answerAsLabel(mine, task), replayed: true };
      throw new QueueError(`you already answered task ${task.id}`, 'already_decided');
    }
    if (task.status === 'done') {
      const answer = task.goldLabelId ? await goldAnswerOf(tx, task.id) : null;
      const [existing] = answer ? [answerAsLabel(answer, task)] : await tx.select().from(labels).where(eq(labels.taskId, task.id));
      if (existing && existing.reviewerId === args.userId && existing.decision === args.decision && sameBoxes(existing.boxes, boxes)) {
        return { label: existing, replayed: true };
      }
      throw new QueueError(`task ${task.id} was already decided`, 'already_decided');
    }
    if (task.status !== 'leased' || task.leaseOwner === null) throw new QueueError(`task ${task.id} is not leased; claim it first`, 'not_leased');
    if (task.leaseOwner !== args.userId) throw new QueueError(`task ${task.id} is leased by another reviewer`, 'held_by_other');
    if (task.leaseExpiresAt && row.leaseOver)
      throw new QueueError(`your lease on task ${task.id} expired at ${task.leaseExpiresAt.toISOString()}; claim again`, 'lease_expired');
    // An answer to a gold task is scored, not stored as a label; the reviewer sees the same reply.
    if (task.goldLabelId) return { label: await answerGold(tx, task, { userId: args.userId, decision: args.decision, boxes }, gold), replayed: false };
    // One answer of several: stored; the last one merges them into the label (or a lead's queue).
    if (task.reviewsNeeded > 1) return { label: await answerConsensus(tx, task, { userId: args.userId, decision: args.decision, boxes }), replayed: false };
    const label = await insertTaskLabel(tx, task, { reviewerId: args.userId, decision: args.decision, boxes, source: 'review' });
    await closeTasks(tx, task.id);
    return { label, replayed: false };
  });
}

/**
 * The common answer in one statement: a routed task (not gold, not consensus) that this
 * reviewer holds in a running lease is closed and its label stored together, with the lease
 * judged on the database's clock. Anything else (a retry, an expired or someone else's lease,
 * a gold or consensus task, an accept that takes the prediction's box) matches nothing here
 * and goes through submitDecision's transaction, which replays the first answer or says why
 * not. Five round trips (begin, lock, insert, close, commit) become one: on Postgres with 64
 * reviewers the client's share of each round trip was what limited claim+submit per second.
 */
export async function answerOwnLease(db: Db, args: { taskId: string; userId: string; decision: Decision; boxes?: LabelBox[] }): Promise<LabelRow | null> {
  if (args.boxes === undefined && args.decision === 'accept') return null;
  const boxes = args.boxes ?? [];
  if (args.decision === 'reject' && boxes.length > 0) return null;
  const [label] = await answerStatement(db).execute({ taskId: args.taskId, userId: args.userId, decision: args.decision, boxes: JSON.stringify(boxes) });
  return label ?? null;
}

/** answerOwnLease's statement; placeholders taskId, userId, decision and boxes (JSON text). */
function answerStatement(db: Db) {
  return preparedOnce(db, 'queue_answer_own_lease', (name) => {
    const closed = db.$with('closed').as(
      db
        .update(reviewTasks)
        .set(closedTask)
        .where(
          and(
            eq(reviewTasks.id, sql.placeholder('taskId')),
            sql`${reviewTasks.status} = 'leased'`,
            eq(reviewTasks.leaseOwner, sql.placeholder('userId')),
            or(isNull(reviewTasks.leaseExpiresAt), sql`${reviewTasks.leaseExpiresAt} > now()`),
            isNull(reviewTasks.goldLabelId),
            eq(reviewTasks.reviewsNeeded, 1),
          ),
        )
        .returning({
          taskId: reviewTasks.id,
          frameId: reviewTasks.frameId,
          streamId: reviewTasks.streamId,
          predictionId: reviewTasks.predictionId,
          policyVersion: reviewTasks.policyVersion,
          modelVersion: reviewTasks.modelVersion,
        }),
    );
    // drizzle's insert ... select names every column in the table's order: the id and created_at
    // are the columns' own defaults (gen_random_uuid(), now()), as insertTaskLabel leaves them.
    return db
      .with(closed)
      .insert(labels)
      .select(
        db
          .select({
            id: sql`gen_random_uuid()`.as('id'),
            taskId: closed.taskId,
            frameId: closed.frameId,
            streamId: closed.streamId,
            reviewerId: sql`${sql.placeholder('userId')}::uuid`.as('reviewer_id'),
            decision: sql`${sql.placeholder('decision')}`.as('decision'),
            boxes: sql`${sql.placeholder('boxes')}::jsonb`.as('boxes'),
            predictionId: closed.predictionId,
            policyVersion: closed.policyVersion,
            modelVersion: closed.modelVersion,
            source: sql`'review'`.as('source'),
            importKey: sql`null`.as('import_key'),
            createdAt: sql`now()`.as('created_at'),
          })
          .from(closed),
      )
      .returning()
      .prepare(name);
  });
}

/** Gives a leased task back to the queue (the reviewer skipped it). */
export async function releaseTask(db: Db, args: { taskId: string; userId: string }): Promise<TaskRow> {
  return db.transaction(async (tx) => {
    const [task] = await tx.select().from(reviewTasks).where(eq(reviewTasks.id, args.taskId)).for('update');
    if (!task) throw new QueueError(`task ${args.taskId} does not exist`, 'not_found');
    if (task.status !== 'leased') throw new QueueError(`task ${task.id} is not leased`, 'not_leased');
    if (task.leaseOwner !== args.userId) throw new QueueError(`task ${task.id} is leased by another reviewer`, 'held_by_other');
    const [row] = await tx
      .update(reviewTasks)
      // A gold task stays its reviewer's: it comes back to them, never to anyone else.
      .set({ status: 'pending', leaseOwner: task.goldLabelId ? task.leaseOwner : null, leaseExpiresAt: null })
      .where(eq(reviewTasks.id, task.id))
      .returning();
    return row;
  });
}

export interface QueueDepthRow {
  streamId: string;
  className: string | null;
  open: number;
  leased: number;
  oldestCreatedAt: Date | null;
}

export async function queueDepth(db: DbOrTx): Promise<QueueDepthRow[]> {
  const rows = await db
    .select({
      streamId: reviewTasks.streamId,
      className: reviewTasks.className,
      open: count(),
      leased: sql<number>`count(*) filter (where ${reviewTasks.status} = 'leased')`,
      oldestCreatedAt: min(reviewTasks.createdAt),
    })
    .from(reviewTasks)
    .where(and(sql`${reviewTasks.status} <> 'done'`, routedTasks))
    .groupBy(reviewTasks.streamId, reviewTasks.className)
    .orderBy(reviewTasks.streamId, reviewTasks.className);
  return rows.map((r) => ({ ...r, open: Number(r.open), leased: Number(r.leased), oldestCreatedAt: r.oldestCreatedAt ? new Date(r.oldestCreatedAt) : null }));
}

/** What a reviewer needs to decide a task: the task, its frame, and the frame's predictions. */
export async function taskContext(db: DbOrTx, task: TaskRow) {
  const [frame] = await db.select().from(frames).where(eq(frames.id, task.frameId));
  const preds = await db
    .select()
    .from(predictions)
    .where(and(eq(predictions.frameId, task.frameId), eq(predictions.modelVersion, task.modelVersion)))
    .orderBy(asc(predictions.rank));
  return { frame, predictions: preds };
}

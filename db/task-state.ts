// Conditions on review tasks and the one way a task is closed, shared by the queue, gold tasks,
// consensus and imports (kept apart from db/queue.ts so those modules need not import it).
import { and, eq, isNull, or, sql, type SQL } from 'drizzle-orm';
import type { DbOrTx } from './client.ts';
import { reviewTasks } from './schema.ts';

/** Tasks the loop routed (not gold tasks, which are checks on reviewers): what queue counts count. */
export const routedTasks = isNull(reviewTasks.goldLabelId);

/** Open tasks: pending, or leased with a lease that ran out (on the database's clock). Literals,
 * not bound parameters: the queue's prepared statements keep using the partial indexes. */
export const claimable = or(sql`${reviewTasks.status} = 'pending'`, and(sql`${reviewTasks.status} = 'leased'`, sql`${reviewTasks.leaseExpiresAt} < now()`))!;

/** What closing a task sets: done now, no lease. */
export const closedTask = { status: 'done' as const, completedAt: sql`now()`, leaseExpiresAt: null };

/** Closes tasks (by id, or any condition); `extra` sets more columns. */
export async function closeTasks(db: DbOrTx, which: string | SQL, extra: { adjudication?: 'needed' | null } = {}): Promise<void> {
  await db
    .update(reviewTasks)
    .set({ ...closedTask, ...extra })
    .where(typeof which === 'string' ? eq(reviewTasks.id, which) : which);
}

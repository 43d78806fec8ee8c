// Statements about labels read back: recent labels with their reviewer, and labels with their
// frames for export.
import { and, desc, eq, gte, lte } from 'drizzle-orm';
import type { DbOrTx } from './client.ts';
import { frames, labels, users } from './schema.ts';

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

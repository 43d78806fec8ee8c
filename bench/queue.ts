// Review queue: claim + submit throughput with concurrent reviewers, and double claims.
import { randomUUID } from 'node:crypto';
import type { DbHandle } from '../db/client.ts';
import { claimNext, submitDecision } from '../db/queue.ts';
import { frames, reviewTasks, streams } from '../db/schema.ts';
import { createUser } from '../db/users.ts';
import { table } from './stats.ts';

export async function benchQueue(handle: DbHandle, label: string, clients: number, tasks = 1500) {
  const db = handle.db;
  const streamId = `queue-${randomUUID().slice(0, 8)}`;
  await db.insert(streams).values({ id: streamId, name: streamId });
  const [frame] = await db
    .insert(frames)
    .values({
      streamId,
      cameraId: 'c',
      capturedAt: new Date(),
      contentHash: randomUUID(),
      storageKey: 'frames/x/y.png',
      mediaType: 'image/png',
      sizeBytes: 1,
      width: 1,
      height: 1,
    })
    .returning();
  for (let i = 0; i < tasks; i += 500) {
    await db.insert(reviewTasks).values(
      Array.from({ length: Math.min(500, tasks - i) }, (_, k) => ({
        dedupeKey: `${streamId}:${i + k}`,
        streamId,
        cameraId: 'c',
        frameId: frame.id,
        modelVersion: 'q',
        reason: 'random' as const,
        policyVersion: 1,
      })),
    );
  }
  const users = await Promise.all(Array.from({ length: clients }, (_, i) => createUser(db, { name: `${streamId}-r${i}`, role: 'reviewer' })));
  const claimedBy = new Map<string, number>();
  let doubles = 0;
  const started = performance.now();
  await Promise.all(
    users.map(async ({ user }) => {
      for (;;) {
        const c = await claimNext(db, { userId: user.id, streamId, leaseSeconds: 300 });
        if (!c) return;
        claimedBy.set(c.task.id, (claimedBy.get(c.task.id) ?? 0) + 1);
        if (claimedBy.get(c.task.id)! > 1) doubles++;
        await submitDecision(db, { taskId: c.task.id, userId: user.id, decision: 'correct', boxes: [] });
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  table(
    `Review queue on ${label}: ${clients} concurrent reviewers`,
    ['measure', 'value'],
    [
      ['tasks', tasks],
      ['claim+submit per second', tasks / seconds],
      ['tasks claimed twice', doubles],
    ],
  );
  return { perSecond: tasks / seconds, doubles };
}

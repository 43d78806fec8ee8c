// Review queue: claim + submit throughput with concurrent reviewers, and double claims.
import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import type { DbHandle } from '../db/client.ts';
import { config, goldSettings } from '../config.ts';
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
        await submitDecision(db, { taskId: c.task.id, userId: user.id, decision: 'correct', boxes: [] }, goldSettings(config));
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

/**
 * Claim latency as the queue grows: one reviewer claims 200 times from a stream with `depth`
 * open tasks, with the claim's order indexes and, as the baseline, without them (dropped for
 * the measurement and made again: the plan the claim had before they existed sorts every open task).
 */
export async function benchClaimDepth(handle: DbHandle, label: string) {
  const db = handle.db;
  const rows: (string | number)[][] = [];
  const indexes = ['review_tasks_open_order_idx', 'review_tasks_stream_open_order_idx'];
  const existing = await db.execute(
    sql`select indexdef from pg_indexes where indexname in ('review_tasks_open_order_idx', 'review_tasks_stream_open_order_idx')`,
  );
  const definitions = (existing as { rows: { indexdef: string }[] }).rows.map((r) => r.indexdef);
  for (const depth of [1_000, 10_000, 100_000]) {
    const streamId = `depth-${randomUUID().slice(0, 8)}`;
    await db.insert(streams).values({ id: streamId, name: streamId });
    // One frame per task (as routing makes them), created a second apart, three priorities.
    await db.execute(sql`insert into frames (stream_id, camera_id, captured_at, content_hash, storage_key, media_type, size_bytes, width, height)
      select ${streamId}, 'c', now(), md5(${streamId} || g::text), 'k', 'image/png', 1, 1, 1 from generate_series(1, ${depth}) g`);
    await db.execute(sql`insert into review_tasks (dedupe_key, stream_id, camera_id, frame_id, model_version, reason, policy_version, priority, created_at)
      select f.id::text, f.stream_id, 'c', f.id, 'q', 'band', 1, (f.seq % 3)::int, now() - (f.seq || ' seconds')::interval from frames f where f.stream_id = ${streamId}`);
    await db.execute(sql`analyze review_tasks`);
    const users = await Promise.all(Array.from({ length: 400 }, (_, i) => createUser(db, { name: `${streamId}-r${i}`, role: 'reviewer' })));
    const claims = async (from: number) => {
      const t = performance.now();
      for (let i = from; i < from + 200; i++) await claimNext(db, { userId: users[i].user.id, streamId, leaseSeconds: 300 });
      return (performance.now() - t) / 200;
    };
    const indexed = await claims(0);
    for (const name of indexes) await db.execute(sql.raw(`drop index ${name}`));
    const sorted = await claims(200);
    for (const def of definitions) await db.execute(sql.raw(def));
    rows.push([depth, indexed, sorted, sorted / indexed]);
  }
  table(
    `Review queue on ${label}: ms per claim by open tasks in the stream (one reviewer, 200 claims)`,
    ['open tasks', 'with the order indexes', 'without (sort every open task)', 'ratio'],
    rows,
  );
}

// What the database gauges read at scrape time: open tasks, frames waiting, production models.
import { sql } from 'drizzle-orm';
import type { Db } from '../db/client.ts';
import { queueDepth } from '../db/queue.ts';
import { frames, models, streams } from '../db/schema.ts';
import { registerDatabaseGauges, type QueueReading } from './metrics.ts';

export async function readDatabaseGauges(db: Db, now = new Date()): Promise<QueueReading> {
  const depth = await queueDepth(db);
  const waiting = await db
    .select({ stream: frames.streamId, count: sql<number>`count(*)` })
    .from(frames)
    .innerJoin(streams, sql`${streams.id} = ${frames.streamId}`)
    .where(sql`${frames.seq} > ${streams.scoredThroughSeq} and not exists (select 1 from frame_scores fs where fs.frame_id = ${frames.id})`)
    .groupBy(frames.streamId);
  const production = await db.select({ kind: models.kind, version: models.version }).from(models).where(sql`${models.status} = 'production'`);
  return {
    open: depth.map((d) => ({ stream: d.streamId, class: d.className ?? 'frame', count: d.open, oldestAgeSeconds: d.oldestCreatedAt ? (now.getTime() - d.oldestCreatedAt.getTime()) / 1000 : 0 })),
    framesWaiting: waiting.map((w) => ({ stream: w.stream, count: Number(w.count) })),
    production,
  };
}

let registered = false;
/** Registers the gauges once per process (prom-client refuses a second registration). */
export function exposeDatabaseGauges(db: Db): void {
  if (registered) return;
  registered = true;
  registerDatabaseGauges(() => readDatabaseGauges(db));
}

// What the database gauges read at scrape time: open tasks, frames waiting, production models.
import { sql } from 'drizzle-orm';
import type { Db } from '../db/client.ts';
import { queueDepth } from '../db/queue.ts';
import { models, streams } from '../db/schema.ts';
import { registerDatabaseGauges, type QueueReading } from './metrics.ts';

async function readDatabaseGauges(db: Db, now = new Date()): Promise<QueueReading> {
  const depth = await queueDepth(db);
  // Every stream gets a value (0 included), so "frames waiting" alerts and panels always have a series.
  const waiting = await db
    .select({
      stream: streams.id,
      // Qualified by hand: inside the subquery a bare "id" would mean the frame's id.
      count: sql<number>`(select count(*) from frames f where f.stream_id = "streams"."id" and f.seq > "streams"."scored_through_seq" and not exists (select 1 from frame_scores fs where fs.frame_id = f.id))`,
    })
    .from(streams);
  const production = await db
    .select({ kind: models.kind, version: models.version })
    .from(models)
    .where(sql`${models.status} = 'production'`);
  return {
    open: depth.map((d) => ({
      stream: d.streamId,
      class: d.className ?? 'frame',
      count: d.open,
      oldestAgeSeconds: d.oldestCreatedAt ? (now.getTime() - d.oldestCreatedAt.getTime()) / 1000 : 0,
    })),
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

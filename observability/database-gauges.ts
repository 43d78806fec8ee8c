// What the database gauges read at scrape time: open tasks, frames waiting, production models,
// reviewers' gold accuracy and consensus agreement.
import type { Db } from '../db/client.ts';
import { reviewerStandings, type GoldSettings } from '../db/gold.ts';
import { productionVersions } from '../db/models.ts';
import { queueDepth } from '../db/queue.ts';
import { framesWaiting } from '../db/streams.ts';
import { registerDatabaseGauges, type QueueReading } from './metrics.ts';

async function readDatabaseGauges(db: Db, gold: Pick<GoldSettings, 'window'>, now = new Date()): Promise<QueueReading> {
  const depth = await queueDepth(db);
  const standings = await reviewerStandings(db, gold);
  const waiting = await framesWaiting(db);
  const production = await productionVersions(db);
  return {
    open: depth.map((d) => ({
      stream: d.streamId,
      class: d.className ?? 'frame',
      count: d.open,
      oldestAgeSeconds: d.oldestCreatedAt ? (now.getTime() - d.oldestCreatedAt.getTime()) / 1000 : 0,
    })),
    framesWaiting: waiting,
    production,
    reviewers: standings.map((r) => ({
      reviewer: r.name,
      accuracy: r.accuracy,
      answers: r.answers,
      paused: r.pausedAt !== null,
      agreement: r.agreement,
    })),
  };
}

let registered = false;
/** Registers the gauges once per process (prom-client refuses a second registration). */
export function exposeDatabaseGauges(db: Db, gold: Pick<GoldSettings, 'window'>): void {
  if (registered) return;
  registered = true;
  registerDatabaseGauges(() => readDatabaseGauges(db, gold));
}

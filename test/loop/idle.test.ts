// A stream without frames holds no worker slot: its scoring call returns after a short wait, the
// loop sleeps on a timer, and the first frame ingested wakes it with a signal. The poll interval
// is set to ten minutes here, so frames scored within the test were woken for, not polled for.
// Once on PGlite, and once on Postgres when DATABASE_URL is set (CI).
import fs from 'node:fs';
import { count, eq, inArray } from 'drizzle-orm';
import { NativeConnection } from '@temporalio/worker';
import { describe, expect, inject, it } from 'vitest';
import { openDb, type DbHandle } from '../../db/client.ts';
import { frameScores, streams } from '../../db/schema.ts';
import type { RunningWorkers } from '../../workers/start-workers.ts';
import { streamWorkflowId } from '../../workflows/shared.ts';
import { createTestDb } from '../helpers/db.ts';
import { auth, createStreamOverApi, createTestPlatform, sampleFrames, type TestPlatform, startPlatformWorkers, stopStream } from '../helpers/platform.ts';
import { eventually, quietRuntime } from '../helpers/temporal.ts';

const backends: [string, () => Promise<DbHandle>][] = [['PGlite', () => openDb({})]];
if (process.env.DATABASE_URL) backends.push(['Postgres', createTestDb]);

async function postFrames(p: TestPlatform, streamId: string, n: number) {
  for (let i = 0; i < n; i++) {
    const sample = sampleFrames()[i % sampleFrames().length];
    const body = new Uint8Array(Buffer.concat([fs.readFileSync(sample.file), Buffer.from(`${streamId}#${i}#${Date.now()}`)]));
    const res = await p.app.request(`/v1/streams/${streamId}/frames?cameraId=${sample.cameraId}`, {
      method: 'POST',
      headers: auth(p.tokens.camera, { 'Content-Type': 'image/png' }),
      body,
    });
    expect(res.status).toBe(201);
  }
}

describe.each(backends)('an idle stream on %s', (_name, open) => {
  it('sleeps without holding a worker slot, and the first frame ingested wakes it', async () => {
    const handle = await open();
    const tag = Math.random().toString(36).slice(2, 8);
    const ids = ['a', 'b', 'c'].map((s) => `idle-${s}-${tag}`);
    const p = await createTestPlatform(handle, { cameraStreams: ids, env: { LOOP_IDLE_POLL_MS: '600000' } });
    quietRuntime();
    const connection = await NativeConnection.connect({ address: inject('temporalAddress') });
    let workers: RunningWorkers | null = null;
    const scored = async (id: string) => (await handle.db.select({ n: count() }).from(frameScores).where(eq(frameScores.streamId, id)))[0].n;
    const sleeping = async () => {
      const rows = await handle.db.select({ id: streams.id, since: streams.loopIdleSince }).from(streams).where(inArray(streams.id, ids));
      return rows.filter((r) => r.since !== null).map((r) => r.id);
    };
    const activitiesScheduled = async (id: string) => {
      const history = await p.deps.temporal!.workflow.getHandle(streamWorkflowId(id)).fetchHistory();
      return (history.events ?? []).filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'scoreAndRouteBatch').length;
    };
    try {
      workers = await startPlatformWorkers(p, connection);
      for (const id of ids) {
        await createStreamOverApi(p, id);
      }
      // Three empty streams on a worker with two scoring slots: each looks, finds nothing, and
      // sleeps on a timer with no activity pending.
      await eventually(async () => (await sleeping()).length === 3, 30_000, 'all three loops asleep');
      for (const id of ids) {
        await eventually(
          async () => ((await p.deps.temporal!.workflow.getHandle(streamWorkflowId(id)).describe()).raw.pendingActivities ?? []).length === 0,
          10_000,
          `${id} holds no activity`,
        );
      }
      const before = await activitiesScheduled(ids[0]);
      await new Promise((r) => setTimeout(r, 3000));
      // Asleep, it does not poll: no scoring call in three seconds (it used to call every 20 s
      // and hold a slot throughout).
      expect(await activitiesScheduled(ids[0])).toBe(before);

      // Frames to two of them: each is woken and scores its frames; the third sleeps on.
      await postFrames(p, ids[2], 3);
      await postFrames(p, ids[0], 2);
      await eventually(async () => (await scored(ids[2])) === 3 && (await scored(ids[0])) === 2, 30_000, 'the woken streams scored');
      expect(await activitiesScheduled(ids[1])).toBe(1);
      // Scored, they look again, find nothing and sleep again.
      await eventually(async () => (await sleeping()).length === 3, 30_000, 'asleep again');
      // The API shows when a loop went to sleep.
      const view = (await (await p.app.request(`/v1/streams/${ids[1]}`, { headers: auth(p.tokens.lead) })).json()) as {
        stream: { loopIdleSince: string | null };
      };
      expect(view.stream.loopIdleSince).not.toBeNull();
    } finally {
      for (const id of ids) await stopStream(p, id);
      await workers?.shutdown();
      await connection.close();
      await p.close();
      await handle.close();
    }
  });
});

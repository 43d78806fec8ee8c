// A stream with a backlog (a camera that sent while no worker ran) is scored several batches per
// activity call, which keeps the loop's history short, and stays exactly-once: a pause in the
// middle of a call stops it after the batch in hand, and resuming scores the rest, each frame once.
// Once on PGlite, and once on Postgres when DATABASE_URL is set (CI).
import fs from 'node:fs';
import { count, eq } from 'drizzle-orm';
import { NativeConnection } from '@temporalio/worker';
import { describe, expect, inject, it } from 'vitest';
import { openDb, type DbHandle } from '../../db/client.ts';
import { frameScores, reviewTasks } from '../../db/schema.ts';
import type { RunningWorkers } from '../../workers/start-workers.ts';
import { streamWorkflowId } from '../../workflows/shared.ts';
import { createTestDb } from '../helpers/db.ts';
import { auth, createTestPlatform, sampleFrames, type TestPlatform, startPlatformWorkers, stopStream } from '../helpers/platform.ts';
import { eventually, quietRuntime } from '../helpers/temporal.ts';

const backends: [string, () => Promise<DbHandle>][] = [['PGlite', () => openDb({})]];
if (process.env.DATABASE_URL) backends.push(['Postgres', createTestDb]);

const json = (token: string) => auth(token, { 'Content-Type': 'application/json' });
// One whole-frame task per frame (random rate 1, a band nothing falls into): tasks count frames.
const ONE_TASK_PER_FRAME = { band: { low: 0.999, high: 1 }, randomRate: 1, dailyBudget: null, diversityMinDistance: 0, maxTasksPerFrame: 1 };

async function postFrames(p: TestPlatform, streamId: string, from: number, n: number) {
  for (let i = from; i < from + n; i++) {
    const sample = sampleFrames()[i % sampleFrames().length];
    // Bytes after a PNG's end chunk are ignored by decoders: each upload is a new frame.
    const body = new Uint8Array(Buffer.concat([fs.readFileSync(sample.file), Buffer.from(`${streamId}#${i}`)]));
    const res = await p.app.request(`/v1/streams/${streamId}/frames?cameraId=${sample.cameraId}`, {
      method: 'POST',
      headers: auth(p.tokens.camera, { 'Content-Type': 'image/png' }),
      body,
    });
    expect(res.status).toBe(201);
  }
}

/** Frames scored by each scoring call that scored any, in the order the calls completed. */
async function framesPerCall(p: TestPlatform, streamId: string): Promise<number[]> {
  const history = await p.deps.temporal!.workflow.getHandle(streamWorkflowId(streamId)).fetchHistory();
  return (history.events ?? []).flatMap((e) => {
    const payload = e.activityTaskCompletedEventAttributes?.result?.payloads?.[0];
    if (!payload?.data) return [];
    const result = JSON.parse(Buffer.from(payload.data).toString()) as { framesScored?: number };
    return result.framesScored ? [result.framesScored] : [];
  });
}

async function exactlyOnce(db: DbHandle['db'], streamId: string, n: number) {
  const scores = await db.select({ frameId: frameScores.frameId }).from(frameScores).where(eq(frameScores.streamId, streamId));
  const tasks = await db.select({ frameId: reviewTasks.frameId }).from(reviewTasks).where(eq(reviewTasks.streamId, streamId));
  expect(scores).toHaveLength(n);
  expect(new Set(scores.map((s) => s.frameId)).size).toBe(n);
  expect(tasks).toHaveLength(n);
  expect(new Set(tasks.map((t) => t.frameId)).size).toBe(n);
}

describe.each(backends)('a stream with a backlog on %s', (_name, open) => {
  it('is scored several batches per activity call, and a pause mid-call stops it after the batch in hand', async () => {
    const handle = await open();
    const streamId = `backlog-${Math.random().toString(36).slice(2, 8)}`;
    const p = await createTestPlatform(handle, { cameraStreams: [streamId], env: { BATCH_SIZE: '4', SCORING_BATCHES_PER_CALL: '5' } });
    quietRuntime();
    const connection = await NativeConnection.connect({ address: inject('temporalAddress') });
    let workers: RunningWorkers | null = null;
    const scored = async () => (await handle.db.select({ n: count() }).from(frameScores).where(eq(frameScores.streamId, streamId)))[0].n;
    try {
      expect((await p.app.request('/v1/streams', { method: 'POST', headers: json(p.tokens.lead), body: JSON.stringify({ id: streamId }) })).status).toBe(201);
      expect(
        (await p.app.request(`/v1/streams/${streamId}/policy`, { method: 'PUT', headers: json(p.tokens.lead), body: JSON.stringify(ONE_TASK_PER_FRAME) }))
          .status,
      ).toBe(201);
      // The camera sends 40 frames while no worker runs: a backlog of 10 batches of 4.
      await postFrames(p, streamId, 0, 40);
      workers = await startPlatformWorkers(p, connection);
      await eventually(async () => (await scored()) === 40, 60_000, 'the backlog scored');
      await exactlyOnce(handle.db, streamId, 40);
      // Two calls of 5 batches each, where one batch per call used to cost six history events. A
      // call's frames are committed before it returns, so its completion reaches the history a
      // moment after the count above.
      const callsTotalling = (n: number) =>
        eventually(
          async () => {
            const c = await framesPerCall(p, streamId);
            return c.reduce((a, b) => a + b, 0) === n ? c : undefined;
          },
          30_000,
          `calls scoring ${n} frames in the history`,
        );
      expect(await callsTotalling(40)).toEqual([20, 20]);
      const status = await p.deps.loopControl.status(streamId);
      expect(status?.totals).toMatchObject({ batches: 10, framesScored: 40, tasksRouted: 40 });

      // 200 more sent while no worker runs, then a worker that may score them all in one call, and
      // a pause once it is under way: the call ends after the batch in hand, and says what it scored.
      await workers.shutdown();
      await postFrames(p, streamId, 40, 200);
      workers = await startPlatformWorkers({ ...p, deps: { ...p.deps, config: { ...p.deps.config, SCORING_BATCHES_PER_CALL: 1000 } } }, connection);
      await eventually(async () => (await scored()) >= 48, 60_000, 'the second backlog under way');
      expect((await p.app.request(`/v1/streams/${streamId}/pause`, { method: 'POST', headers: auth(p.tokens.lead) })).status).toBe(202);
      await eventually(
        async () => {
          const s = await p.deps.loopControl.status(streamId);
          return s?.state === 'PAUSED' && !s.batchInFlight;
        },
        30_000,
        'paused with no batch in flight',
      );
      const atPause = await scored();
      await new Promise((r) => setTimeout(r, 1500));
      expect(await scored()).toBe(atPause);
      expect(atPause).toBeLessThan(240);
      const calls = await framesPerCall(p, streamId);
      expect(calls).toHaveLength(3);
      expect(calls[2]).toBe(atPause - 40);

      expect((await p.app.request(`/v1/streams/${streamId}/resume`, { method: 'POST', headers: auth(p.tokens.lead) })).status).toBe(202);
      await eventually(async () => (await scored()) === 240, 60_000, 'the rest scored after resuming');
      await exactlyOnce(handle.db, streamId, 240);
      // Every frame the calls scored is counted in the loop's totals, the paused call's too.
      await callsTotalling(240);
      expect((await p.deps.loopControl.status(streamId))?.totals.framesScored).toBe(240);
    } finally {
      await stopStream(p, streamId);
      await workers?.shutdown();
      await connection.close();
      await p.close();
      await handle.close();
    }
  });
});

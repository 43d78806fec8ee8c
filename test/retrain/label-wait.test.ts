// A drift-started run's wait for reviews, and the retraining triggers it takes up.
//
// 1. The wait polls until enough frames of the stream are reviewed, for up to 30 days; without
//    continue-as-new its history grew by ~9 events a poll and would pass Temporal's 51,200-event
//    limit within weeks. On the dev server of the suite (which suggests continue-as-new at 400
//    events) the run must continue as new, keep its deadline, and go on when the reviews arrive.
// 2. A bug found by reading the code: a drift-started run marked every pending trigger of every
//    stream `started`, and its end marked every started trigger `done`, so a run for stream A
//    silenced drift on stream B. A run takes up and closes its own scope's triggers only.
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRetrainActivities } from '../../activities/retrain.ts';
import type { DbHandle } from '../../db/client.ts';
import { driftReports, frames, labels, retrainRuns, retrainTriggers, streams } from '../../db/schema.ts';
import type { RetrainInput } from '../../workflows/retrain.ts';
import { createTestDb } from '../helpers/db.ts';
import { createTestPlatform, type TestPlatform } from '../helpers/platform.ts';
import { eventually, uniqueQueue, withWorker } from '../helpers/temporal.ts';

let handle: DbHandle;
let p: TestPlatform;
beforeAll(async () => {
  handle = await createTestDb();
  p = await createTestPlatform(handle);
  await handle.db.insert(streams).values([
    { id: 'road-a', name: 'a' },
    { id: 'road-b', name: 'b' },
  ]);
});
afterAll(async () => {
  await p.close();
  await handle.close();
});

async function addLabels(streamId: string, n: number) {
  for (let i = 0; i < n; i++) {
    const [frame] = await handle.db
      .insert(frames)
      .values({
        streamId,
        cameraId: 'c',
        capturedAt: new Date(),
        contentHash: `${streamId}-${Date.now()}-${i}`,
        storageKey: `frames/${i}.png`,
        mediaType: 'image/png',
        sizeBytes: 1,
        width: 4,
        height: 4,
      })
      .returning();
    await handle.db.insert(labels).values({ frameId: frame.id, streamId, decision: 'correct', boxes: [], source: 'oracle' });
  }
}

describe('a drift-started run', () => {
  it('continues as new while it waits for reviews, keeps its deadline, and goes on when they arrive', async () => {
    const taskQueue = uniqueQueue('retrain-wait');
    const activities = createRetrainActivities({ db: handle.db, store: p.deps.store, loopControl: p.deps.loopControl });
    await withWorker({ taskQueue, activities }, async () => {
      const since = new Date().toISOString();
      const input: RetrainInput = {
        trigger: 'drift',
        reason: 'road-a: drift',
        requestedBy: 'drift-monitor',
        driftScope: { streamId: 'road-a' },
        waitForLabels: { streamId: 'road-a', since, minNew: 3, maxWaitMs: 10 * 60_000, pollMs: 20 },
      };
      const workflowId = `retrain-wait-${taskQueue}`;
      const handleWf = await p.deps.temporal!.workflow.start('retrain', { taskQueue, workflowId, args: [input] });
      const runs = async () => {
        const list = [];
        for await (const r of p.deps.temporal!.workflow.list({ query: `WorkflowId = '${workflowId}'` })) list.push(r);
        return list;
      };
      await eventually(async () => (await runs()).some((r) => r.status.name === 'CONTINUED_AS_NEW'), 60_000, 'the wait to continue as new');
      // The run after continue-as-new carries the original deadline.
      const latest = await p.deps.temporal!.workflow.getHandle(workflowId).describe();
      const history = await p.deps.temporal!.workflow.getHandle(workflowId, latest.runId).fetchHistory();
      const carried = JSON.parse(Buffer.from(history.events![0].workflowExecutionStartedEventAttributes!.input!.payloads![0].data!).toString()) as RetrainInput;
      // The deadline is the first run's start plus the wait, not the new run's start plus the wait.
      const deadline = Date.parse(carried.waitForLabels?.deadline ?? 'missing');
      expect(Math.abs(deadline - (Date.parse(since) + 10 * 60_000))).toBeLessThan(5000);

      await addLabels('road-a', 3);
      // With three labels the snapshot has too little to train on: the run ends there, which is
      // all this test needs (training itself is covered by retrain.test.ts).
      const result = await handleWf.result();
      expect(result.status).toBe('failed');
      const [run] = await handle.db.select().from(retrainRuns).where(eq(retrainRuns.id, workflowId));
      const steps = run.steps as { name: string; status: string; detail?: string }[];
      expect(steps.find((s) => s.name === 'labels')).toMatchObject({ status: 'done', detail: expect.stringContaining('3 frames reviewed') });
      expect(steps.find((s) => s.name === 'snapshot')?.status).toBe('failed');
      expect((await runs()).length).toBeGreaterThan(1);
    });
  });

  it('takes up and closes only the triggers of its own stream', async () => {
    const [report] = await handle.db
      .insert(driftReports)
      .values({
        segmentType: 'stream',
        segmentKey: 'road-a',
        modelVersion: 'm',
        drift: true,
        maxStatistic: 0.5,
        minAdjustedP: 1e-9,
        windowSize: 100,
        // The trigger needs a report to point at; its contents do not matter here.
        report: {} as never,
        checkId: 'c1',
      })
      .returning();
    await handle.db.insert(retrainTriggers).values([
      { dedupeKey: 'a:1', reason: 'drift a', streamId: 'road-a', reportId: report.id },
      { dedupeKey: 'b:1', reason: 'drift b', streamId: 'road-b', reportId: report.id },
      { dedupeKey: 'global:1', reason: 'drift everywhere', streamId: null, reportId: report.id },
    ]);
    const activities = createRetrainActivities({ db: handle.db, store: p.deps.store, loopControl: p.deps.loopControl });
    const statusOf = async () =>
      Object.fromEntries(
        (await handle.db.select().from(retrainTriggers))
          .filter((t) => t.dedupeKey.endsWith(':1'))
          .map((t) => [t.dedupeKey, `${t.status}${t.runId ? ` by ${t.runId}` : ''}`]),
      );

    await activities.recordRetrainRun({
      runId: 'run-a',
      trigger: 'drift',
      reason: 'drift a',
      requestedBy: 'drift-monitor',
      driftScope: { streamId: 'road-a' },
    });
    expect(await statusOf()).toEqual({ 'a:1': 'started by run-a', 'b:1': 'pending', 'global:1': 'pending' });
    await activities.recordRetrainRun({
      runId: 'run-b',
      trigger: 'drift',
      reason: 'drift b',
      requestedBy: 'drift-monitor',
      driftScope: { streamId: 'road-b' },
    });
    await activities.recordRetrainStep({ runId: 'run-a', step: { name: 'result', status: 'failed', at: new Date().toISOString() }, status: 'refused' });
    expect(await statusOf()).toEqual({ 'a:1': 'done by run-a', 'b:1': 'started by run-b', 'global:1': 'pending' });
  });
});

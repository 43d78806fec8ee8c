// Retraining end to end against the real Temporal dev server and the real Python trainer: a
// run snapshots reviewed labels, fine-tunes both models, evaluates them beside production with
// pycocotools, and deploys through the gate; a worse-than-allowed candidate is refused; a lead
// rolls back; a cancel through the API stops training
// within seconds; a killed training worker's step resumes from its last epoch on a new worker;
// the weekly schedule skips overlaps. (The waits measured in hours, approval and reviews after drift: waits.test.ts.)
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import { CancelledFailure, ScheduleOverlapPolicy, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createRetrainActivities } from '../../activities/retrain.ts';
import { RetrainControl } from '../../control/retrain-control.ts';
import type { DbHandle } from '../../db/client.ts';
import { deployments, frameScores, models, retrainRuns } from '../../db/schema.ts';
import { createUser } from '../../db/users.ts';
import { NativeConnection } from '@temporalio/worker';
import { getModel, productionModel } from '../../db/models.ts';
import { sha256Hex } from '../../storage/blob-store.ts';
import type { RetrainInput } from '../../workflows/retrain.ts';
import type { DetectorMetrics } from '../../workflows/trainer-contract.ts';
import { createTestDb } from '../helpers/db.ts';
import { auth, createTestPlatform, sampleFrames, startPlatformWorkers, type TestPlatform, stopStream } from '../helpers/platform.ts';
import { eventually, quietRuntime, testClient, uniqueQueue, withWorker } from '../helpers/temporal.ts';
import { seedReviewedFrames, startTrainer, storeTinyCheckpoints } from '../helpers/trainer.ts';

let handle: DbHandle;
let p: TestPlatform;
let trainer: ChildProcess;
const trainingQueue = uniqueQueue('training');

beforeAll(async () => {
  handle = await createTestDb();
  // Loops here serve a version's INT8 variant where it has one (the setting is opt-in).
  p = await createTestPlatform(handle, { env: { DETECTOR_PRECISION: 'int8' } });
  await storeTinyCheckpoints(p.deps.store);
  await seedReviewedFrames(handle.db, p.deps.store);
  trainer = await startTrainer({ address: inject('temporalAddress'), taskQueue: trainingQueue, storeDir: p.storeDir });
});

afterAll(async () => {
  trainer?.kill('SIGTERM');
  await p.close();
  await handle.close();
});

/** Starts a run as a lead would (RetrainControl, which the API uses) and hands it to `during`
 * while the control worker runs; returns how the run ended and its database record. */
async function runRetrain(input: Partial<RetrainInput>, during: (id: string, handle: WorkflowHandle) => Promise<void> = async () => {}) {
  const { client, close } = await testClient();
  try {
    return await withWorker(
      { taskQueue: p.controlQueue, activities: createRetrainActivities({ db: handle.db, store: p.deps.store, loopControl: p.deps.loopControl }) },
      async () => {
        const id = await new RetrainControl(client, p.controlQueue).start({
          trigger: 'manual',
          reason: 'test',
          requestedBy: 'lead',
          trainingQueue,
          epochs: 1,
          boxEpochs: 1,
          ...input,
        });
        const wf = client.workflow.getHandle(id);
        await during(id, wf);
        const result: { status: string; error?: unknown } = await wf.result().then(
          (r) => r as { status: string },
          (err: unknown) => ({ status: 'error', error: err }),
        );
        const [run] = await handle.db.select().from(retrainRuns).where(eq(retrainRuns.id, id));
        return { id, result, run };
      },
    );
  } finally {
    await close();
  }
}

/** Resolves once a training step of the run has finished its first epoch (resume.pt exists). */
const firstEpochDone = (id: string) =>
  eventually(async () => fs.existsSync(path.join(p.storeDir, 'models/detection', id, 'resume.pt')), 120_000, `first epoch of ${id}`);

describe('retrain', () => {
  it('rolls both models back when a loop does not confirm the new one, and the loop then scores with the old model', async () => {
    // A stream whose loop has no worker: it cannot confirm the candidate, so verification fails.
    const streamId = `verify-${Math.random().toString(36).slice(2, 8)}`;
    expect(
      (
        await p.app.request('/v1/streams', {
          method: 'POST',
          headers: auth(p.tokens.lead, { 'Content-Type': 'application/json' }),
          body: JSON.stringify({ id: streamId }),
        })
      ).status,
    ).toBe(201);
    try {
      // A gate no INT8 variant can pass (it would have to beat its float model by a point).
      const { id, result, run } = await runRetrain({ gate: { maxMapDrop: 1, maxClassDrop: 1, maxInt8MapDrop: -1 }, verifyTimeoutMs: 3000 });
      expect(result.status).toBe('rolled_back');
      const steps = run.steps.map((s) => [s.name, s.status, s.detail]);
      expect(steps).toContainEqual(['verify', 'failed', `loops still on the old version: ${streamId}`]);
      expect(steps).toContainEqual(['rollback', 'done', 'production back to detection tiny-detection, box tiny-box']);
      expect(run.steps.find((s) => s.name === 'gate')?.detail).toMatch(/INT8 mAP@0\.5 [\d.]+ against [\d.]+ in float: dropped \(falls by more than -1\)/);
      expect((await getModel(handle.db, 'detection', id))?.variants).toEqual({});
      expect((await productionModel(handle.db, 'detection'))?.version).toBe('tiny-detection');
      expect((await productionModel(handle.db, 'box'))?.version).toBe('tiny-box');
      const moves = await handle.db.select().from(deployments).orderBy(deployments.id);
      expect(moves.slice(-4).map((d) => [d.kind, d.action, d.version])).toEqual([
        ['detection', 'deploy', id],
        ['box', 'deploy', id],
        ['detection', 'rollback', 'tiny-detection'],
        ['box', 'rollback', 'tiny-box'],
      ]);
      // Once the loop's worker is back, its first batch scores with the model rolled back to.
      const sample = sampleFrames()[1];
      const camera = await createUser(handle.db, { name: `cam-${streamId}`, role: 'camera', streams: [streamId] });
      const posted = await (
        await p.app.request(`/v1/streams/${streamId}/frames?cameraId=${sample.cameraId}`, {
          method: 'POST',
          headers: auth(camera.token, { 'Content-Type': 'image/png' }),
          body: fs.readFileSync(sample.file),
        })
      ).json();
      quietRuntime();
      const connection = await NativeConnection.connect({ address: inject('temporalAddress') });
      const workers = await startPlatformWorkers(p, connection);
      try {
        const scored = await eventually(
          async () => (await handle.db.select().from(frameScores).where(eq(frameScores.frameId, posted.frameId)))[0],
          60_000,
          'the frame scored',
        );
        expect(scored.modelVersion).toBe('tiny-detection');
      } finally {
        await workers.shutdown();
        await connection.close();
      }
    } finally {
      await stopStream(p, streamId);
    }
  });

  it('snapshots labels, fine-tunes, evaluates beside production, deploys through the gate, and can be rolled back', async () => {
    const { id, result, run } = await runRetrain({ gate: { maxMapDrop: 1, maxClassDrop: 1, maxInt8MapDrop: 1 } });
    expect(result.status).toBe('deployed');
    expect((await productionModel(handle.db, 'detection'))?.version).toBe(id);
    expect((await productionModel(handle.db, 'box'))?.version).toBe(id);
    expect((run.steps as { name: string; status: string }[]).map((s) => [s.name, s.status])).toEqual([
      ['snapshot', 'done'],
      ['train', 'done'],
      ['evaluate', 'done'],
      ['gate', 'done'],
      ['register', 'done'],
      ['deploy', 'done'],
      ['verify', 'done'],
      ['result', 'done'],
    ]);
    // Candidate and production were evaluated on the same held-out split, the one the snapshot
    // set aside (a tiny model after one epoch may well score 0, so the mAP itself proves little).
    const metrics = run.metrics as { candidate: DetectorMetrics; production: DetectorMetrics };
    const heldOut = Number(/(\d+) held out/.exec(run.steps.find((s) => s.name === 'snapshot')?.detail ?? '')?.[1]);
    expect(heldOut).toBeGreaterThan(0);
    expect(metrics.candidate.num_images).toBe(heldOut);
    expect(metrics.production.num_images).toBe(heldOut);
    expect(Object.keys(metrics.candidate.per_class_ap50).sort()).toEqual(Object.keys(metrics.production.per_class_ap50).sort());
    for (const m of [metrics.candidate.map50, metrics.production.map50]) expect(m >= 0 && m <= 1).toBe(true);
    expect(fs.existsSync(path.join(p.storeDir, 'snapshots', id, 'dataset.json'))).toBe(true);
    // The trainer's INT8 variant was evaluated on the same split, kept by the gate (a margin of a
    // whole point), and registered beside the version it stands in for.
    const int8 = (run.metrics as { int8: DetectorMetrics }).int8;
    expect(int8.num_images).toBe(heldOut);
    expect(run.steps.find((s) => s.name === 'gate')?.detail).toContain(
      `INT8 mAP@0.5 ${int8.map50.toFixed(3)} against ${metrics.candidate.map50.toFixed(3)} in float: kept`,
    );
    const variant = (await getModel(handle.db, 'detection', id))?.variants.int8;
    expect(variant).toMatchObject({
      artifactKey: `models/detection/${id}/model.int8.onnx`,
      metrics: { map50: int8.map50, floatMap50: metrics.candidate.map50 },
    });
    expect(sha256Hex(await p.deps.store.get(variant!.artifactKey))).toBe(variant!.sha256);
    // The operations page says which encoding the stream's model runs in.
    const opsStream = async () =>
      (
        (await (await p.app.request('/v1/ops', { headers: auth(p.tokens.lead) })).json()) as {
          streams: { id: string; modelVersion: string; modelPrecision: string }[];
        }
      ).streams.find((s) => s.id === 'road');
    expect(await opsStream()).toMatchObject({ modelVersion: id, modelPrecision: 'int8' });

    const back = await p.app.request('/v1/models/detection/rollback', { method: 'POST', headers: auth(p.tokens.lead) });
    expect(back.status).toBe(200);
    expect((await back.json()).version).toBe('tiny-detection');
    expect((await productionModel(handle.db, 'detection'))?.version).toBe('tiny-detection');
    expect(await opsStream()).toMatchObject({ modelVersion: 'tiny-detection', modelPrecision: 'fp32' });
    const history = await handle.db.select().from(deployments).where(eq(deployments.kind, 'detection')).orderBy(deployments.id);
    expect(history.slice(-2).map((d) => [d.action, d.version])).toEqual([
      ['deploy', id],
      ['rollback', 'tiny-detection'],
    ]);
  });

  it('refuses a candidate the gate rejects and leaves production untouched', async () => {
    // A gate no model can pass: the candidate must beat production by a whole mAP point.
    const { result, run } = await runRetrain({ gate: { maxMapDrop: -1 } });
    expect(result.status).toBe('refused');
    expect(run.status).toBe('refused');
    expect((run.steps as { name: string; detail?: string }[]).find((s) => s.name === 'gate')?.detail).toContain('mAP@0.5');
    expect((await productionModel(handle.db, 'detection'))?.version).toBe('tiny-detection');
  });

  it('stops training promptly when a lead cancels through the API, and leaves production untouched', async () => {
    let cancelledAt = 0;
    // Enough epochs that training would run for minutes if the cancellation did not reach it.
    const { id, result, run } = await runRetrain({ epochs: 400, gate: { maxMapDrop: 1, maxClassDrop: 1 } }, async (id) => {
      await firstEpochDone(id);
      const res = await p.app.request(`/v1/retrain/runs/${id}/cancel`, { method: 'POST', headers: auth(p.tokens.lead) });
      expect(res.status).toBe(202);
      cancelledAt = Date.now();
    });
    // The workflow waits for the trainer to acknowledge (WAIT_CANCELLATION_COMPLETED), so once it
    // has closed the Python activity has stopped.
    const stoppedAfterMs = Date.now() - cancelledAt;
    expect(result.status).toBe('error');
    expect((result.error as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
    expect(run.status).toBe('cancelled');
    expect((run.steps as { name: string; status: string; detail?: string }[]).find((s) => s.name === 'train')).toMatchObject({
      status: 'failed',
      detail: 'cancelled',
    });
    expect(stoppedAfterMs).toBeLessThan(30_000); // 400 epochs take minutes: training did stop
    // Nothing half-made was left for anyone to take for a model: no export, no registration.
    expect(fs.existsSync(path.join(p.storeDir, 'models/detection', id, 'model.onnx'))).toBe(false);
    expect(await handle.db.select().from(models).where(eq(models.version, id))).toEqual([]);
    expect((await productionModel(handle.db, 'detection'))?.version).toBe('tiny-detection');
  });

  it('resumes training from the last finished epoch after the training worker is killed', async () => {
    const { id, result, run } = await runRetrain({ epochs: 12, trainingHeartbeatTimeoutMs: 5000, gate: { maxMapDrop: 1, maxClassDrop: 1 } }, async (id) => {
      await firstEpochDone(id);
      trainer.kill('SIGKILL'); // a crash: no chance to report anything
      await new Promise((r) => trainer.once('exit', r));
      trainer = await startTrainer({ address: inject('temporalAddress'), taskQueue: trainingQueue, storeDir: p.storeDir });
    });
    expect(result.status).toBe('deployed');
    const train = (run.steps as { name: string; detail?: string }[]).find((s) => s.name === 'train');
    expect(train?.detail).toMatch(/detection resumed after epoch [1-9]/);
    const metrics = JSON.parse(fs.readFileSync(path.join(p.storeDir, 'models/detection', id, 'metrics.json'), 'utf8'));
    expect(metrics.resumed_from_epoch).toBeGreaterThan(0);
    expect(metrics.epochs).toBe(12);
    // One registration and one deployment per model, however many attempts the step took.
    expect((await handle.db.select().from(models).where(eq(models.version, id))).map((m) => m.kind).sort()).toEqual(['box', 'detection']);
    expect(await handle.db.select().from(deployments).where(eq(deployments.version, id))).toHaveLength(2);
    expect((await productionModel(handle.db, 'detection'))?.version).toBe(id);
  }, 180_000);

  it('keeps a weekly schedule that skips overlapping runs', async () => {
    const { client, close } = await testClient();
    try {
      const control = new RetrainControl(client, p.controlQueue);
      await control.ensureSchedule('0 3 * * 1');
      await control.ensureSchedule('30 4 * * 2'); // a second call updates, not duplicates
      const s = await control.describeSchedule();
      expect(s?.policies.overlap).toBe(ScheduleOverlapPolicy.SKIP);
      expect(JSON.stringify(s?.spec)).toContain('"hour":[{"start":4');
      expect(s?.info.nextActionTimes[0].getUTCDay()).toBe(2);
      await client.schedule.getHandle('retrain-weekly').delete();
    } finally {
      await close();
    }
  });
});

// Retraining end to end against the real Temporal dev server and the real Python trainer: a
// run snapshots reviewed labels, fine-tunes both models, evaluates them beside production with
// pycocotools, and deploys through the gate; a worse-than-allowed candidate is refused; an
// unanswered approval times out; a lead rolls back; the weekly schedule skips overlaps.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import { CancelledFailure, ScheduleOverlapPolicy, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createRetrainActivities } from '../../activities/retrain.ts';
import { RetrainControl } from '../../control/retrain-control.ts';
import type { DbHandle } from '../../db/client.ts';
import { deployments, frames, labels, models, retrainRuns, streams } from '../../db/schema.ts';
import { productionModel } from '../../models/registry.ts';
import { trainerPython } from '../../scripts/tools.ts';
import type { RetrainInput } from '../../workflows/retrain.ts';
import { createTestDb } from '../helpers/db.ts';
import { auth, createTestPlatform, type TestPlatform } from '../helpers/platform.ts';
import { eventually, testClient, uniqueQueue, withWorker } from '../helpers/temporal.ts';

let handle: DbHandle;
let p: TestPlatform;
let trainer: ChildProcess;
const trainingQueue = uniqueQueue('training');

beforeAll(async () => {
  handle = await createTestDb();
  p = await createTestPlatform(handle);
  // Production's checkpoints sit beside its models, so retraining fine-tunes from them.
  for (const kind of ['detection', 'box'] as const) {
    await p.deps.store.put(`models/${kind}/tiny-${kind}/checkpoint.pt`, fs.readFileSync(path.join(inject('tinyModelsDir'), `${kind}.pt`)));
  }
  // Reviewed frames: the generated sample frames, labelled with their ground truth.
  await handle.db.insert(streams).values({ id: 'road', name: 'road' });
  const dir = inject('sampleFramesDir');
  const coco = JSON.parse(fs.readFileSync(path.join(dir, 'dataset.json'), 'utf8'));
  const names = ['vehicle', 'pedestrian', 'cyclist', 'sign'];
  for (const [i, im] of coco.images.entries()) {
    const bytes = fs.readFileSync(path.join(dir, im.file_name));
    const key = `frames/sample/${i}.png`;
    await p.deps.store.put(key, bytes);
    // Frames a minute apart: each is its own sequence for the train/val split.
    const [frame] = await handle.db.insert(frames).values({ streamId: 'road', cameraId: im.camera_id, capturedAt: new Date(Date.UTC(2026, 0, 1, 0, i)), contentHash: `h${i}`, storageKey: key, mediaType: 'image/png', sizeBytes: bytes.length, width: im.width, height: im.height }).returning();
    const boxes = coco.annotations
      .filter((a: { image_id: number }) => a.image_id === im.id)
      .map((a: { category_id: number; bbox: number[] }) => ({ className: names[a.category_id - 1], x1: a.bbox[0] / im.width, y1: a.bbox[1] / im.height, x2: (a.bbox[0] + a.bbox[2]) / im.width, y2: (a.bbox[1] + a.bbox[3]) / im.height }));
    await handle.db.insert(labels).values({ frameId: frame.id, streamId: 'road', decision: 'correct', boxes, source: 'oracle' });
  }
  trainer = await startTrainer();
});

/** The Python training worker, as `make up` runs it; resolves once it polls. */
async function startTrainer(): Promise<ChildProcess> {
  const child = spawn(trainerPython, ['-m', 'dataengine_trainer', 'worker', '--task-queue', trainingQueue, '--address', inject('temporalAddress')], { env: { ...process.env, STORE_DIR: p.storeDir }, stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`trainer worker exited with ${code}`)));
  });
  return child;
}

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
    return await withWorker({ taskQueue: p.controlQueue, activities: createRetrainActivities({ db: handle.db, store: p.deps.store, loopControl: p.deps.loopControl }) }, async () => {
      const id = await new RetrainControl(client, p.controlQueue).start({ trigger: 'manual', reason: 'test', requestedBy: 'lead', trainingQueue, epochs: 1, boxEpochs: 1, ...input });
      const wf = client.workflow.getHandle(id);
      await during(id, wf);
      const result = await wf.result().then((r) => r as { status: string }, (err: unknown) => ({ status: 'error', error: err }));
      const [run] = await handle.db.select().from(retrainRuns).where(eq(retrainRuns.id, id));
      return { id, result: result as { status: string; error?: unknown }, run };
    });
  } finally {
    await close();
  }
}

/** Resolves once a training step of the run has finished its first epoch (resume.pt exists). */
const firstEpochDone = (id: string) => eventually(async () => fs.existsSync(path.join(p.storeDir, 'models/detection', id, 'resume.pt')), 120_000, `first epoch of ${id}`);

describe('retrain', () => {
  it('snapshots labels, fine-tunes, evaluates beside production, deploys through the gate, and can be rolled back', async () => {
    const { id, result, run } = await runRetrain({ gate: { maxMapDrop: 1, maxClassDrop: 1 } });
    expect(result.status).toBe('deployed');
    expect((await productionModel(handle.db, 'detection'))?.version).toBe(id);
    expect((await productionModel(handle.db, 'box'))?.version).toBe(id);
    expect((run.steps as { name: string; status: string }[]).map((s) => [s.name, s.status])).toEqual([
      ['snapshot', 'done'], ['train', 'done'], ['evaluate', 'done'], ['gate', 'done'], ['register', 'done'], ['deploy', 'done'], ['verify', 'done'], ['result', 'done'],
    ]);
    const metrics = run.metrics as { candidate: { map50: number }; production: { map50: number } };
    expect(metrics.candidate.map50).toBeGreaterThanOrEqual(0);
    expect(metrics.production).not.toBeNull();
    expect(fs.existsSync(path.join(p.storeDir, 'snapshots', id, 'dataset.json'))).toBe(true);

    const back = await p.app.request('/v1/models/detection/rollback', { method: 'POST', headers: auth(p.tokens.lead) });
    expect(back.status).toBe(200);
    expect((await back.json()).version).toBe('tiny-detection');
    expect((await productionModel(handle.db, 'detection'))?.version).toBe('tiny-detection');
    const history = await handle.db.select().from(deployments).where(eq(deployments.kind, 'detection'));
    expect(history.map((d) => d.action)).toEqual(['deploy', 'deploy', 'rollback']);
  });

  it('refuses a candidate the gate rejects and leaves production untouched', async () => {
    // A gate no model can pass: the candidate must beat production by a whole mAP point.
    const { result, run } = await runRetrain({ gate: { maxMapDrop: -1 } });
    expect(result.status).toBe('refused');
    expect(run.status).toBe('refused');
    expect((run.steps as { name: string; detail?: string }[]).find((s) => s.name === 'gate')?.detail).toContain('mAP@0.5');
    expect((await productionModel(handle.db, 'detection'))?.version).toBe('tiny-detection');
  });

  it('gives up when nobody approves in time', async () => {
    const { result } = await runRetrain({ gate: { maxMapDrop: 1, maxClassDrop: 1 }, requireApproval: true, approvalTimeoutMs: 500 });
    expect(result.status).toBe('rejected');
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
    expect((run.steps as { name: string; status: string; detail?: string }[]).find((s) => s.name === 'train')).toMatchObject({ status: 'failed', detail: 'cancelled' });
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
      trainer = await startTrainer();
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

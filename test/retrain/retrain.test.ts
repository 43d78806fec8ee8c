// Retraining end to end against the real Temporal dev server and the real Python trainer: a
// run snapshots reviewed labels, fine-tunes both models, evaluates them beside production with
// pycocotools, and deploys through the gate; a worse-than-allowed candidate is refused; an
// unanswered approval times out; a lead rolls back; the weekly schedule skips overlaps.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import { ScheduleOverlapPolicy } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createRetrainActivities } from '../../activities/retrain.ts';
import { RetrainControl } from '../../control/retrain-control.ts';
import type { DbHandle } from '../../db/client.ts';
import { deployments, frames, labels, retrainRuns, streams } from '../../db/schema.ts';
import { productionModel } from '../../models/registry.ts';
import { trainerPython } from '../../scripts/tools.ts';
import type { RetrainInput } from '../../workflows/retrain.ts';
import { createTestDb } from '../helpers/db.ts';
import { auth, createTestPlatform, type TestPlatform } from '../helpers/platform.ts';
import { testClient, uniqueQueue, withWorker } from '../helpers/temporal.ts';

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
  trainer = spawn(trainerPython, ['-m', 'dataengine_trainer', 'worker', '--task-queue', trainingQueue, '--address', inject('temporalAddress')], { env: { ...process.env, STORE_DIR: p.storeDir }, stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    trainer.stdout!.once('data', () => resolve());
    trainer.once('exit', (code) => reject(new Error(`trainer worker exited with ${code}`)));
  });
});

afterAll(async () => {
  trainer?.kill('SIGTERM');
  await p.close();
  await handle.close();
});

async function runRetrain(input: Partial<RetrainInput>) {
  const { client, close } = await testClient();
  try {
    return await withWorker({ taskQueue: p.controlQueue, activities: createRetrainActivities({ db: handle.db, store: p.deps.store, loopControl: p.deps.loopControl }) }, async () => {
      const id = `retrain-test-${Math.random().toString(36).slice(2, 8)}`;
      const result = await client.workflow.execute('retrain', {
        taskQueue: p.controlQueue,
        workflowId: id,
        args: [{ trigger: 'manual', reason: 'test', requestedBy: 'lead', trainingQueue, epochs: 1, boxEpochs: 1, ...input } satisfies RetrainInput],
      });
      const [run] = await handle.db.select().from(retrainRuns).where(eq(retrainRuns.id, id));
      return { id, result: result as { status: string }, run };
    });
  } finally {
    await close();
  }
}

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

// Wall time of one weekly retraining on 10,000 labelled frames, split by step: the real retrain
// workflow on the Temporal server, the real Python training worker, default epochs, the frames
// and their labels in the database and blob store exactly as reviewing would leave them.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { eq } from 'drizzle-orm';
import { createRetrainActivities } from '../activities/retrain.ts';
import { config, repoRoot } from '../config.ts';
import { openVectorIndex } from '../storage/open-vector-index.ts';
import { TemporalLoopControl } from '../control/loop-control.ts';
import { RetrainControl } from '../control/retrain-control.ts';
import type { DbHandle } from '../db/client.ts';
import { fromCocoBbox } from '../db/coco.ts';
import { frames, labels, retrainRuns, streams } from '../db/schema.ts';
import { ModelCache } from '../models/model-cache.ts';
import { registerModel, setProduction } from '../models/registry.ts';
import { requireTool, trainerPython } from '../scripts/tools.ts';
import { LocalBlobStore } from '../storage/blob-store.ts';
import { startWorkers } from '../workers/start-workers.ts';
import { table } from './stats.ts';

interface CocoImage {
  id: number;
  file_name: string;
  camera_id: string;
  frame_index: number;
  width: number;
  height: number;
}
interface Coco {
  images: CocoImage[];
  annotations: { image_id: number; category_id: number; bbox: number[] }[];
  categories: { id: number; name: string }[];
}

/** Renders `count` frames of each scenario into the store and records them as reviewed. */
async function seedLabelledFrames(handle: DbHandle, storeDir: string, parts: { scenario: string; count: number }[]) {
  await handle.db.insert(streams).values({ id: 'fleet', name: 'fleet' }).onConflictDoNothing();
  const t0 = Date.UTC(2026, 10, 16);
  for (const [p, { scenario, count }] of parts.entries()) {
    const rel = `frames/bench-${scenario}`;
    execFileSync(requireTool(trainerPython), [
      '-m',
      'dataengine_trainer',
      'generate',
      '--out',
      path.join(storeDir, rel),
      '--scenario',
      scenario,
      '--count',
      String(count),
      '--cameras',
      '8',
      '--seed',
      String(20 + p),
      '--stride',
      '4',
    ]);
    const coco = JSON.parse(fs.readFileSync(path.join(storeDir, rel, 'dataset.json'), 'utf8')) as Coco;
    const names = new Map(coco.categories.map((c) => [c.id, c.name]));
    const byImage = new Map<number, Coco['annotations']>();
    for (const a of coco.annotations) byImage.set(a.image_id, [...(byImage.get(a.image_id) ?? []), a]);
    for (let i = 0; i < coco.images.length; i += 500) {
      const chunk = coco.images.slice(i, i + 500);
      const rows = await handle.db
        .insert(frames)
        .values(
          chunk.map((im) => ({
            streamId: 'fleet',
            cameraId: `${scenario}-${im.camera_id}`,
            // One frame a second per camera: frames of a scene share a sequence for the split.
            capturedAt: new Date(t0 + im.frame_index * 1000),
            contentHash: `${scenario}-${im.file_name}`,
            storageKey: `${rel}/${im.file_name}`,
            mediaType: 'image/png',
            sizeBytes: fs.statSync(path.join(storeDir, rel, im.file_name)).size,
            width: im.width,
            height: im.height,
          })),
        )
        .returning({ id: frames.id });
      await handle.db.insert(labels).values(
        chunk.map((im, k) => ({
          frameId: rows[k].id,
          streamId: 'fleet',
          decision: 'correct' as const,
          source: 'oracle' as const,
          boxes: (byImage.get(im.id) ?? []).map((a) => fromCocoBbox(names.get(a.category_id)!, a.bbox, im.width, im.height)),
        })),
      );
    }
  }
}

export async function benchRetrain(handle: DbHandle, temporalAddress: string, opts = { clear: 7500, night: 2500 }) {
  const storeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-retrain-'));
  const store = new LocalBlobStore(storeDir);
  const started = performance.now();
  await seedLabelledFrames(handle, storeDir, [
    { scenario: 'clear', count: opts.clear },
    { scenario: 'night', count: opts.night },
  ]);
  const seedMs = performance.now() - started;
  // Production: the committed seed models. Their training checkpoints are not committed, so the
  // candidate trains from scratch; a fine-tune costs the same per epoch.
  for (const kind of ['detection', 'box'] as const) {
    await registerModel(handle.db, store, { kind, bytes: fs.readFileSync(path.join(repoRoot, `models/seed/${kind}.onnx`)), version: 'seed' });
    await setProduction(handle.db, kind, 'seed', { triggeredBy: 'bench' });
  }
  const stamp = Date.now();
  const controlQueue = `bench-retrain-control-${stamp}`;
  const trainingQueue = `bench-training-${stamp}`;
  const connection = await Connection.connect({ address: temporalAddress });
  const client = new Client({ connection });
  const loopControl = new TemporalLoopControl(client, { batchSize: 16, maxWaitMs: 500, taskQueue: `bench-retrain-scoring-${stamp}`, controlQueue });
  const models = new ModelCache(store, { intraOpThreads: 2, minScore: 0.1 });
  const native = await NativeConnection.connect({ address: temporalAddress });
  const workers = await startWorkers({
    connection: native,
    namespace: 'default',
    db: handle.db,
    store,
    detectors: models,
    vectorIndex: openVectorIndex(handle.db, config),
    scoringQueue: `bench-retrain-scoring-${stamp}`,
    controlQueue,
    controlActivities: createRetrainActivities({ db: handle.db, store, loopControl, warm: (k, v) => models.warm(k, v) }),
  });
  const trainer = spawn(requireTool(trainerPython), ['-m', 'dataengine_trainer', 'worker', '--task-queue', trainingQueue, '--address', temporalAddress], {
    env: { ...process.env, STORE_DIR: storeDir },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise((resolve) => trainer.stdout.once('data', resolve));
  try {
    console.error(`retrain bench: ${opts.clear + opts.night} labelled frames ready in ${(seedMs / 1000).toFixed(0)} s; retraining with default epochs`);
    // Default epochs and the lead-facing settings of a weekly run; a permissive gate so every
    // step (register, deploy, verify) runs whatever the candidate scores.
    const id = await new RetrainControl(client, controlQueue).start({
      trigger: 'schedule',
      reason: 'benchmark',
      requestedBy: 'bench',
      trainingQueue,
      gate: { maxMapDrop: 1, maxClassDrop: 1 },
    });
    const result = (await client.workflow.getHandle(id).result()) as { status: string };
    const [run] = await handle.db.select().from(retrainRuns).where(eq(retrainRuns.id, id));
    const steps = run.steps;
    // Each step record holds the time of its last change; a step ran from the previous step's end.
    let previous = run.createdAt.getTime();
    const total = Date.parse(steps.at(-1)!.at) - previous;
    const rows = steps.map((s) => {
      const ms = Date.parse(s.at) - previous;
      previous = Date.parse(s.at);
      return [s.name, ms / 1000, `${((ms / total) * 100).toFixed(1)}%`, (s.detail ?? '').slice(0, 90)];
    });
    rows.push(['total', total / 1000, '100%', `outcome: ${result.status}`]);
    table(
      `One weekly retraining on ${opts.clear + opts.night} labelled frames (${opts.clear} clear + ${opts.night} night), default epochs, seconds`,
      ['step', 'seconds', 'share', 'detail'],
      rows,
    );
    return { totalSeconds: total / 1000, steps: Object.fromEntries(rows.map((r) => [r[0], r[1]])) };
  } finally {
    trainer.kill('SIGTERM');
    await workers.shutdown();
    await native.close();
    await connection.close();
    await models.close();
    fs.rmSync(storeDir, { recursive: true, force: true });
  }
}

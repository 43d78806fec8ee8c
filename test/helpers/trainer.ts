// The Python training worker and reviewed frames for it to learn from, for retraining tests.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { inject } from 'vitest';
import type { Db } from '../../db/client.ts';
import { fromCocoBbox } from '../../db/coco.ts';
import { frames, labels, streams } from '../../db/schema.ts';
import { trainerPython } from '../../scripts/tools.ts';
import type { BlobStore } from '../../storage/blob-store.ts';

/** Starts `python -m dataengine_trainer worker` as `make up` does; resolves once it polls. */
export async function startTrainer(opts: { address: string; taskQueue: string; storeDir: string }): Promise<ChildProcess> {
  const child = spawn(trainerPython, ['-m', 'dataengine_trainer', 'worker', '--task-queue', opts.taskQueue, '--address', opts.address], {
    env: { ...process.env, STORE_DIR: opts.storeDir },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`trainer worker exited with ${code}`)));
  });
  return child;
}

/** Production's checkpoints beside its models (tiny-<kind>), so retraining fine-tunes from them. */
export async function storeTinyCheckpoints(store: BlobStore): Promise<void> {
  for (const kind of ['detection', 'box'] as const) {
    await store.put(`models/${kind}/tiny-${kind}/checkpoint.pt`, fs.readFileSync(path.join(inject('tinyModelsDir'), `${kind}.pt`)));
  }
}

/** The generated sample frames in stream `road`, each labelled with its ground truth as a
 * reviewer would have corrected it. */
export async function seedReviewedFrames(db: Db, store: BlobStore): Promise<void> {
  await db.insert(streams).values({ id: 'road', name: 'road' });
  const dir = inject('sampleFramesDir');
  const coco = JSON.parse(fs.readFileSync(path.join(dir, 'dataset.json'), 'utf8'));
  // The generator's classes, as its COCO file lists them (ids from 1).
  const names = (coco.categories as { id: number; name: string }[]).sort((a, b) => a.id - b.id).map((c) => c.name);
  for (const [i, im] of coco.images.entries()) {
    const bytes = fs.readFileSync(path.join(dir, im.file_name));
    const key = `frames/sample/${i}.png`;
    await store.put(key, bytes);
    // Frames a minute apart: each is its own sequence for the train/val split.
    const [frame] = await db
      .insert(frames)
      .values({
        streamId: 'road',
        cameraId: im.camera_id,
        capturedAt: new Date(Date.UTC(2026, 0, 1, 0, i)),
        contentHash: `h${i}`,
        storageKey: key,
        mediaType: 'image/png',
        sizeBytes: bytes.length,
        width: im.width,
        height: im.height,
      })
      .returning();
    const boxes = coco.annotations
      .filter((a: { image_id: number }) => a.image_id === im.id)
      .map((a: { category_id: number; bbox: number[] }) => fromCocoBbox(names[a.category_id - 1], a.bbox, im.width, im.height));
    await db.insert(labels).values({ frameId: frame.id, streamId: 'road', decision: 'correct', boxes, source: 'oracle' });
  }
}

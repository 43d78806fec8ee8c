// The window the drift monitor tests: the latest frames a model scored, thinned so that
// consecutive, near-identical frames do not count as independent draws.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DbHandle } from '../../db/client.ts';
import { latestWindow } from '../../db/drift.ts';
import { EMBEDDING_DIM, frames, frameScores, streams } from '../../db/schema.ts';
import { createTestDb, testFrame } from '../helpers/db.ts';

let handle: DbHandle;
const CAMERAS = ['cam-0', 'cam-1', 'cam-2', 'cam-3'];

beforeAll(async () => {
  handle = await createTestDb();
  await handle.db.insert(streams).values({ id: 'road', name: 'road' });
  // 64 frames from four cameras sending in turn; the embedding's first value names frame and camera.
  for (let i = 0; i < 64; i++) {
    const cameraId = CAMERAS[i % 4];
    const [f] = await handle.db
      .insert(frames)
      .values(testFrame('road', i, cameraId))
      .returning();
    await handle.db.insert(frameScores).values({
      frameId: f.id,
      modelVersion: 'm1',
      streamId: 'road',
      cameraId,
      numDetections: 1,
      embedding: [i, ...new Array(EMBEDDING_DIM - 1).fill(0)],
      scoredAt: new Date(Date.UTC(2026, 0, 1, 0, 1, i)),
    });
  }
});
afterAll(async () => handle?.close());

const framesIn = async (opts: { size: number; stride: number; cameraId?: string }) =>
  (await latestWindow(handle.db, { modelVersion: 'm1', streamId: 'road', ...opts })).embeddings.map((e) => e[0]);

describe('latestWindow', () => {
  it('thins each camera on its own, so cameras sending in turn all stay in the window', async () => {
    // A stride equal to the number of cameras: thinning the merged sequence would keep cam-3 only.
    const window = await framesIn({ size: 8, stride: 4 });
    expect(window).toEqual([63, 62, 61, 60, 47, 46, 45, 44]);
    expect(new Set(window.map((i) => CAMERAS[i % 4])).size).toBe(4);
  });

  it('takes every stride-th frame of one camera, newest first', async () => {
    expect(await framesIn({ size: 4, stride: 2, cameraId: 'cam-1' })).toEqual([61, 53, 45, 37]);
    expect(await framesIn({ size: 5, stride: 1 })).toEqual([63, 62, 61, 60, 59]);
  });
});

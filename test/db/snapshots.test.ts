// Retraining snapshots: the labels since the parent, plus a replayed share of the parent's frames.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DbHandle } from '../../db/client.ts';
import { frames, labels, streams } from '../../db/schema.ts';
import { createSnapshot } from '../../db/snapshots.ts';
import { LocalBlobStore } from '../../storage/blob-store.ts';
import { createTestDb, testFrame } from '../helpers/db.ts';

let handle: DbHandle;
let dir: string;
beforeEach(async () => {
  handle = await createTestDb();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'snapshots-'));
});
afterEach(async () => {
  await handle.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('createSnapshot', () => {
  it('keeps the replay ratio of earlier frames per newly labelled frame, the same ones every time, or all of them', async () => {
    const store = new LocalBlobStore(dir);
    // A parent snapshot of 20 earlier frames, and 3 frames labelled since.
    const parent = {
      info: {},
      categories: [{ id: 1, name: 'vehicle' }],
      images: Array.from({ length: 20 }, (_, i) => ({ id: i + 1, file_name: `old/${i}.png`, width: 320, height: 240, split: 'train' })),
      annotations: Array.from({ length: 20 }, (_, i) => ({ id: i + 1, image_id: i + 1, category_id: 1, bbox: [1, 1, 10, 10], area: 100, iscrowd: 0 })),
    };
    await store.put('snapshots/parent/dataset.json', Buffer.from(JSON.stringify(parent)));
    await handle.db.insert(streams).values({ id: 's1', name: 's1' });
    const rows = await handle.db
      .insert(frames)
      .values(Array.from({ length: 3 }, (_, i) => testFrame('s1', i)))
      .returning();
    await handle.db.insert(labels).values(
      rows.map((f) => ({
        frameId: f.id,
        streamId: 's1',
        decision: 'accept' as const,
        boxes: [{ className: 'vehicle', x1: 0.1, y1: 0.1, x2: 0.3, y2: 0.3 }],
      })),
    );
    const read = async (id: string) => JSON.parse((await store.get(`snapshots/${id}/dataset.json`)).toString()) as typeof parent;
    // A second ahead: Postgres stamps labels in microseconds, so `now` in milliseconds can fall before them.
    const base = { asOf: new Date(Date.now() + 1000), trigger: 'test', parentKey: 'snapshots/parent/dataset.json', classNames: ['vehicle'] };

    expect((await createSnapshot(handle.db, store, { ...base, id: 'r2', replayRatio: 2 })).numImages).toBe(3 + 6);
    const again = await createSnapshot(handle.db, store, { ...base, id: 'r2-again', replayRatio: 2 });
    const old = async (id: string) => (await read(id)).images.map((im) => im.file_name).filter((n) => n.startsWith('old/'));
    expect(await old('r2-again')).toEqual(await old('r2'));
    expect(again.numAnnotations).toBe(9);
    expect((await createSnapshot(handle.db, store, { ...base, id: 'r0', replayRatio: 0 })).numImages).toBe(3);
    expect((await createSnapshot(handle.db, store, { ...base, id: 'all', replayRatio: null })).numImages).toBe(23);
  });
});

// Retraining snapshots: the labels since the parent, a replayed share of the parent's frames, and
// frames labelled only by objects (with ignore regions where nobody decided).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { eq } from 'drizzle-orm';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DbHandle } from '../../db/client.ts';
import { consensusAnswers, frames, goldAnswers, labels, objectLabels, predictions, reviewTasks, streams, users } from '../../db/schema.ts';
import { predictionId } from '../../db/scoring.ts';
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
    // The floor: 3 labels with ratio 1 would replay 3 earlier frames; a floor of 10 keeps 10.
    expect((await createSnapshot(handle.db, store, { ...base, id: 'floor', replayRatio: 1, replayMin: 10 })).numImages).toBe(3 + 10);
    expect((await createSnapshot(handle.db, store, { ...base, id: 'floor-big', replayRatio: 1, replayMin: 100 })).numImages).toBe(23);
  });
});

describe('createSnapshot with object labels', () => {
  it('adds frames labelled only by objects: confirmed objects as boxes, undecided confident detections as ignore regions', async () => {
    const store = new LocalBlobStore(dir);
    await handle.db.insert(streams).values({ id: 's1', name: 's1' });
    const [partial, full] = await handle.db
      .insert(frames)
      .values([testFrame('s1', 0), testFrame('s1', 1)])
      .returning();
    const [reviewer] = await handle.db.insert(users).values({ name: 'r', role: 'reviewer', tokenHash: 'x' }).returning();
    // Detections of the partly labelled frame: 0 marked vehicle, 1 a confirmed proposal, 2 marked
    // not-a-vehicle, 3 undecided and confident, 4 undecided and unsure.
    const scores = [0.9, 0.5, 0.4, 0.45, 0.1];
    const dets = scores.map((score, rank) => ({
      id: predictionId(partial.id, 'm1', rank),
      frameId: partial.id,
      modelVersion: 'm1',
      rank,
      className: 'vehicle',
      score,
      x1: 0.1 * rank,
      y1: 0.1,
      x2: 0.1 * rank + 0.05,
      y2: 0.3,
    }));
    const fullDet = { ...dets[0], id: predictionId(full.id, 'm1', 0), frameId: full.id };
    await handle.db.insert(predictions).values([...dets, fullDet]);
    const at = new Date(Date.now() - 1000);
    const decided = { streamId: 's1', className: 'vehicle', status: 'confirmed' as const, decidedBy: reviewer.id, decidedAt: at };
    await handle.db.insert(objectLabels).values([
      { ...decided, predictionId: dets[0].id, frameId: partial.id, polarity: 'positive', provenance: 'review' },
      {
        ...decided,
        predictionId: dets[1].id,
        frameId: partial.id,
        polarity: 'positive',
        provenance: 'propagated',
        seedPredictionId: dets[0].id,
        distance: 0.04,
      },
      { ...decided, predictionId: dets[2].id, frameId: partial.id, polarity: 'negative', provenance: 'review' },
      // The fully labelled frame's object label adds nothing: its frame label lists every object.
      { ...decided, predictionId: fullDet.id, frameId: full.id, polarity: 'positive', provenance: 'review' },
    ]);
    await handle.db
      .insert(labels)
      .values({ frameId: full.id, streamId: 's1', decision: 'accept', boxes: [{ className: 'vehicle', x1: 0.1, y1: 0.1, x2: 0.2, y2: 0.2 }] });
    type Ann = { image_id: number; bbox: number[]; iscrowd: number };
    const read = async (id: string) =>
      JSON.parse((await store.get(`snapshots/${id}/dataset.json`)).toString()) as { images: { id: number; frame_id: string }[]; annotations: Ann[] };
    const boxesOf = async (id: string) => {
      const ds = await read(id);
      const image = ds.images.find((im) => im.frame_id === partial.id)!;
      const anns = ds.annotations.filter((a) => a.image_id === image.id);
      const x = (a: Ann) => Math.round(a.bbox[0] / 32); // 320 px wide, 0.1 per rank
      const ranks = (crowd: number) =>
        anns
          .filter((a) => a.iscrowd === crowd)
          .map(x)
          .sort();
      return { images: ds.images.length, boxes: ranks(0), ignored: ranks(1) };
    };
    const base = { asOf: new Date(Date.now() + 1000), trigger: 'test', classNames: ['vehicle'] };

    await createSnapshot(handle.db, store, { ...base, id: 'with' });
    expect(await boxesOf('with')).toEqual({ images: 2, boxes: [0, 1], ignored: [3] });
    // Without propagated labels, the confirmed proposal is neither a box nor background.
    await createSnapshot(handle.db, store, { ...base, id: 'without', propagatedLabels: false });
    expect(await boxesOf('without')).toEqual({ images: 2, boxes: [0], ignored: [1, 3] });
  });
});

describe('createSnapshot and reviewer quality', () => {
  it("leaves out the labels of reviewers below the floor on gold or in consensus, keeping a frame's earlier label, and says so", async () => {
    const store = new LocalBlobStore(dir);
    await handle.db.insert(streams).values({ id: 's1', name: 's1' });
    const [careful, careless, newcomer, contrary] = await handle.db
      .insert(users)
      .values(['careful', 'careless', 'newcomer', 'contrary'].map((name) => ({ name, role: 'reviewer' as const, tokenHash: `hash-${name}` })))
      .returning();
    const [lead] = await handle.db.insert(users).values({ name: 'lead', role: 'lead', tokenHash: 'hash-lead' }).returning();
    const rows = await handle.db
      .insert(frames)
      .values(Array.from({ length: 7 }, (_, i) => testFrame('s1', i)))
      .returning();
    const box = (x: number) => [{ className: 'vehicle', x1: x, y1: 0.1, x2: x + 0.2, y2: 0.3 }];
    const label = (frameId: string, reviewerId: string, x: number, at: number) => ({
      frameId,
      streamId: 's1',
      reviewerId,
      decision: 'correct' as const,
      boxes: box(x),
      createdAt: new Date(Date.now() - 60_000 + at),
    });
    await handle.db.insert(labels).values([
      label(rows[0].id, careful.id, 0.1, 0),
      label(rows[0].id, careless.id, 0.5, 1000), // newer, by the careless reviewer
      label(rows[1].id, careless.id, 0.5, 0), // only the careless reviewer's
      label(rows[2].id, careful.id, 0.1, 0),
      label(rows[3].id, newcomer.id, 0.1, 0), // too few gold answers to be judged
      label(rows[4].id, contrary.id, 0.1, 0), // rarely agrees with the others in consensus
      // An import by a lead who also answered a few consensus tasks badly: leads are not judged,
      // and an import is not a queue answer.
      { ...label(rows[5].id, lead.id, 0.1, 0), source: 'import' as const },
    ]);
    // Frame 6 is labelled only by an object the careless reviewer marked: it goes with them.
    const marked = {
      id: predictionId(rows[6].id, 'm1', 0),
      frameId: rows[6].id,
      modelVersion: 'm1',
      rank: 0,
      className: 'vehicle',
      score: 0.9,
      x1: 0.1,
      y1: 0.1,
      x2: 0.3,
      y2: 0.3,
    };
    await handle.db.insert(predictions).values(marked);
    await handle.db.insert(objectLabels).values({
      predictionId: marked.id,
      frameId: rows[6].id,
      streamId: 's1',
      className: 'vehicle',
      status: 'confirmed',
      polarity: 'positive',
      provenance: 'review',
      createdBy: careless.id,
      decidedBy: careless.id,
      decidedAt: new Date(Date.now() - 60_000),
    });
    // Gold answers: careful 5 x 1.0, careless 5 x 0.2, newcomer 2 x 0.0.
    const answers = [...Array(5).fill([careful.id, 1]), ...Array(5).fill([careless.id, 0.2]), ...Array(2).fill([newcomer.id, 0])] as [string, number][];
    for (const [i, [reviewerId, score]] of answers.entries()) {
      const [task] = await handle.db
        .insert(reviewTasks)
        .values({
          dedupeKey: `gold-${i}`,
          streamId: 's1',
          cameraId: 'c',
          frameId: rows[2].id,
          modelVersion: 'm1',
          reason: 'band',
          policyVersion: 1,
          status: 'done',
        })
        .returning();
      await handle.db.insert(goldAnswers).values({
        taskId: task.id,
        reviewerId,
        frameId: rows[2].id,
        streamId: 's1',
        goldLabelId: task.id,
        decision: 'correct',
        boxes: [],
        score,
      });
    }
    // Consensus answers: contrary agrees 0.3 with the merged labels, careful 1.0.
    for (const [i, [reviewerId, agreement]] of (
      [...Array(3).fill([contrary.id, 0.3]), ...Array(3).fill([careful.id, 1]), ...Array(3).fill([lead.id, 0.2])] as [string, number][]
    ).entries()) {
      const [task] = await handle.db
        .insert(reviewTasks)
        .values({
          dedupeKey: `consensus-${i}`,
          streamId: 's1',
          cameraId: 'c',
          frameId: rows[4].id,
          modelVersion: 'm1',
          reason: 'band',
          policyVersion: 1,
          reviewsNeeded: 2,
          status: 'done',
        })
        .returning();
      await handle.db.insert(consensusAnswers).values({ taskId: task.id, reviewerId, decision: 'correct', boxes: [], agreement });
    }
    const base = { asOf: new Date(Date.now() + 1000), trigger: 'test', classNames: ['vehicle'] };
    const read = async (id: string) =>
      JSON.parse((await store.get(`snapshots/${id}/dataset.json`)).toString()) as {
        info: { reviewers_left_out: { name: string; labels: number; accuracy: number }[] };
        images: { frame_id: string }[];
        annotations: { image_id: number; bbox: number[] }[];
      };

    await createSnapshot(handle.db, store, { ...base, id: 'judged', reviewerQuality: { minAccuracy: 0.7, minAnswers: 3 } });
    const judged = await read('judged');
    expect(judged.images.map((im) => im.frame_id).sort()).toEqual([rows[0].id, rows[2].id, rows[3].id, rows[5].id].sort());
    // Frame 0 keeps the careful reviewer's label (x = 0.1 of 320 pixels = 32), not the newer careless one.
    const frame0 = judged.images.findIndex((im) => im.frame_id === rows[0].id) + 1;
    expect(judged.annotations.find((a) => a.image_id === frame0)!.bbox[0]).toBeCloseTo(32, 6);
    expect(judged.info.reviewers_left_out).toEqual([
      { reviewerId: careless.id, name: 'careless', measure: 'gold', answers: 5, accuracy: expect.closeTo(0.2, 6), labels: 2 },
      { reviewerId: contrary.id, name: 'contrary', measure: 'agreement', answers: 3, accuracy: expect.closeTo(0.3, 6), labels: 1 },
    ]);

    // A parent snapshot's frame labelled by the left-out reviewer is not replayed either.
    const [bad] = await handle.db.select({ id: labels.id }).from(labels).where(eq(labels.reviewerId, careless.id)).limit(1);
    const parent = {
      info: {},
      categories: [{ id: 1, name: 'vehicle' }],
      images: [
        { id: 1, file_name: 'old/bad.png', width: 320, height: 240, split: 'train', label_id: bad.id },
        { id: 2, file_name: 'old/good.png', width: 320, height: 240, split: 'train', label_id: null },
      ],
      annotations: [],
    };
    await store.put('snapshots/parent/dataset.json', Buffer.from(JSON.stringify(parent)));
    await createSnapshot(handle.db, store, {
      ...base,
      id: 'with-parent',
      parentKey: 'snapshots/parent/dataset.json',
      replayRatio: null,
      reviewerQuality: { minAccuracy: 0.7, minAnswers: 3 },
    });
    const replayed = (await read('with-parent')).images.map((im) => (im as { file_name?: string }).file_name);
    expect(replayed).toContain('old/good.png');
    expect(replayed).not.toContain('old/bad.png');

    // A floor of 0 keeps every label (each frame's newest).
    await createSnapshot(handle.db, store, { ...base, id: 'everyone', reviewerQuality: { minAccuracy: 0, minAnswers: 3 } });
    expect((await read('everyone')).images).toHaveLength(7);
    expect((await read('everyone')).info.reviewers_left_out).toEqual([]);
  });
});

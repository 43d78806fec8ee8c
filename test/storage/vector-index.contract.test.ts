// One contract for every vector index: pgvector always, Pinecone when PINECONE_API_KEY is set
// (PINECONE_INDEX names an index of dimension 64 with cosine metric; the test writes to
// namespaces of its own streams and deletes them after). Pinecone is eventually consistent, so
// each read is retried until it holds or a minute has passed; pgvector holds at the first try.
import { randomUUID } from 'node:crypto';
import { Pinecone } from '@pinecone-database/pinecone';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { DbHandle } from '../../db/client.ts';
import { checkPgvector, HNSW_SAFE_PGVECTOR, olderThan, PgvectorIndex } from '../../db/pgvector-index.ts';
import { frames, OBJECT_EMBEDDING_DIM, predictions, streams } from '../../db/schema.ts';
import { predictionId } from '../../db/scoring.ts';
import { cosineDistance } from '../../policies/route.ts';
import { farFromExamples } from '../../storage/object-search.ts';
import { PineconeIndex, pineconeFilter } from '../../storage/pinecone-index.ts';
import type { ObjectRecord, VectorIndex } from '../../storage/vector-index.ts';
import { createTestDb, testFrame } from '../helpers/db.ts';
import { mulberry32 } from '../helpers/random.ts';

const PINECONE_KEY = process.env.PINECONE_API_KEY;
const PINECONE_INDEX = process.env.PINECONE_INDEX ?? 'dataengine-objects';

function unitVector(rand: () => number): number[] {
  const v = Array.from({ length: OBJECT_EMBEDDING_DIM }, () => rand() - 0.5);
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}

const implementations: { name: string; enabled: boolean; open: (h: DbHandle) => VectorIndex; patience: number }[] = [
  { name: 'pgvector', enabled: true, open: (h) => new PgvectorIndex(h.db, { efSearch: 100, maxScanTuples: 20_000 }), patience: 1_000 },
  { name: 'pinecone', enabled: Boolean(PINECONE_KEY), open: () => new PineconeIndex({ apiKey: PINECONE_KEY!, indexName: PINECONE_INDEX }), patience: 60_000 },
];

describe.each(implementations.filter((i) => i.enabled))('VectorIndex contract: $name', ({ name, open, patience }) => {
  let handle: DbHandle;
  let index: VectorIndex;
  const run = randomUUID().slice(0, 8);
  const streamA = `vi-${run}-a`;
  const streamB = `vi-${run}-b`;
  const records: ObjectRecord[] = [];
  const eventually = <T>(check: () => Promise<T>) => vi.waitFor(check, { timeout: patience, interval: 500 });

  beforeAll(async () => {
    handle = await createTestDb();
    index = open(handle);
    await handle.db.insert(streams).values([
      { id: streamA, name: streamA },
      { id: streamB, name: streamB },
    ]);
    // 600 objects on 60 frames: 2 streams, 3 cameras, 4 classes, one class rare (2%).
    const rand = mulberry32(17);
    const frameRows = await handle.db
      .insert(frames)
      .values(Array.from({ length: 60 }, (_, i) => testFrame(i % 2 ? streamB : streamA, i, `cam-${i % 3}`)))
      .returning();
    for (const f of frameRows) {
      for (let rank = 0; rank < 10; rank++) {
        const className = rand() < 0.02 ? 'cyclist' : ['vehicle', 'pedestrian', 'sign'][rank % 3];
        records.push({
          id: predictionId(f.id, 'm1', rank),
          vector: unitVector(rand),
          metadata: {
            frameId: f.id,
            streamId: f.streamId,
            cameraId: f.cameraId,
            modelVersion: 'm1',
            className,
            score: 0.5,
            capturedAt: f.capturedAt,
            labelClass: null,
          },
        });
      }
    }
    await handle.db.insert(predictions).values(
      records.map((r, i) => ({
        id: r.id,
        frameId: r.metadata.frameId,
        modelVersion: 'm1',
        rank: i % 10,
        className: r.metadata.className,
        score: 0.5,
        x1: 0,
        y1: 0,
        x2: 1,
        y2: 1,
      })),
    );
    // Stored twice, as a retried batch would: nothing is duplicated.
    await index.upsert(records, handle.db);
    await index.upsert(records.slice(0, 100), handle.db);
  });
  afterAll(async () => {
    if (name === 'pinecone') {
      const pinecone = new Pinecone({ apiKey: PINECONE_KEY! }).index({ name: PINECONE_INDEX });
      for (const ns of [streamA, streamB]) await pinecone.namespace(ns).deleteAll();
    }
    await handle.close();
  });

  const exactNearest = (vector: number[], pass: (r: ObjectRecord) => boolean, k: number) =>
    records
      .filter(pass)
      .map((r) => ({ id: r.id, d: cosineDistance(r.vector, vector) }))
      .sort((a, b) => a.d - b.d)
      .slice(0, k);

  it('answers the k nearest, nearest first, with cosine distances (once per record after a repeated upsert)', async () => {
    const probe = records[7];
    await eventually(async () => {
      const got = await index.query({ vector: probe.vector, k: 10, filter: { modelVersion: 'm1', streamIds: [streamA, streamB] } });
      const want = exactNearest(probe.vector, () => true, 10);
      expect(got.map((n) => n.id)).toEqual(want.map((w) => w.id));
      for (const [i, n] of got.entries()) expect(n.distance).toBeCloseTo(want[i].d, 4);
      expect(got[0]).toMatchObject({ id: probe.id, metadata: { streamId: probe.metadata.streamId, className: probe.metadata.className, labelClass: null } });
      expect(got[0].metadata.capturedAt.getTime()).toBe(probe.metadata.capturedAt.getTime());
    });
  });

  it('filters by stream, camera, class, time, model version, score and excluded ids, and fills k under a selective filter', async () => {
    const probe = records[3];
    const from = new Date(Date.UTC(2026, 0, 1, 0, 0, 20));
    const to = new Date(Date.UTC(2026, 0, 1, 0, 0, 40));
    const filter = { modelVersion: 'm1', streamIds: [streamA], cameraIds: ['cam-0', 'cam-1'], capturedFrom: from, capturedTo: to, excludeIds: [records[0].id] };
    const pass = (r: ObjectRecord) =>
      r.metadata.streamId === streamA &&
      ['cam-0', 'cam-1'].includes(r.metadata.cameraId) &&
      r.metadata.capturedAt >= from &&
      r.metadata.capturedAt <= to &&
      r.id !== records[0].id;
    await eventually(async () => {
      const got = await index.query({ vector: probe.vector, k: 15, filter });
      expect(got.map((n) => n.id)).toEqual(exactNearest(probe.vector, pass, 15).map((w) => w.id));
    });
    // About 2% of the objects are cyclists: the search keeps going until it has all of them.
    const cyclists = records.filter((r) => r.metadata.className === 'cyclist');
    expect(cyclists.length).toBeGreaterThan(3);
    await eventually(async () => {
      const got = await index.query({ vector: probe.vector, k: 50, filter: { modelVersion: 'm1', streamIds: [streamA, streamB], classNames: ['cyclist'] } });
      expect(new Set(got.map((n) => n.id))).toEqual(new Set(cyclists.map((c) => c.id)));
    });
    expect(await index.query({ vector: probe.vector, k: 5, filter: { modelVersion: 'm2', streamIds: [streamA, streamB] } })).toEqual([]);
    // Every record scores 0.5: a floor above it leaves nothing, one at it leaves everything.
    const both = { modelVersion: 'm1', streamIds: [streamA, streamB] };
    expect(await index.query({ vector: probe.vector, k: 5, filter: { ...both, minScore: 0.6 } })).toEqual([]);
    await eventually(async () => expect(await index.query({ vector: probe.vector, k: 5, filter: { ...both, minScore: 0.5 } })).toHaveLength(5));
  });

  it('leaves out neighbours beyond maxDistance', async () => {
    const probe = records[11];
    // Halfway between the 6th and 7th exact distances: the stores compute in float32, so a cut
    // at the 6th distance itself can fall a rounding error below what they compute for it.
    const nearest = exactNearest(probe.vector, () => true, 7);
    const cut = (nearest[5].d + nearest[6].d) / 2;
    await eventually(async () => {
      const got = await index.query({ vector: probe.vector, k: 50, maxDistance: cut, filter: { modelVersion: 'm1', streamIds: [streamA, streamB] } });
      expect(got).toHaveLength(6);
    });
  });

  it('returns stored vectors by id and records confirmed classes for the label-state filter', async () => {
    const ids = [records[20].id, records[21].id];
    const streamsOf = [...new Set([records[20].metadata.streamId, records[21].metadata.streamId])];
    await eventually(async () => {
      const got = await index.vectors([...ids, randomUUID()], streamsOf);
      expect([...got.keys()].sort()).toEqual([...ids].sort());
      expect(got.get(ids[0])![0]).toBeCloseTo(records[20].vector[0], 5);
    });
    await index.setLabelClass(
      [records[20], records[21]].map((r) => ({ id: r.id, streamId: r.metadata.streamId })),
      'vehicle',
    );
    const all = { modelVersion: 'm1', streamIds: [streamA, streamB] };
    await eventually(async () => {
      const labelled = await index.query({ vector: records[20].vector, k: 10, filter: { ...all, labelState: 'labelled' } });
      expect(new Set(labelled.map((n) => n.id))).toEqual(new Set(ids));
      expect(labelled.every((n) => n.metadata.labelClass === 'vehicle')).toBe(true);
      const unlabelled = await index.query({ vector: records[20].vector, k: 10, filter: { ...all, labelState: 'unlabelled' } });
      expect(unlabelled.some((n) => ids.includes(n.id))).toBe(false);
    });
  });
});

describe('pgvector version check', () => {
  it('compares dotted versions', () => {
    expect(olderThan('0.8.2', HNSW_SAFE_PGVECTOR)).toBe(true);
    expect(olderThan('0.7.10', '0.8.3')).toBe(true);
    expect(olderThan('0.8.3', '0.8.3')).toBe(false);
    expect(olderThan('0.10.0', '0.8.3')).toBe(false);
  });

  it('reads the installed extension and warns exactly when its HNSW index is not safe', async () => {
    const handle = await createTestDb();
    try {
      const { version, warning } = await checkPgvector(handle.db);
      expect(version).toMatch(/^\d+\.\d+\.\d+$/);
      if (olderThan(version, HNSW_SAFE_PGVECTOR)) expect(warning).toContain(`older than ${HNSW_SAFE_PGVECTOR}`);
      else expect(warning).toBeNull();
    } finally {
      await handle.close();
    }
  });
});

describe('Pinecone filter', () => {
  // Runs without a key: the translation of every filter into Pinecone's metadata language.
  it('puts every search filter into metadata conditions (the stream is the namespace)', () => {
    expect(
      pineconeFilter({
        modelVersion: 'm1',
        streamIds: ['s'],
        cameraIds: ['a', 'b'],
        classNames: ['cyclist'],
        capturedFrom: new Date(1000),
        capturedTo: new Date(2000),
        labelState: 'unlabelled',
        minScore: 0.3,
        excludeIds: ['x'],
      }),
    ).toEqual({
      modelVersion: { $eq: 'm1' },
      cameraId: { $in: ['a', 'b'] },
      className: { $in: ['cyclist'] },
      capturedAt: { $gte: 1000, $lte: 2000 },
      labelled: { $eq: false },
      score: { $gte: 0.3 },
      objectId: { $nin: ['x'] },
    });
    expect(pineconeFilter({ modelVersion: 'm1', streamIds: ['s'], labelState: 'labelled' })).toEqual({ modelVersion: { $eq: 'm1' }, labelled: { $eq: true } });
  });
});

describe('search planning', () => {
  it('sends a class-filtered search whose examples are all of other classes to the exact scan', () => {
    expect(farFromExamples({ classNames: ['cyclist'] }, ['vehicle', 'sign'])).toBe(true);
    expect(farFromExamples({ classNames: ['cyclist'] }, ['vehicle', 'cyclist'])).toBe(false);
    expect(farFromExamples({}, ['vehicle'])).toBe(false);
  });
});

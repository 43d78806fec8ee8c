// Objects as a reviewer uses them over HTTP: frames scored by the real (tiny) detector, their
// detections' embeddings in the vector index, similar-object search by object, region and
// examples, positive and negative marks, and proposals confirmed or rejected in bulk.
import fs from 'node:fs';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DbHandle } from '../../db/client.ts';
import { frames, objectLabels, objectVectors } from '../../db/schema.ts';
import { persistScoredBatch, type ScoredFrameRow } from '../../db/scoring.ts';
import { createStream } from '../../db/streams.ts';
import { cosineDistance } from '../../policies/route.ts';
import { createTestDb, testFrame } from '../helpers/db.ts';
import { auth, createTestPlatform, sampleFrames, type TestPlatform } from '../helpers/platform.ts';

let handle: DbHandle;
let p: TestPlatform;
const STREAM = 'objects';
const json = (token: string) => auth(token, { 'Content-Type': 'application/json' });

interface Obj {
  id: string;
  frameId: string;
  cameraId: string;
  className: string;
  distance: number;
  labelClass: string | null;
  box: { x1: number; y1: number; x2: number; y2: number };
}

beforeAll(async () => {
  handle = await createTestDb();
  // The tiny detector trained for seconds scores low: keep its top detections, whatever their score.
  p = await createTestPlatform(handle, { env: { PREDICTION_MIN_SCORE: '0', PROPAGATION_MIN_SCORE: '0' } });
  await createStream(handle.db, { id: STREAM, name: STREAM, createdBy: 'test' });
  // The sample frames, scored by the tiny detector and stored as the scoring step stores them.
  const samples = sampleFrames();
  const rows = await handle.db
    .insert(frames)
    .values(samples.map((s, i) => testFrame(STREAM, i, s.cameraId)))
    .returning();
  const { frames: results } = await p.deps.models.detect(
    'tiny-detection',
    samples.map((s) => fs.readFileSync(s.file)),
  );
  const batch: ScoredFrameRow[] = rows.map((f, i) => ({
    frameId: f.id,
    cameraId: f.cameraId,
    capturedAt: f.capturedAt,
    embedding: Array.from(results[i].embedding),
    // The tiny detector's size head is untrained (its boxes have no area); the region search
    // needs real boxes, so each of the 8 detections kept gets a cell of a 4 x 2 grid.
    detections: results[i].detections.slice(0, 8).map((d, rank) => ({
      rank,
      ...d,
      x1: (rank % 4) * 0.25,
      y1: Math.floor(rank / 4) * 0.5,
      x2: (rank % 4) * 0.25 + 0.2,
      y2: Math.floor(rank / 4) * 0.5 + 0.4,
    })),
  }));
  await persistScoredBatch(handle.db, {
    streamId: STREAM,
    modelVersion: 'tiny-detection',
    policyVersion: 1,
    fromSeq: 0,
    toSeq: Math.max(...rows.map((r) => r.seq)),
    frames: batch,
    tasks: [],
    vectorIndex: p.deps.vectorIndex,
  });
});
afterAll(async () => {
  await p.close();
  await handle.close();
});

const allVectors = async () => handle.db.select().from(objectVectors);

async function similar(id: string, query = '') {
  const res = await p.app.request(`/v1/objects/${id}/similar?${query}`, { headers: auth(p.tokens.reviewer) });
  expect(res.status).toBe(200);
  return (await res.json()) as { query: Obj[]; neighbours: Obj[] };
}

describe('similar-object search', () => {
  it('returns the k nearest objects of the same model, nearest first, with exact cosine distances', async () => {
    const vectors = await allVectors();
    expect(vectors.length).toBeGreaterThan(50);
    const probe = vectors[0];
    const { query, neighbours } = await similar(probe.predictionId, 'k=10');
    expect(query[0].id).toBe(probe.predictionId);
    expect(neighbours).toHaveLength(10);
    expect(neighbours.map((n) => n.id)).not.toContain(probe.predictionId);
    const exact = vectors
      .filter((v) => v.predictionId !== probe.predictionId)
      .map((v) => ({ id: v.predictionId, d: cosineDistance(v.embedding, probe.embedding) }))
      .sort((a, b) => a.d - b.d);
    // HNSW is approximate; on a few hundred vectors with ef_search 100 it finds the exact top 10
    // (compared by distance: a detector trained for seconds has near-ties).
    for (const [i, n] of neighbours.entries()) expect(n.distance).toBeCloseTo(exact[i].d, 4);
    for (const n of neighbours) expect(n.distance).toBeCloseTo(cosineDistance(vectors.find((v) => v.predictionId === n.id)!.embedding, probe.embedding), 4);
  });

  it('filters by camera, predicted class and distance, and still fills k when the filter is selective', async () => {
    const vectors = await allVectors();
    const probe = vectors[0];
    const other = vectors.find((v) => v.cameraId !== probe.cameraId)!.cameraId;
    const onCamera = vectors.filter((v) => v.cameraId === other && v.predictionId !== probe.predictionId);
    const byCamera = await similar(probe.predictionId, `k=${Math.min(20, onCamera.length)}&cameraId=${other}`);
    expect(byCamera.neighbours).toHaveLength(Math.min(20, onCamera.length));
    expect(new Set(byCamera.neighbours.map((n) => n.cameraId))).toEqual(new Set([other]));

    const rareClass = [...new Set(vectors.map((v) => v.className))]
      .map((c) => ({ c, n: vectors.filter((v) => v.className === c && v.predictionId !== probe.predictionId).length }))
      .sort((a, b) => a.n - b.n)[0];
    const byClass = await similar(probe.predictionId, `k=50&className=${rareClass.c}`);
    // Iterative scan: a filter that passes few rows still returns all of them (up to k).
    expect(byClass.neighbours).toHaveLength(Math.min(50, rareClass.n));
    expect(byClass.neighbours.every((n) => n.className === rareClass.c)).toBe(true);

    const near = await similar(probe.predictionId, 'k=50&maxDistance=0.05');
    expect(near.neighbours.every((n) => n.distance <= 0.05)).toBe(true);
  });

  it('searches by a frame region (the detection that covers it) and refuses a region with none', async () => {
    const [v] = await allVectors();
    const [object] = (await similar(v.predictionId, 'k=1')).query;
    const res = await p.app.request('/v1/objects/search', {
      method: 'POST',
      headers: json(p.tokens.reviewer),
      // A reviewer's rough region: the object's box, shifted a little.
      body: JSON.stringify({ region: { frameId: object.frameId, box: { ...object.box, x1: object.box.x1 + 0.02, x2: object.box.x2 + 0.02 } }, k: 5 }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { query: Obj[]; neighbours: Obj[] };
    expect(body.query[0].id).toBe(object.id);
    expect(body.neighbours).toHaveLength(5);

    const empty = await p.app.request('/v1/objects/search', {
      method: 'POST',
      headers: json(p.tokens.reviewer),
      body: JSON.stringify({ region: { frameId: object.frameId, box: { x1: 0, y1: 0, x2: 0.001, y2: 0.001 } } }),
    });
    expect(empty.status).toBe(422);
    expect(((await empty.json()) as { errors: { field: string }[] }).errors[0].field).toBe('region');
  });

  it('searches by a set of examples and leaves the negatives out', async () => {
    const vectors = await allVectors();
    const positives = vectors.slice(0, 3).map((v) => v.predictionId);
    const first = await p.app.request('/v1/objects/search', { method: 'POST', headers: json(p.tokens.reviewer), body: JSON.stringify({ positives, k: 10 }) });
    expect(first.status).toBe(200);
    const found = ((await first.json()) as { neighbours: Obj[] }).neighbours;
    expect(found).toHaveLength(10);
    expect(found.map((n) => n.id).some((id) => positives.includes(id))).toBe(false);
    const negatives = found.slice(0, 4).map((n) => n.id);
    const again = await p.app.request('/v1/objects/search', {
      method: 'POST',
      headers: json(p.tokens.reviewer),
      body: JSON.stringify({ positives, negatives, k: 10 }),
    });
    const ids = ((await again.json()) as { neighbours: Obj[] }).neighbours.map((n) => n.id);
    expect(ids).toHaveLength(10);
    expect(ids.some((id) => negatives.includes(id))).toBe(false);
  });

  it('names the bad field: an unknown object, k over the limit, both positives and a region', async () => {
    const [v] = await allVectors();
    const unknown = await p.app.request('/v1/objects/00000000-0000-4000-8000-000000000000/similar', { headers: auth(p.tokens.reviewer) });
    expect(unknown.status).toBe(404);
    const bigK = await p.app.request(`/v1/objects/${v.predictionId}/similar?k=100000`, { headers: auth(p.tokens.reviewer) });
    expect(bigK.status).toBe(400);
    expect(((await bigK.json()) as { errors: { field: string }[] }).errors[0].field).toBe('k');
    const both = await p.app.request('/v1/objects/search', {
      method: 'POST',
      headers: json(p.tokens.reviewer),
      body: JSON.stringify({ positives: [v.predictionId], region: { frameId: v.frameId, box: { x1: 0, y1: 0, x2: 1, y2: 1 } } }),
    });
    expect(both.status).toBe(400);
    const camera = await p.app.request(`/v1/objects/${v.predictionId}/similar`, { headers: auth(p.tokens.camera) });
    expect(camera.status).toBe(403);
  });
});

describe('marks and propagated proposals', () => {
  it('a positive mark proposes the class for close neighbours; one bulk decision confirms some and rejects others', async () => {
    const vectors = await allVectors();
    const seed = vectors[5];
    const mark = await p.app.request('/v1/objects/labels', {
      method: 'POST',
      headers: json(p.tokens.reviewer),
      body: JSON.stringify({ objectIds: [seed.predictionId], className: 'cyclist', polarity: 'positive', maxDistance: 2 }),
    });
    expect(mark.status).toBe(200);
    const marked = (await mark.json()) as { marked: number; proposals: (Obj & { seedId: string; proposedClass: string })[] };
    expect(marked.marked).toBe(1);
    expect(marked.proposals.length).toBeGreaterThan(4);
    expect(marked.proposals.every((q) => q.seedId === seed.predictionId && q.proposedClass === 'cyclist')).toBe(true);
    const distances = marked.proposals.map((q) => q.distance);
    expect(distances).toEqual([...distances].sort((a, b) => a - b));

    const listed = await p.app.request('/v1/objects/proposals?className=cyclist&limit=1000', { headers: auth(p.tokens.reviewer) });
    const pending = ((await listed.json()) as { proposals: Obj[] }).proposals.map((q) => q.id);
    expect(new Set(pending)).toEqual(new Set(marked.proposals.map((q) => q.id)));

    const confirm = pending.slice(0, 3);
    const reject = pending.slice(3, 5);
    const decide = () =>
      p.app.request('/v1/objects/proposals/decisions', {
        method: 'POST',
        headers: json(p.tokens.reviewer2),
        body: JSON.stringify({ className: 'cyclist', confirm, reject }),
      });
    const decided = await decide();
    expect(await decided.json()).toEqual({ confirmed: 3, rejected: 2 });
    // The same decision again changes nothing.
    expect(await (await decide()).json()).toEqual({ confirmed: 0, rejected: 0 });

    const rows = await handle.db.select().from(objectLabels).where(eq(objectLabels.className, 'cyclist'));
    const byId = new Map(rows.map((r) => [r.predictionId, r]));
    expect(byId.get(seed.predictionId)).toMatchObject({ polarity: 'positive', status: 'confirmed', provenance: 'review' });
    for (const id of confirm)
      expect(byId.get(id)).toMatchObject({ polarity: 'positive', status: 'confirmed', provenance: 'propagated', seedPredictionId: seed.predictionId });
    for (const id of reject) expect(byId.get(id)).toMatchObject({ polarity: 'negative', status: 'confirmed', provenance: 'propagated' });
    expect(byId.get(confirm[0])!.decidedBy).not.toBe(byId.get(seed.predictionId)!.decidedBy);

    // Labelled objects are findable as such; a rejected object is never proposed for the class again.
    const labelled = await similar(seed.predictionId, 'k=50&labelState=labelled');
    expect(new Set(labelled.neighbours.map((n) => n.id))).toEqual(new Set(confirm));
    expect(labelled.neighbours.every((n) => n.labelClass === 'cyclist')).toBe(true);
    const again = await p.app.request('/v1/objects/labels', {
      method: 'POST',
      headers: json(p.tokens.reviewer),
      body: JSON.stringify({ objectIds: [confirm[0]], className: 'cyclist', polarity: 'positive', maxDistance: 2 }),
    });
    const reproposed = ((await again.json()) as { proposals: Obj[] }).proposals.map((q) => q.id);
    expect(reproposed.some((id) => reject.includes(id) || confirm.includes(id) || id === seed.predictionId)).toBe(false);
  });

  it('a negative mark takes back a confirmed label and keeps the object out of proposals', async () => {
    const vectors = await allVectors();
    const target = vectors[9];
    const post = (body: object) => p.app.request('/v1/objects/labels', { method: 'POST', headers: json(p.tokens.reviewer), body: JSON.stringify(body) });
    expect((await post({ objectIds: [target.predictionId], className: 'sign', polarity: 'positive', propagate: false })).status).toBe(200);
    const [before] = await handle.db.select().from(objectVectors).where(eq(objectVectors.predictionId, target.predictionId));
    expect(before.labelClass).toBe('sign');
    const neg = await post({ objectIds: [target.predictionId], className: 'sign', polarity: 'negative' });
    expect(await neg.json()).toEqual({ marked: 1, proposals: [] });
    const [after] = await handle.db.select().from(objectVectors).where(eq(objectVectors.predictionId, target.predictionId));
    expect(after.labelClass).toBeNull();
    const other = vectors.find((v) => v.predictionId !== target.predictionId)!;
    const proposals = (
      (await (await post({ objectIds: [other.predictionId], className: 'sign', polarity: 'positive', maxDistance: 2 })).json()) as { proposals: Obj[] }
    ).proposals;
    expect(proposals.map((q) => q.id)).not.toContain(target.predictionId);

    const missing = await post({ objectIds: ['00000000-0000-4000-8000-000000000000'], className: 'sign', polarity: 'positive' });
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { errors: { field: string }[] }).errors[0].field).toBe('objectIds');
  });
});

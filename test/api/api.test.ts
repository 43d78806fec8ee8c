// The HTTP API as clients use it: auth and roles, validation that names the field and stores
// nothing, ingestion refusals, the review queue's leases under concurrency, and the OpenAPI
// document covering every route.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { count, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Hono } from 'hono';
import { checkResponsesAgainstDocument } from '../helpers/contract.ts';
import type { DbHandle } from '../../db/client.ts';
import { config, goldSettings } from '../../config.ts';
import { answerOwnLease, submitDecision } from '../../db/queue.ts';
import { frames, labels, predictions, reviewTasks, samplingPolicies } from '../../db/schema.ts';
import { scanDirectory } from '../../ingest/directory-source.ts';
import { createTestDb } from '../helpers/db.ts';
import { sha256Hex } from '../../storage/blob-store.ts';
import { auth, createTestPlatform, sampleFrames, type TestPlatform, stopStream } from '../helpers/platform.ts';

let handle: DbHandle;
let p: TestPlatform;
const STREAM = `api-${Math.random().toString(36).slice(2, 8)}`;

beforeAll(async () => {
  handle = await createTestDb();
  p = await createTestPlatform(handle, { env: { MAX_FRAME_BYTES: '300000' }, cameraStreams: [STREAM] });
  const res = await p.app.request('/v1/streams', {
    method: 'POST',
    headers: auth(p.tokens.lead, { 'Content-Type': 'application/json' }),
    body: JSON.stringify({ id: STREAM }),
  });
  expect(res.status).toBe(201);
});
afterAll(async () => {
  await stopStream(p, STREAM);
  await p.close();
  await handle.close();
});

const json = (token: string) => auth(token, { 'Content-Type': 'application/json' });
const storedFrameFiles = () =>
  fs.existsSync(path.join(p.storeDir, 'frames'))
    ? fs.readdirSync(path.join(p.storeDir, 'frames'), { recursive: true }).filter((f) => String(f).includes('.')).length
    : 0;
const frameRows = async () => (await handle.db.select({ n: count() }).from(frames))[0].n;

describe('auth', () => {
  it('refuses missing and bad tokens (401) and roles that may not act (403)', async () => {
    expect((await p.app.request('/v1/streams')).status).toBe(401);
    expect((await p.app.request('/v1/streams', { headers: auth('nope') })).status).toBe(401);
    const put = await p.app.request(`/v1/streams/${STREAM}/policy`, { method: 'PUT', headers: json(p.tokens.reviewer), body: '{}' });
    expect(put.status).toBe(403);
    expect(put.headers.get('content-type')).toContain('application/problem+json');
    const upload = await p.app.request(`/v1/streams/${STREAM}/frames?cameraId=c`, {
      method: 'POST',
      headers: auth(p.tokens.reviewer, { 'Content-Type': 'image/png' }),
      body: 'x',
    });
    expect(upload.status).toBe(403);
    expect((await p.app.request('/v1/tasks/claim', { method: 'POST', headers: auth(p.tokens.camera) })).status).toBe(403);
  });
});

describe('sampling policies', () => {
  it('refuses an invalid policy with a 400 naming the field, stores nothing, and versions valid ones', async () => {
    const before = (await handle.db.select({ n: count() }).from(samplingPolicies))[0].n;
    const bad = await p.app.request(`/v1/streams/${STREAM}/policy`, {
      method: 'PUT',
      headers: json(p.tokens.lead),
      body: JSON.stringify({ band: { low: 0.7, high: 0.4 } }),
    });
    expect(bad.status).toBe(400);
    const problem = await bad.json();
    expect(problem.errors).toEqual([expect.objectContaining({ field: 'band.high' })]);
    const unknown = await p.app.request(`/v1/streams/${STREAM}/policy`, {
      method: 'PUT',
      headers: json(p.tokens.lead),
      body: JSON.stringify({ randomRate: 2, bogus: 1 }),
    });
    expect((await unknown.json()).errors.map((e: { field: string }) => e.field).sort()).toEqual(['(body)', 'randomRate'].sort());
    expect((await handle.db.select({ n: count() }).from(samplingPolicies))[0].n).toBe(before);

    const ok = await p.app.request(`/v1/streams/${STREAM}/policy`, {
      method: 'PUT',
      headers: json(p.tokens.lead),
      body: JSON.stringify({ band: { low: 0.2, high: 0.5 }, classBands: { sign: { low: 0.4, high: 0.8 } } }),
    });
    expect(ok.status).toBe(201);
    const stored = await ok.json();
    expect(stored.version).toBe(2);
    expect(stored.appliedToLoop).toBe(false); // no worker polls this test's queue
    const current = await (await p.app.request(`/v1/streams/${STREAM}/policy`, { headers: auth(p.tokens.lead) })).json();
    expect(current.policy.band).toEqual({ low: 0.2, high: 0.5 });
    expect(current.policy.maxTasksPerFrame).toBe(3);
    expect((await (await p.app.request(`/v1/streams/${STREAM}/policies`, { headers: auth(p.tokens.lead) })).json()).versions).toHaveLength(2);
  });
});

describe('ingestion', () => {
  const post = (body: BodyInit, type: string, query = 'cameraId=cam-a', stream = STREAM) =>
    p.app.request(`/v1/streams/${stream}/frames?${query}`, { method: 'POST', headers: auth(p.tokens.camera, { 'Content-Type': type }), body });

  it('stores a frame once, and refuses bad uploads with the reason while storing nothing', async () => {
    const png = fs.readFileSync(sampleFrames()[0].file);
    const first = await post(png, 'image/png');
    expect(first.status).toBe(201);
    const again = await post(png, 'image/png', 'cameraId=cam-b');
    expect(again.status).toBe(200);
    expect((await again.json()).frameId).toBe((await first.json()).frameId);
    const filesBefore = storedFrameFiles();
    const rowsBefore = await frameRows();
    expect(filesBefore).toBe(1);

    const jpeg = await sharp(png).jpeg().toBuffer();
    const big = await sharp({ create: { width: 900, height: 900, channels: 3, background: '#808080', noise: { type: 'gaussian', mean: 128, sigma: 60 } } })
      .png()
      .toBuffer();
    const refusals: [Response, number, string][] = [
      [await post(png, 'text/plain'), 415, 'content_type'],
      [await post(jpeg, 'image/png'), 400, 'type_mismatch'],
      [await post(png.subarray(0, png.length - 400), 'image/png'), 400, 'corrupt'],
      [await post(big, 'image/png'), 413, 'too_large'],
      // A camera token may send only into its own streams.
      [await post(png, 'image/png', 'cameraId=cam-a', 'no-such-stream'), 403, 'forbidden'],
      [await post(png, 'image/png', ''), 400, 'invalid_input'],
      [await post(png, 'image/png', 'cameraId=cam-a&capturedAt=yesterday'), 400, 'invalid_input'],
    ];
    for (const [res, status, code] of refusals) {
      expect(res.status, code).toBe(status);
      const body = await res.json();
      expect(body.code, code).toBe(code);
      expect(body.detail.length).toBeGreaterThan(10);
    }
    expect(storedFrameFiles()).toBe(filesBefore);
    expect(await frameRows()).toBe(rowsBefore);
  });

  it('picks up image files from a watched folder and sets refused ones aside with the reason', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ingest-'));
    const cam = path.join(dir, STREAM, 'cam-dir');
    fs.mkdirSync(cam, { recursive: true });
    fs.copyFileSync(sampleFrames()[3].file, path.join(cam, 'a.png'));
    fs.writeFileSync(path.join(cam, 'broken.png'), 'not an image');
    // A link is refused, not followed (it could point anywhere), and an oversized file is
    // refused by its size before it is read.
    fs.symlinkSync('/etc/hostname', path.join(cam, 'link.png'));
    fs.writeFileSync(path.join(cam, 'huge.png'), Buffer.alloc(2_000_000));
    const rowsBefore = await frameRows();
    const result = await scanDirectory({ db: handle.db, store: p.deps.store, dir, maxFrameBytes: 1e6, maxFramePixels: 4e7 });
    expect(result).toEqual({ ingested: 1, rejected: 3 });
    expect(fs.readFileSync(path.join(dir, '.rejected', STREAM, 'cam-dir', 'link.png.reason.txt'), 'utf8')).toContain('not_a_file');
    expect(fs.readFileSync(path.join(dir, '.rejected', STREAM, 'cam-dir', 'huge.png.reason.txt'), 'utf8')).toContain('413 too_large');
    expect(await frameRows()).toBe(rowsBefore + 1);
    expect(fs.existsSync(path.join(dir, '.done', STREAM, 'cam-dir', 'a.png'))).toBe(true);
    expect(fs.readFileSync(path.join(dir, '.rejected', STREAM, 'cam-dir', 'broken.png.reason.txt'), 'utf8')).toContain('type_mismatch');
    expect(fs.readdirSync(cam)).toEqual([]);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe('review queue', () => {
  async function seedTasks(n: number) {
    const [frame] = await handle.db.select().from(frames).limit(1);
    const rows = [];
    for (let i = 0; i < n; i++) {
      const [pred]: (typeof predictions.$inferSelect)[] = await handle.db
        .insert(predictions)
        .values({
          frameId: frame.id,
          modelVersion: 'q',
          rank: 1000 + rows.length + Math.floor(Math.random() * 1e6),
          className: 'vehicle',
          score: 0.45,
          x1: 0.1,
          y1: 0.1,
          x2: 0.3,
          y2: 0.3,
        })
        .returning();
      rows.push({
        dedupeKey: `${frame.id}:q:${pred.rank}`,
        streamId: STREAM,
        cameraId: frame.cameraId,
        frameId: frame.id,
        predictionId: pred.id,
        modelVersion: 'q',
        className: 'vehicle',
        score: 0.45,
        reason: 'band' as const,
        policyVersion: 1,
      });
    }
    return handle.db.insert(reviewTasks).values(rows).returning();
  }

  // Claims racing each other are tested on Postgres, in test/faults/faults.test.ts (d): PGlite
  // runs one transaction at a time, so SKIP LOCKED is never contended here.

  it('leases, expires, submits once, and refuses other reviewers and stale leases', async () => {
    await handle.db.delete(reviewTasks).where(eq(reviewTasks.modelVersion, 'q'));
    await seedTasks(2);
    const claim = await p.app.request('/v1/tasks/claim', { method: 'POST', headers: json(p.tokens.reviewer), body: JSON.stringify({ streamId: STREAM }) });
    expect(claim.status).toBe(200);
    const task = (await claim.json()).task;
    expect(task.band).toEqual({ low: 0.3, high: 0.6 });
    // Claiming again returns the lease already held.
    expect((await (await p.app.request('/v1/tasks/claim', { method: 'POST', headers: json(p.tokens.reviewer) })).json()).task.id).toBe(task.id);

    const other = await p.app.request(`/v1/tasks/${task.id}/submit`, {
      method: 'POST',
      headers: json(p.tokens.reviewer2),
      body: JSON.stringify({ decision: 'accept' }),
    });
    expect(other.status).toBe(409);
    const badBox = await p.app.request(`/v1/tasks/${task.id}/submit`, {
      method: 'POST',
      headers: json(p.tokens.reviewer),
      body: JSON.stringify({ decision: 'correct', boxes: [{ className: 'vehicle', x1: 0.5, y1: 0.1, x2: 0.2, y2: 0.3 }] }),
    });
    expect(badBox.status).toBe(400);
    expect((await badBox.json()).errors[0].field).toBe('boxes.0.x2');

    // An abandoned lease comes back to the queue for someone else; the first holder is refused.
    await handle.db
      .update(reviewTasks)
      .set({ leaseExpiresAt: new Date(Date.now() - 1000) })
      .where(eq(reviewTasks.id, task.id));
    const stale = await p.app.request(`/v1/tasks/${task.id}/submit`, {
      method: 'POST',
      headers: json(p.tokens.reviewer),
      body: JSON.stringify({ decision: 'accept' }),
    });
    expect(stale.status).toBe(410);
    const reclaimed = await (
      await p.app.request('/v1/tasks/claim', { method: 'POST', headers: json(p.tokens.reviewer2), body: JSON.stringify({ streamId: STREAM }) })
    ).json();
    expect(reclaimed.task.id).toBe(task.id);
    expect(reclaimed.task.attempts).toBe(2);

    const submit = () =>
      p.app.request(`/v1/tasks/${task.id}/submit`, { method: 'POST', headers: json(p.tokens.reviewer2), body: JSON.stringify({ decision: 'accept' }) });
    expect((await submit()).status).toBe(201);
    expect((await submit()).status).toBe(200); // a retried request is a no-op
    const rows = await handle.db.select().from(labels).where(eq(labels.taskId, task.id));
    expect(rows).toHaveLength(1);
    expect(rows[0].boxes).toEqual([
      { className: 'vehicle', x1: expect.closeTo(0.1, 5), y1: expect.closeTo(0.1, 5), x2: expect.closeTo(0.3, 5), y2: expect.closeTo(0.3, 5) },
    ]);
    const differ = await p.app.request(`/v1/tasks/${task.id}/submit`, {
      method: 'POST',
      headers: json(p.tokens.reviewer2),
      body: JSON.stringify({ decision: 'reject' }),
    });
    expect(differ.status).toBe(409);

    const depth = await (await p.app.request('/v1/queue', { headers: auth(p.tokens.lead) })).json();
    expect(depth.depth.find((d: { streamId: string }) => d.streamId === STREAM).open).toBe(1);
    const coco = await (await p.app.request(`/v1/labels/export?streamId=${STREAM}`, { headers: auth(p.tokens.lead) })).json();
    expect(coco.images).toHaveLength(1);
    expect(coco.annotations[0].category_id).toBe(1);
    expect(coco.categories[0]).toEqual({ id: 1, name: 'vehicle' });
    expect(
      await submitDecision(handle.db, { taskId: task.id, userId: rows[0].reviewerId!, decision: 'accept' }, goldSettings(config)).then((r) => r.replayed),
    ).toBe(true);
  });

  it('stores a correction of a held task with its boxes and closes the task; a retry replays it, a lapsed lease is refused', async () => {
    // The one-statement answer (db/queue.ts answerOwnLease): what it stores must be what the
    // transaction stores, and whatever it does not take must still be refused for its reason.
    // The test before left a labelled task and an open one: closed, so these claims see only the new ones.
    await handle.db.update(reviewTasks).set({ status: 'done' }).where(eq(reviewTasks.modelVersion, 'q'));
    await seedTasks(3);
    const claimOne = async (token: string) =>
      (await (await p.app.request('/v1/tasks/claim', { method: 'POST', headers: json(token), body: JSON.stringify({ streamId: STREAM }) })).json()).task;
    const boxes = [{ className: 'vehicle', x1: 0.2, y1: 0.2, x2: 0.4, y2: 0.5 }];
    const correct = (taskId: string, token: string) =>
      p.app.request(`/v1/tasks/${taskId}/submit`, { method: 'POST', headers: json(token), body: JSON.stringify({ decision: 'correct', boxes }) });
    const first = await claimOne(p.tokens.reviewer);
    expect((await correct(first.id, p.tokens.reviewer)).status).toBe(201);
    const [label] = await handle.db.select().from(labels).where(eq(labels.taskId, first.id));
    const [task] = await handle.db.select().from(reviewTasks).where(eq(reviewTasks.id, first.id));
    expect(label).toMatchObject({ decision: 'correct', source: 'review', frameId: task.frameId, predictionId: task.predictionId, modelVersion: 'q' });
    expect(label.boxes).toEqual(boxes);
    expect(task).toMatchObject({ status: 'done', leaseExpiresAt: null });
    expect(task.completedAt).not.toBeNull();
    expect((await correct(first.id, p.tokens.reviewer)).status).toBe(200);
    expect(await handle.db.select().from(labels).where(eq(labels.taskId, first.id))).toHaveLength(1);

    const second = await claimOne(p.tokens.reviewer);
    expect(second.id).not.toBe(first.id);
    expect((await correct(second.id, p.tokens.reviewer2)).status).toBe(409);
    await handle.db
      .update(reviewTasks)
      .set({ leaseExpiresAt: new Date(Date.now() - 1000) })
      .where(eq(reviewTasks.id, second.id));
    expect((await correct(second.id, p.tokens.reviewer)).status).toBe(410);
    expect(await handle.db.select().from(labels).where(eq(labels.taskId, second.id))).toHaveLength(0);

    // The one statement itself takes a held task (the transaction would store the same label, so
    // the replies above cannot tell which path ran) and nothing else.
    const third = await claimOne(p.tokens.reviewer);
    const reviewerId = label.reviewerId!;
    const answer = { taskId: third.id, userId: reviewerId, decision: 'correct' as const, boxes };
    expect(await answerOwnLease(handle.db, { ...answer, userId: randomUUID() })).toBeNull(); // not the holder
    expect(await answerOwnLease(handle.db, answer)).toMatchObject({ taskId: third.id, reviewerId, decision: 'correct', boxes });
    expect(await answerOwnLease(handle.db, answer)).toBeNull(); // done: a retry is the transaction's to replay
  });
});

describe('box assist', () => {
  it('refines a region from the production box model, decoding only part of the frame, and refuses bad regions', async () => {
    const [frame] = await handle.db.select().from(frames).limit(1);
    const ask = (body: unknown) => p.app.request('/v1/box-predictions', { method: 'POST', headers: json(p.tokens.reviewer), body: JSON.stringify(body) });
    const res = await ask({ frameId: frame.id, region: { x1: 100, y1: 100, x2: 140, y2: 130 } });
    expect(res.status).toBe(200);
    const out = await res.json();
    expect(out.modelVersion).toBe('tiny-box');
    expect(out.box.x2).toBeGreaterThan(out.box.x1);
    // A small frame is decoded whole at the first ask and kept: the next ask decodes nothing and
    // gives the same box.
    expect(out.bytesDecoded).toBe(out.frameBytes);
    const again = await (await ask({ frameId: frame.id, region: { x1: 100, y1: 100, x2: 140, y2: 130 } })).json();
    expect(again).toMatchObject({ box: out.box, score: out.score, bytesDecoded: 0 });
    // Where the time went, in the answer and in Server-Timing; the parts fit inside the total.
    const { frame: f, crop, inference } = out.timings;
    for (const ms of [f, crop, inference]) expect(ms).toBeGreaterThanOrEqual(0);
    expect(f + crop + inference).toBeLessThanOrEqual(out.latencyMs + 0.01);
    expect(res.headers.get('Server-Timing')).toMatch(/^frame;dur=[\d.]+, crop;dur=[\d.]+, inference;dur=[\d.]+, total;dur=[\d.]+$/);
    const refusals: [unknown, number][] = [
      [{ frameId: frame.id, region: { x1: 300, y1: 10, x2: 400, y2: 50 } }, 400],
      [{ frameId: frame.id, region: { x1: 10, y1: 10, x2: 10, y2: 50 } }, 400],
      [{ frameId: '00000000-0000-4000-8000-000000000000', region: { x1: 1, y1: 1, x2: 5, y2: 5 } }, 404],
      [{ region: { x1: 1, y1: 1, x2: 5, y2: 5 } }, 400],
    ];
    for (const [body, status] of refusals) expect((await ask(body)).status).toBe(status);
  });
});

describe('model variants', () => {
  it('registers an INT8 variant of a version over the API, once, and lists it with the model', async () => {
    const int8 = fs.readFileSync(path.join(inject('tinyModelsDir'), 'detection.int8.onnx'));
    const post = () =>
      p.app.request('/v1/models/detection/tiny-detection/variants/int8', {
        method: 'POST',
        headers: auth(p.tokens.lead, { 'Content-Type': 'application/octet-stream' }),
        body: new Uint8Array(int8),
      });
    const first = await post();
    expect(first.status).toBe(201);
    const { model } = await first.json();
    expect(model.variants.int8).toMatchObject({ artifactKey: 'models/detection/tiny-detection/model.int8.onnx', sha256: sha256Hex(int8) });
    // The same file again changes nothing; a reviewer may not register one.
    expect((await (await post()).json()).model.variants).toEqual(model.variants);
    const listed = await (await p.app.request('/v1/models?kind=detection', { headers: auth(p.tokens.lead) })).json();
    expect(listed.models.find((m: { version: string }) => m.version === 'tiny-detection').variants).toEqual(model.variants);
    const reviewer = await p.app.request('/v1/models/detection/tiny-detection/variants/int8', {
      method: 'POST',
      headers: auth(p.tokens.reviewer, { 'Content-Type': 'application/octet-stream' }),
      body: new Uint8Array(int8),
    });
    expect(reviewer.status).toBe(403);
  });
});

describe('OpenAPI', () => {
  it('describes every route the app serves', async () => {
    const doc = await (await p.app.request('/v1/openapi.json')).json();
    const documented = new Set(
      Object.entries(doc.paths as Record<string, object>).flatMap(([route, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${route}`)),
    );
    const served = p.app.routes.filter((r) => r.method !== 'ALL').map((r) => `${r.method} ${r.path.replace(/:(\w+)(\{[^}]*\})?/g, '{$1}')}`);
    const missing = [...new Set(served)].filter((r) => !documented.has(r));
    expect(missing).toEqual([]);
  });

  it('carries the constraints and response shapes of the zod schemas', async () => {
    const doc = await (await p.app.request('/v1/openapi.json')).json();
    const setPolicy = doc.paths['/v1/streams/{id}/policy'].put;
    const policy = setPolicy.requestBody.content['application/json'].schema;
    expect(policy.properties.band.properties.low).toMatchObject({ type: 'number', minimum: 0, maximum: 1 });
    expect(policy.properties.maxTasksPerFrame).toMatchObject({ type: 'integer', minimum: 1, maximum: 100 });
    expect(policy.additionalProperties).toBe(false);
    expect(setPolicy['x-roles']).toEqual(['lead', 'admin']);
    const labels = doc.paths['/v1/labels'].get;
    expect(labels.parameters.find((q: { name: string }) => q.name === 'limit').schema).toMatchObject({ type: 'integer', minimum: 1, maximum: 1000 });
    const label = labels.responses['200'].content['application/json'].schema.properties.labels.items;
    expect(label.properties.createdAt).toMatchObject({ type: 'string', format: 'date-time' });
    expect(label.properties.decision.enum).toEqual(['accept', 'reject', 'correct']);
    expect(label.required).toContain('boxes');
    expect(Object.keys(setPolicy.responses)).toEqual(expect.arrayContaining(['201', '400', '401', '403', '404']));
  });

  it('fails a request whose answer the document does not describe', async () => {
    const doc = await (await p.app.request('/v1/openapi.json')).json();
    // An app that answers documented paths wrongly, held to the real document.
    const wrong = new Hono();
    wrong.get('/healthz', (c) => c.json({ ok: 'yes' }));
    wrong.get('/v1/me', (c) => c.json({ user: { id: 'u', name: 'n', role: 'reviewer', streams: null, cameraIds: null } }, 202));
    wrong.get('/v1/queue', (c) => c.json({ depth: [] }));
    checkResponsesAgainstDocument(wrong, doc);
    await expect(wrong.request('/healthz')).rejects.toThrow(/GET \/healthz .* response body data\/ok must be/);
    await expect(wrong.request('/v1/me')).rejects.toThrow(/-> 202: status not in the OpenAPI document/);
    await expect(wrong.request('/v1/queue?nonsense=1')).resolves.toHaveProperty('status', 200);
  });
});

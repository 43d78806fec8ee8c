// Hostile input at every door: each request below must get a 4xx that says what was wrong (and,
// for bad fields, which field), and none may store anything: rows in every table and files in
// the store are counted before and after.
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { count } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { DbHandle } from '../../db/client.ts';
import * as schema from '../../db/schema.ts';
import { getModel } from '../../db/models.ts';
import { createTestDb } from '../helpers/db.ts';
import { withMetadata } from '../helpers/onnx.ts';
import { auth, createTestPlatform, sampleFrames, type TestPlatform, stopStream } from '../helpers/platform.ts';

let handle: DbHandle;
let p: TestPlatform;
const STREAM = `hostile-${Math.random().toString(36).slice(2, 8)}`;
const UUID0 = '00000000-0000-4000-8000-000000000000';

beforeAll(async () => {
  handle = await createTestDb();
  p = await createTestPlatform(handle, { cameraStreams: [STREAM], env: { MAX_FRAME_PIXELS: '100000', MAX_FRAME_BYTES: '400000' } });
  expect(
    (
      await p.app.request('/v1/streams', {
        method: 'POST',
        headers: auth(p.tokens.lead, { 'Content-Type': 'application/json' }),
        body: JSON.stringify({ id: STREAM }),
      })
    ).status,
  ).toBe(201);
});
afterAll(async () => {
  await stopStream(p, STREAM);
  await p.close();
  await handle.close();
});

async function storedCounts() {
  const tables = {
    frames: schema.frames,
    policies: schema.samplingPolicies,
    labels: schema.labels,
    objectLabels: schema.objectLabels,
    models: schema.models,
    drift: schema.driftSettings,
    users: schema.users,
    streams: schema.streams,
    tasks: schema.reviewTasks,
    audit: schema.auditLog,
  };
  const rows = Object.fromEntries(
    await Promise.all(Object.entries(tables).map(async ([name, t]) => [name, (await handle.db.select({ n: count() }).from(t))[0].n])),
  );
  const files = fs.existsSync(p.storeDir) ? fs.readdirSync(p.storeDir, { recursive: true }).length : 0;
  return { ...rows, files };
}

describe('hostile input', () => {
  it('gets a 4xx with the reason for every case, and stores nothing', async () => {
    const lead = auth(p.tokens.lead, { 'Content-Type': 'application/json' });
    const reviewer = auth(p.tokens.reviewer, { 'Content-Type': 'application/json' });
    const admin = auth(p.tokens.admin, { 'Content-Type': 'application/json' });
    const png = fs.readFileSync(sampleFrames()[0].file);
    const bigPicture = await sharp({ create: { width: 400, height: 400, channels: 3, background: '#336699' } })
      .png()
      .toBuffer();
    const detector = fs.readFileSync(path.join(inject('tinyModelsDir'), 'detection.onnx'));
    const boxModel = fs.readFileSync(path.join(inject('tinyModelsDir'), 'box.onnx'));
    const frame = (query: string, body: BodyInit, type = 'image/png') => ({
      url: `/v1/streams/${STREAM}/frames?${query}`,
      init: { method: 'POST', headers: auth(p.tokens.camera, { 'Content-Type': type }), body },
    });
    const put = (url: string, body: string, headers = lead) => ({ url, init: { method: 'PUT', headers, body } });
    const postJson = (url: string, body: string, headers = lead) => ({ url, init: { method: 'POST', headers, body } });
    const get = (url: string, headers: Record<string, string> = lead) => ({ url, init: { headers } });
    const model = (bytes: Buffer, kind = 'detection') => ({
      url: `/v1/models/${kind}?version=hostile`,
      init: { method: 'POST', headers: auth(p.tokens.lead, { 'Content-Type': 'application/octet-stream' }), body: new Uint8Array(bytes) },
    });
    const int8 = fs.readFileSync(path.join(inject('tinyModelsDir'), 'detection.int8.onnx'));
    const variant = (bytes: Buffer, model = 'detection/tiny-detection', precision = 'int8') => ({
      url: `/v1/models/${model}/variants/${precision}`,
      init: { method: 'POST', headers: auth(p.tokens.lead, { 'Content-Type': 'application/octet-stream' }), body: new Uint8Array(bytes) },
    });
    const box = (b: Record<string, unknown>) => ({ className: 'vehicle', x1: 0.1, y1: 0.1, x2: 0.2, y2: 0.2, ...b });
    const submit = (body: unknown) => postJson(`/v1/tasks/${UUID0}/submit`, typeof body === 'string' ? body : JSON.stringify(body), reviewer);

    // [case, request, status, field named (or the problem code)]
    const cases: [string, { url: string; init: RequestInit }, number, string][] = [
      // Ingestion
      ['capturedAt " 1"', frame('cameraId=c1&capturedAt=%201', png), 400, 'capturedAt'],
      ['capturedAt in year 275760', frame('cameraId=c1&capturedAt=%2B275760-09-13T00:00:00Z', png), 400, 'capturedAt'],
      ['capturedAt a millennium ahead', frame('cameraId=c1&capturedAt=3026-01-01T00:00:00Z', png), 400, 'capturedAt'],
      ['capturedAt without a zone', frame('cameraId=c1&capturedAt=2026-01-01T00:00:00', png), 400, 'capturedAt'],
      ['cameraId missing', frame('', png), 400, 'cameraId'],
      ['cameraId with spaces', frame('cameraId=a%20b', png), 400, 'cameraId'],
      ['cameraId of 300 characters', frame(`cameraId=${'c'.repeat(300)}`, png), 400, 'cameraId'],
      ['frame over the pixel limit', frame('cameraId=c1', bigPicture), 413, 'too_many_pixels'],
      ['frame over the byte limit', frame('cameraId=c1', Buffer.alloc(500_000, 1)), 413, 'too_large'],
      ['empty frame', frame('cameraId=c1', Buffer.alloc(0)), 400, 'empty'],
      ['GIF', frame('cameraId=c1', Buffer.from('GIF89a'), 'image/gif'), 415, 'Content-Type'],
      ['PNG header, garbage after', frame('cameraId=c1', Buffer.concat([png.subarray(0, 40), Buffer.alloc(2000, 7)])), 400, 'corrupt'],
      // Policies
      ['band low above high', put(`/v1/streams/${STREAM}/policy`, JSON.stringify({ band: { low: 0.7, high: 0.4 } })), 400, 'band.high'],
      ['Infinity (1e999)', put(`/v1/streams/${STREAM}/policy`, '{"randomRate": 1e999}'), 400, 'randomRate'],
      ['NaN is not JSON', put(`/v1/streams/${STREAM}/policy`, '{"randomRate": NaN}'), 400, '(body)'],
      ['a string for a number', put(`/v1/streams/${STREAM}/policy`, JSON.stringify({ randomRate: '0.5' })), 400, 'randomRate'],
      [
        '300 class bands',
        put(
          `/v1/streams/${STREAM}/policy`,
          JSON.stringify({ classBands: Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`c${i}`, { low: 0.1, high: 0.2 }])) }),
        ),
        400,
        'classBands',
      ],
      ['negative budget', put(`/v1/streams/${STREAM}/policy`, JSON.stringify({ dailyBudget: -1 })), 400, 'dailyBudget'],
      ['unknown field', put(`/v1/streams/${STREAM}/policy`, JSON.stringify({ bandd: {} })), 400, '(body)'],
      ['a 2 MB JSON body', put(`/v1/streams/${STREAM}/policy`, JSON.stringify({ pad: 'x'.repeat(2 * 1024 * 1024) })), 413, 'body'],
      ['policy of an unknown stream', put('/v1/streams/no-such-stream/policy', '{}'), 404, 'unknown_stream'],
      // Labels
      ['box outside the frame', submit({ decision: 'correct', boxes: [box({ x2: 1.5 })] }), 400, 'boxes.0.x2'],
      ['box with Infinity', submit('{"decision":"correct","boxes":[{"className":"vehicle","x1":0.1,"y1":0.1,"x2":1e999,"y2":0.2}]}'), 400, 'boxes.0.x2'],
      ['10,000 boxes', submit({ decision: 'correct', boxes: Array.from({ length: 10_000 }, () => box({})) }), 400, 'boxes'],
      ['empty class name', submit({ decision: 'correct', boxes: [box({ className: '' })] }), 400, 'boxes.0.className'],
      ['unknown decision', submit({ decision: 'maybe' }), 400, 'decision'],
      // Drift settings
      ['window of 100,000', put(`/v1/streams/${STREAM}/drift-settings`, JSON.stringify({ windowSize: 100_000 })), 400, 'windowSize'],
      [
        'window x stride of 20 million rows',
        put(`/v1/streams/${STREAM}/drift-settings`, JSON.stringify({ windowSize: 20_000, windowStride: 1000 })),
        400,
        'windowStride',
      ],
      ['alpha 0', put(`/v1/streams/${STREAM}/drift-settings`, JSON.stringify({ alpha: 0 })), 400, 'alpha'],
      ['variance ratio below 1', put(`/v1/streams/${STREAM}/drift-settings`, JSON.stringify({ spreadMinRatio: 0.5 })), 400, 'spreadMinRatio'],
      [
        'pinned reference backwards',
        put(`/v1/streams/${STREAM}/drift-settings`, JSON.stringify({ pinnedReference: { from: '2026-02-01T00:00:00Z', to: '2026-01-01T00:00:00Z' } })),
        400,
        'pinnedReference.to',
      ],
      // Model uploads
      ['truncated ONNX', model(detector.subarray(0, 1500)), 422, 'invalid_model'],
      ['random bytes', model(Buffer.alloc(4096, 0x5a)), 422, 'invalid_model'],
      ['a box model as a detector', model(boxModel), 422, 'invalid_model'],
      ['input_size of 16,000', model(withMetadata(detector, 'input_size', '16000')), 422, 'invalid_model'],
      ['embedding_dim the database cannot hold', model(withMetadata(detector, 'embedding_dim', '4096')), 422, 'invalid_model'],
      [
        '5,000 class names',
        model(withMetadata(detector, 'class_names', JSON.stringify(Array.from({ length: 5000 }, (_, i) => `c${i}`)))),
        422,
        'invalid_model',
      ],
      ['empty model body', model(Buffer.alloc(0)), 400, 'body'],
      ['unknown model kind', model(detector, 'segmentation'), 400, 'kind'],
      // Variants of a registered version (tiny-detection): what does not stand in for it is refused.
      ['a float model as the INT8 variant', variant(detector), 422, 'invalid_model'],
      ['an INT8 variant with other classes', variant(withMetadata(int8, 'class_names', '["a","b","c","d"]')), 422, 'invalid_model'],
      ['an INT8 variant of an unregistered version', variant(int8, 'detection/nope'), 404, 'not_found'],
      ['a precision there is no variant for', variant(int8, 'detection/tiny-detection', 'fp16'), 400, 'precision'],
      ['an empty variant', variant(Buffer.alloc(0)), 400, 'body'],
      // Query strings and ids
      ['limit not a number', get('/v1/labels?limit=abc'), 400, 'limit'],
      ['limit of a million', get('/v1/labels?limit=1000000'), 400, 'limit'],
      ['from not a date', get('/v1/labels?from=yesterday'), 400, 'from'],
      ['negative report limit', get('/v1/drift/reports?limit=-1'), 400, 'limit'],
      ['deployment id not a number', get('/v1/deployments/abc'), 400, 'id'],
      ['frame id not a uuid', get('/v1/frames/..%2F..%2Fetc%2Fpasswd'), 404, 'unknown_frame'],
      ['task id not a uuid', get("/v1/tasks/1';drop table labels;--", reviewer), 404, 'not_found'],
      ['an asset that does not exist', get('/app/no-such-file.js', {}), 404, 'no_route'],
      ['stream id of 10,000 characters', postJson('/v1/streams', JSON.stringify({ id: 'a'.repeat(10_000) })), 400, 'id'],
      ['user with a bad role', postJson('/v1/users', JSON.stringify({ name: 'x', role: 'root' }), admin), 400, 'role'],
      ['user name with a slash', postJson('/v1/users', JSON.stringify({ name: 'a/b', role: 'lead' }), admin), 400, 'name'],
      // Objects
      ['object id not a uuid', get("/v1/objects/1'or'1/similar", reviewer), 404, 'unknown_object'],
      ['similar with k of 100,000', get(`/v1/objects/${UUID0}/similar?k=100000`, reviewer), 400, 'k'],
      [
        'camera filter of 500 ids',
        get(`/v1/objects/${UUID0}/similar?cameraId=${Array.from({ length: 500 }, (_, i) => `c${i}`).join(',')}`, reviewer),
        400,
        'cameraId',
      ],
      [
        'mark with an unknown polarity',
        postJson('/v1/objects/labels', JSON.stringify({ objectIds: [UUID0], className: 'vehicle', polarity: 'maybe' }), reviewer),
        400,
        'polarity',
      ],
      [
        'mark 1,000 objects at once',
        postJson('/v1/objects/labels', JSON.stringify({ objectIds: Array(1000).fill(UUID0), className: 'v', polarity: 'positive' }), reviewer),
        400,
        'objectIds',
      ],
      [
        'mark an id that is not a uuid',
        postJson('/v1/objects/labels', JSON.stringify({ objectIds: ['../x'], className: 'v', polarity: 'positive' }), reviewer),
        400,
        'objectIds.0',
      ],
      [
        'mark an unknown object',
        postJson('/v1/objects/labels', JSON.stringify({ objectIds: [UUID0], className: 'v', polarity: 'positive' }), reviewer),
        404,
        'objectIds',
      ],
      [
        'search with both examples and a region',
        postJson('/v1/objects/search', JSON.stringify({ positives: [UUID0], region: { frameId: UUID0, box: { x1: 0, y1: 0, x2: 1, y2: 1 } } }), reviewer),
        400,
        'positives',
      ],
      ['search radius of 5', postJson('/v1/objects/search', JSON.stringify({ positives: [UUID0], maxDistance: 5 }), reviewer), 400, 'maxDistance'],
      [
        'confirm and reject one object',
        postJson('/v1/objects/proposals/decisions', JSON.stringify({ className: 'v', confirm: [UUID0], reject: [UUID0] }), reviewer),
        400,
        'reject',
      ],
      ['decide nothing', postJson('/v1/objects/proposals/decisions', JSON.stringify({ className: 'v' }), reviewer), 400, 'confirm'],
      // Auth headers
      ['no token', get('/v1/me', {}), 401, 'unauthenticated'],
      ['Basic auth', get('/v1/me', { Authorization: 'Basic YWRtaW46YWRtaW4=' }), 401, 'unauthenticated'],
      ['Bearer without a token', get('/v1/me', { Authorization: 'Bearer ' }), 401, 'unauthenticated'],
      ['a 10 KB token', get('/v1/me', { Authorization: `Bearer ${'a'.repeat(10_000)}` }), 401, 'unauthenticated'],
      ['a token with a newline', get('/v1/me', { Authorization: 'Bearer abc\tdef' }), 401, 'unauthenticated'],
    ];
    expect(cases.length).toBeGreaterThanOrEqual(30);

    const before = await storedCounts();
    const answers: string[] = [];
    for (const [name, req, status, named] of cases) {
      const res = await p.app.request(req.url, req.init);
      const body = (await res.json().catch(() => ({}))) as { detail?: string; code?: string; errors?: { field: string }[] };
      answers.push(`${res.status} ${name}: ${body.detail}`);
      expect(res.status, `${name}: ${JSON.stringify(body)}`).toBe(status);
      expect(body.detail?.length ?? 0, name).toBeGreaterThan(10);
      const fields = body.errors?.map((e) => e.field) ?? [];
      expect([body.code, ...fields], `${name}: ${JSON.stringify(body)}`).toContain(named);
    }
    expect(await storedCounts()).toEqual(before);
    expect((await getModel(handle.db, 'detection', 'tiny-detection'))?.variants).toEqual({});
    // The answers, for the closing note and for anyone reading the test output.
    if (process.env.SHOW_HOSTILE_ANSWERS) console.log(answers.join('\n'));
  });
});

// Deploys and rollbacks reach every running loop, and a frame that cannot be scored never stops
// its stream, tested the way an operator meets them: through the API, with real loops scoring
// real frames on the Temporal dev server.
//
// The bug this pins (found on a fresh `make up`): deploy vA, deploy vB, roll back; the API said
// 200 and named the loops it had notified, but every loop went on scoring with vB. The update id
// was `deploy-<version>`, and the loop (and the server, within a run) dropped an update whose id
// it had seen, so going back to a version a loop had served before was a no-op.
import fs from 'node:fs';
import path from 'node:path';
import { and, eq, inArray } from 'drizzle-orm';
import { NativeConnection } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createRetrainActivities } from '../../activities/retrain.ts';
import type { DbHandle } from '../../db/client.ts';
import { frames, frameScores, streams } from '../../db/schema.ts';
import { registerModel } from '../../models/registry.ts';
import { LocalBlobStore } from '../../storage/blob-store.ts';
import { registry } from '../../observability/metrics.ts';
import type { RunningWorkers } from '../../workers/start-workers.ts';
import { createTestDb } from '../helpers/db.ts';
import { auth, createTestPlatform, sampleFrames, type TestPlatform, startPlatformWorkers, stopStream } from '../helpers/platform.ts';
import { eventually, quietRuntime } from '../helpers/temporal.ts';

const suffix = Math.random().toString(36).slice(2, 8);
const STREAMS = [`dep-a-${suffix}`, `dep-b-${suffix}`];
let handle: DbHandle;
let p: TestPlatform;
let connection: NativeConnection;
let workers: RunningWorkers | null = null;

const json = (token: string) => auth(token, { 'Content-Type': 'application/json' });
const startScoring = async () => {
  workers = await startPlatformWorkers(p, connection);
};
const stopScoring = async () => {
  await workers?.shutdown();
  workers = null;
};

/** Posts sample frames (new bytes each time: content-addressed frames are stored once). */
let posted = 0;
async function postFrames(streamId: string, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const sample = sampleFrames()[posted % sampleFrames().length];
    // A PNG ignores bytes after its end chunk, so a counter there makes each upload a new frame.
    const bytes = Buffer.concat([fs.readFileSync(sample.file), Buffer.from(`#${posted++}`)]);
    const res = await p.app.request(`/v1/streams/${streamId}/frames?cameraId=${sample.cameraId}`, {
      method: 'POST',
      headers: auth(p.tokens.camera, { 'Content-Type': 'image/png' }),
      body: bytes,
    });
    expect(res.status).toBe(201);
    ids.push((await res.json()).frameId);
  }
  return ids;
}

/** Waits until these frames are scored, and returns the model version of each. */
async function scoredWith(frameIds: string[]): Promise<string[]> {
  return eventually(
    async () => {
      const rows = await handle.db
        .select({ frameId: frameScores.frameId, version: frameScores.modelVersion })
        .from(frameScores)
        .where(inArray(frameScores.frameId, frameIds));
      return rows.length === frameIds.length ? rows.map((r) => r.version) : undefined;
    },
    60_000,
    `${frameIds.length} frames scored`,
  );
}

beforeAll(async () => {
  handle = await createTestDb();
  p = await createTestPlatform(handle, { cameraStreams: STREAMS });
  const bytes = fs.readFileSync(path.join(inject('tinyModelsDir'), 'detection.onnx'));
  // Same bytes under two versions, as in the report that found the bug.
  for (const version of ['vA', 'vB']) await registerModel(handle.db, p.deps.store, { kind: 'detection', bytes, version });
  quietRuntime();
  connection = await NativeConnection.connect({ address: inject('temporalAddress') });
  await startScoring();
  for (const id of STREAMS)
    expect((await p.app.request('/v1/streams', { method: 'POST', headers: json(p.tokens.lead), body: JSON.stringify({ id }) })).status).toBe(201);
});

afterAll(async () => {
  for (const id of STREAMS) await stopStream(p, id);
  await stopScoring();
  await connection.close();
  await p.close();
  await handle.close();
});

describe('deploy and rollback', () => {
  it('reach every loop: deploy A, deploy B, roll back, and each loop scores with A from its next batch', async () => {
    const first = await Promise.all(STREAMS.map((s) => postFrames(s, 2)));
    expect(new Set(await scoredWith(first.flat()))).toEqual(new Set(['tiny-detection']));

    const steps: [string, string, string][] = [
      ['POST', '/v1/models/detection/vA/deploy', 'vA'],
      ['POST', '/v1/models/detection/vB/deploy', 'vB'],
      ['POST', '/v1/models/detection/rollback', 'vA'],
    ];
    for (const [method, url, version] of steps) {
      const res = await p.app.request(url, { method, headers: auth(p.tokens.lead) });
      const body = await res.json();
      expect(res.status, `${url}: ${JSON.stringify(body)}`).toBe(200);
      expect(body.version).toBe(version);
      expect(body.pending).toEqual([]);
      expect(body.loops.map((l: { streamId: string }) => l.streamId).sort()).toEqual([...STREAMS].sort());
      expect(body.loops.every((l: { status: string; modelVersion: string }) => l.status === 'confirmed' && l.modelVersion === version)).toBe(true);
      const frameIds = (await Promise.all(STREAMS.map((s) => postFrames(s, 2)))).flat();
      expect(await scoredWith(frameIds), `frames after ${url}`).toEqual(frameIds.map(() => version));
      const progress = await (await p.app.request(body.statusUrl, { headers: auth(p.tokens.lead) })).json();
      expect(progress.pending).toEqual([]);
      expect(progress.superseded).toBe(false);
    }

    // The rollback a failed verification triggers takes the retraining activities' path.
    const retrain = createRetrainActivities({ db: handle.db, store: p.deps.store, loopControl: p.deps.loopControl });
    const deployed = await retrain.deployCandidate({ kind: 'detection', version: 'vB', triggeredBy: 'test', reason: 'candidate' });
    expect(deployed.pending).toEqual([]);
    const back = await retrain.rollbackDeployment({ kind: 'detection', toVersion: 'vA', reason: 'verification failed' });
    expect(back.version).toBe('vA');
    expect(back.pending).toEqual([]);
    const afterAuto = (await Promise.all(STREAMS.map((s) => postFrames(s, 2)))).flat();
    expect(await scoredWith(afterAuto)).toEqual(afterAuto.map(() => 'vA'));

    // No frame was scored twice under two versions.
    const streamFrames = await handle.db.select({ id: frames.id }).from(frames).where(inArray(frames.streamId, STREAMS));
    const scores = await handle.db.select({ frameId: frameScores.frameId }).from(frameScores).where(inArray(frameScores.streamId, STREAMS));
    expect(scores.length).toBe(streamFrames.length);
  });

  it('answers 202 naming the loops that could not confirm, and shows them catch up', async () => {
    await stopScoring();
    const res = await p.app.request('/v1/models/detection/vB/deploy', { method: 'POST', headers: auth(p.tokens.lead) });
    expect(res.status).toBe(202);
    const body = await res.json();
    expect(body.pending.sort()).toEqual([...STREAMS].sort());
    const waiting = (await Promise.all(STREAMS.map((s) => postFrames(s, 1)))).flat();
    await startScoring();
    expect(await scoredWith(waiting)).toEqual(waiting.map(() => 'vB'));
    const progress = await eventually(
      async () => {
        const r = await (await p.app.request(body.statusUrl, { headers: auth(p.tokens.lead) })).json();
        return r.pending.length === 0 ? r : undefined;
      },
      30_000,
      'every loop confirmed',
    );
    expect(progress.loops.every((l: { modelVersion: string }) => l.modelVersion === 'vB')).toBe(true);
  });
});

describe('frames that cannot be scored', () => {
  it('are set aside with their reason, counted and listed, and the stream goes on', async () => {
    const streamId = STREAMS[0];
    // Paused while the frames are damaged: a running loop could score one before its damage.
    const control = (action: 'pause' | 'resume') => p.app.request(`/v1/streams/${streamId}/${action}`, { method: 'POST', headers: auth(p.tokens.lead) });
    expect((await control('pause')).status).toBeLessThan(300);
    const [missing, corrupt] = await postFrames(streamId, 2);
    // Damage what ingest accepted: one blob disappears, one is overwritten with garbage, and one
    // row claims more pixels than the limit (a frame ingested before the limit was lowered).
    const rows = await handle.db
      .select()
      .from(frames)
      .where(inArray(frames.id, [missing, corrupt]));
    const keyOf = (id: string) => rows.find((r) => r.id === id)!.storageKey;
    fs.rmSync(new LocalBlobStore(p.storeDir).pathOf(keyOf(missing)));
    await p.deps.store.put(keyOf(corrupt), Buffer.from('\x89PNG\r\n\x1a\n this is not a picture'));
    const [huge] = await postFrames(streamId, 1);
    await handle.db.update(frames).set({ width: 10_000, height: 10_000 }).where(eq(frames.id, huge));
    const good = await postFrames(streamId, 3);
    expect((await control('resume')).status).toBeLessThan(300);

    expect(await scoredWith(good)).toHaveLength(3);
    const res = await p.app.request(`/v1/frames?status=failed&streamId=${streamId}`, { headers: auth(p.tokens.lead) });
    expect(res.status).toBe(200);
    const failed = (await res.json()).frames as { frameId: string; reason: string; detail: string }[];
    const reasonOf = Object.fromEntries(failed.map((f) => [f.frameId, f.reason]));
    expect(reasonOf).toEqual({ [missing]: 'missing_blob', [corrupt]: 'undecodable', [huge]: 'too_many_pixels' });
    expect(failed.every((f) => f.detail.length > 5)).toBe(true);
    // The cursor moved past them, and none of them was scored.
    const [stream] = await handle.db.select().from(streams).where(eq(streams.id, streamId));
    const maxSeq = Math.max(...(await handle.db.select({ seq: frames.seq }).from(frames).where(eq(frames.streamId, streamId))).map((f) => f.seq));
    expect(stream.scoredThroughSeq).toBe(maxSeq);
    expect(
      await handle.db
        .select()
        .from(frameScores)
        .where(and(eq(frameScores.streamId, streamId), inArray(frameScores.frameId, [missing, corrupt, huge]))),
    ).toEqual([]);
    const metric = (await registry.getSingleMetricAsString('dataengine_frames_quarantined_total')).split('\n').filter((l) => l.includes(streamId));
    expect(metric.map((l) => l.replace(/.*reason="([^"]+)".* (\d+)$/, '$1=$2')).sort()).toEqual(['missing_blob=1', 'too_many_pixels=1', 'undecodable=1']);
    // A reviewer may not list them; a bad query names the field.
    expect((await p.app.request('/v1/frames?status=failed', { headers: auth(p.tokens.reviewer) })).status).toBe(403);
    const bad = await p.app.request('/v1/frames?status=ok', { headers: auth(p.tokens.lead) });
    expect(bad.status).toBe(400);
    expect((await bad.json()).errors[0].field).toBe('status');
  });
});

// The core loop end to end, the way a user runs it: create a stream over HTTP, set a policy,
// post camera frames, and watch the stream's Temporal loop score them with a real ONNX model
// and route tasks that a reviewer then claims and decides. Once on PGlite, and once on
// Postgres when DATABASE_URL is set (CI).
import fs from 'node:fs';
import { count, eq } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { openDb, type DbHandle } from '../../db/client.ts';
import { frames, frameScores, labels, predictions, reviewTasks, streams } from '../../db/schema.ts';
import { NativeConnection } from '@temporalio/worker';
import { inject } from 'vitest';
import { streamWorkflowId } from '../../workflows/shared.ts';
import { createTestDb } from '../helpers/db.ts';
import { auth, createTestPlatform, sampleFrames, startPlatformWorkers, stopStream } from '../helpers/platform.ts';
import { eventually, quietRuntime } from '../helpers/temporal.ts';

const backends: [string, () => Promise<DbHandle>][] = [['PGlite', () => openDb({})]];
if (process.env.DATABASE_URL) backends.push(['Postgres', createTestDb]);

describe.each(backends)('the core loop on %s', (_name, open) => {
  it('scores posted frames in a Temporal loop and routes tasks a reviewer decides, each exactly once', async () => {
    const handle = await open();
    const streamId = `loop-${Math.random().toString(36).slice(2, 8)}`;
    const platform = await createTestPlatform(handle, { cameraStreams: [streamId] });
    quietRuntime();
    const connection = await NativeConnection.connect({ address: inject('temporalAddress') });
    const workers = await startPlatformWorkers(platform, connection);
    const { app, tokens } = platform;
    try {
      const created = await app.request('/v1/streams', {
        method: 'POST',
        headers: auth(tokens.lead, { 'Content-Type': 'application/json' }),
        body: JSON.stringify({ id: streamId, name: 'test stream' }),
      });
      expect(created.status).toBe(201);

      // Every frame gets a task (random rate 1) so the test does not depend on the tiny model's
      // confidences; the band catches uncertain detections on top.
      const policy = { band: { low: 0.1, high: 0.9 }, randomRate: 1, maxTasksPerFrame: 2, diversityMinDistance: 0, dailyBudget: null };
      const put = await app.request(`/v1/streams/${streamId}/policy`, {
        method: 'PUT',
        headers: auth(tokens.lead, { 'Content-Type': 'application/json' }),
        body: JSON.stringify(policy),
      });
      expect(put.status).toBe(201);
      expect((await put.json()).version).toBe(2);

      const samples = sampleFrames().slice(0, 12);
      for (const [i, s] of samples.entries()) {
        const res = await app.request(`/v1/streams/${streamId}/frames?cameraId=${s.cameraId}&capturedAt=2026-01-01T00:00:${String(i).padStart(2, '0')}Z`, {
          method: 'POST',
          headers: auth(tokens.camera, { 'Content-Type': 'image/png' }),
          body: fs.readFileSync(s.file),
        });
        expect(res.status).toBe(201);
      }
      // The same image again is stored once.
      const again = await app.request(`/v1/streams/${streamId}/frames?cameraId=${samples[0].cameraId}`, {
        method: 'POST',
        headers: auth(tokens.camera, { 'Content-Type': 'image/png' }),
        body: fs.readFileSync(samples[0].file),
      });
      expect(again.status).toBe(200);

      const db = handle.db;
      const scoredCount = async () => (await db.select({ n: count() }).from(frameScores).where(eq(frameScores.streamId, streamId)))[0].n;
      await eventually(async () => (await scoredCount()) === samples.length, 60_000, 'all frames scored');

      const tasks = await db.select().from(reviewTasks).where(eq(reviewTasks.streamId, streamId));
      expect(tasks.length).toBeGreaterThanOrEqual(samples.length);
      expect(new Set(tasks.map((t) => t.dedupeKey)).size).toBe(tasks.length);
      expect(tasks.every((t) => t.policyVersion === 2 && t.modelVersion === 'tiny-detection')).toBe(true);
      const [stream] = await db.select().from(streams).where(eq(streams.id, streamId));
      const maxSeq = Math.max(...(await db.select({ seq: frames.seq }).from(frames).where(eq(frames.streamId, streamId))).map((f) => f.seq));
      expect(stream.scoredThroughSeq).toBe(maxSeq);
      const preds = await db
        .select({ frameId: predictions.frameId, rank: predictions.rank })
        .from(predictions)
        .innerJoin(frames, eq(frames.id, predictions.frameId))
        .where(eq(frames.streamId, streamId));
      expect(new Set(preds.map((p) => `${p.frameId}:${p.rank}`)).size).toBe(preds.length);

      // The loop's status is readable (query), and it shows in the Web UI's search attributes.
      const status = await platform.deps.loopControl.status(streamId);
      expect(status?.state).toBe('RUNNING');
      expect(status?.totals.framesScored).toBe(samples.length);
      const description = await platform.deps.temporal!.workflow.getHandle(streamWorkflowId(streamId)).describe();
      expect(description.typedSearchAttributes.get({ name: 'ModelVersion', type: 'KEYWORD' } as never)).toBe('tiny-detection');

      // A reviewer claims, a second reviewer gets a different task, and a decision becomes a label.
      const claim = await app.request('/v1/tasks/claim', { method: 'POST', headers: auth(tokens.reviewer) });
      expect(claim.status).toBe(200);
      const claimed = await claim.json();
      const other = await (await app.request('/v1/tasks/claim', { method: 'POST', headers: auth(tokens.reviewer2) })).json();
      expect(other.task.id).not.toBe(claimed.task.id);
      const box = { className: 'vehicle', x1: 0.1, y1: 0.2, x2: 0.3, y2: 0.4 };
      const submit = await app.request(`/v1/tasks/${claimed.task.id}/submit`, {
        method: 'POST',
        headers: auth(tokens.reviewer, { 'Content-Type': 'application/json' }),
        body: JSON.stringify({ decision: 'correct', boxes: [box] }),
      });
      expect(submit.status).toBe(201);
      const [label] = await db.select().from(labels).where(eq(labels.taskId, claimed.task.id));
      expect(label.boxes).toEqual([box]);
      expect(label.policyVersion).toBe(2);
      // Someone else's task cannot be submitted.
      const stolen = await app.request(`/v1/tasks/${other.task.id}/submit`, {
        method: 'POST',
        headers: auth(tokens.reviewer, { 'Content-Type': 'application/json' }),
        body: JSON.stringify({ decision: 'reject' }),
      });
      expect(stolen.status).toBe(409);

      // Frames imported with their labels (a COCO dataset) are scored like any other, but even
      // under a policy that routes every frame nobody is asked to label them again.
      const dir = inject('sampleFramesDir');
      const dataset = JSON.parse(fs.readFileSync(`${dir}/dataset.json`, 'utf8')) as {
        images: { id: number; file_name: string }[];
        annotations: { image_id: number }[];
      };
      const posted = new Set(samples.map((s) => s.file));
      const importing = dataset.images.filter((im) => !posted.has(`${dir}/${im.file_name}`)).slice(0, 4);
      const ids = new Set(importing.map((im) => im.id));
      const body = new FormData();
      const coco = { ...dataset, images: importing, annotations: dataset.annotations.filter((a) => ids.has(a.image_id)) };
      body.append('annotations', new Blob([JSON.stringify(coco)], { type: 'application/json' }), 'annotations.json');
      for (const im of importing) body.append('images', new Blob([fs.readFileSync(`${dir}/${im.file_name}`)]), im.file_name);
      const imported = await app.request(`/v1/streams/${streamId}/imports/coco`, { method: 'POST', headers: auth(tokens.lead), body });
      expect(imported.status).toBe(201);
      const importedIds: string[] = (await imported.json()).images.map((i: { frameId: string }) => i.frameId);
      expect(importedIds).toHaveLength(4);
      await eventually(async () => (await scoredCount()) === samples.length + 4, 60_000, 'imported frames scored');
      const routed = await db.select({ frameId: reviewTasks.frameId }).from(reviewTasks).where(eq(reviewTasks.streamId, streamId));
      expect(routed.filter((t) => importedIds.includes(t.frameId))).toEqual([]);
      expect(routed.length).toBe(tasks.length);
    } finally {
      await stopStream(platform, streamId);
      await workers.shutdown();
      await connection.close();
      await platform.close();
      await handle.close();
    }
  });
});

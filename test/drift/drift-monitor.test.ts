// The drift monitor as it runs: a real driftMonitor workflow on the Temporal dev server, its
// activity on a real database, reading frame embeddings the loop stored. One camera of a stream
// shifts while the other does not: the camera is flagged, boosted, and a retraining run started
// that waits for reviews of the shifted frames.
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDriftActivities } from '../../activities/drift.ts';
import { createRetrainActivities } from '../../activities/retrain.ts';
import type { StepRecord } from '../../db/schema.ts';
import type { DbHandle } from '../../db/client.ts';
import { saveDriftSettings, saveModelReference } from '../../db/drift.ts';
import { takeUpTriggers } from '../../db/retrain.ts';
import { driftSettingsSchema } from '../../drift/settings.ts';
import { deployments, driftBoosts, driftReports, frames, frameScores, models, retrainRuns, retrainTriggers, streams } from '../../db/schema.ts';
import { checkNowSignal, lastDecisionQuery } from '../../workflows/drift-monitor.ts';
import { driftPValue, driftStatistic } from '../../observability/metrics.ts';
import { createTestDb } from '../helpers/db.ts';
import { auth, createTestPlatform, type TestPlatform } from '../helpers/platform.ts';
import { gaussian, mulberry32 } from '../helpers/random.ts';
import { eventually, testClient, uniqueQueue, withWorker } from '../helpers/temporal.ts';

// Frame embeddings: a few Gaussian factors mixed into 128 dimensions; a shift moves factor 0.
function embeddings(n: number, seed: number, shift = 0): number[][] {
  const gauss = gaussian(mulberry32(seed));
  return Array.from({ length: n }, () => {
    const f = Array.from({ length: 8 }, (_, j) => (gauss() * (8 - j)) / 4 + (j === 0 ? shift : 0));
    return Array.from({ length: 128 }, (_, i) => f.reduce((acc, v, j) => acc + v * Math.sin(i * 0.37 + j * 1.3 + 0.5), 0) + 0.01 * gauss());
  });
}

let handle: DbHandle;
let p: TestPlatform;

/** A camera's frames, scored one per 4 s and offset by `slot`, so cameras interleave in time. */
async function seedCamera(streamId: string, cameraId: string, rows: number[][], slot: number) {
  const at = (i: number) => new Date(Date.UTC(2026, 0, 1) + (i * 4 + slot) * 1000);
  const inserted = await handle.db
    .insert(frames)
    .values(
      rows.map((_, i) => ({
        streamId,
        cameraId,
        capturedAt: at(i),
        contentHash: `${streamId}-${cameraId}-${i}`,
        storageKey: `frames/x/${streamId}-${cameraId}-${i}.png`,
        mediaType: 'image/png',
        sizeBytes: 1,
        width: 320,
        height: 240,
      })),
    )
    .returning({ id: frames.id });
  await handle.db
    .insert(frameScores)
    .values(
      inserted.map((f, i) => ({ frameId: f.id, modelVersion: 'tiny-detection', streamId, cameraId, numDetections: 4, embedding: rows[i], scoredAt: at(i) })),
    );
}

beforeAll(async () => {
  handle = await createTestDb();
  p = await createTestPlatform(handle);
  const [row] = await handle.db.select().from(models).where(eq(models.version, 'tiny-detection'));
  expect(row.status).toBe('production');
  const ref = embeddings(300, 1);
  await saveModelReference(handle.db, 'tiny-detection', { embeddings: ref, scores: ref.map(() => [0.9, 0.8]), num_detections: ref.map(() => 4) });
  for (const id of ['cams', 'calm']) {
    await handle.db.insert(streams).values({ id, name: id });
    // These synthetic embeddings are independent draws, so no thinning is needed.
    await saveDriftSettings(handle.db, id, driftSettingsSchema.parse({ windowStride: 1 }), 'test');
  }
  // cam-b sends like the others, then its picture changes (a new mount): its last 120 frames.
  await seedCamera('cams', 'cam-a', embeddings(240, 2), 0);
  await seedCamera('cams', 'cam-b', [...embeddings(120, 3), ...embeddings(120, 6, 6)], 1);
  await seedCamera('cams', 'cam-c', embeddings(240, 4), 2);
  await seedCamera('calm', 'cam-a', embeddings(150, 5), 0);
});
afterAll(async () => {
  await p.close();
  await handle.close();
});

describe('driftMonitor', () => {
  it('tells a faulty camera from a changed world, boosts that camera and starts a retraining run that waits for reviews', async () => {
    const { client, close } = await testClient();
    const taskQueue = uniqueQueue('control');
    try {
      const activities = {
        ...createDriftActivities({ db: handle.db }),
        ...createRetrainActivities({ db: handle.db, store: p.deps.store, loopControl: p.deps.loopControl }),
      };
      await withWorker({ taskQueue, activities }, async () => {
        const retrain = { epochs: 3, trainingQueue: 'training-not-reached' };
        const h = await client.workflow.start('driftMonitor', { taskQueue, workflowId: `drift-test-${taskQueue}`, args: [{ streamId: 'cams', retrain }] });
        const decision = await eventually(() => h.query(lastDecisionQuery), 30_000, 'first drift check');
        expect(decision.status).toBe('checked');
        expect(decision.verdict).toBe('cameras');
        // The stream as a whole moved (a third of its frames did), but of its cameras only cam-b.
        const flagged = decision.segments.filter((s) => s.drift && s.segmentType === 'camera').map((s) => s.segment);
        expect(flagged).toEqual(['cams/cam-b']);
        expect(decision.retrainTriggered).toBe(true);
        const boosts = await handle.db.select().from(driftBoosts).where(eq(driftBoosts.streamId, 'cams'));
        expect(boosts.map((b) => b.cameraId)).toEqual(['cam-b']);
        expect(boosts[0].expiresAt.getTime()).toBeGreaterThan(Date.now() + 50 * 60_000);
        const [trigger] = await handle.db.select().from(retrainTriggers);
        expect(trigger.reason).toContain('cam-b');

        // The run it started waits for the stream's reviewers before snapshotting anything.
        const run = await eventually(
          async () => {
            const [r] = await handle.db.select().from(retrainRuns).where(eq(retrainRuns.trigger, 'drift'));
            return (r?.steps as StepRecord[] | undefined)?.some((s) => s.name === 'labels') ? r : undefined;
          },
          30_000,
          'the drift-started retraining run',
        );
        expect(run.reason).toContain('cams: drift: camera cams/cam-b');
        expect(run.requestedBy).toBe('drift-monitor');
        expect(run.steps).toEqual([
          expect.objectContaining({ name: 'labels', status: 'running', detail: 'waiting for 200 frames reviewed since the drift: 0 so far' }),
        ]);
        expect((await handle.db.select().from(retrainTriggers))[0].status).toBe('started');
        const started = (await client.workflow.getHandle(run.id).fetchHistory()).events![0].workflowExecutionStartedEventAttributes!;
        expect(JSON.parse(Buffer.from(started.input!.payloads![0].data!).toString())).toMatchObject({
          ...retrain,
          trigger: 'drift',
          waitForLabels: { streamId: 'cams', minNew: 200, maxWaitMs: 7 * 24 * 3600_000, pollMs: 300_000 },
        });

        // A second check finds the boost active and adds no second one, and starts no second run
        // while the first one waits.
        await h.signal(checkNowSignal);
        await eventually(
          async () => (await handle.db.select().from(driftReports).where(eq(driftReports.segmentKey, 'cams'))).length === 2,
          30_000,
          'second check',
        );
        expect(await handle.db.select().from(driftBoosts).where(eq(driftBoosts.streamId, 'cams'))).toHaveLength(1);
        const second = await eventually(
          async () => {
            const d = await h.query(lastDecisionQuery);
            return d && d.segments[0]?.reportId !== decision.segments[0].reportId && d;
          },
          10_000,
          'second decision',
        );
        expect(second).toMatchObject({ verdict: 'cameras', retrainTriggered: false });
        expect(await handle.db.select().from(retrainRuns).where(eq(retrainRuns.trigger, 'drift'))).toHaveLength(1);
        expect((await h.describe()).status.name).toBe('RUNNING');
        await h.terminate('test over');
        await client.workflow.getHandle(run.id).terminate('test over');

        const calm = await client.workflow.start('driftMonitor', {
          taskQueue,
          workflowId: `drift-calm-${taskQueue}`,
          args: [{ streamId: 'calm', autoRetrain: false }],
        });
        const quiet = await eventually(() => calm.query(lastDecisionQuery), 30_000, 'calm check');
        expect(quiet.verdict).toBe('none');
        expect(quiet.segments.every((s) => !s.drift)).toBe(true);
        await calm.terminate('test over');
      });
    } finally {
      await close();
    }
  });

  it('acts on drift only once k of the last n checks found it, and says it is pending until then', async () => {
    // A stream whose world changed: every frame of its window is shifted. Two drifted checks out
    // of the last three are needed before sampling is boosted or retraining asked for.
    await handle.db.insert(streams).values({ id: 'confirm', name: 'confirm' });
    await saveDriftSettings(handle.db, 'confirm', driftSettingsSchema.parse({ windowStride: 1, confirmDrifted: 2, confirmChecks: 3 }), 'test');
    await seedCamera('confirm', 'cam-a', embeddings(240, 7, 6), 0);
    const activities = createDriftActivities({ db: handle.db });
    const runDriftCheck = (input: { streamId: string; checkId: string }) => activities.runDriftCheck(input);
    const boosts = async () => handle.db.select().from(driftBoosts).where(eq(driftBoosts.streamId, 'confirm'));

    const first = await runDriftCheck({ streamId: 'confirm', checkId: 'confirm:1' });
    expect(first).toMatchObject({ verdict: 'none', retrainTriggered: false, boosted: [] });
    expect(first.segments[0]).toMatchObject({ drift: false, confirmation: { status: 'pending', driftedChecks: 1, ofChecks: 1, needed: 2, window: 3 } });
    expect(first.summary).toBe('drift pending confirmation: confirm (1 of the last 1 checks; 2 of 3 needed)');
    expect(await boosts()).toHaveLength(0);
    // A retried check reads the same earlier checks: still pending, nothing stored twice.
    expect((await runDriftCheck({ streamId: 'confirm', checkId: 'confirm:1' })).segments[0].confirmation.status).toBe('pending');
    const [stored] = await handle.db.select().from(driftReports).where(eq(driftReports.segmentKey, 'confirm'));
    expect(stored.report).toMatchObject({ drift: true, confirmation: { status: 'pending' } });

    const second = await runDriftCheck({ streamId: 'confirm', checkId: 'confirm:2' });
    expect(second).toMatchObject({ verdict: 'world', retrainTriggered: true, boosted: ['confirm'] });
    expect(second.segments[0].confirmation).toMatchObject({ status: 'confirmed', driftedChecks: 2, ofChecks: 2 });
    expect(await boosts()).toHaveLength(1);
    expect(await handle.db.select().from(driftReports).where(eq(driftReports.segmentKey, 'confirm'))).toHaveLength(2);

    // A rule that cannot be met is refused with the field named.
    const bad = await p.app.request('/v1/streams/confirm/drift-settings', {
      method: 'PUT',
      headers: auth(p.tokens.lead, { 'Content-Type': 'application/json' }),
      body: JSON.stringify({ confirmDrifted: 3, confirmChecks: 2 }),
    });
    expect(bad.status).toBe(400);
    expect((await bad.json()).errors.map((e: { field: string }) => e.field)).toEqual(['confirmDrifted']);
  });

  it('after a drift-started retraining deploys, judges the stream by its own frames under the new model, so a recovered stream goes quiet', async () => {
    // The world of this stream changed: against the model's held-out frames it drifts.
    await handle.db.insert(streams).values({ id: 'rebase', name: 'rebase' });
    await saveDriftSettings(handle.db, 'rebase', driftSettingsSchema.parse({ windowStride: 1, maxCameras: 1 }), 'test');
    await seedCamera('rebase', 'cam-a', embeddings(240, 8, 6), 0);
    const activities = createDriftActivities({ db: handle.db });
    const check = (checkId: string) => activities.runDriftCheck({ streamId: 'rebase', checkId });
    const before = await check('rebase:1');
    expect(before).toMatchObject({ verdict: 'world', retrainTriggered: true });

    // The run that drift started takes the trigger up, trains on the shifted frames and deploys
    // its model (here the production version, deployed as the stream's frames start).
    const runId = 'tiny-detection';
    await handle.db.insert(retrainRuns).values({ id: runId, trigger: 'drift', reason: 'rebase: drift', requestedBy: 'drift-monitor', status: 'deployed' });
    await takeUpTriggers(handle.db, runId, 'rebase');
    await handle.db
      .insert(deployments)
      .values({ kind: 'detection', version: runId, action: 'deploy', triggeredBy: `retrain ${runId}`, createdAt: new Date(Date.UTC(2026, 0, 1)) });

    const after = await check('rebase:2');
    expect(after).toMatchObject({ status: 'checked', verdict: 'none', retrainTriggered: false });
    const [report] = await handle.db
      .select()
      .from(driftReports)
      .where(and(eq(driftReports.checkId, 'rebase:2'), eq(driftReports.segmentType, 'stream')));
    expect(report.report).toMatchObject({ drift: false, reference: expect.stringContaining('in the 60 minutes after its drift-started deploy') });

    // With the setting at 0 the model's held-out frames stay the reference, and the drift with them.
    await saveDriftSettings(handle.db, 'rebase', driftSettingsSchema.parse({ windowStride: 1, maxCameras: 1, referenceAfterRetrainMinutes: 0 }), 'test');
    expect((await check('rebase:3')).segments[0].confirmation.status).toBe('confirmed');
  });

  it("drops a camera's drift gauges once it is no longer tested, so dashboards do not show its last value", async () => {
    await handle.db.insert(streams).values({ id: 'gauges', name: 'gauges' });
    await seedCamera('gauges', 'cam-a', embeddings(120, 11), 0);
    await seedCamera('gauges', 'cam-b', embeddings(100, 12), 1);
    const activities = createDriftActivities({ db: handle.db });
    const series = async () =>
      (await driftStatistic.get()).values
        .map((v) => `${v.labels.segment_type} ${v.labels.segment}`)
        .filter((s) => s.includes('gauges'))
        .sort();
    await saveDriftSettings(handle.db, 'gauges', driftSettingsSchema.parse({ windowStride: 1, maxCameras: 2 }), 'test');
    await activities.runDriftCheck({ streamId: 'gauges', checkId: 'gauges:1' });
    expect(await series()).toEqual(['camera gauges/cam-a', 'camera gauges/cam-b', 'stream gauges']);
    // Only the busiest camera is tested now: cam-b's series go, the others stay.
    await saveDriftSettings(handle.db, 'gauges', driftSettingsSchema.parse({ windowStride: 1, maxCameras: 1 }), 'test');
    await activities.runDriftCheck({ streamId: 'gauges', checkId: 'gauges:2' });
    expect(await series()).toEqual(['camera gauges/cam-a', 'stream gauges']);
    expect((await driftPValue.get()).values.filter((v) => String(v.labels.segment).startsWith('gauges/')).map((v) => v.labels.segment)).toEqual([
      'gauges/cam-a',
    ]);
  });

  it('serves reports and validates settings through the API', async () => {
    const list = await (await p.app.request('/v1/drift/reports?streamId=cams', { headers: auth(p.tokens.lead) })).json();
    expect(list.reports.length).toBeGreaterThan(0);
    const camB = list.reports.find((r: { segmentKey: string }) => r.segmentKey === 'cams/cam-b');
    const one = await (await p.app.request(`/v1/drift/reports/${camB.id}`, { headers: auth(p.tokens.lead) })).json();
    expect(one.report.drift).toBe(true);
    expect(one.report.report.components[0]).toMatchObject({ component: 1, drifted: expect.any(Boolean), adjustedP: expect.any(Number) });
    // The novelty test names the frames unlike anything before: cam-b's frames after its change.
    const changed = await handle.db
      .select({ id: frames.id, hash: frames.contentHash })
      .from(frames)
      .where(and(eq(frames.streamId, 'cams'), eq(frames.cameraId, 'cam-b')));
    const afterChange = new Set(changed.filter((f) => Number(f.hash.split('-').pop()) >= 120).map((f) => f.id));
    expect(one.report.report.novelty.drifted).toBe(true);
    expect(one.report.report.novelFrameIds.length).toBeGreaterThan(5);
    expect(one.report.report.novelFrameIds.every((id: string) => afterChange.has(id))).toBe(true);
    // ...and the operations page shows the stream's latest ones.
    const ops = await (await p.app.request('/v1/ops', { headers: auth(p.tokens.lead) })).json();
    const cams = ops.streams.find((s: { id: string }) => s.id === 'cams');
    expect(cams.lastDrift.novelFrameIds.length).toBeGreaterThan(0);
    expect(cams.lastDrift.novelFrameIds.every((id: string) => afterChange.has(id))).toBe(true);
    const bad = await p.app.request('/v1/streams/cams/drift-settings', {
      method: 'PUT',
      headers: auth(p.tokens.lead, { 'Content-Type': 'application/json' }),
      body: JSON.stringify({ alpha: 2, correction: 'holm' }),
    });
    expect(bad.status).toBe(400);
    expect((await bad.json()).errors.map((e: { field: string }) => e.field).sort()).toEqual(['alpha', 'correction']);
    const ok = await p.app.request('/v1/streams/cams/drift-settings', {
      method: 'PUT',
      headers: auth(p.tokens.lead, { 'Content-Type': 'application/json' }),
      body: JSON.stringify({ alpha: 0.01, correction: 'bh', pinnedReference: { from: '2026-01-01T00:00:00Z', to: '2026-01-01T00:01:00Z' } }),
    });
    expect(ok.status).toBe(200);
    const got = await (await p.app.request('/v1/streams/cams/drift-settings', { headers: auth(p.tokens.lead) })).json();
    expect(got.settings).toMatchObject({ alpha: 0.01, correction: 'bh', components: 8 });
    expect(
      (
        await p.app.request('/v1/streams/cams/drift-settings', {
          method: 'PUT',
          headers: auth(p.tokens.reviewer, { 'Content-Type': 'application/json' }),
          body: '{}',
        })
      ).status,
    ).toBe(403);
  });
});

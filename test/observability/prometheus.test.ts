// Alert rules and dashboards checked against the real thing: promtool for the rules and their
// unit tests; a real Prometheus scraping the platform (API, workers with the Temporal SDK's own
// metrics) after real traffic, then every dashboard panel's query run through its HTTP API.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { serve, type ServerType } from '@hono/node-server';
import { NativeConnection } from '@temporalio/worker';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createDriftActivities } from '../../activities/drift.ts';
import { createRetrainActivities } from '../../activities/retrain.ts';
import type { DbHandle } from '../../db/client.ts';
import { saveDriftSettings, saveModelReference } from '../../db/drift.ts';
import { driftSettingsSchema } from '../../drift/settings.ts';
import { frameFailures, frames, frameScores, reviewTasks } from '../../db/schema.ts';
import { config, goldSettings } from '../../config.ts';
import { exposeDatabaseGauges } from '../../observability/database-gauges.ts';
import { installTemporalRuntime } from '../../observability/temporal-runtime.ts';
import type { RunningWorkers } from '../../workers/start-workers.ts';
import { createTestDb } from '../helpers/db.ts';
import { auth, createTestPlatform, sampleFrames, type TestPlatform, startPlatformWorkers, stopStream } from '../helpers/platform.ts';
import { eventually } from '../helpers/temporal.ts';
import { freePort } from '../helpers/ports.ts';

const run = promisify(execFile);
const dir = path.join(import.meta.dirname, '../../dashboards');

describe('alert rules', () => {
  it('pass promtool check and their unit tests', async () => {
    const check = await run('promtool', ['check', 'rules', path.join(dir, 'prometheus/alerts.yml')]);
    expect(check.stdout).toContain('SUCCESS: 7 rules found');
    const tests = await run('promtool', ['test', 'rules', 'alerts.test.yml'], { cwd: path.join(dir, 'prometheus') });
    expect(tests.stdout).toContain('SUCCESS');
  });
});

describe('dashboards against a real Prometheus', () => {
  let handle: DbHandle;
  let p: TestPlatform;
  let workers: RunningWorkers;
  let connection: NativeConnection;
  let server: ServerType;
  let prometheus: ChildProcess;
  let promUrl: string;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'prom-'));

  beforeAll(async () => {
    installTemporalRuntime({ sdkMetricsPort: await freePort(), logLevel: 'WARN' });
    handle = await createTestDb();
    // Every detection is stored (the tiny model is unsure of everything), so the quality panels have data.
    // Every claim offers a gold frame when there is one, so the reviewer-accuracy panels have data.
    p = await createTestPlatform(handle, { env: { PREDICTION_MIN_SCORE: '0.01', GOLD_RATE: '1' }, cameraStreams: ['obs'] });
    exposeDatabaseGauges(handle.db, goldSettings(config));
    connection = await NativeConnection.connect({ address: inject('temporalAddress') });
    workers = await startPlatformWorkers(p, connection, createRetrainActivities({ db: handle.db, store: p.deps.store, loopControl: p.deps.loopControl }));
    const lead = auth(p.tokens.lead, { 'Content-Type': 'application/json' });
    await p.app.request('/v1/streams', { method: 'POST', headers: lead, body: JSON.stringify({ id: 'obs' }) });
    await p.app.request('/v1/streams/obs/policy', {
      method: 'PUT',
      headers: lead,
      body: JSON.stringify({ randomRate: 1, randomBudgetShare: 1, diversityMinDistance: 0 }),
    });
    await p.app.request('/v1/streams/obs/frames?cameraId=c', {
      method: 'POST',
      headers: auth(p.tokens.camera, { 'Content-Type': 'image/png' }),
      body: 'not a png',
    });
    for (const s of sampleFrames()) {
      await p.app.request(`/v1/streams/obs/frames?cameraId=${s.cameraId}`, {
        method: 'POST',
        headers: auth(p.tokens.camera, { 'Content-Type': 'image/png' }),
        body: fs.readFileSync(s.file),
      });
    }
    await eventually(
      async () => (await handle.db.select().from(frameScores).where(eq(frameScores.streamId, 'obs'))).length === sampleFrames().length,
      60_000,
      'frames scored',
    );
    // A frame whose blob is gone: the loop sets it aside and counts it.
    await handle.db.insert(frames).values({
      streamId: 'obs',
      cameraId: 'c',
      capturedAt: new Date(),
      contentHash: 'gone',
      storageKey: 'frames/gone.png',
      mediaType: 'image/png',
      sizeBytes: 1,
      width: 320,
      height: 240,
    });
    await eventually(async () => (await handle.db.select().from(frameFailures)).length === 1, 60_000, 'the frame set aside');
    // Review traffic: a claim that expires and is claimed again, decisions, box assist.
    const reviewer = auth(p.tokens.reviewer, { 'Content-Type': 'application/json' });
    const first = await (await p.app.request('/v1/tasks/claim', { method: 'POST', headers: reviewer })).json();
    await handle.db
      .update(reviewTasks)
      .set({ leaseExpiresAt: new Date(Date.now() - 1000), priority: 1000 })
      .where(eq(reviewTasks.id, first.task.id));
    const again = await (await p.app.request('/v1/tasks/claim', { method: 'POST', headers: auth(p.tokens.reviewer2) })).json();
    await p.app.request(`/v1/tasks/${again.task.id}/submit`, {
      method: 'POST',
      headers: auth(p.tokens.reviewer2, { 'Content-Type': 'application/json' }),
      body: JSON.stringify({ decision: 'reject' }),
    });
    await p.app.request('/v1/box-predictions', {
      method: 'POST',
      headers: reviewer,
      body: JSON.stringify({ frameId: again.frame.id, region: { x1: 100, y1: 100, x2: 150, y2: 140 } }),
    });
    // The decided frame becomes gold; the other reviewer is checked against it.
    expect((await p.app.request(`/v1/frames/${again.frame.id}/gold`, { method: 'PUT', headers: auth(p.tokens.lead) })).status).toBe(200);
    const gold = await (await p.app.request('/v1/tasks/claim', { method: 'POST', headers: reviewer })).json();
    expect(gold.frame.id).toBe(again.frame.id);
    await p.app.request(`/v1/tasks/${gold.task.id}/submit`, { method: 'POST', headers: reviewer, body: JSON.stringify({ decision: 'reject' }) });
    // A drift check and two finished retraining runs, through their real activities.
    const stored = await handle.db.select().from(frameScores).where(eq(frameScores.streamId, 'obs'));
    const embeddings = stored.map((s) => s.embedding);
    await saveModelReference(handle.db, 'tiny-detection', {
      embeddings: [...embeddings, ...embeddings, ...embeddings],
      scores: embeddings.map(() => [0.5]),
      num_detections: embeddings.map(() => 1),
    });
    await saveDriftSettings(handle.db, 'obs', driftSettingsSchema.parse({ windowStride: 1 }), 'test');
    const drift = createDriftActivities({ db: handle.db });
    await drift.runDriftCheck({ streamId: 'obs', checkId: 'obs-1' });
    await drift.runDriftCheck({ streamId: null, checkId: 'obs-2' });
    const retrain = createRetrainActivities({ db: handle.db, store: p.deps.store, loopControl: p.deps.loopControl });
    for (const [id, status] of [
      ['r1', 'deployed'],
      ['r2', 'refused'],
    ] as const) {
      await retrain.recordRetrainRun({ runId: id, trigger: 'manual', reason: 'test', requestedBy: 'lead' });
      await retrain.recordRetrainStep({ runId: id, step: { name: 'train', status: 'running', at: new Date(Date.now() - 42_000).toISOString() } });
      await retrain.recordRetrainStep({ runId: id, step: { name: 'train', status: 'done', at: new Date().toISOString() } });
      await retrain.recordRetrainStep({
        runId: id,
        step: { name: 'result', status: 'done', at: new Date().toISOString() },
        status,
        metrics: { candidate: { map50: 0.7 }, production: { map50: 0.6 } },
      });
    }

    server = serve({ fetch: p.app.fetch, hostname: '127.0.0.1', port: 0 });
    await new Promise((r) => server.once('listening', r));
    const appPort = (server.address() as net.AddressInfo).port;
    const promPort = await freePort();
    // The reviewer series are scraped as dashboards/prometheus/prometheus.yml does: with a lead's
    // token from a file beside the config.
    fs.writeFileSync(path.join(tmp, 'reviewer-metrics.token'), p.tokens.lead);
    fs.writeFileSync(
      path.join(tmp, 'prometheus.yml'),
      [
        'global: { scrape_interval: 1s, evaluation_interval: 1s }',
        'scrape_configs:',
        '  - job_name: dataengine',
        `    static_configs: [{ targets: ['127.0.0.1:${appPort}'] }]`,
        '  - job_name: dataengine-reviewers',
        '    metrics_path: /v1/metrics/reviewers',
        '    authorization: { credentials_file: reviewer-metrics.token }',
        `    static_configs: [{ targets: ['127.0.0.1:${appPort}'] }]`,
        '',
      ].join('\n'),
    );
    prometheus = spawn(
      'prometheus',
      [
        `--config.file=${path.join(tmp, 'prometheus.yml')}`,
        `--storage.tsdb.path=${path.join(tmp, 'data')}`,
        `--web.listen-address=127.0.0.1:${promPort}`,
        '--log.level=warn',
      ],
      { stdio: 'ignore' },
    );
    promUrl = `http://127.0.0.1:${promPort}`;
    // Enough scrapes that rates over the panels' windows have two samples.
    await eventually(
      async () => {
        const r = await (await fetch(`${promUrl}/api/v1/query?query=count_over_time(up[1m])`)).json();
        return Number(r.data?.result?.[0]?.value?.[1] ?? 0) >= 6;
      },
      60_000,
      'six scrapes',
    );
    // More traffic between scrapes, so rates are not all zero.
    await p.app.request('/v1/box-predictions', {
      method: 'POST',
      headers: reviewer,
      body: JSON.stringify({ frameId: again.frame.id, region: { x1: 10, y1: 10, x2: 60, y2: 50 } }),
    });
    // Until Prometheus has scraped that traffic, so a rate over the last minute is not zero.
    await eventually(
      async () => {
        const r = await (await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent('sum(increase(dataengine_box_assist_seconds_count[1m]))')}`)).json();
        return Number(r.data?.result?.[0]?.value?.[1] ?? 0) > 0;
      },
      30_000,
      'the second box assist scraped',
    );
  });

  afterAll(async () => {
    prometheus?.kill('SIGTERM');
    await new Promise((r) => server?.close(r));
    await stopStream(p, 'obs');
    await workers?.shutdown();
    await connection?.close();
    await p?.close();
    await handle?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('runs every panel query and gets series back', async () => {
    const queries: { dashboard: string; panel: string; expr: string }[] = [];
    for (const file of fs.readdirSync(path.join(dir, 'grafana'))) {
      const d = JSON.parse(fs.readFileSync(path.join(dir, 'grafana', file), 'utf8'));
      for (const panel of d.panels ?? []) for (const t of panel.targets ?? []) if (t.expr) queries.push({ dashboard: file, panel: panel.title, expr: t.expr });
    }
    expect(queries.length).toBeGreaterThan(30);
    const empty: string[] = [];
    for (const q of queries) {
      const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(q.expr.replaceAll('$__rate_interval', '1m'))}`);
      const body = await res.json();
      expect(body.status, `${q.dashboard} / ${q.panel}: ${q.expr} -> ${JSON.stringify(body.error)}`).toBe('success');
      if (!body.data.result.length) empty.push(`${q.dashboard} / ${q.panel}: ${q.expr}`);
    }
    expect(empty).toEqual([]);
    console.log(`checked ${queries.length} dashboard queries against Prometheus`);
  });
});

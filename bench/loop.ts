// The whole loop (ingest -> Temporal streamLoop -> scoring activity -> routed tasks) against
// bare onnxruntime inference of the same model at the same batch size and threads.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { count, eq } from 'drizzle-orm';
import { config, repoRoot } from '../config.ts';
import { openVectorIndex } from '../storage/open-vector-index.ts';
import { TemporalLoopControl } from '../control/loop-control.ts';
import type { DbHandle } from '../db/client.ts';
import { frameScores, reviewTasks } from '../db/schema.ts';
import { createStream } from '../db/streams.ts';
import { ingestFrame } from '../ingest/ingest-frame.ts';
import { ModelCache } from '../models/model-cache.ts';
import { registerModel, setProduction } from '../models/registry.ts';
import { recordBatch } from '../observability/batch-metrics.ts';
import { registry } from '../observability/metrics.ts';
import { LocalBlobStore } from '../storage/blob-store.ts';
import { startWorkers } from '../workers/start-workers.ts';
import { driftWorkflowId, streamWorkflowId } from '../workflows/shared.ts';
import { ownCpu, postgresCpu, temporalCpu } from './cpu.ts';
import { table } from './stats.ts';

/** `baseline`: the detector bench's figures at batch 16 (frames/s bare and with decoding, and the CPU per frame of the latter). */
export async function benchLoop(handle: DbHandle, database: string, temporalAddress: string, frames: Buffer[], baseline: Record<string, number>) {
  const bareFps16 = baseline.batch16Bare;
  const decodeRunFps16 = baseline.batch16DecodeRun;
  // Ids of their own, so a run on a Postgres that ran the bench before starts clean.
  const id = `bench-${Date.now().toString(36)}`;
  // Stage timings are read back from the metrics registry, which an earlier run filled too.
  registry.getSingleMetric('dataengine_batch_stage_seconds')?.reset();
  const storeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-store-'));
  const store = new LocalBlobStore(storeDir);
  const bytes = fs.readFileSync(path.join(repoRoot, 'models/seed/detection.onnx'));
  await registerModel(handle.db, store, { kind: 'detection', bytes, version: id });
  await setProduction(handle.db, 'detection', id, { triggeredBy: 'bench' });
  const connection = await Connection.connect({ address: temporalAddress });
  const client = new Client({ connection });
  const queue = `bench-scoring-${Date.now()}`;
  const loop = new TemporalLoopControl(client, { batchSize: 16, maxWaitMs: 500, taskQueue: queue, controlQueue: `bench-control-${Date.now()}` });
  const models = new ModelCache(store, { intraOpThreads: 2, minScore: 0.1 });
  const native = await NativeConnection.connect({ address: temporalAddress });
  const workers = await startWorkers({
    connection: native,
    namespace: 'default',
    db: handle.db,
    store,
    detectors: models,
    vectorIndex: openVectorIndex(handle.db, config),
    scoringQueue: queue,
    controlQueue: `bench-control-${Date.now()}`,
    idleWaitMs: 1000,
  });
  await models.warm('detection', id);
  await createStream(handle.db, { id, name: id, createdBy: 'bench' });
  const n = frames.length;
  console.log(`loop bench: ingesting ${n} frames`);
  const started = performance.now();
  let unique = 0;
  for (const [i, f] of frames.entries()) {
    const r = await ingestFrame(
      { db: handle.db, store, maxFrameBytes: 1e7, maxFramePixels: 4e7 },
      { streamId: id, cameraId: `cam-${i % 4}`, capturedAt: new Date(), contentType: 'image/png', bytes: f, source: 'http' },
    );
    if (r.created) unique++;
  }
  const ingestMs = performance.now() - started;
  // The loop starts once every frame is in, so its rate is the loop's own, not ingestion's.
  const loopStarted = performance.now();
  const cpuBefore = { own: ownCpu(), postgres: postgresCpu(), temporal: temporalCpu() };
  await loop.ensureLoop(id);
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    const [{ n: scored }] = await handle.db.select({ n: count() }).from(frameScores).where(eq(frameScores.streamId, id));
    if (scored >= unique) break;
    if (Date.now() > deadline)
      throw new Error(
        `loop bench: only ${scored} of ${unique} frames scored after 10 minutes; loop status ${JSON.stringify(await loop.status(id).catch((e) => String(e)))}`,
      );
    await new Promise((r) => setTimeout(r, 50));
  }
  const totalMs = performance.now() - loopStarted;
  const fps = unique / (totalMs / 1000);
  // CPU per frame: this process (main thread, inference thread, onnxruntime, libvips; PGlite
  // too), the Postgres server when there is one, and the Temporal server.
  const cpuMs = {
    own: ((ownCpu() - cpuBefore.own) * 1000) / unique,
    postgres: ((postgresCpu() - cpuBefore.postgres) * 1000) / unique,
    temporal: ((temporalCpu() - cpuBefore.temporal) * 1000) / unique,
  };
  const machineCpuMs = cpuMs.own + cpuMs.postgres + cpuMs.temporal;
  const [{ n: tasks }] = await handle.db.select({ n: count() }).from(reviewTasks).where(eq(reviewTasks.streamId, id));
  const status = await loop.status(id);
  const desc = await client.workflow.getHandle(streamWorkflowId(id)).describe();
  const eventsPer1000 = (desc.historyLength / status!.totals.framesScored) * 1000;
  const history = await client.workflow.getHandle(streamWorkflowId(id)).fetchHistory();
  // Calls that scored frames (a caught-up loop's calls that waited for frames in vain do not count).
  const scoringCalls = (history.events ?? []).filter((e) => {
    const payload = e.activityTaskCompletedEventAttributes?.result?.payloads?.[0];
    return payload?.data && ((JSON.parse(Buffer.from(payload.data).toString()) as { framesScored?: number }).framesScored ?? 0) > 0;
  }).length;
  const stages = (await registry.getSingleMetric('dataengine_batch_stage_seconds')!.get()).values.filter((v) =>
    (v as { metricName?: string }).metricName?.endsWith('_sum'),
  );
  const stageMs = Object.fromEntries(stages.map((v) => [v.labels.stage as string, (v.value * 1000) / (status!.totals.batches || 1)]));

  table(
    `Whole loop on ${database}, ${unique} distinct frames posted back to back, batch 16, 2 threads`,
    ['measure', 'value'],
    [
      ['loop frames/s (loop start to last frame scored and routed)', fps],
      ['bare session.run frames/s at batch 16', bareFps16],
      ['ratio loop / bare', fps / bareFps16],
      // The baseline: decoding the same frames plus bare session.run, in one process.
      ['decode + bare session.run frames/s at batch 16', decodeRunFps16],
      ['ratio loop / (decode + bare)', fps / decodeRunFps16],
      // Where the cores went: the loop is CPU-bound when the cores are busy throughout, and then
      // its rate can reach the baseline's only as far as the baseline's CPU per frame is of its own.
      ['CPU ms per frame: this process (inference, decoding, routing, storing)', cpuMs.own],
      ['CPU ms per frame: Postgres server', cpuMs.postgres],
      ['CPU ms per frame: Temporal server', cpuMs.temporal],
      [`cores kept busy during the loop (of ${os.cpus().length})`, (machineCpuMs * unique) / totalMs],
      ['CPU ms per frame: decode + bare session.run', baseline.batch16DecodeRunCpuMs],
      ['ratio CPU per frame (decode + bare) / loop', baseline.batch16DecodeRunCpuMs / machineCpuMs],
      ['ingestion frames/s (HTTP-less, one client, full decode check)', unique / (ingestMs / 1000)],
      ['tasks routed', tasks],
      ['batches', status!.totals.batches],
      ...Object.entries(stageMs).map(([k, v]) => [`mean ms per batch: ${k}`, v] as [string, number]),
      // Routing (the ranked selection's pgvector distances, pacing and the decision) against the
      // whole batch: the selection may cost at most 5% of it.
      ['route share of batch time %', (100 * (stageMs.route ?? 0)) / Object.values(stageMs).reduce((a, b) => a + b, 0)],
      ['history events per 1,000 frames', eventsPer1000],
      ['batches per scoring call that scored frames', status!.totals.batches / scoringCalls],
      // Continue-as-new is suggested at 4,096 events: how long a loop at this rate runs before it.
      ['frames until continue-as-new', 4096 / (eventsPer1000 / 1000)],
      ['minutes until continue-as-new at this rate', 4096 / (eventsPer1000 / 1000) / fps / 60],
    ],
  );

  // Metrics cost: recording one 16-frame batch of 10 detections each, vs the batch's inference.
  const report = {
    framesScored: 16,
    predictions: 160,
    tasksRouted: 2,
    streamId: 'bench',
    modelVersion: 'bench',
    policyVersion: 1,
    timings: { decode: 1, preprocess: 1, inference: 1, persist: 1 },
    frames: Array.from({ length: 16 }, (_, i) => ({
      frameId: `f${i}`,
      cameraId: 'c',
      capturedAt: new Date(0),
      embedding: [],
      detections: Array.from({ length: 10 }, (_, r) => ({ rank: r, className: 'vehicle', score: 0.5, x1: 0, y1: 0, x2: 1, y2: 1, embedding: [] })),
    })),
    tasks: [
      { frameId: 'f0', reason: 'band', className: 'vehicle' },
      { frameId: 'f1', reason: 'random', className: null },
    ],
    failures: [],
  };
  const reps = 2000;
  const t = performance.now();
  for (let i = 0; i < reps; i++) recordBatch(report);
  const recordMs = (performance.now() - t) / reps;
  const batchMs = (16 / bareFps16) * 1000;
  table(
    'Metrics cost per 16-frame batch',
    ['measure', 'value'],
    [
      ['recordBatch (ms)', recordMs],
      ['batch inference (ms)', batchMs],
      ['overhead %', (recordMs / batchMs) * 100],
    ],
  );

  await client.workflow
    .getHandle(streamWorkflowId(id))
    .terminate('bench over')
    .catch(() => undefined);
  await client.workflow
    .getHandle(driftWorkflowId(id))
    .terminate('bench over')
    .catch(() => undefined);
  await workers.shutdown();
  await native.close();
  await connection.close();
  await models.close();
  fs.rmSync(storeDir, { recursive: true, force: true });
  return { fps, ratio: fps / bareFps16, eventsPer1000 };
}

// One process's share of the data engine: the database, the blob store, the Temporal client,
// the model cache, and whichever roles the process plays: the TypeScript workers, the HTTP
// API, the directory source. `make up` runs all roles in one process (PGlite is an in-process
// database); with Postgres, `npm run worker` and `npm run api` run them apart, several of each.
import http from 'node:http';
import { serve, type ServerType } from '@hono/node-server';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { allMetricsText, installTemporalRuntime } from '../observability/temporal-runtime.ts';
import { createRetrainActivities } from '../activities/retrain.ts';
import { createApp } from '../api/app.ts';
import type { ApiDeps } from '../api/env.ts';
import { config, goldSettings } from '../config.ts';
import { TemporalLoopControl } from '../control/loop-control.ts';
import { openDb, type DbHandle } from '../db/client.ts';
import { checkPgvector } from '../db/pgvector-index.ts';
import { startDirectorySource } from '../ingest/directory-source.ts';
import { submitDroppedVideo } from '../ingest/submit-video.ts';
import { ModelCache } from '../models/model-cache.ts';
import { registeredArtifacts } from '../models/registry.ts';
import { logger } from '../observability/logger.ts';
import { registry } from '../observability/metrics.ts';
import { exposeDatabaseGauges } from '../observability/database-gauges.ts';
import { openBlobStore } from '../storage/open-blob-store.ts';
import { openVectorIndex } from '../storage/open-vector-index.ts';
import { startWorkers, type RunningWorkers } from './start-workers.ts';

export interface EngineOptions {
  temporalAddress?: string;
  worker: boolean;
  api: boolean;
  /** An already open database (tests); otherwise DATABASE_URL or PGLITE_DIR. */
  dbHandle?: DbHandle;
  apiPort?: number;
}

export interface Engine {
  deps: ApiDeps;
  apiUrl: string | null;
  workers: RunningWorkers | null;
  stop(): Promise<void>;
}

function listen(server: ServerType): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('listening', () => resolve((server.address() as { port: number }).port));
    server.once('error', reject);
  });
}

export async function startEngine(opts: EngineOptions): Promise<Engine> {
  const stops: (() => Promise<unknown>)[] = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch((err) => logger.error({ err }, 'shutdown step failed'));
  };
  try {
    const address = opts.temporalAddress ?? config.TEMPORAL_ADDRESS;
    const handle = opts.dbHandle ?? (await openDb({ databaseUrl: config.DATABASE_URL, pgliteDir: config.PGLITE_DIR }));
    if (!opts.dbHandle) stops.push(() => handle.close());
    // The object index is an HNSW index: say so at start when the extension is too old for one.
    const pgvector = await checkPgvector(handle.db);
    if (pgvector.warning) logger.warn({ pgvector: pgvector.version }, pgvector.warning);
    const store = openBlobStore(config);
    logger.info({ store: store.location }, 'blob store');
    const connection = await Connection.connect({ address });
    stops.push(() => connection.close());
    const client = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
    const loopControl = new TemporalLoopControl(client, {
      batchSize: config.BATCH_SIZE,
      maxWaitMs: config.BATCH_MAX_WAIT_MS,
      idlePollMs: config.LOOP_IDLE_POLL_MS,
    });
    const models = new ModelCache(store, {
      intraOpThreads: config.ORT_INTRA_OP_THREADS,
      inferenceThreads: config.ORT_INFERENCE_THREADS,
      boxMaxBatch: config.BOX_ASSIST_MAX_BATCH,
      minScore: config.PREDICTION_MIN_SCORE,
      registeredArtifact: registeredArtifacts(handle.db, config.DETECTOR_PRECISION),
    });
    stops.push(() => models.close());
    const vectorIndex = openVectorIndex(handle.db, config);
    const deps: ApiDeps = { db: handle.db, store, config, loopControl, models, vectorIndex, temporal: client };

    let workers: RunningWorkers | null = null;
    if (opts.worker) {
      // The SDK logs every worker state change at INFO; our own logs say what matters.
      installTemporalRuntime({
        sdkMetricsPort: config.WORKER_METRICS_PORT + 1,
        logLevel: config.LOG_LEVEL === 'debug' || config.LOG_LEVEL === 'trace' ? 'DEBUG' : 'WARN',
      });
      const native = await NativeConnection.connect({ address });
      stops.push(() => native.close());
      const retrain = createRetrainActivities({
        db: handle.db,
        store,
        loopControl,
        warm: (kind, v) => models.warm(kind, v),
        replayRatio: config.RETRAIN_REPLAY_RATIO,
        replayMin: config.RETRAIN_REPLAY_MIN,
        propagatedLabels: config.RETRAIN_PROPAGATED_LABELS === 'include',
        reviewerQuality: { minAccuracy: config.RETRAIN_MIN_REVIEWER_ACCURACY, minAnswers: config.GOLD_MIN_ANSWERS },
      });
      workers = await startWorkers({
        connection: native,
        namespace: config.TEMPORAL_NAMESPACE,
        db: handle.db,
        store,
        detectors: models,
        vectorIndex,
        trackMaxGapMs: config.TRACK_MAX_GAP_SECONDS * 1000,
        controlActivities: retrain,
        wakeLoop: (streamId) => loopControl.wake(streamId),
      });
      stops.push(() => workers!.shutdown());
      workers.done.catch((err) => logger.error({ err }, 'a worker stopped with an error'));
      if (!opts.api) {
        // A worker-only process still exposes its metrics for Prometheus, and /healthz for
        // an orchestrator's probes: healthy while every worker of the process runs.
        const running = workers;
        const metricsServer = http.createServer(async (req, res) => {
          if (req.url === '/healthz') {
            const states = running.workers.map((w) => w.getState());
            const ok = states.every((s) => s === 'RUNNING');
            res.writeHead(ok ? 200 : 503, { 'Content-Type': 'application/json' });
            res.end(JSON.stringify({ status: ok ? 'ok' : 'unavailable', workers: states }));
            return;
          }
          res.writeHead(200, { 'Content-Type': registry.contentType });
          res.end(await allMetricsText());
        });
        metricsServer.listen(config.WORKER_METRICS_PORT, config.API_HOST);
        stops.push(() => new Promise((r) => metricsServer.close(() => r(undefined))));
      }
    }

    let apiUrl: string | null = null;
    if (opts.api) {
      exposeDatabaseGauges(handle.db, goldSettings(config));
      const app = createApp(deps, { onError: (err) => logger.error({ err }, 'request failed') });
      const server = serve({ fetch: app.fetch, hostname: config.API_HOST, port: opts.apiPort ?? config.API_PORT });
      const port = await listen(server);
      apiUrl = `http://${config.API_HOST}:${port}`;
      stops.push(() => new Promise((r) => server.close(() => r(undefined))));
    }
    if (config.INGEST_DIR && opts.api) {
      const source = startDirectorySource({
        db: handle.db,
        store,
        dir: config.INGEST_DIR,
        maxFrameBytes: config.MAX_FRAME_BYTES,
        maxFramePixels: config.MAX_FRAME_PIXELS,
        wakeLoop: (streamId) => loopControl.wake(streamId),
        onError: (err, file) => logger.warn({ err, file }, 'directory source'),
        submitVideo: submitDroppedVideo({ db: handle.db, store, temporal: client, config }),
      });
      stops.push(() => source.stop());
    }
    return { deps, apiUrl, workers, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

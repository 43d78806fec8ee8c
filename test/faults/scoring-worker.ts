// A scoring worker in a process of its own, wired as `npm run worker` wires one, on the task
// queues a test names, so a fault test can SIGKILL it mid-batch. Prints "ready" once polling.
// Usage: tsx test/faults/scoring-worker.ts <temporal address> <scoring queue> <control queue> <bundle file> [ingest queue]
import fs from 'node:fs';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { config } from '../../config.ts';
import { openVectorIndex } from '../../storage/open-vector-index.ts';
import { openDb } from '../../db/client.ts';
import { ModelCache } from '../../models/model-cache.ts';
import { openBlobStore } from '../../storage/open-blob-store.ts';
import { startWorkers } from '../../workers/start-workers.ts';

const [address, scoringQueue, controlQueue, bundleFile, ingestQueue] = process.argv.slice(2);
Runtime.install({ logger: new DefaultLogger('ERROR') });
const handle = await openDb({ databaseUrl: process.env.DATABASE_URL, migrate: false });
const store = openBlobStore(config);
const models = new ModelCache(store, { intraOpThreads: 1, minScore: config.PREDICTION_MIN_SCORE });
const connection = await NativeConnection.connect({ address });
const workers = await startWorkers({
  connection,
  namespace: 'default',
  db: handle.db,
  store,
  detectors: models,
  vectorIndex: openVectorIndex(handle.db, config),
  workflowBundle: { code: fs.readFileSync(bundleFile, 'utf8') },
  scoringQueue,
  controlQueue,
  ingestQueue,
  idleWaitMs: 1000,
});
console.log('ready');
await workers.done;

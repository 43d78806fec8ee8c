// Scale-out: 1, 2 and 3 worker processes (`npm run worker`, scoring queue only) scoring the same
// backlog (20 streams x 48 frames, the seed detector) on one Postgres and one Temporal server,
// with the CPU each part used, normalised per frame, and what a frame costs the database and
// Temporal. docs/scaling.md builds its model on these figures.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { count, inArray, sql } from 'drizzle-orm';
import { repoRoot } from '../config.ts';
import { TemporalLoopControl } from '../control/loop-control.ts';
import { frameScores } from '../db/schema.ts';
import { createStream } from '../db/streams.ts';
import { ingestFrame } from '../ingest/ingest-frame.ts';
import { registerModel, setProduction } from '../models/registry.ts';
import { LocalBlobStore } from '../storage/blob-store.ts';
import { createTestDb } from '../test/helpers/db.ts';
import { startOwnPostgres } from '../test/helpers/postgres.ts';
import { driftWorkflowId, streamWorkflowId } from '../workflows/shared.ts';
import { cpuSeconds, postgresCpu, temporalCpu } from './cpu.ts';
import { table } from './stats.ts';
import { freePort } from '../test/helpers/ports.ts';

const STREAMS = 20;

/** Peak resident memory of a process so far (VmHWM), MiB. */
function peakRssMiB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}
// Three full batches of 16 per stream: no batch waits BATCH_MAX_WAIT_MS for stragglers.
const FRAMES_PER_STREAM = 48;

async function startWorker(env: NodeJS.ProcessEnv): Promise<ChildProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'worker.ts')], {
    env: { ...env, WORKER_METRICS_PORT: String(port) },
    cwd: repoRoot,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`worker exited with ${child.exitCode}`);
    const ok = await fetch(`http://127.0.0.1:${port}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return child;
    if (Date.now() > deadline) throw new Error('worker did not start in 2 minutes');
    await new Promise((r) => setTimeout(r, 250));
  }
}

export async function benchScale(frames: Buffer[], temporalAddress: string) {
  const own = process.env.DATABASE_URL ? null : await startOwnPostgres();
  const db = await createTestDb(process.env.DATABASE_URL ?? own!.url);
  const storeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-scale-'));
  const store = new LocalBlobStore(storeDir);
  const connection = await Connection.connect({ address: temporalAddress });
  const client = new Client({ connection });
  const loops = new TemporalLoopControl(client, { batchSize: 16, maxWaitMs: 2000 });
  await registerModel(db.db, store, { kind: 'detection', bytes: fs.readFileSync(path.join(repoRoot, 'models/seed/detection.onnx')), version: 'seed-scale' });
  await setProduction(db.db, 'detection', 'seed-scale', { triggeredBy: 'bench' });
  const env = {
    ...process.env,
    DATABASE_URL: db.url!,
    TEMPORAL_ADDRESS: temporalAddress,
    STORE_DIR: storeDir,
    WORKER_QUEUES: 'scoring',
    // A stream whose backlog is done lets its slot go at once instead of after the default 2 s
    // wait for more frames, which would be measured as time, not work.
    LOOP_IDLE_WAIT_MS: '200',
    LOG_LEVEL: 'error',
  };
  const images = frames.slice(0, FRAMES_PER_STREAM);
  const rows: (string | number)[][] = [];
  const costs: (string | number)[][] = [];
  const dbStat = async () => {
    // Statistics are sent to pg_stat_database at transaction ends; a snapshot clears the cache.
    await db.db.execute(sql`select pg_stat_clear_snapshot()`);
    const r = await db.db.execute(
      sql`select pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::text as wal, (select tup_inserted from pg_stat_database where datname = current_database())::text as inserted, pg_database_size(current_database())::text as size`,
    );
    const [row] = (r as { rows: { wal: string; inserted: string; size: string }[] }).rows;
    return { wal: Number(row.wal), inserted: Number(row.inserted), size: Number(row.size) };
  };
  try {
    // Worker processes and scoring slots per process: 1-3 workers at the default 2 slots, then
    // one worker at 1 and 4 slots (what SCORING_SLOTS defaults to is chosen from these).
    const runs = [
      { workers: 1, slots: 2 },
      { workers: 2, slots: 2 },
      { workers: 3, slots: 2 },
      { workers: 1, slots: 1 },
      { workers: 1, slots: 4 },
      // Memory with many streams: one worker, 50 streams.
      { workers: 1, slots: 2, streams: 50 },
    ];
    for (const { workers, slots, streams = STREAMS } of runs) {
      const ids = Array.from({ length: streams }, (_, i) => `scale-${workers}w${slots}s-${i}-${Date.now().toString(36)}`);
      for (const id of ids) {
        await createStream(db.db, { id, name: id, createdBy: 'bench' });
        for (const [i, bytes] of images.entries()) {
          await ingestFrame(
            { db: db.db, store, maxFrameBytes: 1e7, maxFramePixels: 4e7 },
            { streamId: id, cameraId: `cam-${i % 4}`, capturedAt: new Date(), contentType: 'image/png', bytes, source: 'http' },
          );
        }
      }
      const total = streams * images.length;
      const procs: ChildProcess[] = [];
      for (let w = 0; w < workers; w++) procs.push(await startWorker({ ...env, SCORING_SLOTS: String(slots) }));
      const before = { ...(await dbStat()), pg: postgresCpu(), temporal: temporalCpu(), workers: procs.map((p) => cpuSeconds(p.pid!)) };
      const started = performance.now();
      for (const id of ids) await loops.ensureLoop(id);
      for (;;) {
        const [{ n }] = await db.db.select({ n: count() }).from(frameScores).where(inArray(frameScores.streamId, ids));
        if (n >= total) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const seconds = (performance.now() - started) / 1000;
      const after = { ...(await dbStat()), pg: postgresCpu(), temporal: temporalCpu(), workers: procs.map((p) => cpuSeconds(p.pid!)) };
      const peakRss = Math.max(...procs.map((p) => peakRssMiB(p.pid!)));
      let events = 0;
      for (const id of ids) {
        const history = await client.workflow.getHandle(streamWorkflowId(id)).fetchHistory();
        events += history.events?.length ?? 0;
      }
      for (const id of ids) {
        for (const wf of [streamWorkflowId(id), driftWorkflowId(id)]) {
          await client.workflow
            .getHandle(wf)
            .terminate('bench over')
            .catch(() => undefined);
        }
      }
      for (const p of procs) p.kill('SIGTERM');
      await Promise.all(procs.map((p) => new Promise((r) => (p.exitCode !== null ? r(null) : p.once('exit', r)))));
      const workerCpu = after.workers.reduce((s, v, i) => s + v - before.workers[i], 0);
      const pgCpu = after.pg - before.pg;
      const temporalCpuS = after.temporal - before.temporal;
      rows.push([
        workers,
        slots,
        streams,
        total / seconds,
        (1000 * workerCpu) / total,
        (1000 * pgCpu) / total,
        (1000 * temporalCpuS) / total,
        total / workerCpu,
        (workerCpu + pgCpu + temporalCpuS) / (seconds * os.cpus().length),
        peakRss,
      ]);
      if (workers === 1 && slots === 2 && streams === STREAMS) {
        costs.push(
          ['WAL bytes written', (after.wal - before.wal) / total],
          ['rows inserted', (after.inserted - before.inserted) / total],
          ['database growth, bytes (tables and indexes, the HNSW index included)', (after.size - before.size) / total],
          ['Temporal history events (stream loops, backlog)', events / total],
        );
      }
    }
  } finally {
    await connection.close();
    await db.close();
    await own?.close();
    fs.rmSync(storeDir, { recursive: true, force: true });
  }
  table(
    `Scale-out: streams of ${FRAMES_PER_STREAM} waiting frames, scored by N worker processes (scoring queue, batch 16, 2 ORT threads, SCORING_SLOTS calls at once each), one Postgres, one Temporal dev server, ${os.cpus().length} cores`,
    [
      'workers',
      'slots each',
      'streams',
      'frames/s',
      'worker CPU ms/frame',
      'Postgres CPU ms/frame',
      'Temporal CPU ms/frame',
      'frames per worker CPU-second',
      'machine busy (share of all cores)',
      'peak RSS per worker (MiB)',
    ],
    rows,
  );
  table('What one scored frame costs (1 worker run)', ['measure', 'per frame'], costs);
}

// Beyond one machine: the platform as separate processes, started as a user starts them
// (`npm run api`, `npm run worker`), two APIs and three workers on one Temporal server and one
// Postgres, twenty streams fed through both APIs, and one worker SIGKILLed mid-run. Every frame
// must be scored exactly once and every stream must finish; the survivors share the work.
// Postgres only (DATABASE_URL in CI, a server of the test's own otherwise): PGlite is one
// in-process database that a second process must not open.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { count, eq, sql } from 'drizzle-orm';
import { temporal } from '@temporalio/proto';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { repoRoot } from '../../config.ts';
import { frames, frameScores, reviewTasks, streams } from '../../db/schema.ts';
import { createUser } from '../../db/users.ts';
import { registerModel, setProduction } from '../../models/registry.ts';
import { LocalBlobStore } from '../../storage/blob-store.ts';
import { streamWorkflowId } from '../../workflows/shared.ts';
import { createTestDb, type TestDb } from '../helpers/db.ts';
import { sampleFrames } from '../helpers/platform.ts';
import { startOwnPostgres, type OwnPostgres } from '../helpers/postgres.ts';
import { eventually } from '../helpers/temporal.ts';
import { freePort } from '../helpers/ports.ts';

const STREAMS = 20;
const FRAMES_PER_STREAM = 12;
// Every frame gets exactly one whole-frame task, so tasks count frames.
const ONE_TASK_PER_FRAME = { band: { low: 0.999, high: 1 }, randomRate: 1, dailyBudget: null, diversityMinDistance: 0, maxTasksPerFrame: 1 };

let pg: OwnPostgres | null = null;
let db: TestDb;
let client: Client;
let connection: Connection;
const children: ChildProcess[] = [];
const storeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'scale-store-'));

beforeAll(async () => {
  if (!process.env.DATABASE_URL) pg = await startOwnPostgres();
  db = await createTestDb(process.env.DATABASE_URL ?? pg!.url);
  connection = await Connection.connect({ address: inject('temporalAddress') });
  client = new Client({ connection });
}, 180_000);

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  for (let i = 0; i < STREAMS; i++) {
    await client?.workflow
      .getHandle(streamWorkflowId(streamIds[i]))
      .terminate('test over')
      .catch(() => undefined);
  }
  await connection?.close();
  await db?.close();
  await pg?.close();
  fs.rmSync(storeDir, { recursive: true, force: true });
});

const tag = Math.random().toString(36).slice(2, 8);
const streamIds = Array.from({ length: STREAMS }, (_, i) => `scale-${tag}-${i}`);

/** `npm run api` or `npm run worker`, as their scripts run them, on this test's database and store. */
async function startProcess(kind: 'api' | 'worker', extraEnv: Record<string, string> = {}): Promise<{ child: ChildProcess; url: string }> {
  const port = await freePort();
  // A worker-only process serves /metrics on WORKER_METRICS_PORT (the SDK's exporter takes the next port).
  const env = {
    ...process.env,
    DATABASE_URL: db.url!,
    TEMPORAL_ADDRESS: inject('temporalAddress'),
    STORE_DIR: storeDir,
    LOG_LEVEL: 'error',
    PREDICTION_MIN_SCORE: '0.01',
    ...(kind === 'api' ? { API_PORT: String(port) } : { WORKER_METRICS_PORT: String(port) }),
    ...extraEnv,
  };
  // node itself (not the tsx wrapper, which runs the script in a child it would leave behind).
  const script = kind === 'api' ? path.join(repoRoot, 'api', 'server.ts') : path.join(repoRoot, 'worker.ts');
  const child = spawn(process.execPath, ['--import', 'tsx', script], { env, cwd: repoRoot, stdio: ['ignore', 'ignore', 'inherit'] });
  children.push(child);
  const url = `http://127.0.0.1:${port}`;
  await eventually(
    async () => {
      if (child.exitCode !== null) throw new Error(`${kind} exited with ${child.exitCode}`);
      return fetch(`${url}/healthz`).then(
        (r) => r.ok,
        () => false,
      );
    },
    120_000,
    `${kind} process up`,
  );
  return { child, url };
}

const startedActivities = async (workflowId: string) => {
  const { raw } = await client.workflow.getHandle(workflowId).describe();
  return (raw.pendingActivities ?? []).filter(
    (a) => a.state === temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED && a.lastWorkerIdentity,
  );
};

describe('the platform as separate processes', () => {
  it('two APIs and three workers on one Postgres: a worker SIGKILLed mid-run, every frame of twenty streams scored exactly once', async () => {
    // What an operator sets up once: the models in the shared store, a lead and a camera.
    const store = new LocalBlobStore(storeDir);
    for (const kind of ['detection', 'box'] as const) {
      await registerModel(db.db, store, { kind, bytes: fs.readFileSync(path.join(inject('tinyModelsDir'), `${kind}.onnx`)), version: `tiny-${kind}` });
      await setProduction(db.db, kind, `tiny-${kind}`, { triggeredBy: 'test' });
    }
    const lead = (await createUser(db.db, { name: 'lead', role: 'lead' })).token;
    const camera = (await createUser(db.db, { name: 'camera', role: 'camera', streams: streamIds })).token;

    const apis = [await startProcess('api'), await startProcess('api')];
    // The third serves the scoring queue only (WORKER_QUEUES), as a scoring-only deployment does.
    const workers = [await startProcess('worker'), await startProcess('worker'), await startProcess('worker', { WORKER_QUEUES: 'scoring' })];
    const health = (await (await fetch(`${workers[2].url}/healthz`)).json()) as { status: string; workers: string[] };
    expect(health).toEqual({ status: 'ok', workers: ['RUNNING'] });
    const api = (i: number) => apis[i % apis.length].url;
    const send = (i: number, route: string, init: RequestInit & { token: string }) =>
      fetch(`${api(i)}${route}`, { ...init, headers: { Authorization: `Bearer ${init.token}`, ...(init.headers as Record<string, string>) } });

    for (const [i, id] of streamIds.entries()) {
      const json = { 'Content-Type': 'application/json' };
      expect((await send(i, '/v1/streams', { method: 'POST', token: lead, headers: json, body: JSON.stringify({ id }) })).status).toBe(201);
      expect(
        (await send(i + 1, `/v1/streams/${id}/policy`, { method: 'PUT', token: lead, headers: json, body: JSON.stringify(ONE_TASK_PER_FRAME) })).status,
      ).toBe(201);
    }
    // Cameras: every stream gets its frames, alternately through the two APIs, in rounds.
    const samples = sampleFrames();
    const sendRound = async (round: number) => {
      await Promise.all(
        streamIds.map(async (id, s) => {
          const sample = samples[(round + s) % samples.length];
          const body = new Uint8Array(Buffer.concat([fs.readFileSync(sample.file), Buffer.from(`${id}#${round}`)]));
          const res = await send(round + s, `/v1/streams/${id}/frames?cameraId=${sample.cameraId}`, {
            method: 'POST',
            token: camera,
            headers: { 'Content-Type': 'image/png' },
            body,
          });
          expect(res.status).toBe(201);
        }),
      );
    };
    const scored = async () => (await db.db.select({ n: count() }).from(frameScores))[0].n;
    for (let round = 0; round < FRAMES_PER_STREAM / 2; round++) await sendRound(round);

    // Kill the first worker while it runs a scoring call, so that attempt dies with it.
    await eventually(async () => (await scored()) >= STREAMS, 60_000, 'the first frames scored');
    const victim = workers[0].child;
    const victimIdentity = `${victim.pid}@`;
    await eventually(
      async () => {
        for (const id of streamIds)
          if ((await startedActivities(streamWorkflowId(id))).some((a) => a.lastWorkerIdentity!.startsWith(victimIdentity))) return true;
        return false;
      },
      30_000,
      'a scoring call running on the first worker',
    );
    victim.kill('SIGKILL');
    for (let round = FRAMES_PER_STREAM / 2; round < FRAMES_PER_STREAM; round++) await sendRound(round);

    // The lost call's heartbeat times out (30 s) and it runs again on a survivor.
    const total = STREAMS * FRAMES_PER_STREAM;
    await eventually(async () => (await scored()) === total, 150_000, 'every frame scored');

    for (const id of streamIds) {
      const [f] = await db.db.select({ n: count() }).from(frames).where(eq(frames.streamId, id));
      const ids = await db.db.select({ frameId: frameScores.frameId }).from(frameScores).where(eq(frameScores.streamId, id));
      const tasks = await db.db.select({ frameId: reviewTasks.frameId }).from(reviewTasks).where(eq(reviewTasks.streamId, id));
      const [stream] = await db.db.select().from(streams).where(eq(streams.id, id));
      const [maxSeq] = await db.db
        .select({ s: sql<number>`max(${frames.seq})` })
        .from(frames)
        .where(eq(frames.streamId, id));
      expect(f.n).toBe(FRAMES_PER_STREAM);
      expect(ids).toHaveLength(FRAMES_PER_STREAM);
      expect(new Set(ids.map((r) => r.frameId)).size).toBe(FRAMES_PER_STREAM);
      expect(new Set(tasks.map((t) => t.frameId)).size).toBe(FRAMES_PER_STREAM);
      expect(tasks).toHaveLength(FRAMES_PER_STREAM);
      expect(Number(stream.scoredThroughSeq)).toBe(Number(maxSeq.s));
    }
    // All three workers took scoring calls: the two survivors and the one that died.
    const identities = new Set<string>();
    for (const id of streamIds) {
      const history = await client.workflow.getHandle(streamWorkflowId(id)).fetchHistory();
      for (const e of history.events ?? []) {
        const identity = e.activityTaskStartedEventAttributes?.identity;
        if (identity) identities.add(identity.split('@')[0]);
      }
    }
    expect([...identities].sort()).toEqual(workers.map((w) => String(w.child.pid)).sort());
    console.log(`scale-out: ${total} frames of ${STREAMS} streams through 2 APIs, scored by 3 workers (one killed): each once`);
    for (const w of [...workers.slice(1), ...apis]) w.child.kill('SIGTERM');
  }, 420_000);
});

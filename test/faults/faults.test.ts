// Fault injection: the platform loses a piece while frames flow, and must end with every
// ingested frame scored exactly once under one model version, and no prediction, task or label
// duplicated or lost. Real processes and servers throughout:
//   (a) the scoring worker, a process of its own, is SIGKILLed mid-stream; another takes over;
//   (b) the Temporal dev server (supervised as `make up` runs it) is killed with SIGKILL;
//   (c) the Postgres server is stopped at once (like a crash) and started again;
//   (d) 64 reviewers race with one-second leases that some let expire mid-review;
//   (e) a worker extracting a video's frames is SIGKILLed mid-video; another finishes it.
// (b) to (d) use a Postgres server of their own (started by scripts/postgres-up.sh), because
// stopping the suite's shared one would break the tests running beside them; (a) and (e) use
// DATABASE_URL when set (CI) and its own server otherwise. PGlite cannot serve here: it is one
// in-process database, and a second process must not open it.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { count, eq, sql } from 'drizzle-orm';
import { temporal } from '@temporalio/proto';
import { NativeConnection } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { config, goldSettings, repoRoot } from '../../config.ts';
import type { Db } from '../../db/client.ts';
import { claimNext, QueueError, submitDecision } from '../../db/queue.ts';
import { frames, frameScores, labels, predictions, reviewTasks, streams } from '../../db/schema.ts';
import { createUser } from '../../db/users.ts';
import { startTemporalDevServer } from '../../scripts/temporal-dev.ts';
import type { RunningWorkers } from '../../workers/start-workers.ts';
import { getVideo, videoSegmentsOf } from '../../db/videos.ts';
import { streamWorkflowId, videoWorkflowId } from '../../workflows/shared.ts';
import { makeVideo } from '../helpers/videos.ts';
import { createTestDb, type TestDb } from '../helpers/db.ts';
import { auth, createTestPlatform, sampleFrames, type TestPlatform, startPlatformWorkers, stopStream } from '../helpers/platform.ts';
import { startOwnPostgres, type OwnPostgres } from '../helpers/postgres.ts';
import { eventually, quietRuntime } from '../helpers/temporal.ts';
import { freePort } from '../helpers/ports.ts';

let pg: OwnPostgres;
beforeAll(async () => {
  pg = await startOwnPostgres();
}, 180_000);
afterAll(async () => pg?.close());

const json = (token: string) => auth(token, { 'Content-Type': 'application/json' });
// The tiny test detector is unsure of everything: a low floor keeps its detections, so the
// prediction counts below count something.
const MIN_SCORE = '0.01';
// Every frame gets exactly one whole-frame task (random rate 1, a band nothing falls into), so
// the expected number of tasks is known: one per scored frame.
const ONE_TASK_PER_FRAME = { band: { low: 0.999, high: 1 }, randomRate: 1, dailyBudget: null, diversityMinDistance: 0, maxTasksPerFrame: 1 };

/** A stream with a loop and its policy, created over the API as a lead would. */
async function createStream(p: TestPlatform, streamId: string) {
  expect((await p.app.request('/v1/streams', { method: 'POST', headers: json(p.tokens.lead), body: JSON.stringify({ id: streamId }) })).status).toBe(201);
  expect(
    (await p.app.request(`/v1/streams/${streamId}/policy`, { method: 'PUT', headers: json(p.tokens.lead), body: JSON.stringify(ONE_TASK_PER_FRAME) })).status,
  ).toBe(201);
}

/**
 * A camera sending `n` distinct frames at `fps`, retrying a frame whose upload fails (the API's
 * database may be down) as a camera client would. Resolves with the number stored.
 */
async function camera(p: TestPlatform, streamId: string, n: number, fps: number): Promise<number> {
  let stored = 0;
  for (let i = 0; i < n; i++) {
    const sample = sampleFrames()[i % sampleFrames().length];
    // Bytes after a PNG's end chunk are ignored by decoders: each upload is a new frame.
    const body = new Uint8Array(Buffer.concat([fs.readFileSync(sample.file), Buffer.from(`${streamId}#${i}`)]));
    for (let attempt = 0; ; attempt++) {
      const res = await Promise.resolve(
        p.app.request(`/v1/streams/${streamId}/frames?cameraId=${sample.cameraId}`, {
          method: 'POST',
          headers: auth(p.tokens.camera, { 'Content-Type': 'image/png' }),
          body,
        }),
      ).catch(() => null);
      if (res?.status === 201) {
        stored++;
        break;
      }
      if (attempt > 200) throw new Error(`frame ${i} not stored: ${res?.status}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    await new Promise((r) => setTimeout(r, 1000 / fps));
  }
  return stored;
}

const scoredCount = async (db: Db, streamId: string) => (await db.select({ n: count() }).from(frameScores).where(eq(frameScores.streamId, streamId)))[0].n;

/** The exactly-once invariants, with the counts they were checked on. */
async function exactlyOnce(db: Db, streamId: string, expectedFrames: number) {
  const [frameCount] = await db.select({ n: count() }).from(frames).where(eq(frames.streamId, streamId));
  const scores = await db
    .select({ frameId: frameScores.frameId, version: frameScores.modelVersion, detections: frameScores.numDetections })
    .from(frameScores)
    .where(eq(frameScores.streamId, streamId));
  const [preds] = await db.select({ n: count() }).from(predictions).innerJoin(frames, eq(frames.id, predictions.frameId)).where(eq(frames.streamId, streamId));
  const tasks = await db.select({ frameId: reviewTasks.frameId, reason: reviewTasks.reason }).from(reviewTasks).where(eq(reviewTasks.streamId, streamId));
  const [stream] = await db.select().from(streams).where(eq(streams.id, streamId));
  const [maxSeq] = await db
    .select({ s: sql<number>`max(${frames.seq})` })
    .from(frames)
    .where(eq(frames.streamId, streamId));
  expect(frameCount.n).toBe(expectedFrames);
  expect(scores.length).toBe(expectedFrames);
  expect(new Set(scores.map((s) => s.frameId)).size).toBe(expectedFrames);
  expect(new Set(scores.map((s) => s.version))).toEqual(new Set(['tiny-detection']));
  // Every stored detection of every frame once: as many prediction rows as the frames reported.
  expect(preds.n).toBe(scores.reduce((a, s) => a + s.detections, 0));
  expect(tasks.length).toBe(expectedFrames);
  expect(new Set(tasks.map((t) => t.frameId)).size).toBe(expectedFrames);
  expect(Number(stream.scoredThroughSeq)).toBe(Number(maxSeq.s));
  return { frames: frameCount.n, scored: scores.length, predictions: preds.n, tasks: tasks.length };
}

/** Runs `fn` while the scoring and control workers of `p` run in this process on `address`. */
async function withWorkers<T>(db: TestDb, p: TestPlatform, address: string, fn: () => Promise<T>): Promise<T> {
  quietRuntime();
  const connection = await NativeConnection.connect({ address });
  let workers: RunningWorkers | null = null;
  try {
    workers = await startPlatformWorkers(p, connection);
    return await fn();
  } finally {
    await workers?.shutdown();
    await connection.close();
  }
}

/**
 * Worker processes of `p` (scoring, control and ingest queues) on `db`, wired as `npm run worker`
 * wires one, each started when asked and resolved once it polls; `workers` lists them to kill.
 */
function workerProcesses(p: TestPlatform, db: TestDb) {
  const bundle = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bundle-')), 'workflows.js');
  fs.writeFileSync(bundle, inject('workflowBundleCode'));
  const workers: ChildProcess[] = [];
  const start = async () => {
    // node itself (not the tsx wrapper, which runs the script in a child it would leave behind).
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        path.join(repoRoot, 'test', 'faults', 'scoring-worker.ts'),
        inject('temporalAddress'),
        p.taskQueue,
        p.controlQueue,
        bundle,
        p.ingestQueue,
      ],
      {
        env: { ...process.env, DATABASE_URL: db.url!, STORE_DIR: p.storeDir, LOG_LEVEL: 'error', PREDICTION_MIN_SCORE: MIN_SCORE },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    workers.push(child);
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
      child.once('exit', (code) => reject(new Error(`worker exited with ${code}`)));
    });
    return child;
  };
  return { start, workers };
}

/** Attempts after the first among the activity starts of every run of a workflow. */
async function retriedAttempts(p: TestPlatform, workflowId: string): Promise<number> {
  let retried = 0;
  for await (const run of p.deps.temporal!.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
    const history = await p.deps.temporal!.workflow.getHandle(run.workflowId, run.runId).fetchHistory();
    retried += (history.events ?? []).filter((e) => (e.activityTaskStartedEventAttributes?.attempt ?? 1) > 1).length;
  }
  return retried;
}

const startedActivities = async (p: TestPlatform, workflowId: string) => {
  const { raw } = await p.deps.temporal!.workflow.getHandle(workflowId).describe();
  return (raw.pendingActivities ?? []).filter((a) => a.state === temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED).length;
};

/**
 * SIGKILLs the worker while an activity of the workflow runs on it, so that attempt is lost with
 * the process, and starts the worker that replaces it. A kill can land between two activities
 * (one just completed, the next not yet picked up); the server then shows none started once the
 * worker is gone, and a fresh worker is killed again, so the test always exercises a lost attempt.
 */
async function killMidActivity(p: TestPlatform, workflowId: string, worker: ChildProcess, startWorker: () => Promise<ChildProcess>): Promise<void> {
  for (let tries = 0; tries < 5; tries++) {
    await eventually(async () => (await startedActivities(p, workflowId)) > 0, 30_000, 'an activity running');
    worker.kill('SIGKILL');
    await new Promise((r) => worker.once('exit', r));
    // A completion the worker sent just before it died reaches the server within moments.
    await new Promise((r) => setTimeout(r, 1000));
    const orphaned = await startedActivities(p, workflowId);
    worker = await startWorker();
    if (orphaned > 0) return;
  }
  throw new Error('no kill landed while an activity ran');
}

// Each fault waits out a real timeout (a killed attempt's 30 s heartbeat, a restarted server or
// database) and allows 120 s for the loop to recover: more than the suite's 60 s default per test.
describe('fault injection', { timeout: 240_000 }, () => {
  it('(a) a scoring worker killed with SIGKILL mid-stream: another finishes, every frame scored once', async () => {
    const db: TestDb = await createTestDb(process.env.DATABASE_URL ?? pg.url);
    const streamId = `kill-worker-${Math.random().toString(36).slice(2, 8)}`;
    const p = await createTestPlatform(db, { cameraStreams: [streamId], env: { PREDICTION_MIN_SCORE: MIN_SCORE } });
    const { start: startWorker, workers } = workerProcesses(p, db);
    try {
      const first = await startWorker();
      await createStream(p, streamId);
      const sending = camera(p, streamId, 60, 15);
      await eventually(async () => (await scoredCount(db.db, streamId)) >= 12, 60_000, 'a dozen frames scored');
      // Kill it while a batch attempt is running on it, so that attempt is lost with the process.
      await killMidActivity(p, streamWorkflowId(streamId), first, startWorker);
      const scoredAtKill = await scoredCount(db.db, streamId);
      const sent = await sending;
      // The killed attempt's heartbeat times out (30 s), and the batch runs again on the new worker.
      await eventually(async () => (await scoredCount(db.db, streamId)) === sent, 120_000, 'every frame scored after the kill');
      const counts = await exactlyOnce(db.db, streamId, sent);
      expect(scoredAtKill).toBeLessThan(sent);
      // The attempt that died with the worker was run again: its completion carries attempt 2+.
      const retried = await retriedAttempts(p, streamWorkflowId(streamId));
      expect(retried).toBeGreaterThan(0);
      console.log(`fault (a) worker SIGKILL: ${JSON.stringify({ ...counts, scoredAtKill, retriedAttempts: retried })}`);
    } finally {
      await stopStream(p, streamId);
      for (const w of workers) w.kill('SIGKILL');
      await p.close();
      await db.close();
    }
  });

  it('(e) a video worker killed with SIGKILL mid-video: another finishes it, every sampled frame stored once', async () => {
    const db: TestDb = await createTestDb(process.env.DATABASE_URL ?? pg.url);
    const streamId = `kill-video-${Math.random().toString(36).slice(2, 8)}`;
    const p = await createTestPlatform(db, { env: { VIDEO_SEGMENT_SECONDS: '10', VIDEO_PARALLEL_SEGMENTS: '2' } });
    const { start: startWorker, workers } = workerProcesses(p, db);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'video-'));
    try {
      const first = await startWorker();
      await createStream(p, streamId);
      // 60 s at 25 fps, every 2nd frame: 750 frames from six segments.
      const file = makeVideo(path.join(dir, 'v.mp4'), { seconds: 60, fps: 25, gop: 50 });
      const res = await p.app.request(`/v1/streams/${streamId}/videos?cameraId=dashcam&startedAt=2026-11-30T08:00:00Z&sample=every&every=2`, {
        method: 'POST',
        headers: auth(p.tokens.lead, { 'Content-Type': 'video/mp4' }),
        body: fs.readFileSync(file),
      });
      expect(res.status).toBe(202);
      const { id } = (await res.json()) as { id: string };
      const segmentsDone = async () => (await videoSegmentsOf(db.db, id)).filter((s) => s.doneAt).length;
      await eventually(async () => (await segmentsDone()) >= 1, 60_000, 'a segment done');
      await killMidActivity(p, videoWorkflowId(id), first, startWorker);
      const doneAtKill = await segmentsDone();
      // The killed segment's heartbeat times out (10 s) and it runs again on the new worker.
      const video = await eventually(async () => ((await getVideo(db.db, id))?.status === 'done' ? getVideo(db.db, id) : null), 120_000, 'the video done');
      expect(video.segmentsTotal).toBe(6);
      expect(doneAtKill).toBeLessThan(6);
      const rows = await db.db.select({ at: frames.capturedAt, hash: frames.contentHash }).from(frames).where(eq(frames.streamId, streamId));
      // Every sampled frame, once: frame 2k at 2k/25 s after the start.
      expect(rows).toHaveLength(750);
      expect(new Set(rows.map((r) => r.hash)).size).toBe(750);
      const offsets = rows.map((r) => Math.round(((r.at.getTime() - Date.parse('2026-11-30T08:00:00Z')) / 1000) * 12.5)).sort((a, b) => a - b);
      expect(offsets).toEqual(Array.from({ length: 750 }, (_, i) => i));
      const retried = await retriedAttempts(p, videoWorkflowId(id));
      expect(retried).toBeGreaterThan(0);
      console.log(`fault (e) video worker SIGKILL: ${JSON.stringify({ segmentsDoneAtKill: doneAtKill, frames: rows.length, retriedAttempts: retried })}`);
    } finally {
      await stopStream(p, streamId);
      for (const w of workers) w.kill('SIGKILL');
      await p.close();
      await db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('(b) the Temporal dev server killed mid-stream is restarted by its supervisor, and the loop goes on', async () => {
    const port = await freePort();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'temporal-'));
    const server = await startTemporalDevServer({ dbFile: path.join(dir, 'temporal.db'), port, uiPort: await freePort() });
    const address = `127.0.0.1:${port}`;
    const db = await createTestDb(pg.url);
    const streamId = `kill-temporal-${Math.random().toString(36).slice(2, 8)}`;
    const p = await createTestPlatform(db, { cameraStreams: [streamId], temporalAddress: address, env: { PREDICTION_MIN_SCORE: MIN_SCORE } });
    try {
      await withWorkers(db, p, address, async () => {
        await createStream(p, streamId);
        const sending = camera(p, streamId, 60, 15);
        await eventually(async () => (await scoredCount(db.db, streamId)) >= 12, 60_000, 'a dozen frames scored');
        const killedPid = server.proc.pid;
        server.proc.kill('SIGKILL');
        const sent = await sending;
        await eventually(async () => (await scoredCount(db.db, streamId)) === sent, 120_000, 'every frame scored after the restart');
        expect(server.proc.pid).not.toBe(killedPid);
        const counts = await exactlyOnce(db.db, streamId, sent);
        // The loop's history survived the restart: it is the same workflow, still running.
        const description = await p.deps.temporal!.workflow.getHandle(streamWorkflowId(streamId)).describe();
        expect(description.status.name).toBe('RUNNING');
        console.log(`fault (b) Temporal SIGKILL: ${JSON.stringify(counts)}`);
      });
    } finally {
      await stopStream(p, streamId);
      await p.close();
      await db.close();
      await server.stop();
    }
  });

  it('(c) Postgres stopped at once mid-stream and started again: nothing lost, nothing twice', async () => {
    const db = await createTestDb(pg.url);
    const streamId = `kill-postgres-${Math.random().toString(36).slice(2, 8)}`;
    const p = await createTestPlatform(db, { cameraStreams: [streamId], env: { PREDICTION_MIN_SCORE: MIN_SCORE } });
    try {
      await withWorkers(db, p, inject('temporalAddress'), async () => {
        await createStream(p, streamId);
        const sending = camera(p, streamId, 60, 15);
        await eventually(async () => (await scoredCount(db.db, streamId)) >= 12, 60_000, 'a dozen frames scored');
        await pg.kill();
        await new Promise((r) => setTimeout(r, 3000));
        await pg.start();
        const sent = await sending;
        await eventually(async () => (await scoredCount(db.db, streamId)) === sent, 120_000, 'every frame scored after the restart');
        const counts = await exactlyOnce(db.db, streamId, sent);
        console.log(`fault (c) Postgres restart: ${JSON.stringify(counts)}`);
      });
    } finally {
      await stopStream(p, streamId);
      await p.close();
      await db.close();
    }
  });

  it('(d) 64 reviewers racing with one-second leases, some expiring mid-review: one label per task', async () => {
    const db = await createTestDb(pg.url);
    try {
      await db.db.insert(streams).values({ id: 'race', name: 'race' });
      const sample = sampleFrames()[0];
      const [frame] = await db.db
        .insert(frames)
        .values({
          streamId: 'race',
          cameraId: sample.cameraId,
          capturedAt: new Date(),
          contentHash: 'race',
          storageKey: 'frames/race.png',
          mediaType: 'image/png',
          sizeBytes: 1,
          width: 320,
          height: 240,
        })
        .returning();
      const TASKS = 400;
      await db.db.insert(reviewTasks).values(
        Array.from({ length: TASKS }, (_, i) => ({
          dedupeKey: `race:${i}`,
          streamId: 'race',
          cameraId: sample.cameraId,
          frameId: frame.id,
          modelVersion: 'm',
          reason: 'random' as const,
          policyVersion: 1,
        })),
      );
      const reviewers = await Promise.all(Array.from({ length: 64 }, (_, i) => createUser(db.db, { name: `racer-${i}`, role: 'reviewer' })));
      const outcome = { submitted: 0, expired: 0, claims: 0 };
      // Every lease handed out: no two may overlap on one task (that would be a double claim).
      const leases: { taskId: string; reviewer: number; from: number; until: number }[] = [];
      await Promise.all(
        reviewers.map(async ({ user }, r) => {
          for (let turn = 0; ; turn++) {
            const claimed = await claimNext(db.db, { userId: user.id, leaseSeconds: 1 });
            if (!claimed) {
              // Leases that others let expire come back; stop once nothing is open at all.
              const [open] = await db.db
                .select({ n: count() })
                .from(reviewTasks)
                .where(sql`${reviewTasks.status} <> 'done'`);
              if (open.n === 0) return;
              await new Promise((res) => setTimeout(res, 100));
              continue;
            }
            outcome.claims++;
            // Leases are stamped on the database's clock: a lease of one second ends at its expiry.
            const until = claimed.task.leaseExpiresAt!.getTime();
            if (!leases.some((l) => l.taskId === claimed.task.id && l.reviewer === r && l.until === until)) {
              leases.push({ taskId: claimed.task.id, reviewer: r, from: until - 1000, until });
            }
            // One review in nine takes longer than the lease.
            const slow = (r + turn) % 9 === 0;
            await new Promise((res) => setTimeout(res, slow ? 1100 : 5 + ((r * 7 + turn * 13) % 40)));
            try {
              await submitDecision(db.db, { taskId: claimed.task.id, userId: user.id, decision: 'correct', boxes: [] }, goldSettings(config));
              outcome.submitted++;
            } catch (err) {
              if (!(err instanceof QueueError) || !['lease_expired', 'held_by_other', 'already_decided'].includes(err.code)) throw err;
              outcome.expired++;
            }
          }
        }),
      );
      const rows = await db.db.select({ taskId: labels.taskId }).from(labels);
      const done = await db.db.select({ n: count() }).from(reviewTasks).where(eq(reviewTasks.status, 'done'));
      expect(rows.length).toBe(TASKS);
      expect(new Set(rows.map((l) => l.taskId)).size).toBe(TASKS);
      expect(done[0].n).toBe(TASKS);
      expect(outcome.submitted).toBe(TASKS);
      expect(outcome.expired).toBeGreaterThan(0);
      // A task is leased again only once the lease before has expired: never to two at once.
      const byTask = new Map<string, typeof leases>();
      for (const l of leases) byTask.set(l.taskId, [...(byTask.get(l.taskId) ?? []), l]);
      const doubles = [...byTask.values()].flatMap((ls) =>
        ls.sort((a, b) => a.from - b.from).filter((l, i) => i > 0 && l.from < ls[i - 1].until && l.reviewer !== ls[i - 1].reviewer),
      );
      expect(doubles).toEqual([]);
      expect([...byTask.values()].some((ls) => ls.length > 1)).toBe(true); // expired leases were claimed again
      console.log(`fault (d) 64 reviewers: ${JSON.stringify({ tasks: TASKS, labels: rows.length, ...outcome, doubleClaims: doubles.length })}`);
    } finally {
      await db.close();
    }
  });
});

// The TypeScript Temporal workers of one process: the scoring queue (stream loops and their
// batch activity), the control queue (drift, deploy and retraining orchestration) and the ingest
// queue (videos split into segments and sampled into frames). Both
// `worker.ts` (a worker process of its own) and `scripts/up.ts` (everything in one process)
// start them through this function, so there is one way to wire a worker.
import { bundleWorkflowCode, NativeConnection, Worker } from '@temporalio/worker';
import { createDriftActivities } from '../activities/drift.ts';
import { config } from '../config.ts';
import { createVideoActivities } from '../activities/video.ts';
import { createScoringActivities, type DetectorProvider } from '../activities/scoring.ts';
import type { Db } from '../db/client.ts';
import { recordBatch } from '../observability/batch-metrics.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import type { VectorIndex } from '../storage/vector-index.ts';
import { CONTROL_QUEUE, INGEST_QUEUE, SCORING_QUEUE } from '../workflows/shared.ts';
import { quietBundlerLogger, workflowsPath } from '../workflows/workflows-path.ts';

export interface WorkerDeps {
  connection: NativeConnection;
  namespace: string;
  db: Db;
  store: BlobStore;
  detectors: DetectorProvider;
  vectorIndex: VectorIndex;
  /** Activities of the control queue (drift, deploy, retraining), keyed by activity name. */
  controlActivities?: Record<string, (...args: never[]) => Promise<unknown>>;
  /** A prebuilt workflow bundle (tests share one); by default the workers bundle workflows/. */
  workflowBundle?: { code: string };
  /** Queue names can be overridden so tests run isolated workers on one server. */
  scoringQueue?: string;
  controlQueue?: string;
  ingestQueue?: string;
  /** Video segments this process extracts at once, each one ffmpeg (default VIDEO_PARALLEL_SEGMENTS). */
  videoSlots?: number;
  /** How long a scoring call waits on an empty stream before the loop sleeps (default LOOP_IDLE_WAIT_MS). */
  idleWaitMs?: number;
  trackMaxGapMs?: number;
  /** Wakes a sleeping loop when a video's frames arrive (LoopControl.wake). */
  wakeLoop?: (streamId: string) => Promise<void>;
  /** Scoring batches per activity call and its time limit (default SCORING_BATCHES_PER_CALL, SCORING_CALL_MAX_MS). */
  batchesPerCall?: number;
  callMaxMs?: number;
}

export interface RunningWorkers {
  workers: Worker[];
  /** Resolves when every worker has stopped; rejects if one fails. */
  done: Promise<void>;
  shutdown(): Promise<void>;
}

export async function startWorkers(deps: WorkerDeps): Promise<RunningWorkers> {
  // One bundle for both workers: bundling takes seconds and the code is the same.
  const workflowBundle = deps.workflowBundle ?? (await bundleWorkflowCode({ workflowsPath, logger: quietBundlerLogger }));
  const scoring = createScoringActivities({
    db: deps.db,
    store: deps.store,
    detectors: deps.detectors,
    vectorIndex: deps.vectorIndex,
    onBatch: recordBatch,
    idleWaitMs: deps.idleWaitMs ?? config.LOOP_IDLE_WAIT_MS,
    trackMaxGapMs: deps.trackMaxGapMs,
    batchesPerCall: deps.batchesPerCall ?? config.SCORING_BATCHES_PER_CALL,
    callMaxMs: deps.callMaxMs ?? config.SCORING_CALL_MAX_MS,
  });
  const common = { connection: deps.connection, namespace: deps.namespace, workflowBundle };
  // The queues this process serves (WORKER_QUEUES, all three by default).
  const serves = new Set(config.WORKER_QUEUES);
  const workers: Worker[] = [];
  if (serves.has('scoring')) {
    workers.push(
      await Worker.create({
        ...common,
        taskQueue: deps.scoringQueue ?? SCORING_QUEUE,
        activities: scoring,
        // Scoring is CPU-bound inference: a few calls at a time per process (SCORING_SLOTS, from
        // measured figures) keep its cores busy; scale out with more worker processes.
        maxConcurrentActivityTaskExecutions: config.SCORING_SLOTS,
        // A pause reaches a scoring call only through a heartbeat's answer, and heartbeats are
        // otherwise held back to 0.8 of the 30 s heartbeat timeout: a pause would wait for the call
        // to end. One heartbeat a second per running call costs a small RPC and no history event.
        maxHeartbeatThrottleInterval: '1 second',
      }),
    );
  }
  if (serves.has('control')) {
    workers.push(
      await Worker.create({
        ...common,
        taskQueue: deps.controlQueue ?? CONTROL_QUEUE,
        activities: { ...createDriftActivities({ db: deps.db }), ...(deps.controlActivities ?? {}) },
      }),
    );
  }
  if (serves.has('ingest')) {
    workers.push(
      await Worker.create({
        ...common,
        taskQueue: deps.ingestQueue ?? INGEST_QUEUE,
        // Frames from videos pass the checks uploads pass.
        activities: createVideoActivities({
          db: deps.db,
          store: deps.store,
          maxFrameBytes: config.MAX_FRAME_BYTES,
          maxFramePixels: config.MAX_FRAME_PIXELS,
          wakeLoop: deps.wakeLoop,
        }),
        maxConcurrentActivityTaskExecutions: deps.videoSlots ?? config.VIDEO_PARALLEL_SEGMENTS,
      }),
    );
  }
  const done = Promise.all(workers.map((w) => w.run())).then(() => undefined);
  return {
    workers,
    done,
    async shutdown() {
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
      await done;
    },
  };
}

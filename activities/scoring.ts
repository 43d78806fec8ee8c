// The scoring step of streamLoop: wait for a batch of frames, run the detector on it, link its
// detections into tracks, route uncertain detections under the stream's policy, and store
// everything (object embeddings through the vector index) in one transaction.
// Score and route share one activity, and a call scores several batches while frames wait
// (docs/architecture.md, "History per activity").
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Db } from '../db/client.ts';
import {
  latestPolicyVersion,
  nextFrames,
  persistScoredBatch,
  routingInputs,
  streamCursor,
  type FrameFailure,
  type PendingFrame,
  type ScoredFrameRow,
} from '../db/scoring.ts';
import { UndecodableFramesError, type FrameResult } from '../models/sessions.ts';
import { latestDeployment, productionModel } from '../db/models.ts';
import { batchPacing } from '../policies/pacing.ts';
import { routeBatch } from '../policies/route.ts';
import { linkTracks } from '../db/tracks.ts';
import { logger } from '../observability/logger.ts';
import { clearLoopIdle, markLoopIdle } from '../db/streams.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import type { VectorIndex } from '../storage/vector-index.ts';

/** What scoring needs from the model layer: the detector of one exact version. */
export interface DetectorProvider {
  detect(
    modelVersion: string,
    images: Buffer[],
  ): Promise<{
    frames: FrameResult[];
    timings: Record<string, number>;
  }>;
}

export interface ScoringDeps {
  db: Db;
  store: BlobStore;
  detectors: DetectorProvider;
  vectorIndex: VectorIndex;
  /** Batch observer for metrics; called after the batch is stored. */
  onBatch?: (batch: BatchReport) => void;
  /** A track not seen on its camera for longer than this ends (default 5 s). */
  trackMaxGapMs?: number;
  /** Frames with more pixels are set aside unread (default 40 MP, the ingest limit). */
  maxFramePixels?: number;
  /**
   * How long an empty stream keeps the activity waiting before it returns idle (default 2 s):
   * the loop then sleeps, holding no worker slot, until ingestion wakes it (LOOP_IDLE_WAIT_MS).
   */
  idleWaitMs?: number;
  /** Batches one activity call scores back to back while the stream has a backlog (default 32)... */
  batchesPerCall?: number;
  /** ...and for at most this long, so a pause or a new policy is never far off (default 10 s). */
  callMaxMs?: number;
  pollIntervalMs?: number;
  now?: () => Date;
}

export interface ScoreBatchInput {
  streamId: string;
  /** The version the loop is pinned to, chosen by deployment `deploymentId`... */
  modelVersion: string;
  /** ...unless the registry holds a newer deployment: then the batch is scored with that one. */
  deploymentId?: number | null;
  policyVersion: number;
  batchSize: number;
  maxWaitMs: number;
}

export interface ScoreBatchResult {
  /** Batches scored in this call: 0 when no frame came, more than 1 while the stream had a backlog. */
  batches: number;
  framesScored: number;
  predictions: number;
  tasksRouted: number;
  /** The newest policy version a batch was routed with (the newest stored, if newer than asked). */
  policyVersion?: number;
  /** The newest detection deployment in the registry; the loop adopts it if it has not yet. */
  deployment?: DeploymentRef;
  /** No frame came: the stream is marked idle and the loop sleeps until woken. */
  idle?: boolean;
}

/** One batch's frames, read and waiting for the detector. */
interface ReadBatch {
  pending: PendingFrame[];
  modelVersion: string;
  deployment?: DeploymentRef;
  usable: PendingFrame[];
  images: Buffer[];
  failures: FrameFailure[];
  readMs: number;
}

/** One batch read and run through the detector, waiting to be routed and stored. */
interface DetectedBatch {
  pending: PendingFrame[];
  /** The highest sequence number among its frames: the cursor once it is stored. */
  toSeq: number;
  modelVersion: string;
  deployment?: DeploymentRef;
  frames: ScoredFrameRow[];
  failures: FrameFailure[];
  timings: Record<string, number>;
}

export interface DeploymentRef {
  id: number;
  version: string;
}

/** One stored batch, as the metrics observer sees it. */
export interface BatchReport {
  streamId: string;
  modelVersion: string;
  policyVersion: number;
  deployment?: DeploymentRef;
  framesScored: number;
  predictions: number;
  tasksRouted: number;
  timings: Record<string, number>;
  frames: ScoredFrameRow[];
  tasks: { frameId: string; reason: string; className: string | null }[];
  failures: FrameFailure[];
  /** The ranked selection's pacing of this batch (absent for the band selection). */
  pacing?: { threshold: number | null; targetRate: number };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function createScoringActivities(deps: ScoringDeps) {
  const now = deps.now ?? (() => new Date());
  const idleWaitMs = deps.idleWaitMs ?? 2_000;
  const pollIntervalMs = deps.pollIntervalMs ?? 200;
  const maxFramePixels = deps.maxFramePixels ?? 40_000_000;
  const trackMaxGapMs = deps.trackMaxGapMs ?? 5_000;
  const batchesPerCall = deps.batchesPerCall ?? 32;
  const callMaxMs = deps.callMaxMs ?? 10_000;

  /**
   * The bytes of each frame, setting aside those that can never be scored: over the pixel limit
   * (decided from the row, before reading) or whose blob is gone. Any other read error is
   * transient (a disk or network fault) and fails the attempt, so Temporal retries it.
   */
  async function readFrames(pending: PendingFrame[]) {
    const read = await Promise.all(
      pending.map(async (f): Promise<{ frame: PendingFrame; bytes: Buffer } | FrameFailure> => {
        if (f.width * f.height > maxFramePixels) {
          return { frameId: f.id, reason: 'too_many_pixels', detail: `${f.width}x${f.height} is over the limit of ${maxFramePixels} pixels` };
        }
        try {
          return { frame: f, bytes: await deps.store.get(f.storageKey) };
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
          return { frameId: f.id, reason: 'missing_blob', detail: `no blob at ${f.storageKey}` };
        }
      }),
    );
    const failures: FrameFailure[] = [];
    const usable: PendingFrame[] = [];
    const images: Buffer[] = [];
    for (const r of read) {
      if ('bytes' in r) {
        usable.push(r.frame);
        images.push(r.bytes);
      } else failures.push(r);
    }
    return { usable, images, failures };
  }

  /**
   * Scores the frames; a frame that does not decode is set aside and the rest are scored again
   * without it (decoding is deterministic, so retrying it would fail the same way for ever).
   */
  async function detectSettingAside(modelVersion: string, usable: PendingFrame[], images: Buffer[], failures: FrameFailure[]) {
    if (usable.length === 0) return { usable, frames: [] as FrameResult[], timings: {} as Record<string, number> };
    try {
      return { usable, ...(await deps.detectors.detect(modelVersion, images)) };
    } catch (err) {
      if (!(err instanceof UndecodableFramesError)) throw err;
      const bad = new Set(err.failures.map((f) => f.index));
      for (const f of err.failures) failures.push({ frameId: usable[f.index].id, reason: 'undecodable', detail: f.message });
      const keep = usable.map((_, i) => i).filter((i) => !bad.has(i));
      return detectSettingAside(
        modelVersion,
        keep.map((i) => usable[i]),
        keep.map((i) => images[i]),
        failures,
      );
    }
  }

  /**
   * Waits until `batchSize` frames are there, or until `maxWaitMs` has passed with at least one,
   * or until the idle limit with none; heartbeats meanwhile so a pause can cancel the wait. With
   * none, the stream is marked idle before a last look, so a frame ingested after that look
   * finds the mark and wakes the loop (ingest clears the mark after storing its frame).
   */
  async function waitForFrames(input: ScoreBatchInput) {
    const started = Date.now();
    for (;;) {
      const pending = await nextFrames(deps.db, input.streamId, input.batchSize);
      const waited = Date.now() - started;
      if (pending.length >= input.batchSize) return pending;
      if (pending.length > 0 && waited >= input.maxWaitMs) return pending;
      if (waited >= idleWaitMs) {
        await markLoopIdle(deps.db, input.streamId);
        const last = await nextFrames(deps.db, input.streamId, input.batchSize);
        if (last.length > 0) await clearLoopIdle(deps.db, input.streamId);
        return last;
      }
      Context.current().heartbeat({ waitingMs: waited, pending: pending.length });
      await Promise.race([sleep(pollIntervalMs), Context.current().cancelled]);
    }
  }

  /** The newest stored policy of the stream, if newer than the loop's: the update that announces
   * a policy is a fast path, the database is the source of truth. */
  async function newestPolicyVersion(input: ScoreBatchInput) {
    return Math.max(input.policyVersion, (await latestPolicyVersion(deps.db, input.streamId)) ?? 1);
  }

  /**
   * Reads one batch's frames. The newest deployment applies to it, even one committed while the
   * call waited for frames: frames that arrive after a deploy answered are scored by the deployed
   * model. The loop adopts it from the result, so the version stays one per batch and only moves
   * forward.
   */
  async function readBatch(input: ScoreBatchInput, pending: PendingFrame[]): Promise<ReadBatch> {
    const deployment = await latestDeployment(deps.db, 'detection');
    const modelVersion = deployment && deployment.id > (input.deploymentId ?? 0) ? deployment.version : input.modelVersion;
    const t0 = performance.now();
    const read = await readFrames(pending);
    return { pending, modelVersion, deployment, ...read, readMs: performance.now() - t0 };
  }

  /** Runs a read batch through the detector (on the inference thread, so this thread is free meanwhile). */
  async function detectBatch(batch: ReadBatch): Promise<DetectedBatch> {
    const { pending, modelVersion, deployment, failures } = batch;
    const scored = await detectSettingAside(modelVersion, batch.usable, batch.images, failures);
    const frames: ScoredFrameRow[] = scored.usable.map((f, i) => ({
      frameId: f.id,
      cameraId: f.cameraId,
      capturedAt: f.capturedAt,
      embedding: Array.from(scored.frames[i].embedding),
      detections: scored.frames[i].detections.map((d, rank) => ({ rank, ...d })),
    }));
    return {
      pending,
      toSeq: Math.max(...pending.map((f) => f.seq)),
      modelVersion,
      deployment,
      frames,
      failures,
      timings: { read: batch.readMs, ...scored.timings },
    };
  }

  /** Links the batch's tracks, routes it under the newest policy and stores it behind the cursor. */
  async function routeAndStore(input: ScoreBatchInput, batch: DetectedBatch, fromSeq: number) {
    const { frames, failures, modelVersion } = batch;
    const policyVersion = await newestPolicyVersion(input);
    const t1 = performance.now();
    await linkTracks(deps.db, deps.vectorIndex, { streamId: input.streamId, modelVersion, frames, maxGapMs: trackMaxGapMs });
    const trackMs = performance.now() - t1;
    const at = now();
    // The batch's own newest frame anchors the pacing, so a retried batch routes the same frames.
    const anchor = new Date(Math.max(...batch.pending.map((f) => f.ingestedAt.getTime())));
    const { policy, boosted, routedToday, framesLastHour, recentValues, distances, labelled } = await routingInputs(deps.db, {
      streamId: input.streamId,
      modelVersion,
      policyVersion,
      at,
      anchor,
      batch: frames,
    });
    const budgetRemaining = policy.dailyBudget === null ? null : Math.max(0, policy.dailyBudget - routedToday);
    const pacing = policy.selection === 'ranked' ? batchPacing(anchor, framesLastHour, budgetRemaining, recentValues, policy.pacingWarmup) : undefined;
    // A frame that already has a label (an imported dataset's) is scored, and its embeddings serve
    // drift and search, but it takes no share of the budget and nobody is asked to label it again.
    // Its selection scores are still worked out (with no budget, so nothing routes): a gold task
    // made of it shows them as a routed task does.
    const context = { policy, budgetRemaining, isBoosted: (cameraId: string) => boosted.has(null) || boosted.has(cameraId), distances, pacing };
    const { tasks, selections, nearDuplicates } = routeBatch(
      frames.filter((f) => !labelled.has(f.frameId)),
      context,
      policyVersion,
    );
    const labelledSelections = routeBatch(
      frames.filter((f) => labelled.has(f.frameId)),
      { ...context, budgetRemaining: 0 },
      policyVersion,
    ).selections;
    for (const f of frames) {
      f.labelled = labelled.has(f.frameId);
      f.nearDuplicate = nearDuplicates.has(f.frameId);
      f.selection = selections.get(f.frameId) ?? labelledSelections.get(f.frameId);
    }
    const routeMs = performance.now() - t1;

    const t2 = performance.now();
    const stored = await persistScoredBatch(deps.db, {
      streamId: input.streamId,
      modelVersion,
      policyVersion,
      fromSeq,
      toSeq: batch.toSeq,
      frames,
      tasks,
      failures,
      vectorIndex: deps.vectorIndex,
    });
    const timings = { ...batch.timings, track: trackMs, route: routeMs - trackMs, persist: performance.now() - t2 };

    if (failures.length) {
      logger.warn(
        { stream: input.streamId, failures: failures.map((f) => ({ frameId: f.frameId, reason: f.reason, detail: f.detail.slice(0, 200) })) },
        'frames set aside; the stream goes on',
      );
    }
    const result = { framesScored: frames.length, predictions: stored.predictions, tasksRouted: stored.tasksRouted, policyVersion };
    const info = Context.current().info;
    // Debug level: a line every batch would drown `make up`'s console; LOG_LEVEL=debug shows it.
    logger.debug(
      {
        stream: input.streamId,
        workflowId: info.workflowExecution?.workflowId,
        activityId: info.activityId,
        attempt: info.attempt,
        modelVersion,
        ...result,
        ms: Math.round(Object.values(timings).reduce((a, b) => a + b, 0)),
      },
      'batch scored',
    );
    deps.onBatch?.({
      ...result,
      deployment: batch.deployment,
      streamId: input.streamId,
      modelVersion,
      timings,
      frames,
      tasks: tasks.map((t) => ({ frameId: t.frameId, reason: t.reason, className: t.className })),
      failures,
      pacing,
    });
    return result;
  }

  return {
    /** The production detector and the stream's newest policy, for a loop's first run. */
    async resolveStreamConfig(input: { streamId: string }): Promise<{ modelVersion: string | null; deployment: DeploymentRef | null; policyVersion: number }> {
      const cursor = await streamCursor(deps.db, input.streamId);
      if (cursor === null) {
        throw ApplicationFailure.nonRetryable(`Unknown stream "${input.streamId}"`, 'BadInput');
      }
      return {
        modelVersion: (await productionModel(deps.db, 'detection'))?.version ?? null,
        deployment: (await latestDeployment(deps.db, 'detection')) ?? null,
        policyVersion: (await latestPolicyVersion(deps.db, input.streamId)) ?? 1,
      };
    },

    /**
     * Scores the stream's waiting frames one batch after another: the first batch waits for
     * frames as before; further full batches follow in the same call while the stream has a
     * backlog, up to `batchesPerCall` batches or `callMaxMs`, so a busy loop writes a few history
     * events per hundreds of frames instead of six per batch, and pays Temporal's round trip once.
     * Batch n+1 is read and run through the detector while batch n is routed and stored (its
     * cursor, tracks and budget come first, so routing and storing stay in order). Each batch is
     * its own transaction behind the cursor check: a retried call starts at the stored cursor and
     * adds nothing twice. A pause (cancellation, seen at the heartbeat after each batch) ends the
     * call after the batch in hand, with what it scored.
     */
    async scoreAndRouteBatch(input: ScoreBatchInput): Promise<ScoreBatchResult> {
      let cursor = await streamCursor(deps.db, input.streamId);
      if (cursor === null) throw ApplicationFailure.nonRetryable(`Unknown stream "${input.streamId}"`, 'BadInput');
      const started = Date.now();
      const first = await waitForFrames(input);
      const total: ScoreBatchResult = { batches: 0, framesScored: 0, predictions: 0, tasksRouted: 0, policyVersion: input.policyVersion };
      let inHand: Promise<DetectedBatch> | null = null;
      if (first.length > 0) inHand = readBatch(input, first).then(detectBatch);
      else {
        // Nothing to score: still report the newest policy and deployment, which the loop adopts.
        total.policyVersion = await newestPolicyVersion(input);
        total.deployment = await latestDeployment(deps.db, 'detection');
        total.idle = true;
      }
      try {
        while (inHand) {
          const batch: DetectedBatch = await inHand;
          inHand = null;
          const ctx = Context.current();
          const more =
            batch.pending.length === input.batchSize &&
            total.batches + 1 < batchesPerCall &&
            Date.now() - started < callMaxMs &&
            !ctx.cancellationSignal.aborted;
          if (more) {
            const following = await nextFrames(deps.db, input.streamId, input.batchSize, { afterSeq: batch.toSeq });
            // Only a full batch follows at once; a stream that has caught up waits in the next call.
            // Its files are read before storing starts: with PGlite, storing is one long chain of
            // promise callbacks that leaves file reads waiting until it ends.
            if (following.length === input.batchSize) inHand = detectBatch(await readBatch(input, following));
          }
          const stored = await routeAndStore(input, batch, cursor);
          cursor = Math.max(cursor, batch.toSeq);
          total.batches += 1;
          total.framesScored += stored.framesScored;
          total.predictions += stored.predictions;
          total.tasksRouted += stored.tasksRouted;
          total.policyVersion = Math.max(total.policyVersion ?? 1, stored.policyVersion);
          total.deployment = batch.deployment ?? total.deployment;
          ctx.heartbeat({ batches: total.batches, framesScored: total.framesScored });
        }
      } finally {
        // A batch read ahead of a failed one is dropped; its frames stay unscored for the retry.
        void inHand?.catch(() => undefined);
      }
      return total;
    },
  };
}

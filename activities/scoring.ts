// The scoring step of streamLoop: wait for a batch of frames, run the detector on it, link its
// detections into tracks, route uncertain detections under the stream's policy, and store
// everything (object embeddings through the vector index) in one transaction.
// Score and route share one activity on purpose (docs/architecture.md, "History per activity": half the history).
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
  /** How long an empty stream keeps the activity waiting before it returns (default 20 s). */
  idleWaitMs?: number;
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
  framesScored: number;
  predictions: number;
  tasksRouted: number;
  /** The policy version the batch was routed with (the newest stored, if newer than asked). */
  policyVersion?: number;
  /** The newest detection deployment in the registry; the loop adopts it if it has not yet. */
  deployment?: DeploymentRef;
}

export interface DeploymentRef {
  id: number;
  version: string;
}

export interface BatchReport extends ScoreBatchResult {
  streamId: string;
  modelVersion: string;
  policyVersion: number;
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
  const idleWaitMs = deps.idleWaitMs ?? 20_000;
  const pollIntervalMs = deps.pollIntervalMs ?? 200;
  const maxFramePixels = deps.maxFramePixels ?? 40_000_000;
  const trackMaxGapMs = deps.trackMaxGapMs ?? 5_000;

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
   * or until the idle limit with none; heartbeats meanwhile so a pause can cancel the wait.
   */
  async function waitForFrames(input: ScoreBatchInput) {
    const started = Date.now();
    for (;;) {
      const pending = await nextFrames(deps.db, input.streamId, input.batchSize);
      const waited = Date.now() - started;
      if (pending.length >= input.batchSize) return pending;
      if (pending.length > 0 && waited >= input.maxWaitMs) return pending;
      if (waited >= idleWaitMs) return pending;
      Context.current().heartbeat({ waitingMs: waited, pending: pending.length });
      await Promise.race([sleep(pollIntervalMs), Context.current().cancelled]);
    }
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

    async scoreAndRouteBatch(input: ScoreBatchInput): Promise<ScoreBatchResult> {
      const fromSeq = await streamCursor(deps.db, input.streamId);
      if (fromSeq === null) throw ApplicationFailure.nonRetryable(`Unknown stream "${input.streamId}"`, 'BadInput');
      const pending = await waitForFrames(input);
      // A policy stored while this loop was unreachable still applies from the next batch: the
      // update that announces it is a fast path, the database is the source of truth.
      const policyVersion = Math.max(input.policyVersion, (await latestPolicyVersion(deps.db, input.streamId)) ?? 1);
      // Likewise a deployment committed while this batch waited for frames applies to it: frames
      // that arrive after a deploy answered are scored by the deployed model. The loop adopts it
      // from the result, so the version stays one per batch and moves only forward.
      const deployment = await latestDeployment(deps.db, 'detection');
      const modelVersion = deployment && deployment.id > (input.deploymentId ?? 0) ? deployment.version : input.modelVersion;
      if (pending.length === 0) return { framesScored: 0, predictions: 0, tasksRouted: 0, policyVersion, deployment };
      // From here on the batch runs to the end: it is short, and storing it is all-or-nothing.

      const t0 = performance.now();
      const { usable, images, failures } = await readFrames(pending);
      const readMs = performance.now() - t0;
      const scored = await detectSettingAside(modelVersion, usable, images, failures);

      const frames: ScoredFrameRow[] = scored.usable.map((f, i) => ({
        frameId: f.id,
        cameraId: f.cameraId,
        capturedAt: f.capturedAt,
        embedding: Array.from(scored.frames[i].embedding),
        detections: scored.frames[i].detections.map((d, rank) => ({ rank, ...d })),
      }));

      const t1 = performance.now();
      await linkTracks(deps.db, deps.vectorIndex, { streamId: input.streamId, modelVersion, frames, maxGapMs: trackMaxGapMs });
      const trackMs = performance.now() - t1;
      const at = now();
      // The batch's own newest frame anchors the pacing, so a retried batch routes the same frames.
      const anchor = new Date(Math.max(...pending.map((f) => f.ingestedAt.getTime())));
      const { policy, boosted, routedToday, framesLastHour, recentValues, distances } = await routingInputs(deps.db, {
        streamId: input.streamId,
        modelVersion,
        policyVersion,
        at,
        anchor,
        batch: frames,
      });
      const budgetRemaining = policy.dailyBudget === null ? null : Math.max(0, policy.dailyBudget - routedToday);
      const pacing = policy.selection === 'ranked' ? batchPacing(anchor, framesLastHour, budgetRemaining, recentValues, policy.pacingWarmup) : undefined;
      const { tasks, selections } = routeBatch(
        frames,
        { policy, budgetRemaining, isBoosted: (cameraId) => boosted.has(null) || boosted.has(cameraId), distances, pacing },
        policyVersion,
      );
      for (const f of frames) f.selection = selections.get(f.frameId);
      const routeMs = performance.now() - t1;

      const t2 = performance.now();
      const toSeq = Math.max(...pending.map((f) => f.seq));
      const stored = await persistScoredBatch(deps.db, {
        streamId: input.streamId,
        modelVersion,
        policyVersion,
        fromSeq,
        toSeq,
        frames,
        tasks,
        failures,
        vectorIndex: deps.vectorIndex,
      });
      const persistMs = performance.now() - t2;

      if (failures.length) {
        logger.warn(
          { stream: input.streamId, failures: failures.map((f) => ({ frameId: f.frameId, reason: f.reason, detail: f.detail.slice(0, 200) })) },
          'frames set aside; the stream goes on',
        );
      }
      const result = { framesScored: frames.length, predictions: stored.predictions, tasksRouted: stored.tasksRouted, policyVersion, deployment };
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
          ms: Math.round(performance.now() - t0),
        },
        'batch scored',
      );
      deps.onBatch?.({
        ...result,
        streamId: input.streamId,
        modelVersion,
        timings: { read: readMs, ...scored.timings, track: trackMs, route: routeMs - trackMs, persist: persistMs },
        frames,
        tasks: tasks.map((t) => ({ frameId: t.frameId, reason: t.reason, className: t.className })),
        failures,
        pacing,
      });
      return result;
    },
  };
}

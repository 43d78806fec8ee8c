// The TypeScript steps of a retraining run (the Python trainer does the training and the COCO
// evaluation): snapshot the labels, register the candidate, deploy, verify, roll back, and
// record every step in the database for the API and the lead pages.
import { and, countDistinct, eq, gte, isNull, sql } from 'drizzle-orm';
import { deploymentProgress, deployVersion, rollbackVersion } from '../control/deploy.ts';
import type { LoopControl } from '../control/loop-control.ts';
import type { Db } from '../db/client.ts';
import type { ReferenceFile } from '../db/drift.ts';
import { labels, retrainRuns, retrainTriggers } from '../db/schema.ts';
import { createSnapshot } from '../db/snapshots.ts';
import type { ModelKind } from '../models/contract.ts';
import { getModel, productionModel, registerModel } from '../models/registry.ts';
import { modelEvalMap50, retrainRunsTotal, retrainStepSeconds } from '../observability/metrics.ts';
import type { BlobStore } from '../storage/blob-store.ts';

export interface RetrainDeps {
  db: Db;
  store: BlobStore;
  loopControl: LoopControl;
  warm?: (kind: ModelKind, version: string) => Promise<void>;
}

export interface StepRecord {
  name: string;
  status: 'running' | 'done' | 'failed' | 'skipped';
  at: string;
  detail?: string;
}

export type RunStatus = (typeof retrainRuns.$inferSelect)['status'];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function createRetrainActivities(deps: RetrainDeps) {
  return {
    /**
     * Records the run; a run started by drift takes up the pending triggers of its own scope (the
     * drifted stream, or the global monitor for null), and only those.
     */
    async recordRetrainRun(input: {
      runId: string;
      trigger: 'schedule' | 'drift' | 'manual';
      reason: string;
      requestedBy: string;
      driftScope?: { streamId: string | null };
    }): Promise<void> {
      await deps.db
        .insert(retrainRuns)
        .values({ id: input.runId, trigger: input.trigger, reason: input.reason, requestedBy: input.requestedBy })
        .onConflictDoNothing();
      if (input.trigger === 'drift' && input.driftScope) {
        const scope = input.driftScope.streamId === null ? isNull(retrainTriggers.streamId) : eq(retrainTriggers.streamId, input.driftScope.streamId);
        await deps.db
          .update(retrainTriggers)
          .set({ status: 'started', runId: input.runId })
          .where(and(eq(retrainTriggers.status, 'pending'), scope));
      }
    },

    /** Replaces the step of that name (or appends it) and optionally sets the run's status and fields. */
    async recordRetrainStep(input: {
      runId: string;
      step: StepRecord;
      status?: RunStatus;
      snapshotId?: string;
      candidateVersion?: string;
      metrics?: Record<string, unknown>;
    }): Promise<void> {
      await deps.db.transaction(async (tx) => {
        const [run] = await tx.select().from(retrainRuns).where(eq(retrainRuns.id, input.runId)).for('update');
        if (!run) return;
        const previous = (run.steps as StepRecord[]).find((s) => s.name === input.step.name);
        if (previous?.status === 'running' && input.step.status !== 'running') {
          retrainStepSeconds.observe({ step: input.step.name, outcome: input.step.status }, (Date.parse(input.step.at) - Date.parse(previous.at)) / 1000);
        }
        // Progress of a running step keeps the time it started, so its duration stays right.
        const step = previous?.status === 'running' && input.step.status === 'running' ? { ...input.step, at: previous.at } : input.step;
        const steps = (run.steps as StepRecord[]).filter((s) => s.name !== input.step.name);
        await tx
          .update(retrainRuns)
          .set({
            steps: [...steps, step],
            status: input.status ?? run.status,
            snapshotId: input.snapshotId ?? run.snapshotId,
            candidateVersion: input.candidateVersion ?? run.candidateVersion,
            metrics: input.metrics ? { ...(run.metrics as object), ...input.metrics } : run.metrics,
            updatedAt: sql`now()`,
          })
          .where(eq(retrainRuns.id, input.runId));
      });
      if (input.status && input.status !== 'running') retrainRunsTotal.inc({ outcome: input.status });
      const m = input.metrics as { candidate?: { map50: number }; production?: { map50: number } | null } | undefined;
      if (m?.candidate) modelEvalMap50.set({ kind: 'detection', role: 'candidate' }, m.candidate.map50);
      if (m?.production) modelEvalMap50.set({ kind: 'detection', role: 'production' }, m.production.map50);
      // Whatever the outcome, the run is over: drift on its scope may start the next one.
      if (input.status && input.status !== 'running') {
        await deps.db
          .update(retrainTriggers)
          .set({ status: 'done' })
          .where(and(eq(retrainTriggers.status, 'started'), eq(retrainTriggers.runId, input.runId)));
      }
    },

    /** Frames reviewed (labelled) since `since`, of one stream or all. */
    async countLabelsSince(input: { streamId: string | null; since: string }): Promise<number> {
      const since = gte(labels.createdAt, new Date(input.since));
      const [row] = await deps.db
        .select({ n: countDistinct(labels.frameId) })
        .from(labels)
        .where(input.streamId ? and(since, eq(labels.streamId, input.streamId)) : since);
      return row.n;
    },
    async snapshotForRetrain(input: { runId: string; asOf: string }) {
      const production = await productionModel(deps.db, 'detection');
      const productionBox = await productionModel(deps.db, 'box');
      const classNames = (production?.metadata as { classNames?: string[] } | undefined)?.classNames;
      const parentKey = production?.trainingSnapshot ? `snapshots/${production.trainingSnapshot}/dataset.json` : null;
      const snap = await createSnapshot(deps.db, deps.store, { id: input.runId, asOf: new Date(input.asOf), trigger: 'retrain', classNames, parentKey });
      const hasCheckpoint = async (kind: ModelKind, version: string | undefined) =>
        version ? deps.store.exists(`models/${kind}/${version}/checkpoint.pt`) : false;
      return {
        ...snap,
        production: production?.version ?? null,
        productionBox: productionBox?.version ?? null,
        // Fine-tune from production when its checkpoint is in the store; otherwise from scratch.
        detectionParent: (await hasCheckpoint('detection', production?.version)) ? production!.version : null,
        boxParent: (await hasCheckpoint('box', productionBox?.version)) ? productionBox!.version : null,
      };
    },

    async registerCandidate(input: {
      kind: ModelKind;
      version: string;
      artifactKey: string;
      snapshotId: string;
      parentVersion: string | null;
      metrics: Record<string, unknown>;
    }): Promise<{ version: string }> {
      const bytes = await deps.store.get(input.artifactKey);
      const refKey = input.artifactKey.replace(/model\.onnx$/, 'reference.json');
      const reference =
        input.kind === 'detection' && (await deps.store.exists(refKey)) ? (JSON.parse((await deps.store.get(refKey)).toString()) as ReferenceFile) : undefined;
      const row = await registerModel(deps.db, deps.store, {
        kind: input.kind,
        bytes,
        version: input.version,
        metrics: input.metrics,
        trainingSnapshot: input.snapshotId,
        parentVersion: input.parentVersion,
        reference,
      });
      return { version: row.version };
    },

    async deployCandidate(input: { kind: ModelKind; version: string; triggeredBy: string; reason: string }) {
      return deployVersion({ db: deps.db, loopControl: deps.loopControl, warm: deps.warm }, input.kind, input.version, {
        triggeredBy: input.triggeredBy,
        reason: input.reason,
      });
    },

    /** Every running loop reports the deployment (they switch at their next batch boundary). */
    async verifyDeployment(input: { version: string; deploymentId: number; timeoutMs: number }): Promise<{ ok: boolean; lagging: string[] }> {
      const deadline = Date.now() + input.timeoutMs;
      const production = await getModel(deps.db, 'detection', input.version);
      if (production?.status !== 'production') return { ok: false, lagging: ['registry'] };
      for (;;) {
        const progress = await deploymentProgress({ db: deps.db, loopControl: deps.loopControl }, input.deploymentId);
        const lagging = progress?.pending ?? ['registry'];
        if (lagging.length === 0 || Date.now() > deadline) return { ok: lagging.length === 0, lagging };
        await sleep(500);
      }
    },

    async rollbackDeployment(input: { kind: ModelKind; toVersion: string; reason: string }) {
      return rollbackVersion(
        { db: deps.db, loopControl: deps.loopControl, warm: deps.warm },
        input.kind,
        { triggeredBy: 'retrain', reason: input.reason },
        input.toVersion,
      );
    },
  };
}

export type RetrainActivities = ReturnType<typeof createRetrainActivities>;

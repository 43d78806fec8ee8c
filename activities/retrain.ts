// The TypeScript steps of a retraining run (the Python trainer does the training and the COCO
// evaluation): snapshot the labels, register the candidate, deploy, verify, roll back, and
// record every step in the database for the API and the lead pages.
import { deploymentProgress, deployVersion, rollbackVersion } from '../control/deploy.ts';
import type { LoopControl } from '../control/loop-control.ts';
import type { Db } from '../db/client.ts';
import type { ReferenceFile } from '../db/drift.ts';
import type { ModelPrecision } from '../db/schema.ts';
import { closeTriggers, countLabelsSince, insertRun, recordStep, takeUpTriggers, type RunTrigger, type StepUpdate } from '../db/retrain.ts';
import type { ReviewerQuality } from '../db/consensus.ts';
import { createSnapshot } from '../db/snapshots.ts';
import type { ModelKind } from '../models/contract.ts';
import { registerModel, registerVariant, RegistryError } from '../models/registry.ts';
import { getModel, productionModel } from '../db/models.ts';
import { modelEvalMap50, retrainRunsTotal, retrainStepSeconds } from '../observability/metrics.ts';
import type { BlobStore } from '../storage/blob-store.ts';

export interface RetrainDeps {
  db: Db;
  store: BlobStore;
  loopControl: LoopControl;
  warm?: (kind: ModelKind, version: string) => Promise<void>;
  /** Earlier frames a snapshot keeps per newly labelled frame (RETRAIN_REPLAY_RATIO); null: all. */
  replayRatio?: number | null;
  /** Earlier frames a snapshot keeps at the least, whatever the ratio gives (RETRAIN_REPLAY_MIN). */
  replayMin?: number;
  /** Confirmed label proposals count as labels (RETRAIN_PROPAGATED_LABELS=include, the default). */
  propagatedLabels?: boolean;
  /** Leave out labels of reviewers below this gold accuracy or agreement (RETRAIN_MIN_REVIEWER_ACCURACY). */
  reviewerQuality?: ReviewerQuality;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function createRetrainActivities(deps: RetrainDeps) {
  return {
    /**
     * Records the run; a run started by drift takes up the pending triggers of its own scope (the
     * drifted stream, or the global monitor for null), and only those.
     */
    async recordRetrainRun(input: {
      runId: string;
      trigger: RunTrigger;
      reason: string;
      requestedBy: string;
      driftScope?: { streamId: string | null };
    }): Promise<void> {
      await insertRun(deps.db, { id: input.runId, trigger: input.trigger, reason: input.reason, requestedBy: input.requestedBy });
      if (input.trigger === 'drift' && input.driftScope) await takeUpTriggers(deps.db, input.runId, input.driftScope.streamId);
    },

    /** Replaces the step of that name (or appends it) and optionally sets the run's status and fields. */
    async recordRetrainStep(input: StepUpdate): Promise<void> {
      const recorded = await recordStep(deps.db, input);
      if (!recorded) return;
      const { previous } = recorded;
      if (previous?.status === 'running' && input.step.status !== 'running') {
        retrainStepSeconds.observe({ step: input.step.name, outcome: input.step.status }, (Date.parse(input.step.at) - Date.parse(previous.at)) / 1000);
      }
      const m = input.metrics as { candidate?: { map50: number }; production?: { map50: number } | null } | undefined;
      if (m?.candidate) modelEvalMap50.set({ kind: 'detection', role: 'candidate' }, m.candidate.map50);
      if (m?.production) modelEvalMap50.set({ kind: 'detection', role: 'production' }, m.production.map50);
      if (input.status && input.status !== 'running') {
        retrainRunsTotal.inc({ outcome: input.status });
        await closeTriggers(deps.db, input.runId);
      }
    },

    /** Frames reviewed (labelled) since `since`, of one stream or all. */
    async countLabelsSince(input: { streamId: string | null; since: string }): Promise<number> {
      return countLabelsSince(deps.db, input.streamId, new Date(input.since));
    },
    async snapshotForRetrain(input: { runId: string; asOf: string }) {
      const production = await productionModel(deps.db, 'detection');
      const productionBox = await productionModel(deps.db, 'box');
      const classNames = production?.metadata.kind === 'detection' ? production.metadata.classNames : undefined;
      const parentKey = production?.trainingSnapshot ? `snapshots/${production.trainingSnapshot}/dataset.json` : null;
      const snap = await createSnapshot(deps.db, deps.store, {
        id: input.runId,
        asOf: new Date(input.asOf),
        trigger: 'retrain',
        classNames,
        parentKey,
        replayRatio: deps.replayRatio,
        replayMin: deps.replayMin,
        propagatedLabels: deps.propagatedLabels,
        reviewerQuality: deps.reviewerQuality,
      });
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

    /** A refused variant leaves the float candidate as it is: the run goes on without it. */
    async registerVariant(input: { kind: ModelKind; version: string; precision: ModelPrecision; artifactKey: string; metrics: Record<string, unknown> }) {
      try {
        await registerVariant(deps.db, deps.store, { ...input, bytes: await deps.store.get(input.artifactKey) });
        return { registered: true as const };
      } catch (err) {
        if (err instanceof RegistryError) return { registered: false as const, reason: err.message };
        throw err;
      }
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

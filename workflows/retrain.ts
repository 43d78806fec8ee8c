// retrain: snapshot the reviewed labels -> train the detector and the box model (Python worker)
// -> evaluate candidate and production on the same held-out split -> promotion gate -> register
// -> optional approval -> deploy -> verify -> roll back if verification fails. Every step is an
// activity, recorded in the database and shown in the Web UI's current details.
import {
  CancellationScope,
  condition,
  ContinueAsNew,
  continueAsNew,
  defineSignal,
  defineQuery,
  isCancellation,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  workflowInfo,
  ActivityCancellationType,
} from '@temporalio/workflow';
import type { RetrainActivities } from '../activities/retrain.ts';
import type { RunStatus } from '../db/retrain.ts';
import type { StepRecord } from '../db/schema.ts';
import { TRAINING_QUEUE } from './shared.ts';
import { defaultGate, int8Gate, promotionGate, type PromotionGate } from './promotion-gate.ts';
import type { TrainerActivities, TrainResult } from './trainer-contract.ts';

export interface RetrainInput {
  trigger: 'schedule' | 'drift' | 'manual';
  reason: string;
  requestedBy: string;
  requireApproval?: boolean;
  /** How long to wait for approval before giving up (ms). */
  approvalTimeoutMs?: number;
  epochs?: number;
  boxEpochs?: number;
  gate?: Partial<PromotionGate>;
  /** Training frames the detector's INT8 variant is calibrated on (the trainer's default, 500,
   * when absent; 0: no variant). */
  int8CalibrationFrames?: number;
  /** How long a training step may go without a heartbeat before Temporal retries it on another
   * worker (ms; default 2 minutes). The trainer heartbeats every optimizer step, so lower values
   * recover sooner from a crashed worker; the retry resumes from the last finished epoch. */
  trainingHeartbeatTimeoutMs?: number;
  /** How long every running loop has to confirm the new model before the run rolls back (ms;
   * default a minute). */
  verifyTimeoutMs?: number;
  /** The Python worker's queue (tests run their own). */
  trainingQueue?: string;
  /** Before the snapshot, wait until `minNew` frames (of `streamId`, or of any stream for null)
   * have been reviewed since `since`, checking every `pollMs`; fail after `maxWaitMs`. `deadline`
   * is set by the run itself when it continues as new during a long wait. */
  waitForLabels?: { streamId: string | null; since: string; minNew: number; maxWaitMs: number; pollMs: number; deadline?: string };
  /** A drift-started run: the scope whose drift started it (a stream, or null for global). It
   * takes up that scope's pending triggers and marks them done when it ends. */
  driftScope?: { streamId: string | null };
  /** Labels created up to this time are in the snapshot (default: when the run starts). */
  asOf?: string;
  seed?: number;
}

export const approveSignal = defineSignal<[{ approvedBy: string }]>('approve');
export const rejectSignal = defineSignal<[{ rejectedBy: string; reason?: string }]>('reject');
export const runStepsQuery = defineQuery<StepRecord[]>('steps');

type StepExtra = { status?: RunStatus; snapshotId?: string; candidateVersion?: string; metrics?: Record<string, unknown> };

/** A step ends the run early (too few labels, the gate, a rejection): recorded, not an error. */
class StopRun extends Error {
  constructor(
    readonly status: RunStatus,
    readonly stepDetail: string,
    readonly runDetail: string,
    readonly candidate: string | null = null,
  ) {
    super(runDetail);
    this.name = 'StopRun';
  }
}

const local = proxyActivities<RetrainActivities>({ startToCloseTimeout: '2 minutes', retry: { maximumInterval: '30 seconds', maximumAttempts: 10 } });

export async function retrain(input: RetrainInput): Promise<{ status: RunStatus; candidate: string | null; detail: string }> {
  const runId = workflowInfo().workflowId;
  const gate: PromotionGate = { ...defaultGate, ...input.gate };
  const trainer = proxyActivities<TrainerActivities>({
    taskQueue: input.trainingQueue ?? TRAINING_QUEUE,
    startToCloseTimeout: '2 hours',
    heartbeatTimeout: input.trainingHeartbeatTimeoutMs ?? '2 minutes',
    // A cancelled run waits for the trainer to stop, so nothing keeps training behind its back.
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { maximumAttempts: 3 },
  });
  const evaluator = proxyActivities<TrainerActivities>({
    taskQueue: input.trainingQueue ?? TRAINING_QUEUE,
    startToCloseTimeout: '30 minutes',
    heartbeatTimeout: '5 minutes',
    retry: { maximumAttempts: 3 },
  });

  const steps: StepRecord[] = [];
  let decision: { approved: boolean; by: string; reason?: string } | null = null;
  setHandler(approveSignal, ({ approvedBy }) => void (decision ??= { approved: true, by: approvedBy }));
  setHandler(rejectSignal, ({ rejectedBy, reason }) => void (decision ??= { approved: false, by: rejectedBy, reason }));
  setHandler(runStepsQuery, () => steps);

  const show = (headline: string) =>
    setCurrentDetails(
      [
        `### Retraining (${input.trigger})`,
        `_${input.reason}_`,
        `**${headline}**`,
        '| step | status | detail |',
        '|---|---|---|',
        ...steps.map((s) => `| ${s.name} | ${s.status} | ${s.detail ?? ''} |`),
      ].join('\n'),
    );
  const step = async (name: string, status: StepRecord['status'], detail?: string, extra: StepExtra = {}) => {
    const record: StepRecord = { name, status, at: new Date().toISOString(), detail };
    const i = steps.findIndex((s) => s.name === name);
    if (i >= 0) steps[i] = record;
    else steps.push(record);
    show(extra.status && extra.status !== 'running' ? `finished: ${extra.status}` : `${name}: ${status}`);
    await local.recordRetrainStep({ runId, step: record, ...extra });
  };
  const finish = async (status: RunStatus, detail: string, candidate: string | null = null) => {
    await step('result', status === 'deployed' ? 'done' : 'failed', detail, { status });
    return { status, candidate, detail };
  };

  /**
   * One step of the run: recorded as running (when `started` says so), then done with the detail
   * its body returns; a body that stops the run throws StopRun, and the step is recorded failed.
   * The step under way is what a cancel or an error is recorded against.
   */
  let current = 'labels';
  const runStep = async <T>(name: string, started: string | null, body: () => Promise<{ value: T; detail: string; record?: StepExtra }>): Promise<T> => {
    current = name;
    if (started !== null) await step(name, 'running', started || undefined);
    const out = await body();
    await step(name, 'done', out.detail, out.record);
    return out.value;
  };

  // Runs started by older drift monitors name their stream only in waitForLabels.
  const driftScope = input.trigger === 'drift' ? (input.driftScope ?? { streamId: input.waitForLabels?.streamId ?? null }) : undefined;
  await local.recordRetrainRun({ runId, trigger: input.trigger, reason: input.reason, requestedBy: input.requestedBy, driftScope });
  try {
    const wait = input.waitForLabels;
    if (wait) {
      await runStep('labels', null, async () => {
        const deadline = wait.deadline ? Date.parse(wait.deadline) : Date.now() + wait.maxWaitMs;
        let seen = -1;
        for (;;) {
          const n = await local.countLabelsSince({ streamId: wait.streamId, since: wait.since });
          if (n >= wait.minNew) return { value: undefined, detail: `${n} frames reviewed since ${wait.since}` };
          if (Date.now() >= deadline) {
            throw new StopRun(
              'failed',
              `only ${n} of ${wait.minNew} frames reviewed within ${Math.round(wait.maxWaitMs / 3_600_000)} h`,
              'not enough new labels',
            );
          }
          // Recorded only when the count moves, so a week of waiting stays a short history.
          if (n !== seen) await step('labels', 'running', `waiting for ${wait.minNew} frames reviewed since the drift: ${n} so far`);
          seen = n;
          // A wait of up to 30 days polls thousands of times; the history would outgrow Temporal's
          // limit (51,200 events), so the run continues as new, keeping its deadline.
          if (workflowInfo().continueAsNewSuggested) {
            await continueAsNew<typeof retrain>({ ...input, waitForLabels: { ...wait, deadline: new Date(deadline).toISOString() } });
          }
          await sleep(Math.min(wait.pollMs, Math.max(1, deadline - Date.now())));
        }
      });
    }

    // With a wait, the snapshot holds the labels as they were when it ended (workflow time).
    const snap = await runStep('snapshot', '', async () => {
      const snap = await local.snapshotForRetrain({ runId, asOf: input.asOf ?? new Date().toISOString() });
      if (snap.numImages - snap.numVal < 4 || snap.numVal < 1) {
        throw new StopRun('failed', `${snap.numImages} labelled frames (${snap.numVal} held out): too few to train and evaluate`, 'not enough reviewed labels');
      }
      return { value: snap, detail: `${snap.numImages} frames, ${snap.numAnnotations} boxes, ${snap.numVal} held out`, record: { snapshotId: snap.id } };
    });

    const { detector, box } = await runStep('train', snap.detectionParent ? `fine-tuning ${snap.detectionParent}` : 'from scratch', async () => {
      const common = { dataset_key: snap.datasetKey, image_root_key: '', training_snapshot: snap.id, seed: input.seed ?? 0 };
      const detector: TrainResult = await trainer.train_detector({
        ...common,
        version: runId,
        parent_version: snap.detectionParent,
        epochs: input.epochs ?? 6,
        ...(input.int8CalibrationFrames !== undefined ? { int8_calibration_frames: input.int8CalibrationFrames } : {}),
      });
      const box: TrainResult = await trainer.train_box_model({
        ...common,
        version: runId,
        parent_version: snap.boxParent,
        epochs: input.boxEpochs ?? input.epochs ?? 2,
      });
      const resumed = [detector, box].filter((r) => r.resumed_from_epoch > 0).map((r) => `${r.kind} resumed after epoch ${r.resumed_from_epoch}`);
      const losses = `detector loss ${detector.final_loss.toFixed(3)} (${detector.train_seconds.toFixed(0)} s), box loss ${box.final_loss.toFixed(3)} (${box.train_seconds.toFixed(0)} s)`;
      return { value: { detector, box }, detail: [losses, ...resumed].join('; '), record: { candidateVersion: runId } };
    });

    const { candidateMetrics, productionMetrics, boxMetrics, int8Metrics } = await runStep('evaluate', '', async () => {
      const heldOut = { dataset_key: snap.datasetKey, image_root_key: '', split: 'val' };
      const candidateMetrics = await evaluator.evaluate_detector({ ...heldOut, model_key: detector.artifact_key });
      const productionMetrics = snap.production
        ? await evaluator.evaluate_detector({ ...heldOut, model_key: `models/detection/${snap.production}/model.onnx` })
        : null;
      const int8Metrics = detector.int8_artifact_key ? await evaluator.evaluate_detector({ ...heldOut, model_key: detector.int8_artifact_key }) : null;
      const boxMetrics = await evaluator.evaluate_box_model({ ...heldOut, model_key: box.artifact_key });
      const detail = [
        `candidate mAP@0.5 ${candidateMetrics.map50.toFixed(3)} vs production ${productionMetrics ? productionMetrics.map50.toFixed(3) : '—'}`,
        ...(int8Metrics ? [`INT8 variant ${int8Metrics.map50.toFixed(3)}`] : []),
      ].join('; ');
      return {
        value: { candidateMetrics, productionMetrics, boxMetrics, int8Metrics },
        detail,
        record: { metrics: { candidate: candidateMetrics, production: productionMetrics, box: boxMetrics, int8: int8Metrics } },
      };
    });

    const keepInt8 = await runStep('gate', null, async () => {
      const verdict = promotionGate(candidateMetrics, productionMetrics, gate);
      const reasons = verdict.reasons.join('; ');
      if (!verdict.pass) throw new StopRun('refused', reasons, `promotion gate refused the candidate: ${reasons}`, runId);
      // The variant is judged apart: a refused variant leaves the float candidate to serve.
      const int8 = int8Metrics ? int8Gate(candidateMetrics, int8Metrics, gate) : null;
      return { value: int8?.keep ?? false, detail: [reasons || 'candidate is at least as good', ...(int8 ? [int8.reason] : [])].join('; ') };
    });

    await runStep('register', null, async () => {
      await local.registerCandidate({
        kind: 'detection',
        version: runId,
        artifactKey: detector.artifact_key,
        snapshotId: snap.id,
        parentVersion: snap.production,
        metrics: { ...candidateMetrics },
      });
      await local.registerCandidate({
        kind: 'box',
        version: runId,
        artifactKey: box.artifact_key,
        snapshotId: snap.id,
        parentVersion: snap.productionBox,
        metrics: { ...boxMetrics },
      });
      let variant = '';
      if (keepInt8 && detector.int8_artifact_key && int8Metrics) {
        const out = await local.registerVariant({
          kind: 'detection',
          version: runId,
          precision: 'int8',
          artifactKey: detector.int8_artifact_key,
          metrics: { ...int8Metrics, floatMap50: candidateMetrics.map50 },
        });
        variant = out.registered ? ' (with its INT8 variant)' : ` (its INT8 variant refused: ${out.reason})`;
      }
      return { value: undefined, detail: `detection${variant} and box ${runId}` };
    });

    if (input.requireApproval) {
      await runStep('approval', 'waiting for a lead to approve or reject', async () => {
        const answered = await condition(() => decision !== null, input.approvalTimeoutMs ?? 24 * 3600_000);
        const d = decision;
        if (!answered || !d) throw new StopRun('rejected', 'no decision before the timeout', 'approval timed out', runId);
        if (!d.approved) throw new StopRun('rejected', `rejected by ${d.by}${d.reason ? `: ${d.reason}` : ''}`, `rejected by ${d.by}`, runId);
        return { value: undefined, detail: `approved by ${d.by}` };
      });
    }

    const { deployed, deployedBox } = await runStep('deploy', null, async () => {
      const deployed = await local.deployCandidate({ kind: 'detection', version: runId, triggeredBy: `retrain ${runId}`, reason: input.reason });
      const deployedBox = await local.deployCandidate({ kind: 'box', version: runId, triggeredBy: `retrain ${runId}`, reason: input.reason });
      const confirmed = deployed.loops.length - deployed.pending.length;
      return {
        value: { deployed, deployedBox },
        detail: `production ${deployed.previousVersion ?? '—'} -> ${runId}; ${confirmed} of ${deployed.loops.length} loops confirmed`,
      };
    });

    current = 'verify';
    const check = await local.verifyDeployment({ version: runId, deploymentId: deployed.deploymentId, timeoutMs: input.verifyTimeoutMs ?? 60_000 });
    if (!check.ok) {
      await step('verify', 'failed', `loops still on the old version: ${check.lagging.join(', ')}`);
      // Both models go back: a box model trained with the refused detector is not kept alone.
      const back: string[] = [];
      for (const [kind, previous] of [
        ['detection', deployed.previousVersion],
        ['box', deployedBox.previousVersion],
      ] as const) {
        if (!previous) continue;
        await local.rollbackDeployment({ kind, toVersion: previous, reason: `verification of ${runId} failed` });
        back.push(`${kind} ${previous}`);
      }
      if (back.length) await step('rollback', 'done', `production back to ${back.join(', ')}`);
      return await finish('rolled_back', 'verification failed; rolled back', runId);
    }
    await step('verify', 'done', 'every running loop scores with the new model');
    return await finish('deployed', `deployed ${runId}`, runId);
  } catch (err) {
    // Continuing as new during the label wait is not a failure of the step.
    if (err instanceof ContinueAsNew) throw err;
    if (err instanceof StopRun) {
      await step(current, 'failed', err.stepDetail);
      return await finish(err.status, err.runDetail, err.candidate);
    }
    if (isCancellation(err)) {
      // Record the outcome even though the workflow is being cancelled; production is untouched
      // unless the deploy step had already finished.
      await CancellationScope.nonCancellable(() => step(current, 'failed', 'cancelled', { status: 'cancelled' }));
      throw err;
    }
    await step(current, 'failed', err instanceof Error ? err.message.slice(0, 500) : String(err), { status: 'failed' });
    throw err;
  }
}

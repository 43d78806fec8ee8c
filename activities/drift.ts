// The drift check: compare the latest windows of frame embeddings (globally, or for a stream and
// each of its cameras) with the reference window, store the reports, and act on drift.

import type { Db } from '../db/client.ts';
import {
  cameraWindows,
  cameras,
  driftStartedDeployment,
  earlierDriftFlags,
  ensureBoost,
  getDriftSettings,
  latestWindow,
  modelReference,
  pinnedWindow,
  recordTrigger,
  saveReport,
  type DriftConfirmation,
  type EmbeddingWindow,
} from '../db/drift.ts';
import { productionModel } from '../db/models.ts';
import { driftReport, type DriftReport } from '../drift/report.ts';
import { defaultDriftMonitorSettings } from '../drift/settings.ts';
import { driftDecisions, driftPValue, driftStatistic } from '../observability/metrics.ts';

/** Fewer frames than this in a window make no test. */
const MIN_WINDOW = 20;

// The drift gauges this process last set, per scope (a stream, or the global check): a camera
// that drops out of the tested set (it stopped, or left the busiest maxCameras) has its series
// removed at the next check, so dashboards do not keep showing its last value. Bounded by the
// streams times 1 + maxCameras.
const gaugedSegments = new Map<string, { segmentType: string; segment: string }[]>();

function forgetUntestedSegments(scope: string, tested: { segmentType: string; segment: string }[]): void {
  const now = new Set(tested.map((t) => `${t.segmentType}/${t.segment}`));
  for (const old of gaugedSegments.get(scope) ?? []) {
    if (now.has(`${old.segmentType}/${old.segment}`)) continue;
    const labels = { segment_type: old.segmentType, segment: old.segment };
    driftStatistic.remove(labels);
    driftPValue.remove(labels);
  }
  gaugedSegments.set(
    scope,
    tested.map(({ segmentType, segment }) => ({ segmentType, segment })),
  );
}

export interface DriftCheckInput {
  streamId: string | null;
  checkId: string;
}

export interface SegmentOutcome {
  segment: string;
  segmentType: 'global' | 'stream' | 'camera';
  /** Drift confirmed (acted on); a drift still pending confirmation is `false` here. */
  drift: boolean;
  confirmation: DriftConfirmation;
  reportId: string;
  maxStatistic: number;
  minAdjustedP: number;
}

export interface DriftCheckResult {
  status: 'checked' | 'no_model' | 'no_reference' | 'not_enough_frames';
  modelVersion: string | null;
  intervalSeconds: number;
  segments: SegmentOutcome[];
  /** `world`: the stream (most of its cameras) shifted; `cameras`: only some cameras did. */
  verdict: 'none' | 'world' | 'cameras';
  boosted: string[];
  retrainTriggered: boolean;
  /** What a drift-started retraining run waits for (from the stream's drift settings). */
  retrainMinLabels: number;
  retrainMaxWaitHours: number;
  summary: string;
}

export interface DriftDeps {
  db: Db;
  now?: () => Date;
}

export function createDriftActivities(deps: DriftDeps) {
  const now = deps.now ?? (() => new Date());

  return {
    async runDriftCheck(input: DriftCheckInput): Promise<DriftCheckResult> {
      const { db } = deps;
      const settings = input.streamId ? await getDriftSettings(db, input.streamId) : defaultDriftMonitorSettings;
      const base = {
        intervalSeconds: settings.intervalSeconds,
        retrainMinLabels: settings.retrainMinLabels,
        retrainMaxWaitHours: settings.retrainMaxWaitHours,
        segments: [] as SegmentOutcome[],
        verdict: 'none' as const,
        boosted: [] as string[],
        retrainTriggered: false,
      };
      const modelVersion = (await productionModel(db, 'detection'))?.version ?? null;
      if (!modelVersion) return { ...base, status: 'no_model', modelVersion: null, summary: 'no detection model in production' };

      let reference: EmbeddingWindow;
      let referenceName: string;
      const rebasedAt =
        !settings.pinnedReference && input.streamId && settings.referenceAfterRetrainMinutes > 0
          ? await driftStartedDeployment(db, { modelVersion, streamId: input.streamId })
          : null;
      if (rebasedAt && input.streamId) {
        const to = new Date(rebasedAt.getTime() + settings.referenceAfterRetrainMinutes * 60_000);
        reference = await pinnedWindow(db, { modelVersion, streamId: input.streamId, from: rebasedAt, to, limit: 5000 });
        referenceName = `frames of stream ${input.streamId} scored by ${modelVersion} in the ${settings.referenceAfterRetrainMinutes} minutes after its drift-started deploy (${rebasedAt.toISOString()})`;
      } else if (settings.pinnedReference && input.streamId) {
        reference = await pinnedWindow(db, {
          modelVersion,
          streamId: input.streamId,
          from: settings.pinnedReference.from,
          to: settings.pinnedReference.to,
          limit: 5000,
        });
        referenceName = `pinned ${settings.pinnedReference.from.toISOString()} to ${settings.pinnedReference.to.toISOString()}`;
      } else {
        reference = await modelReference(db, modelVersion);
        referenceName = `held-out frames of model ${modelVersion}`;
      }
      if (reference.embeddings.length < MIN_WINDOW) {
        return {
          ...base,
          status: 'no_reference',
          modelVersion,
          summary: `the reference (${referenceName}) has ${reference.embeddings.length} frames; at least ${MIN_WINDOW} are needed`,
        };
      }
      const reportSettings = {
        alpha: settings.alpha,
        components: settings.components,
        correction: settings.correction,
        minEffect: settings.minEffect,
        classifierMinAuc: settings.classifierMinAuc,
        noveltyMinShare: settings.noveltyMinShare,
        spreadMinRatio: settings.spreadMinRatio,
      };

      const test = async (
        segmentType: SegmentOutcome['segmentType'],
        segment: string,
        current: EmbeddingWindow,
        against = { window: reference, name: referenceName },
      ): Promise<SegmentOutcome | null> => {
        if (current.embeddings.length < MIN_WINDOW || against.window.embeddings.length < MIN_WINDOW) return null;
        const ref = against.window;
        const report: DriftReport = await driftReport(
          {
            reference: ref.embeddings,
            current: current.embeddings,
            referenceScores: ref.scores,
            currentScores: current.scores,
            referenceDetections: ref.detections,
            currentDetections: current.detections,
          },
          reportSettings,
        );
        // One test can be a fluke: drift counts once `confirmDrifted` of the segment's last
        // `confirmChecks` checks under this model found it.
        const earlier = await earlierDriftFlags(db, {
          segmentType,
          segmentKey: segment,
          modelVersion,
          exceptCheckId: input.checkId,
          limit: settings.confirmChecks - 1,
        });
        const driftedChecks = earlier.filter(Boolean).length + (report.drift ? 1 : 0);
        const confirmed = report.drift && driftedChecks >= settings.confirmDrifted;
        const confirmation: DriftConfirmation = {
          driftedChecks,
          ofChecks: earlier.length + 1,
          needed: settings.confirmDrifted,
          window: settings.confirmChecks,
          status: confirmed ? 'confirmed' : report.drift ? 'pending' : 'none',
        };
        const reportId = await saveReport(db, {
          checkId: input.checkId,
          segmentType,
          segmentKey: segment,
          modelVersion,
          // The novel frames by id, so a lead can open them (the report counts positions in the window).
          report: {
            ...report,
            reference: against.name,
            confirmation,
            novelFrameIds: current.frameIds ? report.novelty.novelIndices.map((i) => current.frameIds![i]) : [],
          },
        });
        driftStatistic.set({ segment_type: segmentType, segment }, report.maxStatistic);
        driftPValue.set({ segment_type: segmentType, segment }, report.minAdjustedP);
        driftDecisions.inc({ segment_type: segmentType, decision: confirmed ? 'drift' : report.drift ? 'pending_confirmation' : 'no_drift' });
        return { segment, segmentType, drift: confirmed, confirmation, reportId, maxStatistic: report.maxStatistic, minAdjustedP: report.minAdjustedP };
      };

      const segments: SegmentOutcome[] = [];
      let camerasLeftOut = false;
      if (!input.streamId) {
        const outcome = await test('global', 'all', await latestWindow(db, { modelVersion, size: settings.windowSize, stride: settings.windowStride }));
        if (outcome) segments.push(outcome);
      } else {
        const streamOutcome = await test(
          'stream',
          input.streamId,
          await latestWindow(db, { modelVersion, size: settings.windowSize, stride: settings.windowStride, streamId: input.streamId }),
        );
        if (streamOutcome) segments.push(streamOutcome);
        // Each camera against its own first frames under this model (see cameraWindows); the
        // busiest `maxCameras` of them, so a client inventing camera ids cannot multiply the work.
        const tested = await cameras(db, input.streamId, modelVersion, settings.maxCameras);
        camerasLeftOut = tested.more;
        for (const cameraId of tested.ids) {
          const { baseline, current } = await cameraWindows(db, {
            modelVersion,
            size: settings.windowSize,
            stride: settings.windowStride,
            streamId: input.streamId,
            cameraId,
          });
          const o = await test('camera', `${input.streamId}/${cameraId}`, current, {
            window: baseline,
            name: `the first ${baseline.embeddings.length} frames of camera ${cameraId} scored by ${modelVersion}`,
          });
          if (o) segments.push(o);
        }
      }
      forgetUntestedSegments(input.streamId ?? 'global', segments);
      if (segments.length === 0)
        return { ...base, status: 'not_enough_frames', modelVersion, summary: `fewer than ${MIN_WINDOW} frames scored by ${modelVersion} yet` };

      // A camera that moves while its neighbours do not is a camera problem (dirty lens, new
      // mount); most cameras moving together is the world changing.
      const cams = segments.filter((s) => s.segmentType === 'camera');
      const driftedCams = cams.filter((s) => s.drift);
      const streamLevel = segments.find((s) => s.segmentType !== 'camera');
      let verdict: DriftCheckResult['verdict'] = 'none';
      if (cams.length > 0 && driftedCams.length > cams.length / 2) verdict = 'world';
      else if (driftedCams.length > 0) verdict = 'cameras';
      else if (streamLevel?.drift) verdict = 'world';

      const boosted: string[] = [];
      let retrainTriggered = false;
      if (verdict !== 'none' && input.streamId) {
        const at = now();
        const until = new Date(at.getTime() + settings.boostMinutes * 60_000);
        const targets = verdict === 'world' ? [null] : driftedCams.map((c) => c.segment.slice(input.streamId!.length + 1));
        for (const cameraId of targets) {
          const reason = verdict === 'world' ? 'drift: stream shifted' : `drift: camera ${cameraId} shifted`;
          if (await ensureBoost(db, { streamId: input.streamId, cameraId, reason, until, now: at })) boosted.push(cameraId ?? input.streamId);
        }
        const trigger = (verdict === 'world' ? streamLevel : driftedCams[0]) ?? segments[0];
        retrainTriggered = await recordTrigger(db, {
          dedupeKey: `${input.checkId}:${trigger.segment}`,
          reason: verdict === 'world' ? `drift on stream ${input.streamId}` : `drift on camera ${trigger.segment}`,
          streamId: input.streamId,
          reportId: trigger.reportId,
        });
      } else if (verdict !== 'none') {
        retrainTriggered = await recordTrigger(db, {
          dedupeKey: `${input.checkId}:all`,
          reason: 'drift across all streams',
          streamId: null,
          reportId: segments[0].reportId,
        });
      }
      const pending = segments.filter((s) => s.confirmation.status === 'pending');
      const summary =
        (verdict === 'world'
          ? `drift: the stream shifted (${driftedCams.length}/${cams.length} cameras)`
          : verdict === 'cameras'
            ? `drift: camera ${driftedCams.map((c) => c.segment).join(', ')} only`
            : pending.length
              ? `drift pending confirmation: ${pending.map((s) => `${s.segment} (${s.confirmation.driftedChecks} of the last ${s.confirmation.ofChecks} checks; ${s.confirmation.needed} of ${s.confirmation.window} needed)`).join(', ')}`
              : 'no drift') + (camerasLeftOut ? ` (only the ${settings.maxCameras} busiest cameras tested)` : '');
      return { ...base, status: 'checked', modelVersion, segments, verdict, boosted, retrainTriggered, summary };
    },
  };
}

export type DriftActivities = ReturnType<typeof createDriftActivities>;

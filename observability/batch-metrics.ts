// Turns one scored batch's report into metric updates (called by the worker after each batch).
import type { BatchReport } from '../activities/scoring.ts';
import {
  batchSize,
  batchStageSeconds,
  detectionsPerFrame,
  framesQuarantined,
  framesScored,
  predictionConfidence,
  predictionsTotal,
  framesRouted,
  selectionTargetRate,
  selectionThreshold,
  tasksRouted,
} from './metrics.ts';

export function recordBatch(report: BatchReport): void {
  framesScored.inc({ stream: report.streamId, model_version: report.modelVersion }, report.framesScored);
  batchSize.observe(report.framesScored);
  for (const [stage, ms] of Object.entries(report.timings)) batchStageSeconds.observe({ stage }, ms / 1000);
  for (const frame of report.frames) {
    detectionsPerFrame.observe({ stream: report.streamId }, frame.detections.length);
    for (const d of frame.detections) {
      predictionsTotal.inc({ stream: report.streamId, class: d.className, model_version: report.modelVersion });
      predictionConfidence.observe({ class: d.className, model_version: report.modelVersion }, d.score);
    }
  }
  for (const f of report.failures) framesQuarantined.inc({ stream: report.streamId, reason: f.reason });
  const frameReasons = new Map<string, string>();
  for (const t of report.tasks) {
    tasksRouted.inc({ stream: report.streamId, reason: t.reason, policy_version: String(report.policyVersion) });
    if (!frameReasons.has(t.frameId)) frameReasons.set(t.frameId, t.reason);
  }
  for (const reason of frameReasons.values()) framesRouted.inc({ stream: report.streamId, reason });
  if (report.pacing) {
    selectionTargetRate.set({ stream: report.streamId }, report.pacing.targetRate);
    if (report.pacing.threshold !== null) selectionThreshold.set({ stream: report.streamId }, report.pacing.threshold);
  }
}

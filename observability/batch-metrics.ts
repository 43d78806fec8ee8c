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

// Series labelled with a model version: those of the versions this process scored with most
// recently are kept (a deploy's before and after, as the model cache keeps them loaded); an older
// version's are removed, or every version ever deployed would leave its series in /metrics for
// good (62 of them per version with 2 streams and 4 classes). Per version only its streams and
// classes are noted; at removal every stream x class pair is tried (removing a label set that was
// never used does nothing). Bounded: KEPT_VERSIONS entries.
const KEPT_VERSIONS = 3;
const versionSeries = new Map<string, { streams: Set<string>; classes: Set<string> }>();

function noteVersionSeries(report: BatchReport): void {
  const version = report.modelVersion;
  const seen = versionSeries.get(version) ?? { streams: new Set(), classes: new Set() };
  versionSeries.delete(version); // re-inserted last: the map's order is least recent first
  versionSeries.set(version, seen);
  seen.streams.add(report.streamId);
  for (const frame of report.frames) for (const d of frame.detections) seen.classes.add(d.className);
  while (versionSeries.size > KEPT_VERSIONS) {
    const [old, { streams, classes }] = versionSeries.entries().next().value!;
    versionSeries.delete(old);
    for (const cls of classes) predictionConfidence.remove({ class: cls, model_version: old });
    for (const stream of streams) {
      framesScored.remove({ stream, model_version: old });
      for (const cls of classes) predictionsTotal.remove({ stream, class: cls, model_version: old });
    }
  }
}

export function recordBatch(report: BatchReport): void {
  noteVersionSeries(report);
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

// Prometheus metrics of every stage, all prefixed `dataengine_`. Labels are bounded sets
// (stream, camera, class, model version, policy version, outcome) and never frame or task ids.
// Dashboards and alert rules in dashboards/ use only the names defined here.
import client from 'prom-client';
import { config } from '../config.ts';

export const registry = new client.Registry();
/**
 * Each reviewer's gold accuracy and consensus agreement: served to leads only
 * (`GET /v1/metrics/reviewers`, with a token), never on the open /metrics. A reviewer watching
 * their own series move after an answer would learn which frames are gold checks.
 */
export const reviewerRegistry = new client.Registry();
client.collectDefaultMetrics({ register: registry, prefix: 'dataengine_process_' });

const stageBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * The camera label of a metric. Camera ids are chosen by clients, so a stream keeps the first
 * METRIC_MAX_CAMERAS ids it sees as label values and counts the rest as `other`: a misbehaving
 * client cannot create unbounded series.
 */
const camerasSeen = new Map<string, Set<string>>();
export function cameraLabel(streamId: string, cameraId: string, max = config.METRIC_MAX_CAMERAS): string {
  let seen = camerasSeen.get(streamId);
  if (!seen) camerasSeen.set(streamId, (seen = new Set()));
  if (seen.has(cameraId)) return cameraId;
  if (seen.size >= max) return 'other';
  seen.add(cameraId);
  return cameraId;
}

export const framesIngested = new client.Counter({
  name: 'dataengine_frames_ingested_total',
  help: 'Frames accepted by ingestion (duplicates excluded)',
  labelNames: ['stream', 'camera', 'source'] as const,
  registers: [registry],
});
export const bytesIngested = new client.Counter({
  name: 'dataengine_frame_bytes_ingested_total',
  help: 'Bytes of accepted frames',
  labelNames: ['stream', 'camera'] as const,
  registers: [registry],
});
export const ingestRejected = new client.Counter({
  name: 'dataengine_frames_rejected_total',
  help: 'Frames refused by ingestion, by reason',
  labelNames: ['reason'] as const,
  registers: [registry],
});
export const framesScored = new client.Counter({
  name: 'dataengine_frames_scored_total',
  help: 'Frames scored by the detector',
  labelNames: ['stream', 'model_version'] as const,
  registers: [registry],
});
export const framesQuarantined = new client.Counter({
  name: 'dataengine_frames_quarantined_total',
  help: 'Frames the loop could not score and set aside (missing_blob, undecodable, too_many_pixels)',
  labelNames: ['stream', 'reason'] as const,
  registers: [registry],
});
export const batchStageSeconds = new client.Histogram({
  name: 'dataengine_batch_stage_seconds',
  help: 'Time per scoring batch, by stage (read, decode, preprocess, inference, postprocess, route, persist)',
  labelNames: ['stage'] as const,
  buckets: stageBuckets,
  registers: [registry],
});
export const batchSize = new client.Histogram({
  name: 'dataengine_batch_frames',
  help: 'Frames per scoring batch',
  buckets: [1, 2, 4, 8, 16, 32, 64],
  registers: [registry],
});
export const predictionsTotal = new client.Counter({
  name: 'dataengine_predictions_total',
  help: 'Stored detections, by class',
  labelNames: ['stream', 'class', 'model_version'] as const,
  registers: [registry],
});
export const predictionConfidence = new client.Histogram({
  name: 'dataengine_prediction_confidence',
  help: 'Confidence of stored detections',
  labelNames: ['class', 'model_version'] as const,
  buckets: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1],
  registers: [registry],
});
export const detectionsPerFrame = new client.Histogram({
  name: 'dataengine_detections_per_frame',
  help: 'Detections stored per scored frame',
  labelNames: ['stream'] as const,
  buckets: [0, 1, 2, 3, 5, 8, 13, 21, 34],
  registers: [registry],
});
export const tasksRouted = new client.Counter({
  name: 'dataengine_tasks_routed_total',
  help: 'Review tasks created, by routing reason and policy version',
  labelNames: ['stream', 'reason', 'policy_version'] as const,
  registers: [registry],
});
export const framesRouted = new client.Counter({
  name: 'dataengine_frames_routed_total',
  help: 'Frames sent to review (one or more tasks), by routing reason; divide by dataengine_frames_scored_total for the selection rate',
  labelNames: ['stream', 'reason'] as const,
  registers: [registry],
});
export const selectionThreshold = new client.Gauge({
  name: 'dataengine_selection_threshold',
  help: 'Ranked selection: the value a frame had to reach in the newest batch (uncertainty x novelty)',
  labelNames: ['stream'] as const,
  registers: [registry],
});
export const selectionTargetRate = new client.Gauge({
  name: 'dataengine_selection_target_rate',
  help: 'Ranked selection: the share of frames the daily budget left allows until the end of the UTC day',
  labelNames: ['stream'] as const,
  registers: [registry],
});
export const boxAssistSeconds = new client.Histogram({
  name: 'dataengine_box_assist_seconds',
  help: 'Box-assist request latency (server side), by box model version',
  labelNames: ['model_version'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6],
  registers: [registry],
});
export const boxAssistBytesDecoded = new client.Histogram({
  name: 'dataengine_box_assist_decoded_bytes',
  help: 'Bytes of pixels decoded per box-assist request (a region, not the frame)',
  buckets: [1e3, 5e3, 2e4, 5e4, 1e5, 2.5e5, 1e6, 4e6],
  registers: [registry],
});
export const driftStatistic = new client.Gauge({
  name: 'dataengine_drift_statistic',
  help: 'Largest per-component KS statistic of the last drift check, by segment',
  labelNames: ['segment_type', 'segment'] as const,
  registers: [registry],
});
export const driftPValue = new client.Gauge({
  name: 'dataengine_drift_min_adjusted_p',
  help: 'Smallest corrected p-value of the last drift check, by segment',
  labelNames: ['segment_type', 'segment'] as const,
  registers: [registry],
});
export const driftDecisions = new client.Counter({
  name: 'dataengine_drift_checks_total',
  help: 'Drift checks by segment type and decision',
  labelNames: ['segment_type', 'decision'] as const,
  registers: [registry],
});
export const retrainRunsTotal = new client.Counter({
  name: 'dataengine_retrain_runs_total',
  help: 'Finished retraining runs by outcome (deployed, refused, rejected, failed, cancelled, rolled_back)',
  labelNames: ['outcome'] as const,
  registers: [registry],
});
export const reviewClaims = new client.Counter({
  name: 'dataengine_review_claims_total',
  help: 'Tasks leased to reviewers',
  labelNames: ['stream'] as const,
  registers: [registry],
});
export const reviewLeaseExpiries = new client.Counter({
  name: 'dataengine_review_lease_expiries_total',
  help: 'Tasks claimed again because an earlier lease expired unanswered',
  labelNames: ['stream'] as const,
  registers: [registry],
});
export const reviewDecisions = new client.Counter({
  name: 'dataengine_review_decisions_total',
  help: 'Labels stored from review, by decision (accept, reject, correct)',
  labelNames: ['stream', 'decision'] as const,
  registers: [registry],
});
export const modelEvalMap50 = new client.Gauge({
  name: 'dataengine_model_eval_map50',
  help: 'mAP@0.5 on the held-out split at the last retraining evaluation',
  labelNames: ['kind', 'role'] as const,
  registers: [registry],
});

export interface QueueReading {
  open: { stream: string; class: string; count: number; oldestAgeSeconds: number }[];
  framesWaiting: { stream: string; count: number }[];
  production: { kind: string; version: string }[];
  reviewers: { reviewer: string; accuracy: number | null; answers: number; paused: boolean; agreement: number | null }[];
}

/**
 * Gauges read from the database when Prometheus scrapes, so every API process reports the same
 * current values (a counter kept in one process could not show the queue's depth).
 */
export function registerDatabaseGauges(read: () => Promise<QueueReading>): void {
  let last: Promise<QueueReading> | null = null;
  // One database read per scrape, shared by the gauges' collect callbacks.
  const reading = () => (last ??= read().finally(() => setTimeout(() => (last = null), 1000)));
  new client.Gauge({
    name: 'dataengine_queue_open_tasks',
    help: 'Open review tasks (pending or leased) per stream and class',
    labelNames: ['stream', 'class'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const r of (await reading()).open) this.set({ stream: r.stream, class: r.class }, r.count);
    },
  });
  new client.Gauge({
    name: 'dataengine_queue_oldest_task_age_seconds',
    help: 'Age of the oldest open review task per stream and class',
    labelNames: ['stream', 'class'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const r of (await reading()).open) this.set({ stream: r.stream, class: r.class }, r.oldestAgeSeconds);
    },
  });
  new client.Gauge({
    name: 'dataengine_frames_waiting',
    help: 'Frames ingested but not yet scored, per stream',
    labelNames: ['stream'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const r of (await reading()).framesWaiting) this.set({ stream: r.stream }, r.count);
    },
  });
  new client.Gauge({
    name: 'dataengine_reviewer_gold_accuracy',
    help: "A reviewer's rolling accuracy on gold tasks (mean F1 at IoU 0.5 over the last GOLD_WINDOW answers); absent before the first answer",
    labelNames: ['reviewer'] as const,
    registers: [reviewerRegistry],
    async collect() {
      this.reset();
      for (const r of (await reading()).reviewers) if (r.accuracy !== null) this.set({ reviewer: r.reviewer }, r.accuracy);
    },
  });
  new client.Gauge({
    name: 'dataengine_reviewer_gold_answers',
    help: 'Gold answers the rolling accuracy counts, per reviewer',
    labelNames: ['reviewer'] as const,
    registers: [reviewerRegistry],
    async collect() {
      this.reset();
      for (const r of (await reading()).reviewers) this.set({ reviewer: r.reviewer }, r.answers);
    },
  });
  new client.Gauge({
    name: 'dataengine_reviewer_consensus_agreement',
    help: "A reviewer's mean agreement (F1) with the merged label of the consensus tasks they answered; absent before the first",
    labelNames: ['reviewer'] as const,
    registers: [reviewerRegistry],
    async collect() {
      this.reset();
      for (const r of (await reading()).reviewers) if (r.agreement !== null) this.set({ reviewer: r.reviewer }, r.agreement);
    },
  });
  new client.Gauge({
    name: 'dataengine_reviewer_paused',
    help: '1 while a reviewer is paused from the queue for low gold accuracy',
    labelNames: ['reviewer'] as const,
    registers: [reviewerRegistry],
    async collect() {
      this.reset();
      for (const r of (await reading()).reviewers) this.set({ reviewer: r.reviewer }, r.paused ? 1 : 0);
    },
  });
  new client.Gauge({
    name: 'dataengine_model_production_info',
    help: 'The model version in production per kind (value 1)',
    labelNames: ['kind', 'version'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const p of (await reading()).production) this.set({ kind: p.kind, version: p.version }, 1);
    },
  });
}
export const retrainStepSeconds = new client.Histogram({
  name: 'dataengine_retrain_step_seconds',
  help: 'Duration of retraining steps (snapshot, train, evaluate, ...), by step and outcome',
  labelNames: ['step', 'outcome'] as const,
  buckets: [1, 5, 15, 60, 300, 900, 1800, 3600, 7200],
  registers: [registry],
});

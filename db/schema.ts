// Every table of the data engine. drizzle-kit reads this file to generate migrations.
// Columns are snake_case in SQL and camelCase in TypeScript.
import { sql } from 'drizzle-orm';
import {
  bigint,
  bigserial,
  boolean,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgTable,
  real,
  serial,
  text,
  timestamp,
  uniqueIndex,
  uuid,
  vector,
} from 'drizzle-orm/pg-core';

// The shapes stored in jsonb columns, so a read needs no cast (type-only imports: erased at run
// time, so the schema loads nothing else).
import type { DriftReport } from '../drift/report.ts';
import type { DriftMonitorSettings } from '../drift/settings.ts';
import type { ModelMetadata } from '../models/contract.ts';
import type { FrameSelection } from '../policies/route.ts';
import type { SamplingPolicy } from '../policies/sampling-policy.ts';

/** A box of a label, normalized to the frame (0..1). */
export interface LabelBox {
  className: string;
  x1: number;
  y1: number;
  x2: number;
  y2: number;
}

/** One step of a retraining run, as the run records it. */
export interface StepRecord {
  name: string;
  status: 'running' | 'done' | 'failed' | 'skipped';
  at: string;
  detail?: string;
}

/** Frame-level embedding width of the detection contract (docs/contracts.md). */
export const EMBEDDING_DIM = 128;
/** Object embedding width of the detection contract: one vector per stored detection. */
export const OBJECT_EMBEDDING_DIM = 64;

const createdAt = () => timestamp('created_at', { withTimezone: true }).notNull().defaultNow();

export const users = pgTable('users', {
  id: uuid('id').primaryKey().defaultRandom(),
  name: text('name').notNull().unique(),
  role: text('role', { enum: ['reviewer', 'lead', 'admin', 'camera'] }).notNull(),
  // sha256 of the bearer token: tokens are long random strings, so a fast hash is enough
  // and lets a request be authenticated with one indexed lookup.
  tokenHash: text('token_hash').notNull().unique(),
  // A camera token is bound to these streams (and, when set, these camera ids); other roles
  // leave both null.
  streams: text('streams').array(),
  cameraIds: text('camera_ids').array(),
  // The token stops working at this time (null: no expiry).
  tokenExpiresAt: timestamp('token_expires_at', { withTimezone: true }),
  // A disabled user is refused whatever token they send, until an admin enables them again.
  disabledAt: timestamp('disabled_at', { withTimezone: true }),
  // A reviewer whose accuracy on gold tasks fell below the pass score claims nothing until a lead
  // resumes them; the reason is the message they see.
  queuePausedAt: timestamp('queue_paused_at', { withTimezone: true }),
  queuePausedReason: text('queue_paused_reason'),
  // Gold answers before this time do not count (set when a lead resumes the reviewer).
  goldSince: timestamp('gold_since', { withTimezone: true }),
  createdAt: createdAt(),
});

export const streams = pgTable('streams', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  // Sequence number of the last frame the loop has scored; advanced in the same transaction
  // that stores a batch's predictions, so a retried batch never scores a frame twice.
  scoredThroughSeq: integer('scored_through_seq').notNull().default(0),
  // Set when the loop found no frames and sleeps until woken (it then holds no worker slot);
  // the first frame ingested after clears it and wakes the loop with a signal.
  loopIdleSince: timestamp('loop_idle_since', { withTimezone: true }),
  createdAt: createdAt(),
});

export const frames = pgTable(
  'frames',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    // Arrival order within the whole table; the loop pulls frames of a stream by seq.
    seq: bigserial('seq', { mode: 'number' }).notNull().unique(),
    streamId: text('stream_id')
      .notNull()
      .references(() => streams.id),
    cameraId: text('camera_id').notNull(),
    capturedAt: timestamp('captured_at', { withTimezone: true }).notNull(),
    contentHash: text('content_hash').notNull(),
    storageKey: text('storage_key').notNull(),
    mediaType: text('media_type').notNull(),
    sizeBytes: integer('size_bytes').notNull(),
    width: integer('width').notNull(),
    height: integer('height').notNull(),
    ingestedAt: timestamp('ingested_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('frames_stream_hash_uq').on(t.streamId, t.contentHash),
    index('frames_stream_seq_idx').on(t.streamId, t.seq),
    index('frames_stream_camera_captured_idx').on(t.streamId, t.cameraId, t.capturedAt),
    // The stream's frame rate over the last hour, read by every batch of the ranked selection.
    index('frames_stream_ingested_idx').on(t.streamId, t.ingestedAt),
  ],
);

/** One row per (frame, model version) that was scored: the idempotency marker of scoring. */
export const frameScores = pgTable(
  'frame_scores',
  {
    frameId: uuid('frame_id')
      .notNull()
      .references(() => frames.id),
    modelVersion: text('model_version').notNull(),
    streamId: text('stream_id').notNull(),
    cameraId: text('camera_id').notNull(),
    numDetections: integer('num_detections').notNull(),
    embedding: vector('embedding', { dimensions: EMBEDDING_DIM }).notNull(),
    // The ranked selection's value of the frame (uncertainty x novelty); the paced threshold is a
    // quantile of the stream's recent values. Null for frames scored before the selection existed,
    // and for frames that were no candidates (labelled ones, near-duplicates of queued ones).
    selectionValue: doublePrecision('selection_value'),
    // The scores the selection gave the frame. A frame that came labelled (an import) is not
    // routed and its value stays out of the pacing, but its scores are kept: a gold task made of
    // it shows them like any routed task, so a reviewer cannot tell it apart.
    selection: jsonb('selection').$type<FrameSelection>(),
    scoredAt: timestamp('scored_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [uniqueIndex('frame_scores_pk').on(t.frameId, t.modelVersion), index('frame_scores_stream_scored_idx').on(t.streamId, t.scoredAt)],
);

/**
 * Frames the loop could not score (blob missing, undecodable, over the pixel limit): set aside
 * with the reason in the same transaction that stores their batch, so the stream goes on and a
 * lead can see and fix them. A quarantined frame is never offered to the loop again.
 */
export const frameFailures = pgTable(
  'frame_failures',
  {
    frameId: uuid('frame_id')
      .primaryKey()
      .references(() => frames.id),
    streamId: text('stream_id')
      .notNull()
      .references(() => streams.id),
    reason: text('reason', { enum: ['missing_blob', 'undecodable', 'too_many_pixels'] }).notNull(),
    detail: text('detail').notNull(),
    modelVersion: text('model_version').notNull(),
    failedAt: timestamp('failed_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('frame_failures_stream_failed_idx').on(t.streamId, t.failedAt)],
);

export const predictions = pgTable(
  'predictions',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    frameId: uuid('frame_id')
      .notNull()
      .references(() => frames.id),
    modelVersion: text('model_version').notNull(),
    rank: integer('rank').notNull(),
    className: text('class_name').notNull(),
    score: real('score').notNull(),
    // Box normalized to the frame (0..1), x1 y1 x2 y2.
    x1: real('x1').notNull(),
    y1: real('y1').notNull(),
    x2: real('x2').notNull(),
    y2: real('y2').notNull(),
    // The track the detection belongs to: detections of one object on consecutive frames of a
    // camera share it (models/tracker.ts); named after the track's first detection.
    trackId: uuid('track_id'),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('predictions_frame_model_rank_uq').on(t.frameId, t.modelVersion, t.rank), index('predictions_track_idx').on(t.trackId)],
);

/**
 * Object embeddings of stored detections: the pgvector implementation of the vector index
 * (storage/vector-index.ts). The id is the prediction's; the other columns are the filters a
 * search may ask for, kept beside the vector so a filtered HNSW scan needs no join.
 */
export const objectVectors = pgTable(
  'object_vectors',
  {
    predictionId: uuid('prediction_id')
      .primaryKey()
      .references(() => predictions.id),
    frameId: uuid('frame_id').notNull(),
    streamId: text('stream_id').notNull(),
    cameraId: text('camera_id').notNull(),
    modelVersion: text('model_version').notNull(),
    className: text('class_name').notNull(),
    score: real('score').notNull(),
    capturedAt: timestamp('captured_at', { withTimezone: true }).notNull(),
    // The class a person confirmed for the object (directly or by a confirmed proposal); null
    // while unlabelled. Filters "labelled" and "unlabelled" searches.
    labelClass: text('label_class'),
    embedding: vector('embedding', { dimensions: OBJECT_EMBEDDING_DIM }).notNull(),
  },
  (t) => [
    index('object_vectors_embedding_hnsw').using('hnsw', t.embedding.op('vector_cosine_ops')),
    index('object_vectors_model_stream_captured_idx').on(t.modelVersion, t.streamId, t.capturedAt),
  ],
);

/**
 * What people decided about objects, one row per (object, class): a positive (the object is of
 * the class) or a negative (it is not, and must not be proposed for it again). A propagated
 * proposal is a positive row in status `proposed` until a person confirms it (status
 * `confirmed`) or rejects it (it turns into a confirmed negative).
 */
export const objectLabels = pgTable(
  'object_labels',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    predictionId: uuid('prediction_id')
      .notNull()
      .references(() => predictions.id),
    frameId: uuid('frame_id')
      .notNull()
      .references(() => frames.id),
    streamId: text('stream_id').notNull(),
    className: text('class_name').notNull(),
    polarity: text('polarity', { enum: ['positive', 'negative'] }).notNull(),
    status: text('status', { enum: ['proposed', 'confirmed'] }).notNull(),
    provenance: text('provenance', { enum: ['review', 'propagated'] }).notNull(),
    // A propagated row: the object whose label it was proposed from, and its distance to it.
    seedPredictionId: uuid('seed_prediction_id').references(() => predictions.id),
    distance: real('distance'),
    // How a proposal was found: a close embedding, or the seed's track.
    via: text('via', { enum: ['embedding', 'track'] }),
    // Who marked the object (review), or whose mark proposed it (propagated).
    createdBy: uuid('created_by').references(() => users.id),
    // Who confirmed or rejected a proposal; for a review row, the person who marked it.
    decidedBy: uuid('decided_by').references(() => users.id),
    decidedAt: timestamp('decided_at', { withTimezone: true }),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex('object_labels_prediction_class_uq').on(t.predictionId, t.className),
    index('object_labels_class_status_idx').on(t.className, t.status, t.createdAt),
    index('object_labels_frame_idx').on(t.frameId),
  ],
);

export const samplingPolicies = pgTable(
  'sampling_policies',
  {
    id: serial('id').primaryKey(),
    streamId: text('stream_id')
      .notNull()
      .references(() => streams.id),
    version: integer('version').notNull(),
    policy: jsonb('policy').$type<SamplingPolicy>().notNull(),
    createdBy: text('created_by').notNull(),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('sampling_policies_stream_version_uq').on(t.streamId, t.version)],
);

export const reviewTasks = pgTable(
  'review_tasks',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    // `${frameId}:${modelVersion}:${rank|random}`: a retried routing step hits this and adds nothing.
    dedupeKey: text('dedupe_key').notNull().unique(),
    streamId: text('stream_id')
      .notNull()
      .references(() => streams.id),
    cameraId: text('camera_id').notNull(),
    frameId: uuid('frame_id')
      .notNull()
      .references(() => frames.id),
    predictionId: uuid('prediction_id').references(() => predictions.id),
    modelVersion: text('model_version').notNull(),
    className: text('class_name'),
    score: real('score'),
    reason: text('reason', { enum: ['band', 'random', 'drift_boost', 'novel'] }).notNull(),
    policyVersion: integer('policy_version').notNull(),
    // Why the frame was routed: its uncertainty, novelty, value and the threshold it reached.
    selection: jsonb('selection').$type<FrameSelection>(),
    priority: integer('priority').notNull().default(0),
    // A gold task: the label its answer is scored against. Created leased to one reviewer at a
    // claim, shaped like the task that labelled the frame, and never shown as gold to them.
    goldLabelId: uuid('gold_label_id'),
    // Consensus: how many different reviewers answer this task before it is decided (1: one), and
    // whether the merged answers disagreed enough to need a lead (`needed`, then `resolved`).
    reviewsNeeded: integer('reviews_needed').notNull().default(1),
    adjudication: text('adjudication', { enum: ['needed', 'resolved'] }),
    status: text('status', { enum: ['pending', 'leased', 'done'] })
      .notNull()
      .default('pending'),
    leaseOwner: uuid('lease_owner').references(() => users.id),
    leaseExpiresAt: timestamp('lease_expires_at', { withTimezone: true }),
    attempts: integer('attempts').notNull().default(0),
    createdAt: createdAt(),
    completedAt: timestamp('completed_at', { withTimezone: true }),
  },
  (t) => [
    // The claim query's order over open tasks, of all streams and of one: the claim reads the
    // first unlocked entry instead of sorting every open task (75,000 open: 55 ms -> 0.2 ms).
    index('review_tasks_open_order_idx')
      .on(t.priority.desc().nullsFirst(), t.createdAt, sql`(${t.status} = 'leased') desc`, t.id)
      .where(sql`${t.status} <> 'done'`),
    // A reviewer's current lease, looked up before every claim.
    index('review_tasks_lease_owner_idx')
      .on(t.leaseOwner)
      .where(sql`${t.status} = 'leased'`),
    index('review_tasks_stream_open_order_idx')
      .on(t.streamId, t.priority.desc().nullsFirst(), t.createdAt, sql`(${t.status} = 'leased') desc`, t.id)
      .where(sql`${t.status} <> 'done'`),
    index('review_tasks_stream_status_idx').on(t.streamId, t.status, t.className),
    index('review_tasks_frame_idx').on(t.frameId),
    // Every batch reads the stream's newest tasks (novelty) and counts today's (the budget).
    index('review_tasks_stream_created_idx').on(t.streamId, t.createdAt),
  ],
);

export const labels = pgTable(
  'labels',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    // One label per task: a resubmitted decision is refused, a retried one is a no-op.
    taskId: uuid('task_id')
      .references(() => reviewTasks.id)
      .unique(),
    frameId: uuid('frame_id')
      .notNull()
      .references(() => frames.id),
    streamId: text('stream_id').notNull(),
    reviewerId: uuid('reviewer_id').references(() => users.id),
    decision: text('decision', { enum: ['accept', 'reject', 'correct'] }).notNull(),
    // [{ className, x1, y1, x2, y2 }] normalized to the frame.
    boxes: jsonb('boxes').$type<LabelBox[]>().notNull(),
    predictionId: uuid('prediction_id').references(() => predictions.id),
    policyVersion: integer('policy_version'),
    modelVersion: text('model_version'),
    source: text('source', { enum: ['review', 'oracle', 'import', 'consensus'] })
      .notNull()
      .default('review'),
    // An imported label's identity (its frame and boxes): importing the same file again adds nothing.
    importKey: text('import_key').unique(),
    createdAt: createdAt(),
  },
  (t) => [index('labels_stream_created_idx').on(t.streamId, t.createdAt), index('labels_frame_idx').on(t.frameId)],
);

/** Frames a lead marked as gold: their label (the reference) is what reviewers are scored against. */
export const goldFrames = pgTable('gold_frames', {
  frameId: uuid('frame_id')
    .primaryKey()
    .references(() => frames.id),
  streamId: text('stream_id').notNull(),
  labelId: uuid('label_id')
    .notNull()
    .references(() => labels.id),
  markedBy: uuid('marked_by').references(() => users.id),
  createdAt: createdAt(),
});

/**
 * A reviewer's answer to a gold task, scored against the gold label. Kept apart from `labels`:
 * an answer is a test of the reviewer, not a label for training or export.
 */
export const goldAnswers = pgTable(
  'gold_answers',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    taskId: uuid('task_id')
      .notNull()
      .unique()
      .references(() => reviewTasks.id),
    reviewerId: uuid('reviewer_id')
      .notNull()
      .references(() => users.id),
    frameId: uuid('frame_id').notNull(),
    streamId: text('stream_id').notNull(),
    goldLabelId: uuid('gold_label_id').notNull(),
    decision: text('decision', { enum: ['accept', 'reject', 'correct'] }).notNull(),
    boxes: jsonb('boxes').$type<LabelBox[]>().notNull(),
    // Boxes matched to gold boxes of the same class at IoU >= 0.5, over the answer's boxes
    // (precision) and the gold boxes (recall); null when there is nothing to divide by.
    precision: real('precision'),
    recall: real('recall'),
    // Of the answer boxes that overlap a gold box (IoU >= 0.5, any class), the share with its class.
    classAccuracy: real('class_accuracy'),
    // F1 of the two (1 when both are empty): the number the rolling accuracy averages.
    score: real('score').notNull(),
    createdAt: createdAt(),
  },
  (t) => [index('gold_answers_reviewer_created_idx').on(t.reviewerId, t.createdAt)],
);

/** One reviewer's answer to a consensus task; the merged answers become the task's label. */
export const consensusAnswers = pgTable(
  'consensus_answers',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    taskId: uuid('task_id')
      .notNull()
      .references(() => reviewTasks.id),
    reviewerId: uuid('reviewer_id')
      .notNull()
      .references(() => users.id),
    decision: text('decision', { enum: ['accept', 'reject', 'correct'] }).notNull(),
    boxes: jsonb('boxes').$type<LabelBox[]>().notNull(),
    // F1 of this answer against the merged boxes, once every answer is in.
    agreement: real('agreement'),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('consensus_answers_task_reviewer_idx').on(t.taskId, t.reviewerId), index('consensus_answers_reviewer_idx').on(t.reviewerId)],
);

/** What a consensus task's answers merged to, and how well they agreed (per frame and class). */
export const consensusResults = pgTable(
  'consensus_results',
  {
    taskId: uuid('task_id')
      .primaryKey()
      .references(() => reviewTasks.id),
    frameId: uuid('frame_id').notNull(),
    streamId: text('stream_id').notNull(),
    merged: jsonb('merged').$type<LabelBox[]>().notNull(),
    agreement: real('agreement').notNull(),
    byClass: jsonb('by_class').$type<Record<string, number>>().notNull(),
    // The label it became: the merged boxes, or a lead's choice after adjudication (null until then).
    labelId: uuid('label_id'),
    createdAt: createdAt(),
  },
  (t) => [index('consensus_results_stream_created_idx').on(t.streamId, t.createdAt)],
);

export type ModelPrecision = 'int8';

export interface ModelVariant {
  artifactKey: string;
  sha256: string;
  /** Its evaluation on the held-out split, and the float model's mAP it was judged against. */
  metrics: Record<string, unknown>;
  registeredAt: string;
}

export type ModelVariants = Partial<Record<ModelPrecision, ModelVariant>>;

export const models = pgTable(
  'models',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    kind: text('kind', { enum: ['detection', 'box'] }).notNull(),
    version: text('version').notNull(),
    artifactKey: text('artifact_key').notNull(),
    sha256: text('sha256').notNull(),
    // Contract metadata read from the ONNX file: class names, input size, embedding dim...
    metadata: jsonb('metadata').$type<ModelMetadata>().notNull(),
    metrics: jsonb('metrics').$type<Record<string, unknown>>().notNull().default({}),
    // Other encodings of the same version (an INT8 detector), registered beside it: loops serve
    // one per DETECTOR_PRECISION, and it shares the version's deployments and rollbacks.
    variants: jsonb('variants').$type<ModelVariants>().notNull().default({}),
    trainingSnapshot: text('training_snapshot'),
    parentVersion: text('parent_version'),
    status: text('status', { enum: ['candidate', 'production', 'retired'] })
      .notNull()
      .default('candidate'),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex('models_kind_version_uq').on(t.kind, t.version),
    // At most one production model per kind: the pointer moves in one transaction.
    uniqueIndex('models_one_production_uq')
      .on(t.kind)
      .where(sql`status = 'production'`),
  ],
);

export const deployments = pgTable(
  'deployments',
  {
    id: serial('id').primaryKey(),
    kind: text('kind', { enum: ['detection', 'box'] }).notNull(),
    version: text('version').notNull(),
    previousVersion: text('previous_version'),
    action: text('action', { enum: ['deploy', 'rollback'] }).notNull(),
    triggeredBy: text('triggered_by').notNull(),
    reason: text('reason'),
    createdAt: createdAt(),
  },
  (t) => [index('deployments_kind_created_idx').on(t.kind, t.createdAt)],
);

export const datasetSnapshots = pgTable('dataset_snapshots', {
  id: text('id').primaryKey(),
  datasetKey: text('dataset_key').notNull(),
  numImages: integer('num_images').notNull(),
  numAnnotations: integer('num_annotations').notNull(),
  trigger: text('trigger').notNull(),
  createdAt: createdAt(),
});

export const driftReports = pgTable(
  'drift_reports',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    segmentType: text('segment_type', { enum: ['global', 'stream', 'camera'] }).notNull(),
    segmentKey: text('segment_key').notNull(),
    modelVersion: text('model_version').notNull(),
    drift: boolean('drift').notNull(),
    maxStatistic: doublePrecision('max_statistic').notNull(),
    // Double precision: drift p-values go far below real's smallest value (1e-38).
    minAdjustedP: doublePrecision('min_adjusted_p').notNull(),
    windowSize: integer('window_size').notNull(),
    report: jsonb('report').$type<DriftReport & { summary?: string }>().notNull(),
    // The drift check that wrote it (workflow id + iteration): a retried check adds nothing.
    checkId: text('check_id').notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    index('drift_reports_segment_created_idx').on(t.segmentType, t.segmentKey, t.createdAt),
    uniqueIndex('drift_reports_check_segment_uq').on(t.checkId, t.segmentType, t.segmentKey),
  ],
);

/** A bounded period of boosted sampling for a stream (or one camera of it), set on drift. */
export const driftBoosts = pgTable(
  'drift_boosts',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    streamId: text('stream_id')
      .notNull()
      .references(() => streams.id),
    // null: every camera of the stream.
    cameraId: text('camera_id'),
    reason: text('reason').notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    createdAt: createdAt(),
  },
  (t) => [index('drift_boosts_stream_expires_idx').on(t.streamId, t.expiresAt)],
);

export const auditLog = pgTable('audit_log', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  actor: text('actor').notNull(),
  action: text('action').notNull(),
  target: text('target').notNull(),
  details: jsonb('details').$type<Record<string, unknown>>().notNull().default({}),
  createdAt: createdAt(),
});

// ---- Drift monitor ----

/** Per-stream drift monitor settings (validated by drift/settings.ts). */
export const driftSettings = pgTable('drift_settings', {
  streamId: text('stream_id')
    .primaryKey()
    .references(() => streams.id),
  settings: jsonb('settings').$type<DriftMonitorSettings>().notNull(),
  updatedBy: text('updated_by').notNull(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});

/** Reference embeddings of a detection model: its held-out (validation) frames, scored by it. */
export const modelReferences = pgTable(
  'model_references',
  {
    modelVersion: text('model_version').notNull(),
    idx: integer('idx').notNull(),
    embedding: vector('embedding', { dimensions: EMBEDDING_DIM }).notNull(),
    numDetections: integer('num_detections').notNull(),
    scores: jsonb('scores').$type<number[]>().notNull(),
  },
  (t) => [uniqueIndex('model_references_pk').on(t.modelVersion, t.idx)],
);

/** A request to retrain, recorded by the drift monitor for the retraining workflow to take up. */
export const retrainTriggers = pgTable(
  'retrain_triggers',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    // `${segment}:${check id}`: a retried drift check records its trigger once.
    dedupeKey: text('dedupe_key').notNull().unique(),
    reason: text('reason').notNull(),
    streamId: text('stream_id'),
    reportId: uuid('report_id').references(() => driftReports.id),
    status: text('status', { enum: ['pending', 'started', 'done'] })
      .notNull()
      .default('pending'),
    // The retraining run that took the trigger up; only that run marks it done.
    runId: text('run_id'),
    createdAt: createdAt(),
  },
  (t) => [index('retrain_triggers_status_idx').on(t.status, t.createdAt)],
);

// ---- Retraining ----

/** One retraining run (the `retrain` workflow), with every step's outcome. */
export const retrainRuns = pgTable(
  'retrain_runs',
  {
    id: text('id').primaryKey(), // the workflow id
    trigger: text('trigger', { enum: ['schedule', 'drift', 'manual'] }).notNull(),
    reason: text('reason').notNull(),
    requestedBy: text('requested_by').notNull(),
    status: text('status', { enum: ['running', 'deployed', 'refused', 'rejected', 'failed', 'cancelled', 'rolled_back'] })
      .notNull()
      .default('running'),
    snapshotId: text('snapshot_id'),
    candidateVersion: text('candidate_version'),
    // [{ name, status, startedAt, finishedAt, detail }]
    steps: jsonb('steps').$type<StepRecord[]>().notNull().default([]),
    metrics: jsonb('metrics').$type<Record<string, unknown>>().notNull().default({}),
    createdAt: createdAt(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('retrain_runs_created_idx').on(t.createdAt)],
);

/**
 * A video handed to a stream: stored once per stream and content hash, probed at upload, then
 * split into segments and sampled into frames by the `videoIngest` workflow.
 */
export const videos = pgTable(
  'videos',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    streamId: text('stream_id')
      .notNull()
      .references(() => streams.id),
    cameraId: text('camera_id').notNull(),
    contentHash: text('content_hash').notNull(),
    storageKey: text('storage_key').notNull(),
    fileName: text('file_name'),
    sizeBytes: bigint('size_bytes', { mode: 'number' }).notNull(),
    // Capture time of the first frame; a frame's capture time adds its presentation time.
    startedAt: timestamp('started_at', { withTimezone: true }).notNull(),
    source: text('source').notNull(),
    /** How frames are sampled: `{ mode: 'fps', rate }`, `{ mode: 'every', n }`, `{ mode: 'keyframes' }` or `{ mode: 'scene', threshold }`. */
    sampling: jsonb('sampling').notNull(),
    /** What ffprobe said: container, codec, width, height, frame rate, duration, start time. */
    probe: jsonb('probe').notNull(),
    /** queued -> splitting -> extracting -> done, or failed / cancelled (with `error`). */
    status: text('status').notNull().default('queued'),
    error: text('error'),
    segmentsTotal: integer('segments_total'),
    /** The first frame's timestamp in the segments (set by the split): presentation times count
     * from here. Not ffprobe's start time: cutting an MP4 with B-frames into segments starts
     * their timestamps at the B-frame delay (0.5 s for a 4 frame/s video). */
    clockOriginSeconds: doublePrecision('clock_origin_seconds'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    finishedAt: timestamp('finished_at', { withTimezone: true }),
  },
  (t) => [uniqueIndex('videos_stream_hash_uq').on(t.streamId, t.contentHash), index('videos_created_idx').on(t.createdAt)],
);

/** One segment of a video: its time range, where its frames start, and once done, its count. */
export const videoSegments = pgTable(
  'video_segments',
  {
    videoId: uuid('video_id')
      .notNull()
      .references(() => videos.id),
    index: integer('index').notNull(),
    storageKey: text('storage_key').notNull(),
    startSeconds: doublePrecision('start_seconds').notNull(),
    endSeconds: doublePrecision('end_seconds').notNull(),
    /** Frames (video packets) in the segments before this one: `every n`-th sampling counts across segments. */
    frameOffset: integer('frame_offset').notNull(),
    /** Presentation time of the last frame before this segment (null for the first): fixed-rate sampling decides its first frame by it. */
    previousFrameSeconds: doublePrecision('previous_frame_seconds'),
    framesSampled: integer('frames_sampled'),
    framesStored: integer('frames_stored'),
    doneAt: timestamp('done_at', { withTimezone: true }),
  },
  (t) => [uniqueIndex('video_segments_pk').on(t.videoId, t.index)],
);

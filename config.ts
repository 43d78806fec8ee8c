// The one place environment variables meet their defaults (graphile-worker's src/config.ts shape).
// Every other module imports `config` instead of reading process.env.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

export const repoRoot = path.dirname(fileURLToPath(import.meta.url));

const int = (def: number) => z.coerce.number().int().positive().default(def);

const envSchema = z
  .object({
    DATABASE_URL: z.string().url().optional(),
    PGLITE_DIR: z.string().default(path.join(repoRoot, 'data', 'pglite')),
    STORE_DIR: z.string().default(path.join(repoRoot, 'data', 'store')),
    // Blobs (frames, videos, models, snapshots) in an S3-compatible bucket instead of STORE_DIR:
    // s3://bucket/prefix. S3_ENDPOINT names a server other than AWS (path-style addressing).
    // Credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY when both are set, otherwise the
    // AWS SDK's usual chain (a profile, a pod's web identity).
    STORE_URL: z
      .string()
      .regex(/^s3:\/\//, 'must be s3://bucket[/prefix]; leave unset for the folder STORE_DIR')
      .optional(),
    S3_ENDPOINT: z.string().url().optional(),
    S3_REGION: z.string().default('us-east-1'),
    AWS_ACCESS_KEY_ID: z.string().optional(),
    AWS_SECRET_ACCESS_KEY: z.string().optional(),
    TEMPORAL_ADDRESS: z.string().default('localhost:7233'),
    TEMPORAL_NAMESPACE: z.string().default('default'),
    TEMPORAL_UI_URL: z.string().url().default('http://localhost:8233'),
    API_HOST: z.string().default('127.0.0.1'),
    API_PORT: z.coerce.number().int().min(0).max(65535).default(8080),
    WORKER_METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(9464),
    // Task queues a worker process serves (comma-separated): scoring (stream loops), control
    // (drift, deploys, retraining orchestration), ingest (videos). Split them across deployments
    // to scale video ingest apart from scoring.
    WORKER_QUEUES: z
      .string()
      .default('scoring,control,ingest')
      .transform((s) => s.split(',').map((q) => q.trim()))
      .pipe(z.array(z.enum(['scoring', 'control', 'ingest'])).min(1)),
    MAX_FRAME_BYTES: int(10 * 1024 * 1024),
    // Decoded size of a frame: 40 MP is ~120 MB of RGB; larger frames are refused at ingest and
    // quarantined at scoring (a PNG of a few hundred KB can decode to gigabytes).
    MAX_FRAME_PIXELS: int(40_000_000),
    // Largest JSON body any route reads.
    MAX_JSON_BYTES: int(1024 * 1024),
    MAX_MODEL_BYTES: int(200 * 1024 * 1024),
    // Box assist keeps recently asked-about frames (reviewers ask about the same frame repeatedly):
    // at most this many bytes per API process; frames of up to 1/16 of it are kept decoded.
    BOX_ASSIST_CACHE_BYTES: int(64 * 1024 * 1024),
    // Regions asked while the box model runs go together in its next run, at most this many.
    BOX_ASSIST_MAX_BATCH: int(32),
    // COCO import (POST /v1/streams/:id/imports/coco): the largest request (annotations and image
    // files together) and the most images one request may carry; the CLI splits a bigger dataset
    // into requests under both.
    IMPORT_MAX_BYTES: int(256 * 1024 * 1024),
    IMPORT_MAX_IMAGES: int(1000),
    AUTH_MAX_FAILURES_PER_MINUTE: int(20),
    // Retraining: earlier frames (the parent snapshot's) kept per newly labelled frame, so
    // fine-tuning on uncertain picks does not cost the scenes the model already handled; "all"
    // keeps every earlier frame.
    RETRAIN_REPLAY_RATIO: z.union([z.literal('all').transform(() => null), z.coerce.number().min(0).max(100)]).default(1),
    // ...and at least this many, however few frames were labelled since: with 50 picks and ratio 1
    // the label-efficiency benchmark lost clear-scene accuracy that 200 replayed frames kept.
    RETRAIN_REPLAY_MIN: int(200),
    // Labels by a reviewer whose accuracy on gold tasks, or agreement with the merged label in
    // consensus (mean F1 over all their answers of that kind, once they gave GOLD_MIN_ANSWERS), is
    // below this are left out of retraining snapshots; 0 keeps every label.
    RETRAIN_MIN_REVIEWER_ACCURACY: z.coerce.number().min(0).max(1).default(0.7),
    // Distinct camera ids a metric keeps as label values per stream; later ones count as `other`.
    METRIC_MAX_CAMERAS: int(64),
    BATCH_SIZE: int(16),
    BATCH_MAX_WAIT_MS: int(2000),
    // While a stream has a backlog, one scoring activity scores up to this many full batches back
    // to back, for at most SCORING_CALL_MAX_MS: fewer history events and Temporal round trips per
    // frame. A pause stops a call after the batch in hand; a new policy or deploy applies from the next batch.
    SCORING_BATCHES_PER_CALL: int(32),
    // A scoring call on an empty stream waits this long for a frame, then the loop sleeps holding
    // no worker slot until ingestion wakes it with a signal, or LOOP_IDLE_POLL_MS at most.
    LOOP_IDLE_WAIT_MS: int(2_000),
    LOOP_IDLE_POLL_MS: int(60_000),
    SCORING_CALL_MAX_MS: int(10_000),
    // Scoring calls one worker process runs at once (Temporal activity slots). Measured on 2 cores
    // (npm run bench -- scale, two runs): 1 slot 72-76 frames/s (the cores idle while a call waits
    // on the database or Temporal), 2 slots 107, 4 slots 101-112 (no steady gain, more CPU per
    // frame, longer waits per stream behind one inference thread).
    SCORING_SLOTS: int(2),
    ORT_INTRA_OP_THREADS: int(2),
    // Worker threads running detectors (decode, letterbox, onnxruntime), each with
    // ORT_INTRA_OP_THREADS of its own; inference never runs on the event loop's thread.
    ORT_INFERENCE_THREADS: int(1),
    PREDICTION_MIN_SCORE: z.coerce.number().min(0).max(1).default(0.1),
    // Which encoding of a detector version loops run: "fp32" the float model; "int8" the version's
    // INT8 variant where one is registered (else the float model). Opt-in: the drift reference and
    // the novelty comparisons are the float model's embeddings, and INT8 embeddings differ from them
    // enough for the drift tests to flag (a classifier tells them apart, AUC 0.97 on the seed model).
    DETECTOR_PRECISION: z.enum(['int8', 'fp32']).default('fp32'),
    LEASE_SECONDS: int(300),
    // Gold tasks: the share of claims that hand a reviewer a gold frame (0 turns them off), the
    // rolling accuracy (mean F1 against gold over a reviewer's last GOLD_WINDOW answers) below which
    // the reviewer is paused from the queue, and how many answers count before anyone is paused.
    GOLD_RATE: z.coerce.number().min(0).max(1).default(0.05),
    GOLD_PASS_SCORE: z.coerce.number().min(0).max(1).default(0.7),
    GOLD_WINDOW: int(20),
    GOLD_MIN_ANSWERS: int(5),
    INGEST_DIR: z.string().optional(),
    // Videos (POST /v1/streams/:id/videos, or dropped into INGEST_DIR): the largest file, the
    // longest duration and the most frames one video may yield at its sampling; beyond any of them
    // the video is refused with the reason, before anything is stored.
    VIDEO_MAX_BYTES: int(2 * 1024 * 1024 * 1024),
    VIDEO_MAX_SECONDS: int(4 * 3600),
    VIDEO_MAX_FRAMES: int(20_000),
    // Codecs a video may use (ffprobe's names); others are refused with 415.
    VIDEO_CODECS: z
      .string()
      .default('h264,hevc,vp8,vp9,av1,mpeg4,mjpeg')
      .transform((v) =>
        v
          .split(',')
          .map((c) => c.trim())
          .filter(Boolean),
      ),
    // Segment length, and how many segments one video extracts at a time (activities in parallel).
    VIDEO_SEGMENT_SECONDS: int(10),
    VIDEO_PARALLEL_SEGMENTS: int(2),
    // Object embeddings: pgvector in the platform's database, or Pinecone (needs PINECONE_API_KEY
    // and PINECONE_INDEX, an index of dimension 64 with cosine metric; namespace per stream).
    VECTOR_INDEX: z.enum(['pgvector', 'pinecone']).default('pgvector'),
    PINECONE_API_KEY: z.string().optional(),
    PINECONE_INDEX: z.string().default('dataengine-objects'),
    // HNSW search breadth (recall against latency) and how far a filtered search may scan.
    HNSW_EF_SEARCH: int(100),
    HNSW_MAX_SCAN_TUPLES: int(20_000),
    // Similar-object search: most neighbours one request returns.
    SIMILAR_MAX_K: int(200),
    // Label propagation: a marked object proposes its class for unlabelled neighbours within this
    // cosine distance, at most this many per request; the snapshot takes confirmed proposals
    // unless this is off.
    PROPAGATION_MAX_DISTANCE: z.coerce.number().min(0).max(2).default(0.1),
    PROPAGATION_MAX_PROPOSALS: int(200),
    // Proposals skip detections less confident than this (below the band, most are background).
    PROPAGATION_MIN_SCORE: z.coerce.number().min(0).max(1).default(0.3),
    // Tracking: a track not seen on its camera for this long ends.
    TRACK_MAX_GAP_SECONDS: z.coerce.number().positive().max(3600).default(5),
    RETRAIN_PROPAGATED_LABELS: z.enum(['include', 'exclude']).default('include'),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  })
  // A window smaller than the answers needed to judge would never pause anyone.
  .refine((c) => c.GOLD_WINDOW >= c.GOLD_MIN_ANSWERS, { message: 'GOLD_WINDOW must be at least GOLD_MIN_ANSWERS', path: ['GOLD_WINDOW'] });

export type Config = Readonly<z.infer<typeof envSchema>>;

/** Parses an environment; throws an error that names every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new Error(`Invalid configuration:\n${lines.join('\n')}`);
  }
  return Object.freeze(parsed.data);
}

export const config: Config = loadConfig();

/** The gold-task settings the review queue scores reviewers by. */
export const goldSettings = (c: Config) => ({ passScore: c.GOLD_PASS_SCORE, window: c.GOLD_WINDOW, minAnswers: c.GOLD_MIN_ANSWERS });

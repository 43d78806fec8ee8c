// Names and message definitions shared by workflows, the worker and the API. Importing this
// module loads no workflow code, so `api/` can use it (samples-typescript early-return/shared.ts).
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** Scoring and routing batches of frames. */
export const SCORING_QUEUE = 'scoring';
/** Control-plane work: registry, deploy notices, drift, retraining orchestration. */
export const CONTROL_QUEUE = 'control';
/** Video ingestion: splitting videos and extracting their frames (ffmpeg). */
export const INGEST_QUEUE = 'ingest';
/** The Python trainer's queue (mirrored in trainer/dataengine_trainer/config.py). */
export const TRAINING_QUEUE = 'training';

export const streamWorkflowId = (streamId: string) => `stream-${streamId}`;
export const videoWorkflowId = (videoId: string) => `video-${videoId}`;
export const driftWorkflowId = (streamId: string | null) => (streamId ? `drift-${streamId}` : 'drift-global');

export const StreamIdAttr = defineSearchAttributeKey('StreamId', SearchAttributeType.KEYWORD);
export const StreamStateAttr = defineSearchAttributeKey('StreamState', SearchAttributeType.KEYWORD);
export const ModelVersionAttr = defineSearchAttributeKey('ModelVersion', SearchAttributeType.KEYWORD);
export const searchAttributes = [StreamIdAttr, StreamStateAttr, ModelVersionAttr];

export interface StreamLoopInput {
  streamId: string;
  /** Frames per batch; a batch closes when it is full or `maxWaitMs` has passed. */
  batchSize: number;
  maxWaitMs: number;
  /**
   * A loop that found no frames sleeps until ingestion wakes it, or this long at most (a wake-up
   * lost to an outage costs no more). Absent in inputs of loops started before it existed: 60 s.
   */
  idlePollMs?: number;
  /** Carried across continue-as-new; omitted on first start (then read from the registry). */
  state?: StreamLoopState;
  /** Test hook: continue-as-new after this many batches (the server suggestion still applies). */
  maxBatchesPerRun?: number;
}

export interface StreamLoopState {
  paused: boolean;
  modelVersion: string | null;
  /** The deployment (deployments row id) that chose `modelVersion`; only a newer one replaces it. */
  deploymentId: number | null;
  policyVersion: number | null;
  totals: { batches: number; framesScored: number; predictions: number; tasksRouted: number };
  runs: number;
  lastBatchAt: string | null;
  /** Update ids already applied, so a replayed update after continue-as-new is a no-op. */
  seenUpdateIds: string[];
}

export interface StreamStatus extends StreamLoopState {
  streamId: string;
  state: 'RUNNING' | 'PAUSED' | 'WAITING_FOR_MODEL';
  /** A batch is being waited for or scored; a pause takes effect once it has finished. */
  batchInFlight: boolean;
  historyLength: number;
}

export interface SetPolicyRequest {
  policyVersion: number;
}
/**
 * A deployment or rollback, named by its deployments row id. Ids grow with every move of the
 * production pointer, so a loop keeps the newest it has heard of: a repeated or late delivery
 * of an older deployment never wins, and rolling back to a version seen before still applies.
 */
export interface DeployModelRequest {
  modelVersion: string;
  deploymentId: number;
}
export interface DeployModelReply {
  modelVersion: string | null;
  deploymentId: number | null;
}

/** Fire-and-forget controls: the caller needs no answer. */
export const pauseSignal = defineSignal('pause');
export const resumeSignal = defineSignal('resume');
/** Sent by ingestion to a loop that found no frames and sleeps: frames have arrived. */
export const framesArrivedSignal = defineSignal('framesArrived');
/** Tracked controls: the caller learns the version the loop now uses, or why it refused. */
export const setPolicyUpdate = defineUpdate<SetPolicyRequest, [SetPolicyRequest]>('setPolicy');
export const deployModelUpdate = defineUpdate<DeployModelReply, [DeployModelRequest]>('deployModel');
export const statusQuery = defineQuery<StreamStatus>('status');

export interface VideoIngestInput {
  videoId: string;
  /** Segment length asked of the splitter, in seconds (VIDEO_SEGMENT_SECONDS). */
  segmentSeconds: number;
  /** Segments extracted at a time (VIDEO_PARALLEL_SEGMENTS). */
  parallelSegments: number;
}

export interface VideoIngestProgress {
  videoId: string;
  phase: 'splitting' | 'extracting' | 'done' | 'failed' | 'cancelled';
  segmentsDone: number;
  segmentsTotal: number | null;
  framesSampled: number;
  framesStored: number;
}
export const videoProgressQuery = defineQuery<VideoIngestProgress>('videoProgress');

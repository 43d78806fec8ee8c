// Starting and steering stream loops through the Temporal client. The API and the deploy step
// use this; workflow code never signals other workflows itself (a signal from workflow code costs history and counts against its pending-operation cap).
import { Client, WithStartWorkflowOperation, WorkflowNotFoundError } from '@temporalio/client';
import {
  deployModelUpdate,
  framesArrivedSignal,
  pauseSignal,
  resumeSignal,
  SCORING_QUEUE,
  setPolicyUpdate,
  CONTROL_QUEUE,
  driftWorkflowId,
  ModelVersionAttr,
  statusQuery,
  StreamIdAttr,
  StreamStateAttr,
  streamWorkflowId,
  type DeployModelReply,
  type StreamLoopInput,
  type StreamStatus,
} from '../workflows/shared.ts';

export interface LoopSettings {
  batchSize: number;
  maxWaitMs: number;
  /** Longest sleep of a loop that found no frames, if no wake-up comes (default 60 s). */
  idlePollMs?: number;
  /** Task queue of the loops (default `scoring`); tests give each run its own. */
  taskQueue?: string;
  /** Task queue of the drift monitors (default `control`). */
  controlQueue?: string;
  /** How long setPolicy and deployModel wait for the loop to confirm (default 5 s). */
  updateTimeoutMs?: number;
}

/** The loop did not answer in time (no worker is running, or it is overloaded). */
export class LoopUnavailableError extends Error {
  constructor(streamId: string, what: string, ms: number) {
    super(`the loop of stream ${streamId} did not confirm ${what} within ${ms} ms; is a worker running?`);
    this.name = 'LoopUnavailableError';
  }
}

/**
 * An update waits for a worker to run it. Callers (HTTP requests, deploy activities) must not
 * hang when no worker is up, so the wait is bounded; the stored policy or production pointer
 * still applies, because the loop reads them from the database. At the bound the client's calls
 * are aborted too: left running, the SDK kept polling for the update's result and, once the
 * connection was closed, failed with "Channel has been shut down" from a retry timer, as an
 * unhandled error no caller could catch.
 */
async function within<T>(client: Client, ms: number, what: string, streamId: string, run: () => Promise<T>): Promise<T> {
  const abort = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new LoopUnavailableError(streamId, what, ms));
      abort.abort();
    }, ms);
  });
  try {
    return await Promise.race([client.withAbortSignal(abort.signal, run), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

export interface LoopDescription {
  execution: string;
  state: string | null;
  modelVersion: string | null;
}

export interface LoopControl {
  /** Starts the stream's loop unless it is already running (idempotent). */
  ensureLoop(streamId: string): Promise<void>;
  pause(streamId: string): Promise<void>;
  resume(streamId: string): Promise<void>;
  /** Wakes a loop that sleeps for want of frames (ingestion calls it when frames arrive). */
  wake(streamId: string): Promise<void>;
  /** Tells a running loop to use a policy version from its next batch on. */
  setPolicy(streamId: string, policyVersion: number): Promise<void>;
  /** Tells a loop about a deployment; resolves with what the loop now serves from its next batch. */
  deployModel(streamId: string, deployment: { modelVersion: string; deploymentId: number }): Promise<DeployModelReply>;
  status(streamId: string): Promise<StreamStatus | null>;
  ensureDriftMonitor(streamId: string | null): Promise<void>;
  checkDriftNow(streamId: string | null): Promise<void>;
  /** Server-side facts about the loop, available even when no worker answers queries. */
  describe(streamId: string): Promise<LoopDescription | null>;
  /** Ids of all streams whose loop is running. */
  runningStreams(): Promise<string[]>;
}

export class TemporalLoopControl implements LoopControl {
  constructor(
    private readonly client: Client,
    private readonly settings: LoopSettings,
  ) {}

  private startOptions(streamId: string) {
    const input: StreamLoopInput = {
      streamId,
      batchSize: this.settings.batchSize,
      maxWaitMs: this.settings.maxWaitMs,
      idlePollMs: this.settings.idlePollMs,
    };
    return {
      workflowId: streamWorkflowId(streamId),
      taskQueue: this.settings.taskQueue ?? SCORING_QUEUE,
      args: [input] as [StreamLoopInput],
      workflowIdConflictPolicy: 'USE_EXISTING' as const,
      typedSearchAttributes: [{ key: StreamIdAttr, value: streamId }],
      staticSummary: `Stream loop for **${streamId}**`,
      staticDetails: 'Scores frames in batches with the deployed detector and routes uncertain detections to review.',
    };
  }

  async ensureLoop(streamId: string): Promise<void> {
    await this.client.workflow.start('streamLoop', this.startOptions(streamId));
    await this.ensureDriftMonitor(streamId);
  }

  /** Starts the drift monitor of a stream (or the global one for null) unless it runs. */
  async ensureDriftMonitor(streamId: string | null): Promise<void> {
    await this.client.workflow.start('driftMonitor', {
      workflowId: driftWorkflowId(streamId),
      taskQueue: this.settings.controlQueue ?? CONTROL_QUEUE,
      args: [{ streamId }],
      workflowIdConflictPolicy: 'USE_EXISTING',
      staticSummary: `Drift monitor for **${streamId ?? 'all streams'}**`,
      staticDetails: 'Compares the latest frame embeddings with the production model reference (PCA + KS per component, corrected).',
    });
  }

  /** Asks a drift monitor to check now instead of at its next interval. */
  async checkDriftNow(streamId: string | null): Promise<void> {
    await this.client.workflow.getHandle(driftWorkflowId(streamId)).signal('checkNow');
  }

  async pause(streamId: string): Promise<void> {
    await this.client.workflow.getHandle(streamWorkflowId(streamId)).signal(pauseSignal);
  }

  async resume(streamId: string): Promise<void> {
    await this.client.workflow.getHandle(streamWorkflowId(streamId)).signal(resumeSignal);
  }

  async wake(streamId: string): Promise<void> {
    await this.client.workflow.getHandle(streamWorkflowId(streamId)).signal(framesArrivedSignal);
  }

  async setPolicy(streamId: string, policyVersion: number): Promise<void> {
    // Update-with-start: a stream whose loop is not running yet gets one, already configured.
    await within(this.client, this.settings.updateTimeoutMs ?? 5000, `policy version ${policyVersion}`, streamId, () =>
      this.client.workflow.executeUpdateWithStart(setPolicyUpdate, {
        args: [{ policyVersion }],
        updateId: `policy-${policyVersion}`,
        startWorkflowOperation: new WithStartWorkflowOperation('streamLoop', this.startOptions(streamId)),
      }),
    );
  }

  async deployModel(streamId: string, deployment: { modelVersion: string; deploymentId: number }): Promise<DeployModelReply> {
    return within(this.client, this.settings.updateTimeoutMs ?? 5000, `deployment ${deployment.deploymentId} (${deployment.modelVersion})`, streamId, () =>
      this.client.workflow.executeUpdateWithStart(deployModelUpdate, {
        args: [deployment],
        // One id per deployment: the server and the loop drop a repeat of the same deployment,
        // never a later deployment of a version the loop has served before.
        updateId: `deploy-${deployment.deploymentId}`,
        startWorkflowOperation: new WithStartWorkflowOperation('streamLoop', this.startOptions(streamId)),
      }),
    );
  }

  async status(streamId: string): Promise<StreamStatus | null> {
    const handle = this.client.workflow.getHandle(streamWorkflowId(streamId));
    try {
      return await within(this.client, this.settings.updateTimeoutMs ?? 5000, 'its status', streamId, () => handle.query(statusQuery));
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return null;
      throw err;
    }
  }

  /** What the server knows without a worker: execution status and the loop's search attributes. */
  async describe(streamId: string): Promise<LoopDescription | null> {
    try {
      const d = await this.client.workflow.getHandle(streamWorkflowId(streamId)).describe();
      return {
        execution: d.status.name,
        state: d.typedSearchAttributes.get(StreamStateAttr) ?? null,
        modelVersion: d.typedSearchAttributes.get(ModelVersionAttr) ?? null,
      };
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return null;
      throw err;
    }
  }

  async runningStreams(): Promise<string[]> {
    const ids: string[] = [];
    for await (const wf of this.client.workflow.list({
      query: `WorkflowType = 'streamLoop' AND ExecutionStatus = 'Running' AND TaskQueue = '${this.settings.taskQueue ?? SCORING_QUEUE}'`,
    })) {
      ids.push(wf.workflowId.replace(/^stream-/, ''));
    }
    return ids;
  }
}

// streamLoop: one never-ending workflow per camera stream. Each iteration is ONE activity that
// pulls a batch, scores it and routes it (docs/architecture.md, "History per activity": merging score and route halves
// the history per batch). Control arrives as signals (pause/resume) and updates (policy, model);
// a query reports status. The loop continues-as-new when the server suggests it.
import {
  ActivityCancellationType,
  allHandlersFinished,
  CancellationScope,
  condition,
  continueAsNew,
  currentUpdateInfo,
  isCancellation,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { createScoringActivities, ScoreBatchResult } from '../activities/scoring.ts';
import {
  deployModelUpdate,
  ModelVersionAttr,
  pauseSignal,
  resumeSignal,
  setPolicyUpdate,
  statusQuery,
  StreamStateAttr,
  type StreamLoopInput,
  type StreamLoopState,
  type StreamStatus,
} from './shared.ts';

type ScoringActivities = ReturnType<typeof createScoringActivities>;

const { scoreAndRouteBatch } = proxyActivities<ScoringActivities>({
  // The activity waits for frames (up to its idle limit) and heartbeats while it waits.
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '30 seconds',
  // A pause cancels a waiting batch; wait for the activity to stop so two batches never overlap.
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds', nonRetryableErrorTypes: ['BadInput'] },
});

const { resolveStreamConfig } = proxyActivities<ScoringActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumInterval: '10 seconds' },
});

const MAX_SEEN_UPDATE_IDS = 64;

function initialState(): StreamLoopState {
  return {
    paused: false,
    modelVersion: null,
    deploymentId: null,
    policyVersion: null,
    totals: { batches: 0, framesScored: 0, predictions: 0, tasksRouted: 0 },
    runs: 1,
    lastBatchAt: null,
    seenUpdateIds: [],
  };
}

export async function streamLoop(input: StreamLoopInput): Promise<void> {
  const state: StreamLoopState = input.state ?? initialState();
  let batchScope: CancellationScope | undefined;

  const stateName = (): StreamStatus['state'] => (state.paused ? 'PAUSED' : state.modelVersion === null ? 'WAITING_FOR_MODEL' : 'RUNNING');

  // Updates can be delivered again after continue-as-new (temporalio/temporal#6375), so each
  // handler remembers the ids it applied and carries them into the next run.
  const firstTime = (): boolean => {
    const id = currentUpdateInfo()?.id;
    if (!id) return true;
    if (state.seenUpdateIds.includes(id)) return false;
    state.seenUpdateIds = [...state.seenUpdateIds, id].slice(-MAX_SEEN_UPDATE_IDS);
    return true;
  };

  // The newest deployment wins, whichever way it arrives (an update, or the batch activity
  // reading the registry): an older or repeated one changes nothing.
  const adoptDeployment = (deploymentId: number, modelVersion: string) => {
    if (deploymentId <= (state.deploymentId ?? 0)) return;
    state.deploymentId = deploymentId;
    state.modelVersion = modelVersion;
  };

  // All handlers are registered before the first await, so no message waits in a buffer
  // (a signal buffered without a handler is dropped on continue-as-new).
  setHandler(pauseSignal, () => {
    state.paused = true;
    batchScope?.cancel();
  });
  setHandler(resumeSignal, () => {
    state.paused = false;
  });
  setHandler(
    setPolicyUpdate,
    (req) => {
      if (firstTime()) state.policyVersion = req.policyVersion;
      return { policyVersion: state.policyVersion ?? req.policyVersion };
    },
    {
      // Validators must be synchronous (docs/architecture.md, "Signals, updates, queries"); a rejection leaves no history.
      validator: (req) => {
        if (!Number.isInteger(req?.policyVersion) || req.policyVersion < 1) {
          throw new Error('policyVersion must be a positive integer');
        }
      },
    },
  );
  setHandler(
    deployModelUpdate,
    (req) => {
      // Takes effect at the next batch: the batch in flight finishes with the version it started
      // with, so no batch is ever scored by a mix of versions.
      if (firstTime()) adoptDeployment(req.deploymentId, req.modelVersion);
      return { modelVersion: state.modelVersion, deploymentId: state.deploymentId };
    },
    {
      validator: (req) => {
        if (typeof req?.modelVersion !== 'string' || req.modelVersion.length === 0) {
          throw new Error('modelVersion must be a non-empty string');
        }
        if (!Number.isInteger(req.deploymentId) || req.deploymentId < 1) throw new Error('deploymentId must be a positive integer');
      },
    },
  );
  setHandler(statusQuery, () => ({
    ...state,
    streamId: input.streamId,
    state: stateName(),
    batchInFlight: batchScope !== undefined,
    historyLength: workflowInfo().historyLength,
  }));

  let published = '';
  const publish = () => {
    const name = stateName();
    const key = `${name}|${state.modelVersion}`;
    if (key !== published) {
      // Search attributes cost a history event, so they change only when their value does.
      upsertSearchAttributes([
        { key: StreamStateAttr, value: name },
        { key: ModelVersionAttr, value: state.modelVersion },
      ]);
      published = key;
    }
    setCurrentDetails(
      [
        `**Stream** \`${input.streamId}\` — **${name}**`,
        `| model | policy | batches | frames scored | predictions | tasks routed | last batch |`,
        `|---|---|---|---|---|---|---|`,
        `| ${state.modelVersion ?? '—'} | v${state.policyVersion ?? '—'} | ${state.totals.batches} | ${state.totals.framesScored} | ${state.totals.predictions} | ${state.totals.tasksRouted} | ${state.lastBatchAt ?? '—'} |`,
        `Run ${state.runs} of this loop (continues-as-new to keep history short).`,
      ].join('\n'),
    );
  };

  if (state.modelVersion === null || state.policyVersion === null) {
    const resolved = await resolveStreamConfig({ streamId: input.streamId });
    if (resolved.deployment) adoptDeployment(resolved.deployment.id, resolved.deployment.version);
    else state.modelVersion ??= resolved.modelVersion;
    state.policyVersion ??= resolved.policyVersion;
  }
  publish();

  let batchesThisRun = 0;
  const runLimit = input.maxBatchesPerRun ?? Number.POSITIVE_INFINITY;
  while (!workflowInfo().continueAsNewSuggested && batchesThisRun < runLimit) {
    if (state.paused || state.modelVersion === null) {
      await condition(() => !state.paused && state.modelVersion !== null);
      publish();
      continue;
    }
    const modelVersion = state.modelVersion;
    const policyVersion = state.policyVersion ?? 1;
    try {
      batchScope = new CancellationScope();
      const result: ScoreBatchResult = await batchScope.run(() =>
        scoreAndRouteBatch({
          streamId: input.streamId,
          modelVersion,
          deploymentId: state.deploymentId,
          policyVersion,
          batchSize: input.batchSize,
          maxWaitMs: input.maxWaitMs,
        }),
      );
      batchesThisRun += 1;
      // The activity routes with the newest stored policy even if no update reached this loop.
      if (result.policyVersion !== undefined && result.policyVersion > (state.policyVersion ?? 0)) state.policyVersion = result.policyVersion;
      // Likewise a deployment whose update never reached this loop (no worker was up, or the
      // deploy call timed out) applies from the next batch.
      if (result.deployment) adoptDeployment(result.deployment.id, result.deployment.version);
      if (result.framesScored > 0) {
        state.totals.batches += 1;
        state.totals.framesScored += result.framesScored;
        state.totals.predictions += result.predictions;
        state.totals.tasksRouted += result.tasksRouted;
        state.lastBatchAt = new Date().toISOString();
      }
    } catch (err) {
      // A pause cancels the batch while it waits for frames; anything else is a real failure.
      if (!(isCancellation(err) && state.paused)) throw err;
    } finally {
      batchScope = undefined;
    }
    publish();
  }

  await condition(allHandlersFinished);
  await continueAsNew<typeof streamLoop>({ ...input, state: { ...state, runs: state.runs + 1 } });
}

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
  framesArrivedSignal,
  ModelVersionAttr,
  pauseSignal,
  resumeSignal,
  setPolicyUpdate,
  statusQuery,
  StreamStateAttr,
  type StreamLoopInput,
} from './shared.ts';
import { LoopState, validateDeployRequest, validatePolicyRequest } from './loop-state.ts';

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

export async function streamLoop(input: StreamLoopInput): Promise<void> {
  const loop = new LoopState(input.state);
  let batchScope: CancellationScope | undefined;

  // All handlers are registered before the first await, so no message waits in a buffer
  // (a signal buffered without a handler is dropped on continue-as-new). Signals change state
  // and return nothing; updates change it and answer (validators must be synchronous: docs/
  // architecture.md, "Signals, updates, queries"); the query only reads.
  setHandler(pauseSignal, () => {
    loop.pause();
    batchScope?.cancel();
  });
  setHandler(resumeSignal, () => loop.resume());
  // Set by ingestion's wake-up; cleared before each scoring call, so one that arrives while a
  // call runs (after its last look for frames) ends the sleep that call would start.
  let framesArrived = false;
  setHandler(framesArrivedSignal, () => {
    framesArrived = true;
  });
  setHandler(setPolicyUpdate, (req) => loop.setPolicy(currentUpdateInfo()?.id, req), { validator: validatePolicyRequest });
  // A deployment takes effect at the next batch: the batch in flight finishes with the version it
  // started with, so no batch is ever scored by a mix of versions.
  setHandler(deployModelUpdate, (req) => loop.deploy(currentUpdateInfo()?.id, req), { validator: validateDeployRequest });
  setHandler(statusQuery, () => loop.status(input.streamId, { batchInFlight: batchScope !== undefined, historyLength: workflowInfo().historyLength }));

  let published = '';
  const publish = () => {
    const name = loop.name();
    const key = `${name}|${loop.modelVersion}`;
    if (key !== published) {
      // Search attributes cost a history event, so they change only when their value does.
      upsertSearchAttributes([
        { key: StreamStateAttr, value: name },
        { key: ModelVersionAttr, value: loop.modelVersion },
      ]);
      published = key;
    }
    setCurrentDetails(loop.details(input.streamId));
  };

  if (loop.modelVersion === null || loop.policyVersion === null) loop.resolve(await resolveStreamConfig({ streamId: input.streamId }));
  publish();

  let batchesThisRun = 0;
  const runLimit = input.maxBatchesPerRun ?? Number.POSITIVE_INFINITY;
  while (!workflowInfo().continueAsNewSuggested && batchesThisRun < runLimit) {
    if (!loop.ready) {
      await condition(() => loop.ready);
      publish();
      continue;
    }
    const batch = {
      streamId: input.streamId,
      modelVersion: loop.modelVersion!,
      deploymentId: loop.deploymentId,
      policyVersion: loop.policyVersion ?? 1,
      batchSize: input.batchSize,
      maxWaitMs: input.maxWaitMs,
    };
    framesArrived = false;
    let idle = false;
    try {
      batchScope = new CancellationScope();
      const result: ScoreBatchResult = await batchScope.run(() => scoreAndRouteBatch(batch));
      batchesThisRun += 1;
      // The activity routes with the newest stored policy and reads the newest deployment, so a
      // change whose update never reached this loop (no worker was up) applies from the next batch.
      loop.recordBatch(result, new Date());
      idle = result.idle === true;
    } catch (err) {
      // A pause cancels the batch while it waits for frames; anything else is a real failure.
      if (!(isCancellation(err) && loop.paused)) throw err;
    } finally {
      batchScope = undefined;
    }
    publish();
    // No frames: sleep on a timer, holding no worker slot, until ingestion signals, a pause,
    // or the poll interval.
    if (idle) await condition(() => framesArrived || !loop.ready, input.idlePollMs ?? 60_000);
  }

  await condition(allHandlersFinished);
  await continueAsNew<typeof streamLoop>({ ...input, state: loop.carry() });
}

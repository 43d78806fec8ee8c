// driftMonitor: every interval, test the latest frames of a stream (and each of its cameras), or
// of all streams, against the production model's reference; the activity stores the report
// and acts on drift. The Web UI shows the last decision in the workflow's current details.
import {
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  ParentClosePolicy,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  startChild,
  workflowInfo,
  WorkflowIdReusePolicy,
} from '@temporalio/workflow';
import type { retrain, RetrainInput } from './retrain.ts';
import type { DriftActivities, DriftCheckResult } from '../activities/drift.ts';

export interface DriftMonitorInput {
  /** null: all streams together. */
  streamId: string | null;
  /** Checks already done by earlier runs (continue-as-new carries it on). */
  iteration?: number;
  last?: DriftCheckResult | null;
  /** Start a retraining run when drift calls for it (default true). */
  autoRetrain?: boolean;
  /** Settings of the runs it starts (epochs, gate, approval, queues); trigger, reason and the
   * wait for new labels are the monitor's. */
  retrain?: Partial<RetrainInput>;
}

export const checkNowSignal = defineSignal('checkNow');
export const lastDecisionQuery = defineQuery<DriftCheckResult | null>('lastDecision');

const { runDriftCheck } = proxyActivities<DriftActivities>({
  startToCloseTimeout: '5 minutes',
  retry: { maximumInterval: '1 minute' },
});

const CHECKS_PER_RUN = 100;

function details(streamId: string | null, r: DriftCheckResult, at: string): string {
  const rows = r.segments.map(
    (s) =>
      `| ${s.segmentType} | ${s.segment} | ${s.drift ? '**drift**' : s.confirmation?.status === 'pending' ? `pending (${s.confirmation.driftedChecks}/${s.confirmation.needed})` : 'ok'} | ${s.maxStatistic.toFixed(3)} | ${s.minAdjustedP.toExponential(2)} |`,
  );
  return [
    `### Drift monitor: ${streamId ?? 'all streams'}`,
    `Last check ${at}: **${r.summary}** (model ${r.modelVersion ?? '—'})`,
    r.boosted.length ? `Sampling boosted for: ${r.boosted.join(', ')}` : '',
    r.retrainTriggered ? 'Retraining requested.' : '',
    rows.length ? ['| segment | key | decision | max KS | min corrected p |', '|---|---|---|---|---|', ...rows].join('\n') : '',
    `Next check in ${r.intervalSeconds} s.`,
  ]
    .filter(Boolean)
    .join('\n\n');
}

/** One drift-triggered run at a time per scope; the run outlives this monitor's history. */
async function requestRetraining(input: DriftMonitorInput, r: DriftCheckResult): Promise<void> {
  const { streamId } = input;
  try {
    await startChild<typeof retrain>('retrain', {
      workflowId: `retrain-drift-${streamId ?? 'global'}-${workflowInfo().runId.slice(0, 8)}-${Math.floor(Date.now() / 3_600_000)}`,
      args: [
        {
          ...input.retrain,
          trigger: 'drift',
          reason: `${streamId ?? 'all streams'}: ${r.summary}`,
          requestedBy: 'drift-monitor',
          driftScope: { streamId },
          // Reviewers need time to label what the shift routed; the run waits for them, checking
          // as often as this monitor checks for drift.
          waitForLabels: {
            streamId,
            since: new Date().toISOString(),
            minNew: r.retrainMinLabels,
            maxWaitMs: r.retrainMaxWaitHours * 3_600_000,
            pollMs: r.intervalSeconds * 1000,
          },
        },
      ],
      parentClosePolicy: ParentClosePolicy.ABANDON,
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
    });
  } catch (err) {
    // A run for this scope started within the hour is already taking care of it.
    if (!(err instanceof Error && err.name === 'WorkflowExecutionAlreadyStartedError')) throw err;
  }
}

export async function driftMonitor(input: DriftMonitorInput): Promise<void> {
  let last = input.last ?? null;
  let wake = false;
  setHandler(checkNowSignal, () => {
    wake = true;
  });
  setHandler(lastDecisionQuery, () => last);

  const first = input.iteration ?? 0;
  for (let i = 0; i < CHECKS_PER_RUN; i++) {
    const info = workflowInfo();
    // Stable across retries and continue-as-new, unique per check: reports are stored once.
    last = await runDriftCheck({ streamId: input.streamId, checkId: `${info.workflowId}:${info.firstExecutionRunId}:${first + i}` });
    setCurrentDetails(details(input.streamId, last, new Date().toISOString()));
    if (last.retrainTriggered && (input.autoRetrain ?? true)) await requestRetraining(input, last);
    wake = false;
    await condition(() => wake, last.intervalSeconds * 1000);
    if (workflowInfo().continueAsNewSuggested) {
      await continueAsNew<typeof driftMonitor>({ ...input, iteration: first + i + 1, last });
    }
  }
  await continueAsNew<typeof driftMonitor>({ ...input, iteration: first + CHECKS_PER_RUN, last });
}

// Starting, steering and scheduling retraining runs through the Temporal client.
import { randomBytes } from 'node:crypto';
import { Client, ScheduleNotFoundError, ScheduleOverlapPolicy } from '@temporalio/client';
import { approveSignal, rejectSignal, type RetrainInput } from '../workflows/retrain.ts';
import { CONTROL_QUEUE } from '../workflows/shared.ts';

const WEEKLY_SCHEDULE_ID = 'retrain-weekly';
const DEFAULT_RETRAIN_CRON = '0 3 * * 1'; // Mondays 03:00 UTC

export class RetrainControl {
  constructor(
    private readonly client: Client,
    private readonly taskQueue: string = CONTROL_QUEUE,
  ) {}

  async start(input: RetrainInput): Promise<string> {
    const stamp = new Date().toISOString().slice(0, 19).replace(/[-:T]/g, '');
    const workflowId = `retrain-${input.trigger}-${stamp}-${randomBytes(3).toString('hex')}`;
    await this.client.workflow.start('retrain', {
      workflowId,
      taskQueue: this.taskQueue,
      args: [input],
      staticSummary: `Retraining (${input.trigger}): ${input.reason}`,
    });
    return workflowId;
  }

  approve(runId: string, by: string) {
    return this.client.workflow.getHandle(runId).signal(approveSignal, { approvedBy: by });
  }

  reject(runId: string, by: string, reason?: string) {
    return this.client.workflow.getHandle(runId).signal(rejectSignal, { rejectedBy: by, reason });
  }

  cancel(runId: string) {
    return this.client.workflow.getHandle(runId).cancel();
  }

  /** Creates or updates the weekly retraining schedule; overlapping runs are skipped. */
  async ensureSchedule(cron = DEFAULT_RETRAIN_CRON, input: Partial<RetrainInput> = {}): Promise<void> {
    const action = {
      type: 'startWorkflow' as const,
      workflowType: 'retrain',
      taskQueue: this.taskQueue,
      args: [{ trigger: 'schedule', reason: 'weekly retraining', requestedBy: 'schedule', ...input } satisfies RetrainInput],
    };
    const spec = { cronExpressions: [cron] };
    const policies = { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 hour' };
    try {
      await this.client.schedule.getHandle(WEEKLY_SCHEDULE_ID).update((prev) => ({ ...prev, spec, action, policies }));
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
      await this.client.schedule.create({ scheduleId: WEEKLY_SCHEDULE_ID, spec, action, policies });
    }
  }

  async describeSchedule() {
    try {
      return await this.client.schedule.getHandle(WEEKLY_SCHEDULE_ID).describe();
    } catch (err) {
      if (err instanceof ScheduleNotFoundError) return null;
      throw err;
    }
  }
}

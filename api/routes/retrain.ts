// Retraining runs over HTTP: start one, follow its steps, approve or reject, cancel; and the
// weekly schedule.
import { Hono } from 'hono';
import { z } from 'zod';
import { RetrainControl } from '../../control/retrain-control.ts';
import { audit } from '../../db/audit.ts';
import { getRun, listRuns } from '../../db/retrain.ts';
import type { ApiDeps, AppEnv } from '../env.ts';
import { defineOperation, handle } from '../operation.ts';
import { ProblemError } from '../problem.ts';
import { retrainRunSchema } from '../schemas.ts';

const startInput = z
  .object({
    reason: z.string().min(1).max(500).default('requested by a lead'),
    requireApproval: z.boolean().default(false),
    approvalTimeoutMinutes: z
      .number()
      .int()
      .min(1)
      .max(7 * 24 * 60)
      .default(24 * 60),
    epochs: z.number().int().min(1).max(200).optional(),
    boxEpochs: z.number().int().min(1).max(200).optional(),
    gate: z
      .object({
        maxMapDrop: z.number().min(0).max(1).optional(),
        maxClassDrop: z.number().min(0).max(1).optional(),
        maxInt8MapDrop: z.number().min(0).max(1).optional().describe("how far the INT8 variant's mAP@0.5 may fall below the float model's (default 0.01)"),
      })
      .strict()
      .optional(),
    int8CalibrationFrames: z
      .number()
      .int()
      .min(0)
      .max(10_000)
      .optional()
      .describe('training frames the INT8 variant is calibrated on (default 500; 0: no INT8 variant)'),
  })
  .strict();
const scheduleInput = z.object({ cron: z.string().regex(/^(\S+\s+){4}\S+$/, 'cron must have five fields, e.g. "0 3 * * 1"') }).strict();

const runId = z.object({ id: z.string().describe('the run id (its workflow id)') });
const runAction = (action: 'approve' | 'reject' | 'cancel', summary: string) =>
  defineOperation({
    method: 'post',
    path: `/v1/retrain/runs/{id}/${action}`,
    summary,
    params: runId,
    ...(action === 'reject' ? { query: z.object({ reason: z.string().max(500).optional() }) } : {}),
    responses: { 202: { description: 'requested', schema: z.object({ runId: z.string(), requested: z.literal(action) }) } },
    problems: [409],
  });

export const retrainOperations = {
  start: defineOperation({
    method: 'post',
    path: '/v1/retrain',
    summary: 'Start a retraining run',
    body: startInput,
    bodyName: 'invalid retraining request',
    responses: { 202: { description: 'started', schema: z.object({ runId: z.string() }) } },
    problems: [503],
  }),
  runs: defineOperation({
    method: 'get',
    path: '/v1/retrain/runs',
    summary: 'Recent retraining runs with their steps, newest first',
    responses: { 200: { description: 'runs', schema: z.object({ runs: z.array(retrainRunSchema) }) } },
  }),
  run: defineOperation({
    method: 'get',
    path: '/v1/retrain/runs/{id}',
    summary: 'One retraining run',
    params: runId,
    responses: { 200: { description: 'the run', schema: z.object({ run: retrainRunSchema }) } },
  }),
  approve: runAction('approve', 'Approve a run waiting for approval'),
  reject: runAction('reject', 'Reject a run waiting for approval'),
  cancel: runAction('cancel', 'Cancel a run (training stops; production is untouched)'),
  schedule: defineOperation({
    method: 'get',
    path: '/v1/retrain/schedule',
    summary: 'The weekly retraining schedule',
    responses: {
      200: {
        description: 'the schedule, or null when there is none',
        schema: z.object({
          schedule: z.object({ id: z.string(), spec: z.unknown(), overlap: z.string(), paused: z.boolean(), nextRuns: z.array(z.date()) }).nullable(),
        }),
      },
    },
    problems: [503],
  }),
  setSchedule: defineOperation({
    method: 'put',
    path: '/v1/retrain/schedule',
    summary: 'Create or change the retraining schedule (cron, UTC; overlapping runs are skipped)',
    body: scheduleInput,
    bodyName: 'invalid schedule',
    responses: { 200: { description: 'stored', schema: z.object({ cron: z.string() }) } },
    problems: [503],
  }),
};

export function retrainRoutes(deps: ApiDeps) {
  const app = new Hono<AppEnv>();
  const control = () => {
    if (!deps.temporal) throw new ProblemError(503, 'Unavailable', 'this process has no Temporal client', undefined, 'no_temporal');
    return new RetrainControl(deps.temporal);
  };
  const runOr404 = async (id: string) => {
    const run = await getRun(deps.db, id);
    if (!run) throw new ProblemError(404, 'Not found', `retraining run ${id} does not exist`, undefined, 'not_found');
    return run;
  };

  handle(app, retrainOperations.start, async (c, { body: input }) => {
    const id = await control().start({
      trigger: 'manual',
      reason: input.reason,
      requestedBy: c.get('user').name,
      requireApproval: input.requireApproval,
      approvalTimeoutMs: input.approvalTimeoutMinutes * 60_000,
      epochs: input.epochs,
      boxEpochs: input.boxEpochs,
      gate: input.gate,
      int8CalibrationFrames: input.int8CalibrationFrames,
    });
    await audit(deps.db, c.get('user').name, 'retrain.start', id, input);
    return c.json({ runId: id }, 202);
  });

  handle(app, retrainOperations.runs, async (c) => c.json({ runs: await listRuns(deps.db, 50) }));
  handle(app, retrainOperations.run, async (c, { params }) => c.json({ run: await runOr404(params.id) }));

  for (const action of ['approve', 'reject', 'cancel'] as const) {
    handle(app, retrainOperations[action], async (c, { params, query }) => {
      const run = await runOr404(params.id);
      if (run.status !== 'running') throw new ProblemError(409, 'Conflict', `run ${run.id} already finished (${run.status})`, undefined, 'finished');
      const who = c.get('user').name;
      if (action === 'approve') await control().approve(run.id, who);
      else if (action === 'reject') await control().reject(run.id, who, query?.reason);
      else await control().cancel(run.id);
      await audit(deps.db, who, `retrain.${action}`, run.id);
      return c.json({ runId: run.id, requested: action }, 202);
    });
  }

  handle(app, retrainOperations.schedule, async (c) => {
    const s = await control().describeSchedule();
    return c.json({
      schedule: s ? { id: s.scheduleId, spec: s.spec, overlap: s.policies.overlap, paused: s.state.paused, nextRuns: s.info.nextActionTimes } : null,
    });
  });

  handle(app, retrainOperations.setSchedule, async (c, { body: input }) => {
    await control().ensureSchedule(input.cron);
    await audit(deps.db, c.get('user').name, 'retrain.schedule', 'retrain-weekly', input);
    return c.json({ cron: input.cron });
  });

  return app;
}

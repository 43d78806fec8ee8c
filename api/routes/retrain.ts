// Retraining runs over HTTP: start one, follow its steps, approve or reject, cancel; and the
// weekly schedule.
import { Hono } from 'hono';
import { z } from 'zod';
import { RetrainControl } from '../../control/retrain-control.ts';
import { audit } from '../../db/audit.ts';
import { getRun, listRuns } from '../../db/retrain.ts';
import type { ApiDeps, AppEnv } from '../env.ts';
import { parseOrThrow, ProblemError, readJson } from '../problem.ts';

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
      .object({ maxMapDrop: z.number().min(0).max(1).optional(), maxClassDrop: z.number().min(0).max(1).optional() })
      .strict()
      .optional(),
  })
  .strict();
const scheduleInput = z.object({ cron: z.string().regex(/^(\S+\s+){4}\S+$/, 'cron must have five fields, e.g. "0 3 * * 1"') }).strict();

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

  app.post('/v1/retrain', async (c) => {
    const input = parseOrThrow(startInput, await readJson(c), 'invalid retraining request');
    const id = await control().start({
      trigger: 'manual',
      reason: input.reason,
      requestedBy: c.get('user').name,
      requireApproval: input.requireApproval,
      approvalTimeoutMs: input.approvalTimeoutMinutes * 60_000,
      epochs: input.epochs,
      boxEpochs: input.boxEpochs,
      gate: input.gate,
    });
    await audit(deps.db, c.get('user').name, 'retrain.start', id, input);
    return c.json({ runId: id }, 202);
  });

  app.get('/v1/retrain/runs', async (c) => c.json({ runs: await listRuns(deps.db, 50) }));
  app.get('/v1/retrain/runs/:id', async (c) => c.json({ run: await runOr404(c.req.param('id')) }));

  for (const action of ['approve', 'reject', 'cancel'] as const) {
    app.post(`/v1/retrain/runs/:id/${action}`, async (c) => {
      const run = await runOr404(c.req.param('id'));
      if (run.status !== 'running') throw new ProblemError(409, 'Conflict', `run ${run.id} already finished (${run.status})`, undefined, 'finished');
      const who = c.get('user').name;
      if (action === 'approve') await control().approve(run.id, who);
      else if (action === 'reject') await control().reject(run.id, who, c.req.query('reason'));
      else await control().cancel(run.id);
      await audit(deps.db, who, `retrain.${action}`, run.id);
      return c.json({ runId: run.id, requested: action }, 202);
    });
  }

  app.get('/v1/retrain/schedule', async (c) => {
    const s = await control().describeSchedule();
    return c.json({
      schedule: s ? { id: s.scheduleId, spec: s.spec, overlap: s.policies.overlap, paused: s.state.paused, nextRuns: s.info.nextActionTimes } : null,
    });
  });

  app.put('/v1/retrain/schedule', async (c) => {
    const input = parseOrThrow(scheduleInput, await readJson(c), 'invalid schedule');
    await control().ensureSchedule(input.cron);
    await audit(deps.db, c.get('user').name, 'retrain.schedule', 'retrain-weekly', input);
    return c.json({ cron: input.cron });
  });

  return app;
}

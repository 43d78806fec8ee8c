// Drift reports, per-stream monitor settings (validated; a pinned reference window lives here),
// and a "check now" button.
import { Hono } from 'hono';
import { z } from 'zod';
import { getDriftSettings, getReport, listReports, saveDriftSettings } from '../../db/drift.ts';
import { audit } from '../../db/audit.ts';
import { getStream } from '../../db/streams.ts';
import { driftSettingsSchema } from '../../drift/settings.ts';
import type { ApiDeps, AppEnv } from '../env.ts';
import { defineOperation, handle } from '../operation.ts';
import { ProblemError, UUID } from '../problem.ts';
import { driftReportSchema } from '../schemas.ts';

const listQuery = z.object({
  streamId: z.string().optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  driftOnly: z.enum(['true', 'false']).optional(),
});

const streamId = z.object({ id: z.string() });
const settingsAnswer = { description: 'the settings', schema: z.object({ streamId: z.string(), settings: driftSettingsSchema }) };

export const driftOperations = {
  reports: defineOperation({
    method: 'get',
    path: '/v1/drift/reports',
    summary: 'Drift reports, newest first',
    query: listQuery,
    responses: {
      200: {
        description: 'reports without their per-component detail',
        schema: z.object({
          reports: z.array(
            driftReportSchema
              .pick({
                id: true,
                segmentType: true,
                segmentKey: true,
                modelVersion: true,
                drift: true,
                maxStatistic: true,
                minAdjustedP: true,
                windowSize: true,
                createdAt: true,
              })
              .extend({ summary: z.string().nullable() }),
          ),
        }),
      },
    },
  }),
  report: defineOperation({
    method: 'get',
    path: '/v1/drift/reports/{id}',
    summary: 'One drift report with per-component statistics, p-values and decisions',
    params: z.object({ id: z.string() }),
    responses: { 200: { description: 'the report', schema: z.object({ report: driftReportSchema }) } },
  }),
  settings: defineOperation({
    method: 'get',
    path: '/v1/streams/{id}/drift-settings',
    summary: 'Drift monitor settings of a stream',
    params: streamId,
    responses: { 200: settingsAnswer },
  }),
  setSettings: defineOperation({
    method: 'put',
    path: '/v1/streams/{id}/drift-settings',
    summary:
      'Set alpha, components, correction, minimum effects (KS, classifier AUC, novel share, variance ratio), window, interval, boost duration, labels a drift-started retraining waits for, or pin a reference window',
    params: streamId,
    body: driftSettingsSchema,
    bodyName: 'invalid drift settings',
    responses: { 200: settingsAnswer },
  }),
  check: defineOperation({
    method: 'post',
    path: '/v1/streams/{id}/drift/check',
    summary: 'Run the stream drift check now',
    params: streamId,
    responses: { 202: { description: 'requested', schema: z.object({ streamId: z.string(), requested: z.literal('check') }) } },
  }),
};

export function driftRoutes(deps: ApiDeps) {
  const app = new Hono<AppEnv>();
  const streamOr404 = async (id: string) => {
    const s = await getStream(deps.db, id);
    if (!s) throw new ProblemError(404, 'Not found', `stream ${JSON.stringify(id)} does not exist`, undefined, 'unknown_stream');
    return s;
  };

  handle(app, driftOperations.reports, async (c, { query: q }) => {
    return c.json({ reports: await listReports(deps.db, { streamId: q.streamId, limit: q.limit, driftOnly: q.driftOnly === 'true' }) });
  });

  handle(app, driftOperations.report, async (c, { params: { id } }) => {
    const report = UUID.test(id) ? await getReport(deps.db, id) : null;
    if (!report) throw new ProblemError(404, 'Not found', `drift report ${id} does not exist`, undefined, 'not_found');
    return c.json({ report });
  });

  handle(app, driftOperations.settings, async (c, { params }) => {
    const s = await streamOr404(params.id);
    return c.json({ streamId: s.id, settings: await getDriftSettings(deps.db, s.id) });
  });

  handle(app, driftOperations.setSettings, async (c, { params, body: settings }) => {
    const s = await streamOr404(params.id);
    await saveDriftSettings(deps.db, s.id, settings, c.get('user').name);
    await audit(deps.db, c.get('user').name, 'drift.settings', s.id, settings);
    // The monitor reads its settings at every check; this makes the next check happen now.
    await deps.loopControl.checkDriftNow(s.id).catch(() => undefined);
    return c.json({ streamId: s.id, settings });
  });

  handle(app, driftOperations.check, async (c, { params }) => {
    const s = await streamOr404(params.id);
    await deps.loopControl.ensureDriftMonitor(s.id);
    await deps.loopControl.checkDriftNow(s.id);
    return c.json({ streamId: s.id, requested: 'check' }, 202);
  });

  return app;
}

// Drift reports, per-stream monitor settings (validated; a pinned reference window lives here),
// and a "check now" button.
import { Hono } from 'hono';
import { z } from 'zod';
import { getDriftSettings, getReport, listReports, saveDriftSettings } from '../../db/drift.ts';
import { audit } from '../../db/audit.ts';
import { getStream } from '../../db/streams.ts';
import { driftSettingsSchema } from '../../drift/settings.ts';
import type { ApiDeps, AppEnv } from '../env.ts';
import { parseOrThrow, ProblemError, readJson, UUID } from '../problem.ts';

const listQuery = z.object({
  streamId: z.string().optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  driftOnly: z.enum(['true', 'false']).optional(),
});

export function driftRoutes(deps: ApiDeps) {
  const app = new Hono<AppEnv>();
  const streamOr404 = async (id: string) => {
    const s = await getStream(deps.db, id);
    if (!s) throw new ProblemError(404, 'Not found', `stream ${JSON.stringify(id)} does not exist`, undefined, 'unknown_stream');
    return s;
  };

  app.get('/v1/drift/reports', async (c) => {
    const q = parseOrThrow(listQuery, c.req.query(), 'invalid query');
    return c.json({ reports: await listReports(deps.db, { streamId: q.streamId, limit: q.limit, driftOnly: q.driftOnly === 'true' }) });
  });

  app.get('/v1/drift/reports/:id', async (c) => {
    const id = c.req.param('id');
    const report = UUID.test(id) ? await getReport(deps.db, id) : null;
    if (!report) throw new ProblemError(404, 'Not found', `drift report ${id} does not exist`, undefined, 'not_found');
    return c.json({ report });
  });

  app.get('/v1/streams/:id/drift-settings', async (c) => {
    const s = await streamOr404(c.req.param('id'));
    return c.json({ streamId: s.id, settings: await getDriftSettings(deps.db, s.id) });
  });

  app.put('/v1/streams/:id/drift-settings', async (c) => {
    const s = await streamOr404(c.req.param('id'));
    const settings = parseOrThrow(driftSettingsSchema, await readJson(c), 'invalid drift settings');
    await saveDriftSettings(deps.db, s.id, settings, c.get('user').name);
    await audit(deps.db, c.get('user').name, 'drift.settings', s.id, settings);
    // The monitor reads its settings at every check; this makes the next check happen now.
    await deps.loopControl.checkDriftNow(s.id).catch(() => undefined);
    return c.json({ streamId: s.id, settings });
  });

  app.post('/v1/streams/:id/drift/check', async (c) => {
    const s = await streamOr404(c.req.param('id'));
    await deps.loopControl.ensureDriftMonitor(s.id);
    await deps.loopControl.checkDriftNow(s.id);
    return c.json({ streamId: s.id, requested: 'check' }, 202);
  });

  return app;
}

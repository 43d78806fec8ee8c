// The Hono application: health, metrics, the OpenAPI document, and the authenticated /v1 API.
// Route modules each take the shared dependencies and return a sub-app.
import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { registry } from '../observability/metrics.ts';
import { allMetricsText } from '../observability/temporal-runtime.ts';
import { authenticated } from './auth.ts';
import type { ApiDeps, AppEnv } from './env.ts';
import { openApiDocument } from './openapi.ts';
import { problemBody, ProblemError } from './problem.ts';
import { driftRoutes } from './routes/drift.ts';
import { opsRoutes } from './routes/ops.ts';
import { retrainRoutes } from './routes/retrain.ts';
import { frameRoutes } from './routes/frames.ts';
import { modelRoutes } from './routes/models.ts';
import { streamRoutes } from './routes/streams.ts';
import { taskRoutes } from './routes/tasks.ts';
import { userRoutes } from './routes/users.ts';
import { webRoutes } from './routes/web.ts';

export type { ApiDeps, AppEnv } from './env.ts';

export interface CreateAppOptions {
  /** Extra route modules mounted after the core API (web pages, drift, retraining...). */
  extraRoutes?: ((deps: ApiDeps) => Hono<AppEnv>)[];
  onError?: (err: unknown) => void;
}

export function createApp(deps: ApiDeps, opts: CreateAppOptions = {}) {
  const app = new Hono<AppEnv>();

  app.onError((err, c) => {
    if (err instanceof ProblemError) {
      return c.json(problemBody(err.problemStatus, err.title, err.detail, err.errors, err.code), err.problemStatus, { 'Content-Type': 'application/problem+json' });
    }
    if (err instanceof HTTPException) {
      const status = err.status;
      return c.json(problemBody(status, 'Error', err.message || 'request refused'), status, { 'Content-Type': 'application/problem+json' });
    }
    opts.onError?.(err);
    return c.json(problemBody(500, 'Internal error', 'the server failed to handle the request; see its logs'), 500, { 'Content-Type': 'application/problem+json' });
  });
  app.notFound((c) => c.json(problemBody(404, 'Not found', `no route for ${c.req.method} ${c.req.path}`), 404, { 'Content-Type': 'application/problem+json' }));

  app.get('/healthz', async (c) => {
    await deps.db.execute('select 1');
    return c.json({ ok: true });
  });
  app.get('/metrics', async (c) => c.text(await allMetricsText(), 200, { 'Content-Type': registry.contentType }));
  app.get('/v1/openapi.json', (c) => c.json(openApiDocument));

  app.route('/', webRoutes(deps));

  const v1 = new Hono<AppEnv>();
  v1.use('/v1/*', authenticated(deps));
  for (const routes of [userRoutes, streamRoutes, frameRoutes, taskRoutes, modelRoutes, driftRoutes, retrainRoutes, opsRoutes, ...(opts.extraRoutes ?? [])]) {
    v1.route('/', routes(deps));
  }
  app.route('/', v1);
  return app;
}

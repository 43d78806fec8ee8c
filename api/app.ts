// The Hono application: health, metrics, the OpenAPI document, and the authenticated /v1 API.
// Route modules each take the shared dependencies and return a sub-app.
import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { secureHeaders } from 'hono/secure-headers';
import { enforceAccess } from './access.ts';
import { createAuthenticator } from './auth.ts';
import { limitBodies } from './body-limits.ts';
import type { ApiDeps, AppEnv } from './env.ts';
import { openApiDocument } from './openapi.ts';
import { handle } from './operation.ts';
import { problemBody, ProblemError } from './problem.ts';
import { driftRoutes } from './routes/drift.ts';
import { opsRoutes } from './routes/ops.ts';
import { retrainRoutes } from './routes/retrain.ts';
import { frameRoutes } from './routes/frames.ts';
import { videoRoutes } from './routes/videos.ts';
import { modelRoutes } from './routes/models.ts';
import { streamRoutes } from './routes/streams.ts';
import { systemOperations, systemRoutes } from './routes/system.ts';
import { objectRoutes } from './routes/objects.ts';
import { taskRoutes } from './routes/tasks.ts';
import { reviewerRoutes } from './routes/reviewers.ts';
import { labelFormatRoutes } from './routes/label-formats.ts';
import { userRoutes } from './routes/users.ts';
import { webRoutes } from './routes/web.ts';

export type { ApiDeps, AppEnv } from './env.ts';

export interface CreateAppOptions {
  /** Extra route modules mounted after the core API (web pages, drift, retraining...). */
  extraRoutes?: ((deps: ApiDeps) => Hono<AppEnv>)[];
  onError?: (err: unknown) => void;
}

// Connection refused or reset, and Postgres' "shutting down" and connection-failure codes.
const UNAVAILABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', '57P01', '57P02', '57P03', '08000', '08001', '08003', '08006']);
function isDatabaseUnavailable(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && UNAVAILABLE.has(code)) return true;
    if (e instanceof Error && /Connection terminated/.test(e.message)) return true;
  }
  return false;
}

export function createApp(deps: ApiDeps, opts: CreateAppOptions = {}) {
  const app = new Hono<AppEnv>();

  app.onError((err, c) => {
    if (err instanceof ProblemError) {
      return c.json(problemBody(err.problemStatus, err.title, err.detail, err.errors, err.code), err.problemStatus, {
        'Content-Type': 'application/problem+json',
      });
    }
    if (err instanceof HTTPException) {
      const status = err.status;
      return c.json(problemBody(status, 'Error', err.message || 'request refused'), status, { 'Content-Type': 'application/problem+json' });
    }
    if (isDatabaseUnavailable(err)) {
      // A restart or failover: nothing was stored, and the same request will work shortly.
      return c.json(
        problemBody(
          503,
          'Database unavailable',
          'the database cannot be reached right now; nothing was stored, try again shortly',
          undefined,
          'database_unavailable',
        ),
        503,
        {
          'Content-Type': 'application/problem+json',
          'Retry-After': '2',
        },
      );
    }
    opts.onError?.(err);
    return c.json(problemBody(500, 'Internal error', 'the server failed to handle the request; see its logs'), 500, {
      'Content-Type': 'application/problem+json',
    });
  });
  app.notFound((c) =>
    c.json(problemBody(404, 'Not found', `no route for ${c.req.method} ${c.req.path}`, undefined, 'no_route'), 404, {
      'Content-Type': 'application/problem+json',
    }),
  );

  // The pages load only their own scripts, styles and images (frames come as blob: URLs), and
  // may not be framed by another site.
  app.use(
    '*',
    secureHeaders({
      contentSecurityPolicy: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        // Inline style attributes: the pages and uPlot position elements with them.
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'blob:', 'data:'],
        connectSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
      },
      xFrameOptions: 'DENY',
      xContentTypeOptions: 'nosniff',
      referrerPolicy: 'no-referrer',
    }),
  );

  app.route('/', systemRoutes(deps));
  handle(app, systemOperations.openApi, (c) => c.json(openApiDocument));

  app.route('/', webRoutes(deps));

  const v1 = new Hono<AppEnv>();
  const authn = createAuthenticator(deps);
  // Who the caller is, whether their role may call this route, then how much body it may send.
  v1.use('/v1/*', authn.middleware, enforceAccess(), limitBodies(deps.config));
  const routeDeps: ApiDeps = { ...deps, forgetTokens: authn.forget };
  for (const routes of [
    userRoutes,
    streamRoutes,
    frameRoutes,
    videoRoutes,
    taskRoutes,
    reviewerRoutes,
    labelFormatRoutes,
    objectRoutes,
    modelRoutes,
    driftRoutes,
    retrainRoutes,
    opsRoutes,
    ...(opts.extraRoutes ?? []),
  ]) {
    v1.route('/', routes(routeDeps));
  }
  app.route('/', v1);
  return app;
}

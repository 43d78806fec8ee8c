// The review app and the lead pages: static files from web/ (plain ES modules, no build step),
// plus the little configuration the pages need.
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Hono } from 'hono';
import { repoRoot } from '../../config.ts';
import { z } from 'zod';
import type { ApiDeps, AppEnv } from '../env.ts';
import { defineOperation, handle } from '../operation.ts';
import { ProblemError } from '../problem.ts';

const WEB_DIR = path.join(repoRoot, 'web');
// Resolved like an import, so it finds the package wherever npm put it.
const require = createRequire(import.meta.url);
const VENDOR: Record<string, string> = {
  'uplot.js': require.resolve('uplot/dist/uPlot.iife.min.js'),
  'uplot.css': require.resolve('uplot/dist/uPlot.min.css'),
  'swagger-ui-bundle.js': require.resolve('swagger-ui-dist/swagger-ui-bundle.js'),
  'swagger-ui.css': require.resolve('swagger-ui-dist/swagger-ui.css'),
};
const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8' };

async function sendFile(file: string) {
  const body = await fs.readFile(path.join(WEB_DIR, file)).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') throw new ProblemError(404, 'Not found', `no page asset ${file}`, undefined, 'no_route');
    throw err;
  });
  return new Response(new Uint8Array(body), { headers: { 'Content-Type': TYPES[path.extname(file)], 'Cache-Control': 'no-cache' } });
}

const page = (path: string, summary: string) =>
  defineOperation({ method: 'get', path, summary, public: true, responses: { 200: { description: 'the page', contentType: 'text/html' } } });
const asset = { description: 'the file', contentType: 'text/javascript or text/css' };

export const webOperations = {
  review: page('/', 'The review app'),
  lead: page('/app/lead', 'The lead pages'),
  objects: page('/app/objects', 'Similar objects: search by example, mark, confirm proposals'),
  ops: page('/app/ops', 'The operations page'),
  apiDocs: page('/app/api', 'Interactive API docs (Swagger UI over this document)'),
  vendor: defineOperation({
    method: 'get',
    path: '/app/vendor/{file}',
    honoPath: '/app/vendor/:file{(uplot\\.(js|css)|swagger-ui-bundle\\.js|swagger-ui\\.css)}',
    summary: 'Libraries the pages use, from their npm packages: uPlot (charts) and Swagger UI (API docs)',
    public: true,
    params: z.object({ file: z.enum(Object.keys(VENDOR) as [string, ...string[]]) }),
    responses: { 200: asset },
    problems: [404],
  }),
  config: defineOperation({
    method: 'get',
    path: '/app/config.json',
    summary: 'Settings the pages need (Temporal UI link)',
    public: true,
    responses: { 200: { description: 'settings', schema: z.object({ temporalUiUrl: z.string(), namespace: z.string() }) } },
  }),
  file: defineOperation({
    method: 'get',
    path: '/app/{file}',
    honoPath: '/app/:file{[a-z0-9-]+\\.(js|css)}',
    summary: 'Scripts and styles of the pages',
    public: true,
    params: z.object({ file: z.string().regex(/^[a-z0-9-]+\.(js|css)$/) }),
    responses: { 200: asset },
    problems: [404],
  }),
};

export function webRoutes(deps: ApiDeps) {
  const app = new Hono<AppEnv>();
  handle(app, webOperations.review, () => sendFile('index.html'));
  handle(app, webOperations.lead, () => sendFile('lead.html'));
  handle(app, webOperations.objects, () => sendFile('objects.html'));
  handle(app, webOperations.ops, () => sendFile('ops.html'));
  handle(app, webOperations.apiDocs, () => sendFile('api-docs.html'));
  // Libraries the pages use, served from their npm packages: the pages need no build step and no
  // CDN (the Content-Security-Policy allows only this server's scripts).
  handle(app, webOperations.vendor, async (_c, { params }) => {
    const file = VENDOR[params.file];
    const body = await fs.readFile(file);
    return new Response(new Uint8Array(body), { headers: { 'Content-Type': TYPES[path.extname(file)], 'Cache-Control': 'max-age=86400' } });
  });
  handle(app, webOperations.config, (c) => c.json({ temporalUiUrl: deps.config.TEMPORAL_UI_URL, namespace: deps.config.TEMPORAL_NAMESPACE }));
  // Only plain file names from web/: no paths, so nothing outside the folder can be asked for.
  handle(app, webOperations.file, (_c, { params }) => sendFile(params.file));
  return app;
}

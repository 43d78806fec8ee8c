// The review app and the lead pages: static files from web/ (plain ES modules, no build step),
// plus the little configuration the pages need.
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Hono } from 'hono';
import { repoRoot } from '../../config.ts';
import type { ApiDeps, AppEnv } from '../env.ts';
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

export function webRoutes(deps: ApiDeps) {
  const app = new Hono<AppEnv>();
  app.get('/', () => sendFile('index.html'));
  app.get('/app/lead', () => sendFile('lead.html'));
  app.get('/app/ops', () => sendFile('ops.html'));
  app.get('/app/api', () => sendFile('api-docs.html'));
  // Libraries the pages use, served from their npm packages: the pages need no build step and no
  // CDN (the Content-Security-Policy allows only this server's scripts).
  app.get('/app/vendor/:file{(uplot\\.(js|css)|swagger-ui-bundle\\.js|swagger-ui\\.css)}', async (c) => {
    const name = c.req.param('file');
    const file = VENDOR[name];
    const body = await fs.readFile(file);
    return new Response(new Uint8Array(body), { headers: { 'Content-Type': TYPES[path.extname(file)], 'Cache-Control': 'max-age=86400' } });
  });
  app.get('/app/config.json', (c) => c.json({ temporalUiUrl: deps.config.TEMPORAL_UI_URL, namespace: deps.config.TEMPORAL_NAMESPACE }));
  // Only plain file names from web/: no paths, so nothing outside the folder can be asked for.
  app.get('/app/:file{[a-z0-9-]+\\.(js|css)}', (c) => sendFile(c.req.param('file')));
  return app;
}

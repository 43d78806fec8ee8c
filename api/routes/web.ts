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
const UPLOT_DIST = path.dirname(require.resolve('uplot/dist/uPlot.iife.min.js'));
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
  // uPlot, a small chart library, served from its npm package: the page needs no build step.
  app.get('/app/vendor/:file{uplot\\.(js|css)}', async (c) => {
    const file = c.req.param('file') === 'uplot.js' ? 'uPlot.iife.min.js' : 'uPlot.min.css';
    const body = await fs.readFile(path.join(UPLOT_DIST, file));
    return new Response(new Uint8Array(body), { headers: { 'Content-Type': TYPES[path.extname(file)], 'Cache-Control': 'max-age=86400' } });
  });
  app.get('/app/config.json', (c) => c.json({ temporalUiUrl: deps.config.TEMPORAL_UI_URL, namespace: deps.config.TEMPORAL_NAMESPACE }));
  // Only plain file names from web/: no paths, so nothing outside the folder can be asked for.
  app.get('/app/:file{[a-z0-9-]+\\.(js|css)}', (c) => sendFile(c.req.param('file')));
  return app;
}

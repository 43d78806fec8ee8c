// Box assist under load: autocannon against the real HTTP server (PGlite, the seed box model),
// beside the box model's bare inference time; and bytes decoded per request vs the whole frame.
// autocannon runs as a process of its own, as reviewers' browsers are: in the server's process
// its own work shared the event loop and landed in the server's latency.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import os from 'node:os';
import path from 'node:path';
import { serve } from '@hono/node-server';
import { createApp } from '../api/app.ts';
import { loadConfig, repoRoot } from '../config.ts';
import { openVectorIndex } from '../storage/open-vector-index.ts';
import type { DbHandle } from '../db/client.ts';
import { frames, streams } from '../db/schema.ts';
import { createUser } from '../db/users.ts';
import { ModelCache } from '../models/model-cache.ts';
import { registerModel, setProduction } from '../models/registry.ts';
import { sha256Hex, LocalBlobStore } from '../storage/blob-store.ts';
import { noLoops } from './no-loops.ts';
import { summarize, table } from './stats.ts';

interface LoadResult {
  non2xx: number;
  latency: { p50: number; p90: number; p97_5: number; p99: number };
  requests: { average: number };
}

/** autocannon's command line (JSON out) in a child process: POSTs `body` for `seconds`. */
async function loadFromOwnProcess(url: string, connections: number, seconds: number, headers: Record<string, string>, body: string): Promise<LoadResult> {
  const require = createRequire(import.meta.url);
  const cli = require.resolve('autocannon');
  const args = [cli, '--json', '-m', 'POST', '-c', String(connections), '-d', String(seconds), '-b', body];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}=${v}`);
  const { stdout } = await promisify(execFile)(process.execPath, [...args, url], { maxBuffer: 16 << 20 });
  return JSON.parse(stdout) as LoadResult;
}

export async function benchBoxAssist(handle: DbHandle, frameBytes: Buffer, bareP50: number) {
  const storeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-box-'));
  const store = new LocalBlobStore(storeDir);
  await registerModel(handle.db, store, { kind: 'box', bytes: fs.readFileSync(path.join(repoRoot, 'models/seed/box.onnx')), version: 'bench-box' });
  await setProduction(handle.db, 'box', 'bench-box', { triggeredBy: 'bench' });
  await handle.db.insert(streams).values({ id: 'box-bench', name: 'box' }).onConflictDoNothing();
  const key = `frames/bench/${sha256Hex(frameBytes)}.png`;
  await store.put(key, frameBytes);
  const [frame] = await handle.db
    .insert(frames)
    .values({
      streamId: 'box-bench',
      cameraId: 'c',
      capturedAt: new Date(),
      contentHash: sha256Hex(frameBytes),
      storageKey: key,
      mediaType: 'image/png',
      sizeBytes: frameBytes.length,
      width: 320,
      height: 240,
    })
    .returning();
  const { token } = await createUser(handle.db, { name: `box-bench-${Date.now()}`, role: 'reviewer' });
  const config = loadConfig({ ...process.env, STORE_DIR: storeDir });
  const body = JSON.stringify({ frameId: frame.id, region: { x1: 120, y1: 110, x2: 180, y2: 160 } });
  // A server per setting of BOX_ASSIST_MAX_BATCH: 1 (each region its own run, the baseline) and
  // the default, taken in turn at each load so a slow moment of the machine hits both alike.
  const servers = await Promise.all(
    [1, config.BOX_ASSIST_MAX_BATCH].map(async (maxBatch) => {
      const models = new ModelCache(store, { intraOpThreads: 1, minScore: 0.1, boxMaxBatch: maxBatch });
      const app = createApp({ db: handle.db, store, config, loopControl: noLoops, models, vectorIndex: openVectorIndex(handle.db, config) });
      const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 });
      await new Promise((r) => server.once('listening', r));
      return { maxBatch, models, server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}/v1/box-predictions` };
    }),
  );
  const { url } = servers[1];
  const one = await (await fetch(url, { method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body })).json();
  const two = await (await fetch(url, { method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body })).json();
  await fetch(servers[0].url, { method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body });
  const rows: (string | number)[][] = [];
  for (const connections of [1, 16, 64]) {
    for (const s of servers) {
      const r = await loadFromOwnProcess(s.url, connections, 5, { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body);
      if (r.non2xx) throw new Error(`box assist bench: ${r.non2xx} non-2xx responses`);
      rows.push([connections, s.maxBatch, r.latency.p50, r.latency.p90, r.latency.p97_5, r.latency.p99, r.requests.average]);
    }
  }
  table(
    'Box assist over HTTP, autocannon in a process of its own (ms; requests/s)',
    ['clients', 'regions per run at most', 'p50', 'p90', 'p97.5', 'p99', 'req/s'],
    rows,
  );
  // Where the time goes at 16 clients: the server's own timings of each answer (finding the
  // frame, decoding and cropping the region, the model) beside what the client waited; the rest
  // is HTTP, JSON and waiting for the event loop.
  const spent: Record<'frame' | 'crop' | 'inference' | 'server' | 'client', number[]> = { frame: [], crop: [], inference: [], server: [], client: [] };
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      for (let i = 0; i < 40; i++) {
        const t = performance.now();
        const res = await fetch(url, { method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body });
        const answer = (await res.json()) as { latencyMs: number; timings: { frame: number; crop: number; inference: number } };
        spent.client.push(performance.now() - t);
        spent.server.push(answer.latencyMs);
        for (const k of ['frame', 'crop', 'inference'] as const) spent[k].push(answer.timings[k]);
      }
    }),
  );
  const other = spent.client.map((c, i) => c - spent.server[i]);
  table(
    `Box assist at 16 clients (fetch in the server's own process, to read the server's timings of each answer), at most ${config.BOX_ASSIST_MAX_BATCH} regions per run: where the time goes (ms)`,
    ['stage', 'p50', 'p99'],
    [
      ['frame row and bytes (cached after the first)', summarize(spent.frame).p50, summarize(spent.frame).p99],
      ['region decode + crop', summarize(spent.crop).p50, summarize(spent.crop).p99],
      ['box model run', summarize(spent.inference).p50, summarize(spent.inference).p99],
      ['server total', summarize(spent.server).p50, summarize(spent.server).p99],
      ['HTTP, JSON, auth and event-loop wait (client - server)', summarize(other).p50, summarize(other).p99],
      ['client total', summarize(spent.client).p50, summarize(spent.client).p99],
    ],
  );
  table(
    'Box assist decoding',
    ['measure', 'value'],
    [
      ['bare box model session.run p50 (ms)', bareP50],
      // A frame this small is decoded whole at its first ask and kept decoded (BOX_ASSIST_CACHE_BYTES).
      ['bytes decoded by the first ask about the frame', one.bytesDecoded],
      ['bytes decoded by the next ask', two.bytesDecoded],
      ['bytes of the whole decoded frame', one.frameBytes],
    ],
  );
  for (const s of servers) {
    await new Promise((r) => s.server.close(r));
    await s.models.close();
  }
  fs.rmSync(storeDir, { recursive: true, force: true });
  return rows;
}

// Peak memory of one API process while 16 maximum-size frames (40 MP JPEGs of ~6 MB, the
// default pixel limit) arrive at once, through the real HTTP server. Each run is a fresh child
// process, so its peak RSS is its own: the baseline is the same process idle before the uploads,
// and one upload alone. Run by `npm run bench -- ingest`; the child side is this file with
// `--child <concurrent uploads>`.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { serve } from '@hono/node-server';
import sharp from 'sharp';
import { createApp } from '../api/app.ts';
import { loadConfig } from '../config.ts';
import { openVectorIndex } from '../storage/open-vector-index.ts';
import { openDb } from '../db/client.ts';
import { streams } from '../db/schema.ts';
import { createUser } from '../db/users.ts';
import { ModelCache } from '../models/model-cache.ts';
import { LocalBlobStore } from '../storage/blob-store.ts';
import { noLoops } from './no-loops.ts';
import { table } from './stats.ts';

const WIDTH = 7300;
const HEIGHT = 5470; // 39.9 MP

async function child(uploads: number, framePath: string) {
  const storeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-ingest-'));
  const handle = await openDb({});
  const store = new LocalBlobStore(storeDir);
  await handle.db.insert(streams).values({ id: 'mem', name: 'mem' });
  const { token } = await createUser(handle.db, { name: 'cam', role: 'camera', streams: ['mem'] });
  const config = loadConfig({ ...process.env, STORE_DIR: storeDir });
  const app = createApp({
    db: handle.db,
    store,
    config,
    loopControl: noLoops,
    models: new ModelCache(store, { intraOpThreads: 1, minScore: 0.1 }),
    vectorIndex: openVectorIndex(handle.db, config),
  });
  const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 });
  await new Promise((r) => server.once('listening', r));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/v1/streams/mem/frames?cameraId=c`;
  const frame = fs.readFileSync(framePath);
  // Distinct frames: a JPEG decoder ignores bytes after the end-of-image marker.
  const bodies = Array.from({ length: uploads }, (_, i) => new Uint8Array(Buffer.concat([frame, Buffer.from(`#${i}`)])));
  // One small frame first, so first-use costs (module loads, the first insert) are in the idle
  // figure and not charged to the uploads measured.
  const warm = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#808080' } })
    .jpeg()
    .toBuffer();
  await fetch(url, { method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'image/jpeg' }, body: new Uint8Array(warm) });
  global.gc?.();
  const idle = process.memoryUsage().rss;
  let peak = idle;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
  const started = performance.now();
  const statuses = await Promise.all(
    bodies.map(
      async (body) => (await fetch(url, { method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'image/jpeg' }, body })).status,
    ),
  );
  const seconds = (performance.now() - started) / 1000;
  clearInterval(sampler);
  server.close();
  await handle.close();
  fs.rmSync(storeDir, { recursive: true, force: true });
  // Sampled, not process.resourceUsage().maxRSS: that is the lifetime peak, and opening PGlite
  // peaks higher than anything measured here.
  console.log(JSON.stringify({ uploads, idle, peak, seconds, statuses }));
}

export async function benchIngestMemory() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-ingest-frame-'));
  const framePath = path.join(dir, 'frame.jpg');
  await sharp({ create: { width: WIDTH, height: HEIGHT, channels: 3, background: '#6080a0', noise: { type: 'gaussian', mean: 128, sigma: 10 } } })
    .jpeg({ quality: 80 })
    .toFile(framePath);
  const size = fs.statSync(framePath).size;
  const run = async (uploads: number) => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--expose-gc', '--import', 'tsx', fileURLToPath(import.meta.url), '--child', String(uploads), framePath],
      { maxBuffer: 1 << 20, env: { ...process.env, LOG_LEVEL: 'error' } },
    );
    return JSON.parse(stdout.trim().split('\n').pop()!) as { uploads: number; idle: number; peak: number; seconds: number; statuses: number[] };
  };
  const rows = [];
  for (const n of [1, 16]) {
    const r = await run(n);
    const ok = r.statuses.filter((s) => s === 201).length;
    // Beside it, what the frames are: their bytes, and their pixels if each were held decoded.
    rows.push([
      `${n} at once`,
      r.idle / 2 ** 20,
      r.peak / 2 ** 20,
      (r.peak - r.idle) / 2 ** 20,
      (n * size) / 2 ** 20,
      (n * WIDTH * HEIGHT * 3) / 2 ** 20,
      r.seconds,
      `${ok}/${n}`,
    ]);
  }
  table(
    `Ingest memory: ${WIDTH}x${HEIGHT} JPEG frames of ${(size / 2 ** 20).toFixed(1)} MiB (one API process, PGlite)`,
    ['uploads', 'idle RSS (MiB)', 'peak RSS (MiB)', 'added (MiB)', 'frame bytes (MiB)', 'RGB if decoded whole (MiB)', 'seconds', 'stored'],
    rows,
  );
  fs.rmSync(dir, { recursive: true, force: true });
}

if (process.argv[2] === '--child') await child(Number(process.argv[3]), process.argv[4]);

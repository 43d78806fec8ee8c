// Video ingest against plain ffmpeg on the same file in the same run: frames per second taken
// from a 720p H.264 file at 1 frame/s and at every frame, end to end (upload checks, split,
// extraction activities on the Temporal server, frames stored and inserted), with one and with
// two segments extracted at a time. Plain ffmpeg decodes the file once and writes the same JPEGs.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { config, repoRoot } from '../config.ts';
import { openDb } from '../db/client.ts';
import { createStream } from '../db/streams.ts';
import { getVideo, videoProgress } from '../db/videos.ts';
import { submitVideo } from '../ingest/submit-video.ts';
import type { Sampling } from '../ingest/video-sampling.ts';
import { LocalBlobStore } from '../storage/blob-store.ts';
import { openVectorIndex } from '../storage/open-vector-index.ts';
import { ModelCache } from '../models/model-cache.ts';
import { startWorkers } from '../workers/start-workers.ts';
import { videoWorkflowId } from '../workflows/shared.ts';
import { cpuSeconds } from './cpu.ts';
import { table } from './stats.ts';

const SECONDS = 60;
const FPS = 30;

function timed(fn: () => void): number {
  const t = performance.now();
  fn();
  return (performance.now() - t) / 1000;
}

export async function benchVideo(temporalAddress: string) {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-video-'));
  const source = path.join(work, 'drive-720p.mp4');
  // A keyframe every 2 s, as dashcams and phones write them.
  execFileSync('ffmpeg', [
    ...['-v', 'error', '-y', '-f', 'lavfi', '-i', `testsrc2=size=1280x720:rate=${FPS}:duration=${SECONDS}`],
    ...['-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p', '-g', String(2 * FPS), source],
  ]);
  // CPU seconds of this process and the children it waited for (every ffmpeg and ffprobe, plain
  // or the ingest's), so the tables say where the cores went as well as how long it took.
  const cpu = () => cpuSeconds(process.pid);
  const plain = (filter: string[]) => {
    const out = fs.mkdtempSync(path.join(work, 'plain-'));
    const cpuBefore = cpu();
    const seconds = timed(() => execFileSync('ffmpeg', ['-v', 'error', '-i', source, ...filter, '-q:v', '2', '-f', 'image2', path.join(out, '%06d.jpg')]));
    const cpuSecondsUsed = cpu() - cpuBefore;
    const frames = fs.readdirSync(out).length;
    fs.rmSync(out, { recursive: true });
    return { frames, seconds, fps: frames / seconds, cpuSeconds: cpuSecondsUsed };
  };

  const connection = await Connection.connect({ address: temporalAddress });
  const client = new Client({ connection });
  const native = await NativeConnection.connect({ address: temporalAddress });
  const rows: (string | number)[][] = [];
  const results: Record<string, unknown>[] = [];
  const cases: { name: string; sampling: Sampling; plain: string[] }[] = [
    { name: '1 frame/s', sampling: { mode: 'fps', rate: 1 }, plain: ['-vf', 'fps=1'] },
    { name: 'every frame', sampling: { mode: 'every', n: 1 }, plain: [] },
  ];
  for (const c of cases) {
    // The better of two plain runs, so a slow moment of the machine does not flatter the ingest.
    const runs = [plain(c.plain), plain(c.plain)];
    const baseline = runs[0].fps >= runs[1].fps ? runs[0] : runs[1];
    rows.push([
      `${c.name}: plain ffmpeg (one process)`,
      baseline.frames,
      baseline.seconds,
      baseline.fps,
      1,
      (baseline.cpuSeconds * 1000) / baseline.frames,
      baseline.cpuSeconds / baseline.seconds,
    ]);
    results.push({ case: c.name, kind: 'plain ffmpeg', ...baseline });
    for (const parallel of [1, 2]) {
      const handle = await openDb({});
      const store = new LocalBlobStore(fs.mkdtempSync(path.join(work, 'store-')));
      const queue = `bench-ingest-${Date.now()}`;
      const workers = await startWorkers({
        connection: native,
        namespace: 'default',
        db: handle.db,
        store,
        detectors: new ModelCache(store, { intraOpThreads: 1, minScore: 0.1 }),
        vectorIndex: openVectorIndex(handle.db, config),
        scoringQueue: `${queue}-scoring`,
        controlQueue: `${queue}-control`,
        ingestQueue: queue,
        videoSlots: parallel,
      });
      await createStream(handle.db, { id: 'bench', name: 'bench', createdBy: 'bench' });
      const started = performance.now();
      const cpuBefore = cpu();
      const { video } = await submitVideo(
        { db: handle.db, store, temporal: client, config: { ...config, VIDEO_PARALLEL_SEGMENTS: parallel, MAX_FRAME_PIXELS: 4e7 }, ingestQueue: queue },
        { streamId: 'bench', cameraId: 'dashcam', startedAt: new Date(), file: source, fileName: 'drive-720p.mp4', sampling: c.sampling, source: 'http' },
      );
      // The workflow's result, not a poll of the database: polling ran in this process and took
      // CPU the ingest competes for.
      await client.workflow.getHandle(videoWorkflowId(video.id)).result();
      const seconds = (performance.now() - started) / 1000;
      const cpuSecondsUsed = cpu() - cpuBefore;
      const v = await getVideo(handle.db, video.id);
      if (v!.status !== 'done') throw new Error(`video bench: ${v!.status} ${v!.error}`);
      const progress = (await videoProgress(handle.db, [(await getVideo(handle.db, video.id))!])).get(video.id)!;
      const fps = progress.framesSampled / seconds;
      rows.push([
        `${c.name}: video ingest, ${parallel} segment(s) at a time`,
        progress.framesSampled,
        seconds,
        fps,
        fps / baseline.fps,
        (cpuSecondsUsed * 1000) / progress.framesSampled,
        cpuSecondsUsed / seconds,
      ]);
      results.push({
        case: c.name,
        kind: 'video ingest',
        parallel,
        frames: progress.framesSampled,
        segments: progress.segmentsTotal,
        seconds,
        fps,
        ratio: fps / baseline.fps,
        cpuSeconds: cpuSecondsUsed,
      });
      await workers.shutdown();
      await handle.close();
    }
  }
  await native.close();
  await connection.close();
  table(
    `Video ingest, ${SECONDS} s of 1280x720 H.264 at ${FPS} fps (keyframe every 2 s, ${config.VIDEO_SEGMENT_SECONDS} s segments), ${os.cpus().length} cores; end to end = from the upload's checks to the last frame stored`,
    ['run', 'frames', 'seconds', 'frames/s', 'ratio to plain ffmpeg', 'CPU ms per frame (Node and ffmpeg)', 'cores kept busy'],
    rows,
  );
  fs.writeFileSync(
    path.join(repoRoot, 'bench', 'results', 'video.json'),
    JSON.stringify({ at: new Date().toISOString(), cores: os.cpus().length, results }, null, 2) + '\n',
  );
  fs.rmSync(work, { recursive: true, force: true });
}

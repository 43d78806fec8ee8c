// Video in, as a user sends it: upload over the API, a videoIngest workflow on the run's Temporal
// server splits and samples it, and its frames enter the stream's loop. Hostile files are refused
// with the reason and leave nothing stored.
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { serve } from '@hono/node-server';
import { asc, count, eq, inArray } from 'drizzle-orm';
import sharp from 'sharp';
import { NativeConnection } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { repoRoot } from '../../config.ts';
import { scanDirectory } from '../../ingest/directory-source.ts';
import { submitDroppedVideo } from '../../ingest/submit-video.ts';
import { frames, frameScores, videos } from '../../db/schema.ts';
import type { RunningWorkers } from '../../workers/start-workers.ts';
import { videoProgressQuery, videoWorkflowId } from '../../workflows/shared.ts';
import { createTestDb, type TestDb } from '../helpers/db.ts';
import { auth, createStreamOverApi, createTestPlatform, sampleFrames, startPlatformWorkers, stopStream, type TestPlatform } from '../helpers/platform.ts';
import { eventually, quietRuntime } from '../helpers/temporal.ts';
import { makeVideo } from '../helpers/videos.ts';

let db: TestDb;
let p: TestPlatform;
let connection: NativeConnection;
let workers: RunningWorkers;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'videos-'));
const STARTED = '2026-11-30T08:00:00.000Z';
const streams = ['cam-a', 'cam-b', 'cam-vfr', 'cam-cancel', 'cam-key', 'cam-scene', 'cam-sparse', 'cam-cli', 'hostile', 'dropped'];

beforeAll(async () => {
  db = await createTestDb();
  // 160x120 frames fit; the pixel limit refuses a 320x240 video.
  p = await createTestPlatform(db, { env: { MAX_FRAME_PIXELS: '20000', VIDEO_SEGMENT_SECONDS: '10', VIDEO_PARALLEL_SEGMENTS: '2' } });
  quietRuntime();
  connection = await NativeConnection.connect({ address: inject('temporalAddress') });
  workers = await startPlatformWorkers(p, connection);
  for (const id of streams) {
    await createStreamOverApi(p, id);
  }
}, 60_000);

afterAll(async () => {
  for (const id of streams) await stopStream(p, id);
  await workers?.shutdown();
  await connection?.close();
  await p?.close();
  await db?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function upload(streamId: string, file: string, query: string, type = 'video/mp4') {
  return p.app.request(`/v1/streams/${streamId}/videos?cameraId=dashcam-1&startedAt=${STARTED}&${query}`, {
    method: 'POST',
    headers: auth(p.tokens.lead, { 'Content-Type': type }),
    body: fs.readFileSync(file),
  });
}

interface VideoView {
  id: string;
  status: string;
  error: string | null;
  probe: { codec: string; frames: number; durationSeconds: number };
  progress: { segmentsDone: number; segmentsTotal: number | null; framesSampled: number; framesStored: number };
}

async function finished(id: string, timeoutMs = 60_000): Promise<VideoView> {
  return eventually(
    async () => {
      const v = (await (await p.app.request(`/v1/videos/${id}`, { headers: auth(p.tokens.lead) })).json()) as VideoView;
      return ['done', 'failed', 'cancelled'].includes(v.status) ? v : null;
    },
    timeoutMs,
    `video ${id} finished`,
  );
}

/** Seconds after the video's start of each frame the stream got from it, in capture order. */
async function frameOffsets(streamId: string, fromStart = true): Promise<number[]> {
  const rows = await db.db.select({ at: frames.capturedAt }).from(frames).where(eq(frames.streamId, streamId)).orderBy(asc(frames.capturedAt));
  return rows.map((r) => (r.at.getTime() - (fromStart ? Date.parse(STARTED) : rows[0].at.getTime())) / 1000);
}

describe('video ingest', () => {
  it('splits an uploaded video into segments, samples one frame a second across them, and the loop scores the frames', async () => {
    // 25 s at 25 fps, a keyframe every 2 s: three segments of about 10 s. With B-frames, as
    // encoders write by default: the segments' timestamps then start at the B-frame delay, not
    // at 0, and frame times must still count from the first frame.
    const file = makeVideo(path.join(dir, 'a.mp4'), { seconds: 25, fps: 25, gop: 50, extra: ['-preset', 'veryfast'] });
    const res = await upload('cam-a', file, 'sample=fps&rate=1&fileName=a.mp4');
    expect(res.status).toBe(202);
    const accepted = (await res.json()) as VideoView;
    expect(accepted.probe).toMatchObject({ codec: 'h264', frames: 625, durationSeconds: 25 });
    const v = await finished(accepted.id);
    expect(v).toMatchObject({ status: 'done', error: null, progress: { segmentsDone: 3, segmentsTotal: 3, framesSampled: 25, framesStored: 25 } });
    // One frame at each whole second, timed by presentation time from the given start.
    expect(await frameOffsets('cam-a')).toEqual(Array.from({ length: 25 }, (_, i) => i));
    // The same progress in the workflow, as the Temporal UI and a query see it.
    const handle = p.deps.temporal!.workflow.getHandle(videoWorkflowId(v.id));
    expect(await handle.query(videoProgressQuery)).toMatchObject({ phase: 'done', segmentsDone: 3, segmentsTotal: 3, framesSampled: 25 });
    // Each frame's size is the one ffmpeg reported for it, which its JPEG header agrees with.
    const rows = await db.db
      .select({ id: frames.id, width: frames.width, height: frames.height, key: frames.storageKey })
      .from(frames)
      .where(eq(frames.streamId, 'cam-a'));
    expect(new Set(rows.map((r) => `${r.width}x${r.height}`))).toEqual(new Set(['160x120']));
    expect(await sharp(await p.deps.store.get(rows[0].key)).metadata()).toMatchObject({ width: 160, height: 120 });
    // The frames are the stream's like any other: the loop scores them.
    const ids = rows.map((r) => r.id);
    await eventually(
      async () => (await db.db.select({ n: count() }).from(frameScores).where(inArray(frameScores.frameId, ids)))[0].n === 25,
      60_000,
      'every video frame scored by the loop',
    );
    // The same file again is the same video; nothing new is stored.
    const again = await upload('cam-a', file, 'sample=fps&rate=1');
    expect(again.status).toBe(200);
    expect(((await again.json()) as VideoView).id).toBe(v.id);
    expect(await frameOffsets('cam-a')).toHaveLength(25);
  });

  it('takes every n-th frame of the whole video, counted across segment boundaries', async () => {
    const file = makeVideo(path.join(dir, 'b.mp4'), { seconds: 25, fps: 25, gop: 50 });
    const v = await finished(((await (await upload('cam-b', file, 'sample=every&every=7')).json()) as VideoView).id);
    // Frames 0, 7, 14, ... 623 of 625: 90, at multiples of 7/25 s.
    expect(v.progress).toMatchObject({ segmentsDone: 3, framesSampled: 90 });
    const offsets = await frameOffsets('cam-b');
    expect(offsets.map((s) => Math.round((s * 25) / 7))).toEqual(Array.from({ length: 90 }, (_, i) => i));
  });

  it('places frames of a variable-frame-rate video by presentation time, not by frame count', async () => {
    // 10 fps for 5 s, then one frame every 0.5 s until 29.5 s; a keyframe every 10 frames.
    const file = makeVideo(path.join(dir, 'vfr.mkv'), { seconds: 10, fps: 10, gop: 10, filter: "setpts='if(lt(N,50),N/10,5+(N-50)/2)/TB'" });
    const v = await finished(((await (await upload('cam-vfr', file, 'sample=fps&rate=1', 'video/x-matroska')).json()) as VideoView).id);
    expect(v.status).toBe('done');
    expect(v.progress.segmentsTotal).toBeGreaterThan(1);
    // Counting frames at the average rate (10/s) would take 10 frames; time takes one per second.
    expect(await frameOffsets('cam-vfr')).toEqual(Array.from({ length: 30 }, (_, i) => i));
  });

  it('keyframes only, scene changes, and a source whose keyframes are too far apart to split on', async () => {
    // A keyframe every 2 s of 25: 13 keyframes.
    const keyed = makeVideo(path.join(dir, 'keyed.mp4'), { seconds: 25, fps: 25, gop: 50, size: '128x96' });
    expect((await finished(((await (await upload('cam-key', keyed, 'sample=keyframes')).json()) as VideoView).id)).progress.framesSampled).toBe(13);
    expect(await frameOffsets('cam-key')).toEqual(Array.from({ length: 13 }, (_, i) => 2 * i));
    // Three shots of 4 s (test pattern, colour bars, mandelbrot): the first frame and two cuts.
    const shots = path.join(dir, 'shots.mp4');
    execFileSync('ffmpeg', [
      ...['-v', 'error', '-y'],
      ...['-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=10:duration=4'],
      ...['-f', 'lavfi', '-i', 'smptebars=size=160x120:rate=10:duration=4'],
      ...['-f', 'lavfi', '-i', 'mandelbrot=size=160x120:rate=10,trim=duration=4'],
      ...[
        '-filter_complex',
        '[0:v][1:v][2:v]concat=n=3:v=1[v]',
        '-map',
        '[v]',
        '-c:v',
        'libx264',
        '-preset',
        'ultrafast',
        '-pix_fmt',
        'yuv420p',
        '-g',
        '20',
        shots,
      ],
    ]);
    expect((await finished(((await (await upload('cam-scene', shots, 'sample=scene&sceneThreshold=0.3')).json()) as VideoView).id)).status).toBe('done');
    expect(await frameOffsets('cam-scene')).toEqual([0, 4, 8]);
    // One keyframe every 30 s: cutting at keyframes would make a 30 s segment, so the splitter
    // re-encodes with a keyframe every 10 s; the frames taken are the same one per second.
    const sparse = makeVideo(path.join(dir, 'sparse.mp4'), { seconds: 40, fps: 10, gop: 300, size: '128x96' });
    const v = await finished(((await (await upload('cam-sparse', sparse, 'sample=fps&rate=1')).json()) as VideoView).id);
    expect(v.progress).toMatchObject({ segmentsTotal: 4, segmentsDone: 4, framesSampled: 40 });
    expect(await frameOffsets('cam-sparse')).toEqual(Array.from({ length: 40 }, (_, i) => i));
  });

  it('cancelling stops within seconds and keeps the frames of finished segments', async () => {
    // Every frame of 60 s at 25 fps: 1,500 frames in six segments, minutes of work.
    const file = makeVideo(path.join(dir, 'long.mp4'), { seconds: 60, fps: 25, gop: 50 });
    const { id } = (await (await upload('cam-cancel', file, 'sample=every&every=1')).json()) as VideoView;
    await eventually(
      async () => ((await (await p.app.request(`/v1/videos/${id}`, { headers: auth(p.tokens.lead) })).json()) as VideoView).progress.segmentsDone >= 1,
      90_000,
      'a segment done',
    );
    const cancel = await p.app.request(`/v1/videos/${id}/cancel`, { method: 'POST', headers: auth(p.tokens.lead) });
    expect(cancel.status).toBe(202);
    const asked = Date.now();
    const v = await finished(id, 30_000);
    expect(v.status).toBe('cancelled');
    expect(Date.now() - asked).toBeLessThan(15_000);
    const after = (await frameOffsets('cam-cancel')).length;
    expect(v.progress.segmentsDone).toBeLessThan(6);
    expect(after).toBeGreaterThanOrEqual(v.progress.framesStored);
    // Nothing is written after the cancel took effect.
    await new Promise((r) => setTimeout(r, 3000));
    expect((await frameOffsets('cam-cancel')).length).toBe(after);
    expect((await p.app.request(`/v1/videos/${id}/cancel`, { method: 'POST', headers: auth(p.tokens.lead) })).status).toBe(409);
  });

  it('sends a video from the command line and shows its progress until done', async () => {
    const server = serve({ fetch: p.app.fetch, hostname: '127.0.0.1', port: 0 });
    await new Promise((r) => server.once('listening', r));
    const api = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    try {
      const file = makeVideo(path.join(dir, 'cli.mp4'), { seconds: 12, fps: 10, gop: 20 });
      const { stdout } = await promisify(execFile)(
        process.execPath,
        [
          '--import',
          'tsx',
          path.join(repoRoot, 'scripts', 'cli.ts'),
          'ingest-video',
          file,
          '--stream',
          'cam-cli',
          '--camera',
          'dashcam-2',
          '--rate',
          '2',
          '--api',
          api,
        ],
        { env: { ...process.env, DATAENGINE_TOKEN: p.tokens.lead } },
      );
      expect(stdout).toMatch(/accepted: video [0-9a-f-]{36}, h264 160x120, 12\.0 s/);
      expect(stdout).toContain('done: 24 frames into stream cam-cli');
      expect(await frameOffsets('cam-cli', false)).toHaveLength(24);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('takes a video dropped into the watched folder like an upload, ending when the file was written, and refuses a fake one with its reason', async () => {
    const inbox = fs.mkdtempSync(path.join(os.tmpdir(), 'inbox-'));
    const cam = path.join(inbox, 'dropped', 'dashcam-9');
    fs.mkdirSync(cam, { recursive: true });
    makeVideo(path.join(cam, 'trip.mp4'), { seconds: 12, fps: 10, gop: 20 });
    // The recording ended when the file was written: 08:00:12, so it started at 08:00:00.
    const endedAt = new Date(Date.parse(STARTED) + 12_000);
    fs.utimesSync(path.join(cam, 'trip.mp4'), endedAt, endedAt);
    fs.writeFileSync(path.join(cam, 'notes.mp4'), 'not a video\n');
    const scan = () =>
      scanDirectory({
        db: db.db,
        store: p.deps.store,
        dir: inbox,
        maxFrameBytes: p.deps.config.MAX_FRAME_BYTES,
        maxFramePixels: p.deps.config.MAX_FRAME_PIXELS,
        submitVideo: submitDroppedVideo({ db: db.db, store: p.deps.store, temporal: p.deps.temporal!, config: p.deps.config, ingestQueue: p.ingestQueue }),
      });
    expect(await scan()).toEqual({ ingested: 1, rejected: 1 });
    expect(fs.readFileSync(path.join(inbox, '.rejected', 'dropped', 'dashcam-9', 'notes.mp4.reason.txt'), 'utf8')).toMatch(/^400 not_a_video: /);
    expect(fs.existsSync(path.join(inbox, '.done', 'dropped', 'dashcam-9', 'trip.mp4'))).toBe(true);
    const [row] = await db.db.select().from(videos).where(eq(videos.streamId, 'dropped'));
    expect(row).toMatchObject({ source: 'directory', cameraId: 'dashcam-9' });
    // One frame a second (the default sampling), timed from the start the file's time implies.
    expect(await finished(row.id)).toMatchObject({ status: 'done', progress: { framesStored: 12 } });
    expect(await frameOffsets('dropped', true)).toEqual(Array.from({ length: 12 }, (_, i) => i));
    // Dropping the same file again adds nothing.
    fs.copyFileSync(path.join(inbox, '.done', 'dropped', 'dashcam-9', 'trip.mp4'), path.join(cam, 'again.mp4'));
    fs.utimesSync(path.join(cam, 'again.mp4'), endedAt, endedAt);
    expect(await scan()).toEqual({ ingested: 1, rejected: 0 });
    expect(await db.db.select().from(videos).where(eq(videos.streamId, 'dropped'))).toHaveLength(1);
    fs.rmSync(inbox, { recursive: true, force: true });
  });

  it('refuses hostile videos with the reason, storing nothing', async () => {
    const good = makeVideo(path.join(dir, 'good.mp4'), { seconds: 4, fps: 10, gop: 10, extra: ['-movflags', '+faststart'] });
    const bytes = fs.readFileSync(good);
    const file = (name: string, content: Uint8Array | string) => {
      fs.writeFileSync(path.join(dir, name), content);
      return path.join(dir, name);
    };
    const cases: [string, string, string, number, string][] = [
      ['zero bytes', file('empty.mp4', ''), 'video/mp4', 400, 'empty'],
      ['a text file named .mp4', file('text.mp4', 'this is not a video\n'), 'video/mp4', 400, 'not_a_video'],
      ['truncated (index at the start, data cut)', file('cut.mp4', bytes.subarray(0, Math.floor(bytes.length * 0.6))), 'video/mp4', 400, 'corrupt'],
      [
        'truncated (index lost)',
        file('cut2.mp4', fs.readFileSync(makeVideo(path.join(dir, 'plain.mp4'), { seconds: 4, fps: 10 })).subarray(0, 5000)),
        'video/mp4',
        400,
        'not_a_video',
      ],
      ['an unsupported codec', makeVideo(path.join(dir, 'ffv1.mkv'), { seconds: 1, fps: 5, codec: 'ffv1' }), 'video/x-matroska', 415, 'unsupported_codec'],
      ['over the pixel limit', makeVideo(path.join(dir, 'big.mp4'), { seconds: 1, fps: 5, size: '320x240' }), 'video/mp4', 413, 'too_many_pixels'],
      ['a Matroska file sent as MP4', makeVideo(path.join(dir, 'mkv.mkv'), { seconds: 1, fps: 5 }), 'video/mp4', 415, 'type_mismatch'],
      ['an image', sampleFrames()[0].file, 'video/mp4', 415, 'unsupported_container'],
    ];
    // Ten hours at one frame a second is over the duration limit (4 h by default).
    const tenHours = path.join(dir, 'ten-hours.mp4');
    execFileSync('ffmpeg', [
      '-v',
      'error',
      '-y',
      '-f',
      'lavfi',
      '-i',
      'color=c=gray:size=64x64:rate=1:duration=36000',
      '-c:v',
      'libx264',
      '-preset',
      'ultrafast',
      '-g',
      '600',
      tenHours,
    ]);
    cases.push(['ten hours long', tenHours, 'video/mp4', 413, 'too_long']);
    for (const [what, f, type, status, code] of cases) {
      const res = await upload('hostile', f, 'sample=fps&rate=1', type);
      const body = (await res.json()) as { code?: string; detail: string; errors?: { field: string }[] };
      expect({ what, status: res.status, code: body.code }).toEqual({ what, status, code });
      expect(body.detail.length).toBeGreaterThan(10);
    }
    // The good file itself is taken.
    expect((await upload('hostile', good, 'sample=every&every=1')).status).toBe(202);
    // A sampling that would take too many frames names the limit.
    const everyFrameOfLong = await upload(
      'hostile',
      makeVideo(path.join(dir, 'hour.mp4'), { seconds: 2400, fps: 10, size: '64x48', gop: 250 }),
      'sample=fps&rate=10',
    );
    expect(everyFrameOfLong.status).toBe(413);
    expect(((await everyFrameOfLong.json()) as { code: string }).code).toBe('too_many_frames');
    // Content-Type that is no video type at all.
    const wrongType = await upload('hostile', good, 'sample=fps&rate=1', 'image/png');
    expect(wrongType.status).toBe(415);
    // Bad sampling parameters name the field.
    const badRate = await upload('hostile', good, 'sample=fps&rate=0');
    expect(badRate.status).toBe(400);
    expect(JSON.stringify(await badRate.json())).toContain('rate');
    // Only the one good upload left a video row, and the store holds a file for each row only.
    const rows = await db.db.select({ id: videos.id }).from(videos).where(eq(videos.streamId, 'hostile'));
    expect(rows).toHaveLength(1);
    const videoRoot = path.join(p.storeDir, 'videos');
    const blobs = fs.readdirSync(videoRoot).flatMap((d) => fs.readdirSync(path.join(videoRoot, d)).filter((f) => /\.(mp4|mkv)$/.test(f)));
    // (Blobs are content-addressed: the same file in two streams is one blob.)
    expect(blobs).toHaveLength(new Set((await db.db.select({ hash: videos.contentHash }).from(videos)).map((r) => r.hash)).size);
  }, 120_000);
});

// The video part of `make up`: a 30 s dashcam clip made from generated scenes (the trainer's
// generator, then ffmpeg; the same bytes every time), sent to its own stream, so a new user
// sees a video ingest in the Temporal UI within the first minutes. The same file is one video:
// a later `make up` finds it ingested already.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { config } from '../config.ts';
import { createStream } from '../db/streams.ts';
import { submitVideo } from '../ingest/submit-video.ts';
import type { Engine } from '../workers/engine.ts';
import { requireTool, trainerPython } from './tools.ts';

export async function ingestDemoVideo(engine: Engine, opts: { streamId: string; file: string }) {
  if (!fs.existsSync(opts.file)) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'demo-video-'));
    try {
      // 120 consecutive frames of one camera at 4 frames/s, a keyframe every 5 s.
      execFileSync(requireTool(trainerPython), [
        '-m',
        'dataengine_trainer',
        'generate',
        '--out',
        dir,
        '--count',
        '120',
        '--cameras',
        '1',
        '--seed',
        '2024',
        '--stride',
        '1',
      ]);
      fs.mkdirSync(path.dirname(opts.file), { recursive: true });
      execFileSync('ffmpeg', [
        ...['-v', 'error', '-y', '-framerate', '4', '-pattern_type', 'glob', '-i', path.join(dir, 'images', '*.png')],
        ...['-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p', '-g', '20', '-threads', '1', opts.file],
      ]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  const { db, store, temporal } = engine.deps;
  await createStream(db, { id: opts.streamId, name: 'Dashcam video (make up)', createdBy: 'bootstrap' });
  await engine.deps.loopControl.ensureLoop(opts.streamId);
  const { video, created } = await submitVideo(
    { db, store, temporal: temporal!, config },
    {
      streamId: opts.streamId,
      cameraId: 'dashcam-1',
      startedAt: new Date(Date.UTC(2026, 10, 30, 8, 0, 0)),
      file: opts.file,
      fileName: path.basename(opts.file),
      sampling: { mode: 'fps', rate: 1 },
      source: 'http',
    },
  );
  return { video, created };
}

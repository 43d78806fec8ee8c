// `npm run dataengine -- ingest-video FILE --stream S [...]`: sends a video to a running API
// (POST /v1/streams/:id/videos, streamed from disk) and shows its ingest as a progress bar of
// segments until the video is done, failed or cancelled. Ctrl-C stops waiting, not the ingest.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { SingleBar } from 'cli-progress';
import { config } from '../config.ts';
import { isFinished } from '../db/videos.ts';
import { VIDEO_EXTENSIONS } from '../ingest/video-probe.ts';

const usage = `usage: npm run dataengine -- ingest-video FILE --stream STREAM [--camera ID] [--started-at ISO]
       [--sample fps|every|keyframes|scene] [--rate N] [--every N] [--scene-threshold X]
       [--api URL] (default http://${config.API_HOST}:${config.API_PORT}; the token comes from DATAENGINE_TOKEN)`;

interface VideoView {
  id: string;
  status: string;
  error: string | null;
  progress: { segmentsDone: number; segmentsTotal: number | null; framesSampled: number };
  probe: { durationSeconds: number; codec: string; width: number; height: number };
}

export async function ingestVideoCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      stream: { type: 'string' },
      camera: { type: 'string', default: 'video' },
      'started-at': { type: 'string' },
      sample: { type: 'string', default: 'fps' },
      rate: { type: 'string' },
      every: { type: 'string' },
      'scene-threshold': { type: 'string' },
      api: { type: 'string', default: `http://${config.API_HOST}:${config.API_PORT}` },
    },
  });
  const file = positionals[0];
  const token = process.env.DATAENGINE_TOKEN;
  if (!file || !values.stream) return fail(usage);
  if (!token) return fail('set DATAENGINE_TOKEN to a camera or lead token (make up writes them to data/tokens.json)');
  const type = VIDEO_EXTENSIONS[path.extname(file).toLowerCase()];
  if (!type) return fail(`${file}: not a video file name (${Object.keys(VIDEO_EXTENSIONS).join(', ')})`);
  if (!fs.existsSync(file)) return fail(`${file}: no such file`);

  const query = new URLSearchParams({ cameraId: values.camera, sample: values.sample, fileName: path.basename(file) });
  if (values['started-at']) query.set('startedAt', values['started-at']);
  if (values.rate) query.set('rate', values.rate);
  if (values.every) query.set('every', values.every);
  if (values['scene-threshold']) query.set('sceneThreshold', values['scene-threshold']);
  const headers = { Authorization: `Bearer ${token}` };
  const res = await fetch(`${values.api}/v1/streams/${encodeURIComponent(values.stream)}/videos?${query}`, {
    method: 'POST',
    headers: { ...headers, 'Content-Type': type, 'Content-Length': String(fs.statSync(file).size) },
    body: fs.createReadStream(file) as unknown as BodyInit,
    duplex: 'half',
  } as RequestInit);
  const sent = (await res.json()) as VideoView & { detail?: string };
  if (!res.ok) return fail(`refused (${res.status}): ${sent.detail ?? JSON.stringify(sent)}`);
  console.log(
    `${res.status === 200 ? 'already sent' : 'accepted'}: video ${sent.id}, ${sent.probe.codec} ${sent.probe.width}x${sent.probe.height}, ${sent.probe.durationSeconds.toFixed(1)} s`,
  );

  const bar = new SingleBar({ format: '{bar} {value}/{total} segments | {frames} frames | {status}', hideCursor: true });
  bar.start(1, 0, { frames: 0, status: sent.status });
  for (;;) {
    const v = (await (await fetch(`${values.api}/v1/videos/${sent.id}`, { headers })).json()) as VideoView;
    bar.setTotal(v.progress.segmentsTotal ?? 1);
    bar.update(v.progress.segmentsDone, { frames: v.progress.framesSampled, status: v.status });
    if (isFinished(v.status)) {
      bar.stop();
      if (v.status !== 'done') return fail(`video ${v.status}${v.error ? `: ${v.error}` : ''}`);
      console.log(`done: ${v.progress.framesSampled} frames into stream ${values.stream}`);
      return 0;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

function fail(message: string): number {
  console.error(message);
  return 1;
}

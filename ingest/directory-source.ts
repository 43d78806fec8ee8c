// A directory source: image files dropped into <dir>/<stream>/<camera>/ are ingested like
// uploads (capture time = the file's modification time), and video files (.mp4, .m4v, .mov,
// .webm, .mkv) are handed to the stream like a video upload (start time = the modification time
// less the video's duration, i.e. the file was written when recording ended); then each file is
// moved to <dir>/.done/..., or to
// <dir>/.rejected/... with a .reason.txt beside them. Polling, not fs.watch: it behaves the same
// on network mounts and in containers, and a crash between ingest and move is harmless because
// ingestion is idempotent by content hash.
import fs from 'node:fs/promises';
import path from 'node:path';
import { IngestError, ingestFrame, type IngestDeps } from './ingest-frame.ts';
import { VIDEO_EXTENSIONS } from './video-probe.ts';

const EXTENSIONS: Record<string, string> = { '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg' };

export interface DirectorySourceOptions extends IngestDeps {
  dir: string;
  pollIntervalMs?: number;
  onError?: (err: unknown, file: string) => void;
  /** Hands a video file to a stream (ingest/submit-video.ts); without it, videos are refused. */
  submitVideo?: (video: { file: string; streamId: string; cameraId: string; modifiedAt: Date; fileName: string }) => Promise<void>;
}

async function listDirs(dir: string): Promise<string[]> {
  try {
    return (await fs.readdir(dir, { withFileTypes: true })).filter((d) => d.isDirectory() && !d.name.startsWith('.')).map((d) => d.name);
  } catch {
    return [];
  }
}

async function moveTo(root: string, sub: '.done' | '.rejected', rel: string, file: string): Promise<string> {
  const target = path.join(root, sub, rel);
  await fs.mkdir(path.dirname(target), { recursive: true });
  await fs.rename(file, target);
  return target;
}

/** One pass over the folder; returns how many files were ingested and refused. */
export async function scanDirectory(opts: DirectorySourceOptions): Promise<{ ingested: number; rejected: number }> {
  let ingested = 0;
  let rejected = 0;
  for (const streamId of await listDirs(opts.dir)) {
    for (const cameraId of await listDirs(path.join(opts.dir, streamId))) {
      const folder = path.join(opts.dir, streamId, cameraId);
      const names = (await fs.readdir(folder)).filter((n) => !n.startsWith('.')).sort();
      for (const name of names) {
        const file = path.join(folder, name);
        const rel = path.join(streamId, cameraId, name);
        const ext = path.extname(name).toLowerCase();
        const type = EXTENSIONS[ext];
        try {
          if (!type && !VIDEO_EXTENSIONS[ext]) {
            throw new IngestError(
              `unsupported file extension ${ext || '(none)'}; use .png, .jpg, .jpeg or a video (${Object.keys(VIDEO_EXTENSIONS).join(', ')})`,
              415,
              'content_type',
            );
          }
          // lstat: a link is refused, not followed (it could point anywhere on the machine), and
          // the size is checked before a byte is read.
          const stat = await fs.lstat(file);
          if (!stat.isFile()) throw new IngestError('only regular files are ingested (links and folders are refused)', 400, 'not_a_file');
          if (!type) {
            if (!opts.submitVideo) throw new IngestError('this process takes no videos (it has no Temporal client)', 415, 'content_type');
            await opts.submitVideo({ file, streamId, cameraId, modifiedAt: stat.mtime, fileName: name });
            await moveTo(opts.dir, '.done', rel, file);
            ingested++;
            continue;
          }
          if (stat.size > opts.maxFrameBytes) throw new IngestError(`the file is ${stat.size} bytes; the limit is ${opts.maxFrameBytes}`, 413, 'too_large');
          const bytes = await fs.readFile(file);
          await ingestFrame(opts, { streamId, cameraId, capturedAt: stat.mtime, contentType: type, bytes, source: 'directory' });
          await moveTo(opts.dir, '.done', rel, file);
          ingested++;
        } catch (err) {
          if (!(err instanceof IngestError)) {
            opts.onError?.(err, file);
            continue; // a database or disk problem: leave the file for the next pass
          }
          const target = await moveTo(opts.dir, '.rejected', rel, file);
          await fs.writeFile(`${target}.reason.txt`, `${err.status} ${err.reason}: ${err.message}\n`);
          rejected++;
        }
      }
    }
  }
  return { ingested, rejected };
}

export function startDirectorySource(opts: DirectorySourceOptions): { stop(): Promise<void> } {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> = Promise.resolve();
  const tick = () => {
    running = scanDirectory(opts)
      .catch((err) => opts.onError?.(err, opts.dir))
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, opts.pollIntervalMs ?? 1000);
      });
  };
  tick();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}

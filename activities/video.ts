// The activities of `videoIngest` (workflows/video-ingest.ts), on the ingest queue:
//   splitVideo      cuts the stored video into segments with ffmpeg's segment muxer and stores
//                   them, so extractors on any machine read a segment, not the whole file;
//   extractSegment  decodes one segment, samples its frames by the video-wide rule, and ingests
//                   each as a frame of the stream (capture time = video start + presentation time);
//   finishVideo     records the outcome.
// Each is idempotent: a split that ran before returns its segments, a finished segment returns
// its counts, and a frame ingested twice is stored once (the stream + content hash is unique).
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { getVideo, insertSegments, markSegmentDone, setVideoStatus, videoSegmentsOf, type NewVideoSegment } from '../db/videos.ts';
import { ffmpegPath, FfmpegError, run } from '../ingest/ffmpeg.ts';
import { storeExtractedFrames, type IngestDeps } from '../ingest/ingest-frame.ts';
import { scanPackets, type PacketScan, type VideoProbe } from '../ingest/video-probe.ts';
import { selectExpression, type Sampling } from '../ingest/video-sampling.ts';

/** What ingesting a frame needs: a video's frames pass the checks uploads pass, and wake the loop. */
export type VideoActivityDeps = IngestDeps;

export interface SegmentResult {
  index: number;
  framesSampled: number;
  framesStored: number;
}

const heartbeat = (details: unknown) => Context.current().heartbeat(details);
// A decode reports progress at most this often: a heartbeat per frame (30 a second per segment)
// went through the SDK's native bridge each time, 12% of the main thread's profile while every
// frame of a 720p video was extracted. The heartbeat timeout is 10 s.
const DECODE_HEARTBEAT_MS = 500;
// Frames stored per round of statements (one lookup, one insert) and per heartbeat.
const STORE_BATCH = 32;
const cancellation = () => Context.current().cancellationSignal;
const exists = (file: string) =>
  fs.access(file).then(
    () => true,
    () => false,
  );

async function withTempDir<T>(prefix: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  try {
    return await fn(dir);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** A video refused by ffmpeg fails for good: retrying the same bytes gives the same answer. */
function failFor(err: unknown, what: string): never {
  if (err instanceof FfmpegError) throw ApplicationFailure.nonRetryable(`${what}: ${err.message}`, 'VideoUnreadable');
  throw err;
}

/** ffmpeg's segment muxer; stream copy cuts at keyframes, `reencode` forces one every `seconds`. */
async function segment(source: string, dir: string, seconds: number, reencode: boolean): Promise<{ file: string; start: number; end: number }[]> {
  // No B-frames when re-encoding: with them the encoder delays every timestamp by a few frames,
  // and the sampling rules read presentation times on the source's clock.
  const codec = reencode
    ? ['-c:v', 'libx264', '-preset', 'veryfast', '-crf', '17', '-bf', '0', '-force_key_frames', `expr:gte(t,n_forced*${seconds})`]
    : ['-c', 'copy'];
  await run(
    ffmpegPath,
    [
      // -copyts: segments keep the source's timestamps (ffmpeg would otherwise start them at 0,
      // moving every frame of a video whose clock starts later).
      ...['-hide_banner', '-loglevel', 'level+error', '-nostdin', '-copyts', '-i', source, '-map', '0:v:0', ...codec],
      ...['-f', 'segment', '-segment_time', String(seconds), '-segment_format', 'matroska'],
      ...['-segment_list', path.join(dir, 'segments.csv'), '-segment_list_type', 'csv', path.join(dir, '%05d.mkv')],
    ],
    { signal: cancellation(), onStderrLine: () => heartbeat({ phase: 'splitting' }) },
  );
  const csv = await fs.readFile(path.join(dir, 'segments.csv'), 'utf8');
  return csv
    .trim()
    .split('\n')
    .map((line) => {
      const [name, start, end] = line.split(',');
      return { file: path.join(dir, name), start: Number(start), end: Number(end) };
    });
}

export function createVideoActivities(deps: VideoActivityDeps) {
  return {
    /** Splits the video into segments of about `segmentSeconds`, stores them and returns their count. */
    async splitVideo(input: { videoId: string; segmentSeconds: number }): Promise<{ segments: number }> {
      const video = await getVideo(deps.db, input.videoId);
      if (!video) throw ApplicationFailure.nonRetryable(`video ${input.videoId} does not exist`, 'UnknownVideo');
      const stored = await videoSegmentsOf(deps.db, video.id);
      if (video.segmentsTotal !== null && stored.length === video.segmentsTotal) return { segments: stored.length };
      await setVideoStatus(deps.db, video.id, 'splitting');
      const probe = video.probe as VideoProbe;
      const { rows, clockOrigin } = await withTempDir('video-split-', async (dir) => {
        const parts = await deps.store.withLocalFile(video.storageKey, async (source) => {
          const copied = await segment(source, dir, input.segmentSeconds, false).catch((err) => failFor(err, 'splitting'));
          // Keyframes further apart than two segment lengths make segments that long: too little
          // to share among extractors. Re-encoding with a keyframe every segment length fixes it.
          const longest = Math.max(...copied.map((p) => p.end - p.start));
          if (copied.length === 0 || longest <= 2 * input.segmentSeconds || probe.durationSeconds <= 2 * input.segmentSeconds) return copied;
          await Promise.all(copied.map((p) => fs.rm(p.file)));
          return segment(source, dir, input.segmentSeconds, true).catch((err) => failFor(err, 're-encoding to split'));
        });
        const keyOf = (index: number) => `${video.storageKey.replace(/\.\w+$/, '')}/segments/${String(index).padStart(5, '0')}.mkv`;
        // Each segment's packets are counted (ffprobe, mostly process start-up) and the segment
        // stored, as many side by side as the machine has cores: one after another, this was
        // most of the split's time.
        const scans: PacketScan[] = new Array(parts.length);
        let next = 0;
        // Every worker is awaited, failed or not, before the temporary folder goes: a failure
        // stops the others after the segment in hand, and the first failure is the activity's.
        const workers = await Promise.allSettled(
          Array.from({ length: Math.min(os.availableParallelism(), parts.length) }, async () => {
            while (next < parts.length) {
              const index = next++;
              try {
                scans[index] = await scanPackets(parts[index].file, cancellation()).catch((err) => failFor(err, `reading segment ${index}`));
                await deps.store.putFile(keyOf(index), parts[index].file);
              } catch (err) {
                next = parts.length;
                throw err;
              }
              heartbeat({ phase: 'storing segments', index });
            }
          }),
        );
        const failed = workers.find((w) => w.status === 'rejected');
        if (failed) throw failed.reason;
        const out: NewVideoSegment[] = [];
        let clockOrigin: number | null = null;
        let frameOffset = 0;
        let previousFrameSeconds: number | null = null;
        for (const [index, part] of parts.entries()) {
          const packets = scans[index];
          out.push({ videoId: video.id, index, storageKey: keyOf(index), startSeconds: part.start, endSeconds: part.end, frameOffset, previousFrameSeconds });
          frameOffset += packets.frames;
          if (packets.firstFrameSeconds !== null) clockOrigin = Math.min(clockOrigin ?? Infinity, packets.firstFrameSeconds);
          if (packets.lastFrameSeconds !== null) previousFrameSeconds = Math.max(previousFrameSeconds ?? -Infinity, packets.lastFrameSeconds);
        }
        return { rows: out, clockOrigin };
      });
      await insertSegments(deps.db, rows);
      await setVideoStatus(deps.db, video.id, 'extracting', { segmentsTotal: rows.length, clockOriginSeconds: clockOrigin });
      return { segments: rows.length };
    },

    /** Samples one segment's frames and ingests them; returns how many were taken and how many were new. */
    async extractSegment(input: { videoId: string; index: number }): Promise<SegmentResult> {
      const video = await getVideo(deps.db, input.videoId);
      const seg = (await videoSegmentsOf(deps.db, input.videoId)).find((s) => s.index === input.index);
      if (!video || !seg) throw ApplicationFailure.nonRetryable(`segment ${input.index} of video ${input.videoId} does not exist`, 'UnknownVideo');
      if (seg.doneAt) return { index: seg.index, framesSampled: seg.framesSampled ?? 0, framesStored: seg.framesStored ?? 0 };
      const origin = video.clockOriginSeconds ?? (video.probe as VideoProbe).startSeconds;
      const sampling = video.sampling as Sampling;
      const expr = selectExpression(sampling, {
        frameOffset: seg.frameOffset,
        previousFrameSeconds: seg.previousFrameSeconds,
        videoStartSeconds: origin,
      });
      return withTempDir('video-frames-', async (dir) => {
        // Each frame ffmpeg kept: its presentation time and size, as its showinfo line says.
        const kept: { seconds: number; width: number; height: number }[] = [];
        // A failed store stops the decoder too, instead of letting it finish a segment no one stores.
        const storeFailed = new AbortController();
        const signal = AbortSignal.any([cancellation(), storeFailed.signal]);
        // Frames with the same pixels (a still scene) are one frame of the stream: count ids.
        const frameIds = new Set<string>();
        let decoding = true;
        let wake: (() => void) | null = null;
        const notify = () => {
          wake?.();
          wake = null;
        };
        let lastBeat = 0;
        const beat = (details: unknown) => {
          const now = Date.now();
          if (now - lastBeat < DECODE_HEARTBEAT_MS) return;
          lastBeat = now;
          heartbeat(details);
        };
        const fileOf = (k: number) => path.join(dir, `${String(k + 1).padStart(8, '0')}.jpg`);
        const storeFrames = async (from: number, to: number) => {
          const frames = await Promise.all(
            kept.slice(from, to).map(async (k, j) => ({
              bytes: await fs.readFile(fileOf(from + j)),
              capturedAt: new Date(video.startedAt.getTime() + Math.round((k.seconds - origin) * 1000)),
              width: k.width,
              height: k.height,
            })),
          );
          for (const id of await storeExtractedFrames(deps, { streamId: video.streamId, cameraId: video.cameraId, frames })) frameIds.add(id);
          heartbeat({ phase: 'storing', frames: to });
        };
        // Frames are stored while ffmpeg decodes the rest, a batch at a time: stored only after
        // the decode, the segment's frames waited for its last one, and with one segment at a time
        // the decoder sat idle while they were stored. With -atomic_writing a frame's file
        // appears whole, and the muxer writes them in order, so once a batch's last file exists
        // the whole batch is readable.
        const storer = async () => {
          let stored = 0;
          for (;;) {
            signal.throwIfAborted();
            const end = stored + STORE_BATCH;
            if (decoding && kept.length >= end && (await exists(fileOf(end - 1)))) {
              await storeFrames(stored, end);
              stored = end;
            } else if (decoding) {
              await new Promise<void>((resolve) => (wake = resolve));
            } else {
              return stored;
            }
          }
        };
        const decode = deps.store
          .withLocalFile(seg.storageKey, (source) =>
            run(
              ffmpegPath,
              [
                ...['-hide_banner', '-loglevel', 'level+info', '-nostats', '-nostdin'],
                // Keyframes only: the decoder skips every other frame instead of decoding and dropping it.
                ...(sampling.mode === 'keyframes' ? ['-skip_frame', 'nokey'] : []),
                // -copyts: presentation times stay on the video's clock, which the sampling rules use.
                ...['-copyts', '-i', source, '-map', '0:v:0'],
                ...['-vf', `select='${expr}',showinfo=checksum=0`, '-fps_mode', 'passthrough', '-q:v', '2'],
                ...['-f', 'image2', '-atomic_writing', '1', path.join(dir, '%08d.jpg')],
              ],
              {
                signal,
                // Decoder complaints at a segment's first frames (open GOPs) are not a failed video:
                // the packets were all read at upload; only a failed run is.
                tolerateErrors: true,
                onStderrLine: (line) => {
                  const m = line.includes('Parsed_showinfo') ? /\bpts_time:\s*(-?[\d.]+).*\bs:(\d+)x(\d+)/.exec(line) : null;
                  if (m) {
                    kept.push({ seconds: Number(m[1]), width: Number(m[2]), height: Number(m[3]) });
                    beat({ phase: 'decoding', frames: kept.length });
                    notify();
                  }
                },
              },
            ),
          )
          .catch((err) => failFor(err, `decoding segment ${seg.index}`))
          .finally(() => {
            decoding = false;
            notify();
          });
        // Both are awaited before the folder goes. A failed decode stores no more frames; those
        // already stored stay, as after a crash, and a retry finds them by their hash. A failed
        // store's error is the activity's (the decode it stopped fails only for that reason).
        const [decoded, storing] = await Promise.allSettled([
          decode,
          storer().catch((err: unknown) => {
            storeFailed.abort();
            throw err;
          }),
        ]);
        if (storing.status === 'rejected') throw storing.reason;
        if (decoded.status === 'rejected') throw decoded.reason;
        const files = (await fs.readdir(dir)).filter((f) => f.endsWith('.jpg'));
        // ffmpeg logs each frame before it encodes it, so the counts agree unless ffmpeg broke; the
        // frames stored while it decoded then stay, like a failed segment's.
        if (files.length !== kept.length) {
          throw ApplicationFailure.nonRetryable(`segment ${seg.index}: ffmpeg wrote ${files.length} frames but reported ${kept.length}`, 'VideoUnreadable');
        }
        for (let start = storing.value; start < kept.length; start += STORE_BATCH) {
          signal.throwIfAborted();
          await storeFrames(start, Math.min(start + STORE_BATCH, kept.length));
        }
        await markSegmentDone(deps.db, video.id, seg.index, kept.length, frameIds.size);
        // The first result wins: a retry after a crash past this point reads it back.
        const done = (await videoSegmentsOf(deps.db, input.videoId)).find((s) => s.index === input.index)!;
        return { index: seg.index, framesSampled: done.framesSampled ?? 0, framesStored: done.framesStored ?? 0 };
      });
    },

    async finishVideo(input: { videoId: string; status: 'done' | 'failed' | 'cancelled'; error?: string }): Promise<void> {
      await setVideoStatus(deps.db, input.videoId, input.status, input.error ? { error: input.error } : {});
    },
  };
}

export type VideoActivities = ReturnType<typeof createVideoActivities>;

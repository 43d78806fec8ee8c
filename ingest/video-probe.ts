// What a video is, and whether the platform takes it, decided before anything is stored: the
// container and codec (ffprobe), its size against the limits, and one pass over every packet
// (no decode) that finds a truncated file and counts frames and keyframes. A refused video
// leaves no blob, no row and no workflow behind.
import { ffprobePath, FfmpegError, run } from './ffmpeg.ts';
import { IngestError } from './ingest-frame.ts';
import { maxSampledFrames, type Sampling } from './video-sampling.ts';

/** Containers by ffprobe's format name, and the upload media types that name them. */
const CONTAINERS: Record<string, string[]> = {
  'mov,mp4,m4a,3gp,3g2,mj2': ['video/mp4', 'video/quicktime'],
  'matroska,webm': ['video/webm', 'video/x-matroska'],
};
export const VIDEO_MEDIA_TYPES = Object.values(CONTAINERS).flat();
export const VIDEO_EXTENSIONS: Record<string, string> = {
  '.mp4': 'video/mp4',
  '.m4v': 'video/mp4',
  '.mov': 'video/quicktime',
  '.webm': 'video/webm',
  '.mkv': 'video/x-matroska',
};

export interface VideoProbe {
  container: string;
  codec: string;
  width: number;
  height: number;
  /** Average frame rate; a variable-rate video's frames are placed by presentation time, not by it. */
  frameRate: number;
  durationSeconds: number;
  startSeconds: number;
  frames: number;
  keyframes: number;
  /** Frames the sampling takes at most: what VIDEO_MAX_FRAMES is checked against. */
  maxSampledFrames: number;
}

export interface VideoLimits {
  maxBytes: number;
  maxPixels: number;
  maxSeconds: number;
  maxFrames: number;
  codecs: readonly string[];
}

interface FfprobeOutput {
  format?: { format_name?: string; duration?: string; start_time?: string };
  streams?: { codec_type?: string; codec_name?: string; width?: number; height?: number; avg_frame_rate?: string; r_frame_rate?: string; duration?: string }[];
}

export interface PacketScan {
  frames: number;
  keyframes: number;
  /** Smallest presentation time of a frame; null when none had one. */
  firstFrameSeconds: number | null;
  /** Largest presentation time of a frame (seconds on the video's clock); null when none had one. */
  lastFrameSeconds: number | null;
}

/** One pass over a file's video packets without decoding them; fails on a truncated or corrupt file. */
export async function scanPackets(file: string, signal?: AbortSignal): Promise<PacketScan> {
  const out = await run(ffprobePath, ['-loglevel', 'level+error', '-select_streams', 'v:0', '-show_entries', 'packet=pts_time,flags', '-of', 'csv=p=0', file], {
    signal,
  });
  let frames = 0;
  let keyframes = 0;
  let first: number | null = null;
  let last: number | null = null;
  for (const line of out.split('\n')) {
    if (!line.trim()) continue;
    const [pts, flags] = line.split(',');
    frames++;
    if (flags?.startsWith('K')) keyframes++;
    const t = Number(pts);
    if (pts === 'N/A' || !Number.isFinite(t)) continue;
    first = first === null ? t : Math.min(first, t);
    last = last === null ? t : Math.max(last, t);
  }
  return { frames, keyframes, firstFrameSeconds: first, lastFrameSeconds: last };
}

const rate = (r: string | undefined) => {
  const [a, b] = (r ?? '').split('/').map(Number);
  return b ? a / b : Number(a);
};

/**
 * Probes `file` and checks it against the limits and the sampling; returns what it found or
 * throws an IngestError naming the reason (`mediaType`: the type the client declared, if any).
 */
export async function inspectVideo(file: string, sizeBytes: number, limits: VideoLimits, sampling: Sampling, mediaType?: string): Promise<VideoProbe> {
  if (sizeBytes === 0) throw new IngestError('the video is empty (0 bytes)', 400, 'empty');
  if (sizeBytes > limits.maxBytes) throw new IngestError(`the video is ${sizeBytes} bytes; the limit is ${limits.maxBytes}`, 413, 'too_large');
  let info: FfprobeOutput;
  try {
    info = JSON.parse(await run(ffprobePath, ['-loglevel', 'level+error', '-print_format', 'json', '-show_format', '-show_streams', file])) as FfprobeOutput;
  } catch (err) {
    if (!(err instanceof FfmpegError)) throw err;
    throw new IngestError(`the file is not a readable video: ${err.message}`, 400, 'not_a_video');
  }
  const container = info.format?.format_name ?? '';
  const types = CONTAINERS[container];
  if (!types) {
    throw new IngestError(`the container ${JSON.stringify(container)} is not supported; send MP4, MOV, WebM or Matroska`, 415, 'unsupported_container');
  }
  if (mediaType && !types.includes(mediaType)) {
    throw new IngestError(`the file is ${container.split(',')[0]}, but Content-Type says ${mediaType}`, 415, 'type_mismatch');
  }
  const video = info.streams?.find((s) => s.codec_type === 'video');
  if (!video) throw new IngestError('the file has no video stream', 400, 'no_video_stream');
  const codec = video.codec_name ?? '';
  if (!limits.codecs.includes(codec)) {
    throw new IngestError(
      `the codec ${JSON.stringify(codec)} is not supported; supported: ${limits.codecs.join(', ')} (VIDEO_CODECS)`,
      415,
      'unsupported_codec',
    );
  }
  const width = video.width ?? 0;
  const height = video.height ?? 0;
  if (width * height > limits.maxPixels) {
    throw new IngestError(`the video is ${width}x${height} (${width * height} pixels); the limit is ${limits.maxPixels} pixels`, 413, 'too_many_pixels');
  }
  const durationSeconds = Number(info.format?.duration ?? video.duration);
  if (!Number.isFinite(durationSeconds) || durationSeconds <= 0) throw new IngestError('the video has no duration (a live or broken file)', 400, 'no_duration');
  if (durationSeconds > limits.maxSeconds) {
    throw new IngestError(`the video lasts ${durationSeconds.toFixed(0)} s; the limit is ${limits.maxSeconds} s (VIDEO_MAX_SECONDS)`, 413, 'too_long');
  }
  let packets: PacketScan;
  try {
    packets = await scanPackets(file);
  } catch (err) {
    if (!(err instanceof FfmpegError)) throw err;
    throw new IngestError(`the video is truncated or corrupt: ${err.message}`, 400, 'corrupt');
  }
  if (packets.frames === 0) throw new IngestError('the video stream holds no frames', 400, 'no_frames');
  const frameRate = rate(video.avg_frame_rate) || rate(video.r_frame_rate) || packets.frames / durationSeconds;
  const max = maxSampledFrames(sampling, { seconds: durationSeconds, frames: packets.frames, keyframes: packets.keyframes });
  if (max > limits.maxFrames) {
    throw new IngestError(
      `at this sampling the video would yield up to ${max} frames; the limit is ${limits.maxFrames} (VIDEO_MAX_FRAMES): sample less often or send a shorter video`,
      413,
      'too_many_frames',
    );
  }
  return {
    container,
    codec,
    width,
    height,
    frameRate,
    durationSeconds,
    startSeconds: Number(info.format?.start_time ?? 0) || 0,
    frames: packets.frames,
    keyframes: packets.keyframes,
    maxSampledFrames: max,
  };
}

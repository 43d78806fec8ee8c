// Which frames of a video become frames of the stream. Every rule is defined on the whole video,
// not on a segment, so splitting a video differently never changes which frames are taken:
//   fps       the first frame at or after each 1/rate seconds of presentation time (variable
//             frame rate is handled: it counts time, not frames);
//   every     every n-th frame of the video, counted across segments;
//   keyframes the frames the encoder made keyframes (no decode of the others);
//   scene     frames whose difference to the previous one (ffmpeg's scene score) exceeds a threshold.
import { z } from 'zod';

export const samplingSchema = z.discriminatedUnion('mode', [
  z.object({ mode: z.literal('fps'), rate: z.number().positive().max(120) }),
  z.object({ mode: z.literal('every'), n: z.number().int().min(1).max(100_000) }),
  z.object({ mode: z.literal('keyframes') }),
  z.object({ mode: z.literal('scene'), threshold: z.number().gt(0).lt(1) }),
]);
export type Sampling = z.infer<typeof samplingSchema>;

export const defaultSampling: Sampling = { mode: 'fps', rate: 1 };

/** Where a segment sits in its video: what the whole-video rules need to decide its frames. */
export interface SegmentPlace {
  /** Video frames before this segment. */
  frameOffset: number;
  /** Presentation time (seconds, on the video's clock) of the last frame before it; null for the first segment. */
  previousFrameSeconds: number | null;
  /** The video's start time: presentation times count from here. */
  videoStartSeconds: number;
}

/** ffmpeg `select` expression of a segment, for a decode run with `-copyts` (t is the video's clock). */
export function selectExpression(sampling: Sampling, place: SegmentPlace): string {
  const s0 = `(${num(place.videoStartSeconds)})`;
  switch (sampling.mode) {
    case 'fps': {
      // Kept when t crosses into a new 1/rate slot: floor((t - start) * rate) grows. The first
      // frame of a segment compares with the last frame of the segment before it.
      const rate = num(sampling.rate);
      const before = place.previousFrameSeconds === null ? '-1' : `floor(((${num(place.previousFrameSeconds)})-${s0})*${rate})`;
      return `gt(floor((t-${s0})*${rate}),if(isnan(prev_t),${before},floor((prev_t-${s0})*${rate})))`;
    }
    case 'every':
      return `not(mod(n+${place.frameOffset},${sampling.n}))`;
    case 'keyframes':
      return '1';
    case 'scene':
      // The video's very first frame is kept too: there is nothing before it to differ from.
      return place.previousFrameSeconds === null ? `eq(n,0)+gt(scene,${num(sampling.threshold)})` : `gt(scene,${num(sampling.threshold)})`;
  }
}

/** Frames the sampling takes at most from a video of `frames` frames over `seconds` with `keyframes` keyframes. */
export function maxSampledFrames(sampling: Sampling, video: { seconds: number; frames: number; keyframes: number }): number {
  switch (sampling.mode) {
    case 'fps':
      return Math.min(video.frames, Math.floor(video.seconds * sampling.rate) + 1);
    case 'every':
      return Math.ceil(video.frames / sampling.n);
    case 'keyframes':
      return video.keyframes;
    case 'scene':
      // Any frame can start a scene: only the frame count bounds it.
      return video.frames;
  }
}

/** A number as ffmpeg's expression parser reads it (no exponent notation). */
function num(x: number): string {
  return x.toFixed(6).replace(/\.?0+$/, '') || '0';
}

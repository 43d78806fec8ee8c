// Test videos made by ffmpeg from its own generated sources (testsrc2 draws a moving pattern and
// a frame counter, so every frame differs and none is a duplicate of another).
import { execFileSync } from 'node:child_process';

export interface TestVideo {
  seconds: number;
  fps: number;
  /** Frames between keyframes. */
  gop?: number;
  size?: string;
  codec?: 'libx264' | 'libvpx-vp9' | 'ffv1';
  /** ffmpeg -vf, e.g. a setpts expression for a variable frame rate. */
  filter?: string;
  extra?: string[];
}

export function makeVideo(file: string, v: TestVideo): string {
  const codec = v.codec ?? 'libx264';
  execFileSync('ffmpeg', [
    ...['-v', 'error', '-y', '-f', 'lavfi', '-i', `testsrc2=size=${v.size ?? '160x120'}:rate=${v.fps}:duration=${v.seconds}`],
    ...(v.filter ? ['-vf', v.filter, '-fps_mode', 'passthrough'] : []),
    ...['-c:v', codec, ...(codec === 'libx264' ? ['-preset', 'ultrafast', '-pix_fmt', 'yuv420p'] : [])],
    ...(v.gop ? ['-g', String(v.gop)] : []),
    ...(v.extra ?? []),
    file,
  ]);
  return file;
}

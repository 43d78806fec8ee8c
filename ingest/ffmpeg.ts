// Debian's ffmpeg and ffprobe through child_process. The npm wrappers are no option: fluent-ffmpeg
// is archived and ffmpeg-static downloads a binary at install time. `make install` installs the
// Debian package; FFMPEG / FFPROBE point at other binaries.
import { spawn } from 'node:child_process';

export const ffmpegPath = process.env.FFMPEG ?? 'ffmpeg';
export const ffprobePath = process.env.FFPROBE ?? 'ffprobe';

export class FfmpegError extends Error {
  constructor(
    message: string,
    readonly stderr: string,
  ) {
    super(message);
    this.name = 'FfmpegError';
  }
}

export interface RunOptions {
  signal?: AbortSignal;
  /** Called with each line ffmpeg writes to stderr (progress, showinfo), as it arrives. */
  onStderrLine?: (line: string) => void;
  /** Only a non-zero exit fails the run; error lines are not checked. */
  tolerateErrors?: boolean;
}

/**
 * Runs a binary to the end and returns its stdout. Fails on a non-zero exit, and also when it
 * logged a line at error level or worse: ffmpeg exits 0 on a truncated file after printing the
 * error, and a half-read video must not pass for a whole one. Callers pass `-loglevel
 * level+error` (or `level+info` to read showinfo lines), so each line carries its level.
 */
export function run(binary: string, args: string[], opts: RunOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'], signal: opts.signal });
    const out: Buffer[] = [];
    let err = '';
    let partial = '';
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => {
      const text = b.toString();
      err += text;
      if (!opts.onStderrLine) return;
      const lines = (partial + text).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) opts.onStderrLine(line);
    });
    // An abort kills the process, but it may still be writing (frames into the caller's folder):
    // the run ends when the process has exited, so the caller's clean-up never races it.
    let aborted: Error | null = null;
    child.on('error', (e) => {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') reject(new Error(`${binary} is not installed; \`make install\` installs Debian's ffmpeg`));
      else if (e.name === 'AbortError') aborted = e;
      else reject(e);
    });
    child.on('close', (code) => {
      if (aborted) return reject(aborted);
      if (partial && opts.onStderrLine) opts.onStderrLine(partial);
      const errors = err
        .split('\n')
        .filter((l) => /\[(error|fatal|panic)\]/.test(l))
        .join('\n');
      if (code !== 0) reject(new FfmpegError(`${binary} exited with code ${code}: ${lastLines(err)}`, err));
      else if (errors && !opts.tolerateErrors) reject(new FfmpegError(`${binary} reported errors: ${lastLines(errors)}`, err));
      else resolve(Buffer.concat(out).toString());
    });
  });
}

function lastLines(text: string): string {
  return text.trim().split('\n').slice(-3).join(' | ').slice(0, 500);
}

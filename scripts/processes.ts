// Child processes of `make up`: started with inherited environment, their output prefixed,
// restarted with backoff when they die on their own, and stopped in reverse order on shutdown.
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';

export interface Child {
  name: string;
  proc: ChildProcess;
  stop(): Promise<void>;
}

export function startChild(name: string, cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; quiet?: boolean } = {}): Child {
  const proc = spawn(cmd, args, { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'], detached: false });
  const prefix = (chunk: Buffer) =>
    chunk
      .toString()
      .split('\n')
      .filter((l) => l.trim().length > 0)
      .map((l) => `[${name}] ${l}`)
      .join('\n');
  if (!opts.quiet) proc.stdout?.on('data', (c: Buffer) => console.log(prefix(c)));
  proc.stderr?.on('data', (c: Buffer) => console.error(prefix(c)));
  // A binary that cannot start (missing, not executable) emits 'error' instead of crashing us.
  proc.on('error', (err) => console.error(`[${name}] cannot run ${cmd}: ${err.message}`));
  const exited = new Promise<void>((resolve) => proc.once('close', () => resolve()));
  return {
    name,
    proc,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGINT');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

let shuttingDown = false;
/** Called first when the parent stops: no supervised child is restarted after this. */
export function stopSupervising(): void {
  shuttingDown = true;
}

export interface SuperviseOptions {
  env?: NodeJS.ProcessEnv;
  quiet?: boolean;
  /** First restart delay; doubles per crash up to `maxBackoffMs`, and resets after a minute up. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Called after each restart (e.g. to wait for the port before saying it is back). */
  onRestart?: (attempt: number) => void;
}

/**
 * Runs a child and starts it again when it dies on its own (a crash, an OOM kill, `kill -9`),
 * with one readable line per restart instead of a console full of the dependents' retries.
 */
export function superviseChild(name: string, cmd: string, args: string[], opts: SuperviseOptions = {}): Child {
  const first = opts.backoffMs ?? 1000;
  const max = opts.maxBackoffMs ?? 30_000;
  let backoff = first;
  let restarts = 0;
  let stopping = false;
  let timer: NodeJS.Timeout | undefined;
  let current: Child;
  const launch = () => {
    const startedAt = Date.now();
    current = startChild(name, cmd, args, opts);
    current.proc.once('close', (code, signal) => {
      if (stopping || shuttingDown) return;
      if (Date.now() - startedAt > 60_000) backoff = first;
      const wait = backoff;
      backoff = Math.min(backoff * 2, max);
      // Decided after the backoff, not at once: a Ctrl-C reaches the children (one process
      // group) as it reaches us, and they may exit before our own handler has said we are
      // stopping. A child that died on its own is started again; one that was told to stop is not.
      timer = setTimeout(() => {
        if (stopping || shuttingDown) return;
        console.error(`[${name}] exited (${signal ?? `code ${code}`}); restarted after ${(wait / 1000).toFixed(1)} s`);
        restarts += 1;
        launch();
        opts.onRestart?.(restarts);
      }, wait);
    });
  };
  launch();
  return {
    name,
    get proc() {
      return current.proc;
    },
    async stop() {
      stopping = true;
      clearTimeout(timer);
      await current.stop();
    },
  };
}

/** Resolves once something accepts TCP connections on host:port, or rejects after `timeoutMs`. */
export async function waitForPort(host: string, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const sock = net.connect({ host, port }, () => {
        sock.end();
        resolve(true);
      });
      sock.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`Nothing listens on ${host}:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

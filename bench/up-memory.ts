// `npm run bench -- up minutes=60`: `make up` as a user runs it (scripts/up.ts, its synthetic
// camera sending 4 frames/s), sampling the resident memory of each of its processes every
// `sampleSeconds`. The baseline is each process's own memory after the warm-up (the first sample
// past `warmupMinutes`): a process whose caches are bounded stays near it for the rest of the
// hour, one that leaks grows with the frames it has handled. Run it where nothing else uses
// make up's ports (7233, 8233, 8080, 9090) and data/ (it uses the checkout's own).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { config, repoRoot } from '../config.ts';
import { table } from './stats.ts';

interface Proc {
  pid: number;
  ppid: number;
  cmd: string;
  rssMiB: number;
}

// The processes of make up, by what their command line says they are.
const ROLES: [string, RegExp][] = [
  ['engine (API + workers)', /scripts\/up\.ts/],
  ['Temporal dev server', /temporal.* server start-dev/],
  ['trainer worker', /dataengine_trainer worker/],
  ['synthetic camera', /dataengine_trainer camera/],
  ['Prometheus', /prometheus --config/],
];

/** Every process under `root` (itself included), read from /proc (Linux only, like make up's tools). */
function tree(root: number): Proc[] {
  const all: Proc[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const cmd = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      const rss = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${entry}/status`, 'utf8'));
      all.push({ pid: Number(entry), ppid, cmd, rssMiB: rss ? Number(rss[1]) / 1024 : 0 });
    } catch {
      // The process ended between listing and reading.
    }
  }
  const inTree = new Set([root]);
  for (let grew = true; grew;) {
    grew = false;
    for (const p of all) {
      if (inTree.has(p.pid) || !inTree.has(p.ppid)) continue;
      inTree.add(p.pid);
      grew = true;
    }
  }
  return all.filter((p) => inTree.has(p.pid));
}

/** Resident MiB per role: the largest process of each (tsx and npx wrappers are small). */
function sample(root: number): Record<string, number> {
  const procs = tree(root);
  return Object.fromEntries(ROLES.map(([role, re]) => [role, Math.max(0, ...procs.filter((p) => re.test(p.cmd)).map((p) => p.rssMiB))]));
}

async function framesScored(): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${config.API_PORT}/metrics`)).text();
  return [...text.matchAll(/^dataengine_frames_scored_total(?:\{[^}]*\})? (\d+(?:\.\d+)?)/gm)].reduce((a, m) => a + Number(m[1]), 0);
}

export async function benchUpMemory(opts: { minutes: number; sampleSeconds: number; warmupMinutes: number }) {
  fs.mkdirSync(path.join(repoRoot, 'data'), { recursive: true });
  const log = fs.openSync(path.join(repoRoot, 'data', 'bench-up.log'), 'w');
  const child = spawn('npx', ['tsx', 'scripts/up.ts'], { cwd: repoRoot, detached: true, stdio: ['ignore', log, log] });
  const started = Date.now();
  const series: { minute: number; frames: number; rss: Record<string, number> }[] = [];
  const peak: Record<string, number> = {};
  try {
    while (Date.now() - started < opts.minutes * 60_000) {
      await new Promise((r) => setTimeout(r, opts.sampleSeconds * 1000));
      if (child.exitCode !== null) throw new Error(`make up exited with ${child.exitCode}; see data/bench-up.log`);
      const rss = sample(child.pid!);
      for (const [role, mib] of Object.entries(rss)) peak[role] = Math.max(peak[role] ?? 0, mib);
      series.push({ minute: (Date.now() - started) / 60_000, frames: await framesScored().catch(() => 0), rss });
    }
  } finally {
    // Ctrl-C, as a user stops it: everything shuts down in order.
    process.kill(-child.pid!, 'SIGINT');
    await new Promise((r) => child.once('exit', r));
    fs.closeSync(log);
  }
  const base = series.find((s) => s.minute >= opts.warmupMinutes) ?? series[0];
  const last = series[series.length - 1];
  const at = (minute: number) => series.reduce((best, s) => (Math.abs(s.minute - minute) < Math.abs(best.minute - minute) ? s : best));
  const marks = [opts.warmupMinutes, opts.minutes / 4, opts.minutes / 2, (3 * opts.minutes) / 4].map(at).concat(last);
  table(
    `make up for ${opts.minutes} minutes (camera 4 frames/s): resident memory per process, MiB`,
    ['process', ...marks.map((s) => `at ${s.minute.toFixed(0)} min`), 'peak', `growth after ${base.minute.toFixed(0)} min`],
    ROLES.map(([role]) => [role, ...marks.map((s) => s.rss[role]), peak[role], last.rss[role] - base.rss[role]]),
  );
  const fps = (last.frames - base.frames) / ((last.minute - base.minute) * 60);
  table(
    'Frames scored',
    ['', 'value'],
    [
      ['frames scored by the end', last.frames],
      [`frames/s after ${base.minute.toFixed(0)} min`, fps],
    ],
  );
  return { series, peak, framesScored: last.frames };
}

// CPU time of the processes a benchmark runs on (Linux /proc), so a figure can say where the
// cores went and not only how long it took: a worker's, the database server's and the Temporal
// server's.
import fs from 'node:fs';

const TICKS = 100; // USER_HZ of /proc/<pid>/stat on Linux

/** CPU seconds a process has used (its threads and waited-for children included). */
export function cpuSeconds(pid: number): number {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    // utime, stime, cutime, cstime: fields 14-17 of stat, 12-15 after the command name.
    return fields.slice(11, 15).reduce((s, v) => s + Number(v), 0) / TICKS;
  } catch {
    return 0; // the process has ended
  }
}

/** CPU seconds of every process whose command line matches (the database's, the Temporal server's). */
function cpuOf(match: (cmdline: string, comm: string) => boolean): number {
  let total = 0;
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ');
      const comm = fs.readFileSync(`/proc/${entry}/comm`, 'utf8').trim();
      if (match(cmdline, comm)) total += cpuSeconds(Number(entry));
    } catch {
      // gone between the listing and the read
    }
  }
  return total;
}

export const postgresCpu = () => cpuOf((_c, comm) => comm === 'postgres');
export const temporalCpu = () => cpuOf((c) => c.includes('temporal') && c.includes('start-dev'));

/** CPU seconds this process has used, every thread of it (onnxruntime's, libvips', workers'). */
export function ownCpu(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

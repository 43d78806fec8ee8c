// A PostgreSQL server of the test's own (scripts/postgres-up.sh with its own state file), for
// tests that stop and start the server: the suite's shared server must stay up for the others.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '../../config.ts';

const run = promisify(execFile);

export interface OwnPostgres {
  url: string;
  /** Stops the server at once (like a crash: connections are cut, nothing is flushed politely). */
  kill(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

export async function startOwnPostgres(): Promise<OwnPostgres> {
  const state = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'pg-state-')), 'postgres.env');
  const env = { ...process.env, PG_STATE: state };
  const { stdout } = await run('bash', [path.join(repoRoot, 'scripts', 'postgres-up.sh')], { env, maxBuffer: 4 * 1024 * 1024 });
  const url = /DATABASE_URL=(\S+)/.exec(stdout)?.[1];
  if (!url) throw new Error(`scripts/postgres-up.sh printed no DATABASE_URL:\n${stdout}`);
  const vars = Object.fromEntries(
    fs
      .readFileSync(state, 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split('=') as [string, string]),
  );
  const root = vars.PG_ROOT;
  const port = vars.PG_PORT;
  const pgCtl = (args: string) => {
    const cmd = `'${vars.PG_BIN}/pg_ctl' -D '${root}/data' ${args}`;
    return process.getuid?.() === 0 ? run('su', ['postgres', '-s', '/bin/bash', '-c', cmd]) : run('bash', ['-c', cmd]);
  };
  return {
    url,
    kill: async () => {
      await pgCtl('-m immediate -w stop');
    },
    start: async () => {
      await pgCtl(`-l '${root}/server.log' -w -o "-p ${port} -k '${root}' -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start`);
    },
    close: async () => {
      await run('bash', [path.join(repoRoot, 'scripts', 'postgres-down.sh')], { env }).catch(() => undefined);
    },
  };
}

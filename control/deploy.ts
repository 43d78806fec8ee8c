// Deploying a model version: move the production pointer (one transaction, with history), then
// tell every running stream loop about the deployment; each switches at its next batch boundary.
// The box model has no loops: box assist reads the production pointer on every request.
//
// Each deployment (and rollback) is a deployments row, and its id is what loops are told: a loop
// keeps the newest id it has heard of, so going back to a version it served before works, and a
// late delivery of an older deployment never wins. A loop that cannot be reached now still
// catches up: every batch reads the newest deployment from the registry.
import type { Db } from '../db/client.ts';
import type { ModelKind } from '../models/contract.ts';
import { RegistryError, rollback, setProduction } from '../models/registry.ts';
import { getDeployment, getModel, latestDeployment } from '../db/models.ts';
import type { LoopControl } from './loop-control.ts';

export interface DeployDeps {
  db: Db;
  loopControl: LoopControl;
  /** Loads the new version before any loop switches, so the first batch is not slowed. */
  warm?: (kind: ModelKind, version: string) => Promise<void>;
}

interface LoopDeployState {
  streamId: string;
  /** `confirmed`: the loop answered and serves this deployment (or a newer one) from its next batch. */
  status: 'confirmed' | 'pending';
  modelVersion: string | null;
  deploymentId: number | null;
  /** Why a pending loop has not confirmed (no worker answered in time, ...). */
  detail?: string;
}

export interface DeployOutcome {
  kind: ModelKind;
  version: string;
  previousVersion: string | null;
  deploymentId: number;
  loops: LoopDeployState[];
  /** Loops that have not confirmed yet; `GET /v1/deployments/:id` shows when they catch up. */
  pending: string[];
}

/** Where a loop stands, from what it reports (an update's reply or its status query). */
function loopState(streamId: string, reported: { modelVersion: string | null; deploymentId: number | null }, deploymentId: number): LoopDeployState {
  const confirmed = (reported.deploymentId ?? 0) >= deploymentId;
  return { streamId, status: confirmed ? 'confirmed' : 'pending', modelVersion: reported.modelVersion, deploymentId: reported.deploymentId };
}

async function notifyLoops(deps: DeployDeps, kind: ModelKind, version: string, deploymentId: number): Promise<LoopDeployState[]> {
  if (kind !== 'detection') return [];
  const streams = await deps.loopControl.runningStreams();
  return Promise.all(
    streams.map(async (streamId): Promise<LoopDeployState> => {
      try {
        return loopState(streamId, await deps.loopControl.deployModel(streamId, { modelVersion: version, deploymentId }), deploymentId);
      } catch (err) {
        return { streamId, status: 'pending', modelVersion: null, deploymentId: null, detail: err instanceof Error ? err.message : String(err) };
      }
    }),
  );
}

function outcome(kind: ModelKind, version: string, previousVersion: string | null, deploymentId: number, loops: LoopDeployState[]): DeployOutcome {
  return { kind, version, previousVersion, deploymentId, loops, pending: loops.filter((l) => l.status === 'pending').map((l) => l.streamId) };
}

export async function deployVersion(deps: DeployDeps, kind: ModelKind, version: string, by: { triggeredBy: string; reason?: string }): Promise<DeployOutcome> {
  // Checked before warming up: an unknown version is a 404 for the caller, not a missing file.
  if (!(await getModel(deps.db, kind, version))) throw new RegistryError(`${kind} model ${version} is not registered`, 'not_found');
  await deps.warm?.(kind, version);
  const { previousVersion, deploymentId } = await setProduction(deps.db, kind, version, { ...by, action: 'deploy' });
  return outcome(kind, version, previousVersion, deploymentId, await notifyLoops(deps, kind, version, deploymentId));
}

export async function rollbackVersion(
  deps: DeployDeps,
  kind: ModelKind,
  by: { triggeredBy: string; reason?: string },
  toVersion?: string,
): Promise<DeployOutcome> {
  const { version, previousVersion, deploymentId } = await rollback(deps.db, kind, by, toVersion);
  await deps.warm?.(kind, version);
  return outcome(kind, version, previousVersion, deploymentId, await notifyLoops(deps, kind, version, deploymentId));
}

/**
 * Where a deployment stands in every running loop. A loop that does not answer a query (no
 * worker) is judged by the model version the server last saw it publish.
 */
export async function deploymentProgress(deps: DeployDeps, deploymentId: number) {
  const deployment = await getDeployment(deps.db, deploymentId);
  if (!deployment) return null;
  const newest = await latestDeployment(deps.db, deployment.kind);
  // Asked in parallel: a loop without a worker takes the whole query timeout to answer.
  const streams = deployment.kind === 'detection' ? await deps.loopControl.runningStreams() : [];
  const loops = await Promise.all(
    streams.map(async (streamId): Promise<LoopDeployState> => {
      const status = await deps.loopControl.status(streamId).catch(() => null);
      if (status) return loopState(streamId, status, deploymentId);
      const described = await deps.loopControl.describe(streamId).catch(() => null);
      const caughtUp = described?.modelVersion === deployment.version;
      return {
        streamId,
        status: caughtUp ? 'confirmed' : 'pending',
        modelVersion: described?.modelVersion ?? null,
        deploymentId: null,
        detail: 'no worker answered; judged by the version the loop last published',
      };
    }),
  );
  return {
    deployment,
    /** A newer deployment replaced this one; loops follow the newer one. */
    superseded: newest !== undefined && newest.id !== deploymentId,
    loops,
    pending: loops.filter((l) => l.status === 'pending').map((l) => l.streamId),
  };
}

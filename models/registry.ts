// The model registry: artifacts in the blob store keyed by kind and version, a row per model,
// and the production pointer. Registration proves a model meets the contract (signature,
// metadata, one probe run) before anything is written, so a bad file leaves no trace.
import type { Db } from '../db/client.ts';
import { saveModelReference, type ReferenceFile } from '../db/drift.ts';
import { deploymentHistory, getModel, insertDeployment, insertModel, latestDeployment, movePointer, productionModel, type ModelRow } from '../db/models.ts';
import { modelKey, sha256Hex, type BlobStore } from '../storage/blob-store.ts';
import { ModelContractError, parseModelMetadata, type ModelKind } from './contract.ts';
import { BoxModelSession, DetectorSession } from './sessions.ts';

export class RegistryError extends Error {
  constructor(
    message: string,
    readonly code: 'invalid_model' | 'version_conflict' | 'not_found' | 'no_previous_version',
  ) {
    super(message);
    this.name = 'RegistryError';
  }
}

const VERSION_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export interface RegisterInput {
  kind: ModelKind;
  bytes: Uint8Array;
  /** Defaults to the version in the model's metadata. */
  version?: string;
  metrics?: Record<string, unknown>;
  trainingSnapshot?: string | null;
  parentVersion?: string | null;
  /** The drift reference the trainer wrote beside a detection model (reference.json). */
  reference?: ReferenceFile;
}

/** Validates and probes a model without storing it; returns its contract metadata. */
async function validateModel(kind: ModelKind, bytes: Uint8Array) {
  try {
    const meta = parseModelMetadata(bytes);
    if (meta.kind !== kind) throw new ModelContractError(`the file is a ${meta.kind} model, not a ${kind} model`);
    const session =
      kind === 'detection' ? await DetectorSession.load(bytes, { intraOpThreads: 1, minScore: 1 }) : await BoxModelSession.load(bytes, { intraOpThreads: 1 });
    await session.release();
    return meta;
  } catch (err) {
    if (err instanceof ModelContractError) throw new RegistryError(`model refused: ${err.message}`, 'invalid_model');
    throw err;
  }
}

export async function registerModel(db: Db, store: BlobStore, input: RegisterInput): Promise<ModelRow> {
  const meta = await validateModel(input.kind, input.bytes);
  const version = input.version ?? meta.version;
  if (!VERSION_PATTERN.test(version)) {
    throw new RegistryError(`version ${JSON.stringify(version)} must be 1-100 characters of letters, digits, '.', '_' or '-'`, 'invalid_model');
  }
  const sha256 = sha256Hex(input.bytes);
  const existing = await getModel(db, input.kind, version);
  if (existing) {
    if (existing.sha256 === sha256) return existing; // the same registration again: a no-op
    throw new RegistryError(`${input.kind} model ${version} is already registered with different contents`, 'version_conflict');
  }
  const key = modelKey(input.kind, version);
  // Trained models already sit at their key (the trainer wrote them); the bytes are the same.
  await store.put(key, input.bytes);
  const row = await insertModel(db, {
    kind: input.kind,
    version,
    artifactKey: key,
    sha256,
    metadata: meta,
    metrics: input.metrics ?? {},
    trainingSnapshot: input.trainingSnapshot ?? (meta.trainingSnapshot || null),
    parentVersion: input.parentVersion ?? meta.parentVersion,
  });
  if (row) {
    if (input.kind === 'detection' && input.reference) await saveModelReference(db, version, input.reference);
    return row;
  }
  // A concurrent registration of the same version won the race; it must be the same file.
  const winner = await getModel(db, input.kind, version);
  if (winner?.sha256 === sha256) return winner;
  throw new RegistryError(`${input.kind} model ${version} is already registered with different contents`, 'version_conflict');
}

export interface PointerMove {
  triggeredBy: string;
  reason?: string;
  action?: 'deploy' | 'rollback';
}

/**
 * Moves the production pointer of a kind to `version` in one transaction, with a deployments row.
 * Returns the id of the deployment that now stands for production: the new row, or (when
 * `version` already serves) the newest row, so loops that missed it can still be told again.
 */
export async function setProduction(
  db: Db,
  kind: ModelKind,
  version: string,
  move: PointerMove,
): Promise<{ previousVersion: string | null; deploymentId: number }> {
  return db.transaction(async (tx) => {
    const target = await getModel(tx, kind, version);
    if (!target) throw new RegistryError(`${kind} model ${version} is not registered`, 'not_found');
    const current = await productionModel(tx, kind);
    if (current?.version === version) {
      const newest = await latestDeployment(tx, kind);
      if (newest) return { previousVersion: version, deploymentId: newest.id };
    }
    await movePointer(tx, current && current.version !== version ? current.id : null, target.id);
    const deploymentId = await insertDeployment(tx, {
      kind,
      version,
      previousVersion: current?.version ?? null,
      action: move.action ?? 'deploy',
      triggeredBy: move.triggeredBy,
      reason: move.reason ?? null,
    });
    return { previousVersion: current?.version ?? null, deploymentId };
  });
}

/** Rolls production back to `toVersion`, or to the version that served before the current one. */
export async function rollback(
  db: Db,
  kind: ModelKind,
  move: Omit<PointerMove, 'action'>,
  toVersion?: string,
): Promise<{ version: string; previousVersion: string | null; deploymentId: number }> {
  let target = toVersion;
  if (!target) {
    const current = await productionModel(db, kind);
    const history = await deploymentHistory(db, kind);
    target =
      history.find((d) => d.version !== current?.version)?.version ??
      history.find((d) => d.previousVersion && d.previousVersion !== current?.version)?.previousVersion ??
      undefined;
    if (!target) throw new RegistryError(`no earlier ${kind} version to roll back to`, 'no_previous_version');
  }
  const { previousVersion, deploymentId } = await setProduction(db, kind, target, { ...move, action: 'rollback' });
  return { version: target, previousVersion, deploymentId };
}

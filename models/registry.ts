// The model registry: artifacts in the blob store keyed by kind and version, a row per model,
// and the production pointer. Registration proves a model meets the contract (signature,
// metadata, one probe run) before anything is written, so a bad file leaves no trace.
import type { Db } from '../db/client.ts';
import { saveModelReference, type ReferenceFile } from '../db/drift.ts';
import {
  addVariant,
  deploymentHistory,
  getModel,
  insertDeployment,
  insertModel,
  latestDeployment,
  movePointer,
  productionModel,
  type ModelRow,
} from '../db/models.ts';
import type { ModelPrecision } from '../db/schema.ts';
import { modelKey, sha256Hex, variantKey, type BlobStore } from '../storage/blob-store.ts';
import { ModelContractError, parseModelMetadata, type ModelKind, type ModelMetadata } from './contract.ts';
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

export interface RegisterVariantInput {
  kind: ModelKind;
  version: string;
  precision: ModelPrecision;
  bytes: Uint8Array;
  metrics?: Record<string, unknown>;
}

/**
 * Registers another encoding of a registered version (the trainer's INT8 detector). It must run
 * and read like the version it stands in for: the same kind, classes and input size, and
 * metadata that says it is that precision. The same file again is a no-op.
 */
export async function registerVariant(db: Db, store: BlobStore, input: RegisterVariantInput): Promise<ModelRow> {
  const base = await getModel(db, input.kind, input.version);
  if (!base) throw new RegistryError(`${input.kind} model ${input.version} is not registered`, 'not_found');
  const sha256 = sha256Hex(input.bytes);
  const existing = base.variants[input.precision];
  // The same file again (make up registers the seed's at every start): it passed before.
  if (existing?.sha256 === sha256) return base;
  const meta = await validateModel(input.kind, input.bytes);
  const mismatch = variantMismatch(base.metadata, meta, input.precision);
  if (mismatch) throw new RegistryError(`${input.precision} variant refused: ${mismatch}`, 'invalid_model');
  if (existing) {
    throw new RegistryError(`${input.kind} model ${input.version} already has an ${input.precision} variant with different contents`, 'version_conflict');
  }
  const key = variantKey(input.kind, input.version, input.precision);
  await store.put(key, input.bytes);
  const row = await addVariant(db, base.id, input.precision, {
    artifactKey: key,
    sha256,
    metrics: input.metrics ?? {},
    registeredAt: new Date().toISOString(),
  });
  // A concurrent registration of another file may have won; the row says which one stands.
  if (row?.variants[input.precision]?.sha256 !== sha256) {
    throw new RegistryError(`${input.kind} model ${input.version} already has an ${input.precision} variant with different contents`, 'version_conflict');
  }
  return row;
}

function variantMismatch(base: ModelMetadata, variant: ModelMetadata, precision: ModelPrecision): string | null {
  if (variant.kind !== 'detection' || base.kind !== 'detection') return 'only detectors have variants';
  if (variant.precision !== precision) return `its metadata says precision ${variant.precision}, not ${precision}`;
  if (JSON.stringify(variant.classNames) !== JSON.stringify(base.classNames)) return 'its class names differ from the version it stands in for';
  for (const key of ['inputSize', 'embeddingDim', 'objectEmbeddingDim', 'maxDetections'] as const) {
    if (variant[key] !== base[key]) return `its ${key} ${variant[key]} differs from the version's ${base[key]}`;
  }
  return null;
}

/** The file loops run for a version: its variant of the chosen precision when it has one, else
 * the version's own model. */
function servedArtifact(row: ModelRow, precision: 'fp32' | ModelPrecision): { key: string; sha256: string; precision: 'fp32' | ModelPrecision } {
  const variant = precision === 'fp32' ? undefined : row.variants[precision];
  return variant ? { key: variant.artifactKey, sha256: variant.sha256, precision } : { key: row.artifactKey, sha256: row.sha256, precision: 'fp32' };
}

/** What ModelCache asks before loading a version: the file to serve and its registered sha256. */
export function registeredArtifacts(db: Db, precision: 'fp32' | ModelPrecision) {
  return async (kind: ModelKind, version: string) => {
    const row = await getModel(db, kind, version);
    return row ? servedArtifact(row, precision) : undefined;
  };
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

// The ONNX model contract (docs/contracts.md), checked once when a model is loaded or
// registered: input and output names, and the metadata the platform relies on.
import { EMBEDDING_DIM, OBJECT_EMBEDDING_DIM } from '../db/schema.ts';
import { readOnnxMetadata } from './onnx-metadata.ts';

export type ModelKind = 'detection' | 'box';

export interface DetectionMetadata {
  kind: 'detection';
  version: string;
  classNames: string[];
  inputSize: number;
  embeddingDim: number;
  objectEmbeddingDim: number;
  maxDetections: number;
  /** 'int8' for a statically quantised variant (trainer/dataengine_trainer/quantize.py). */
  precision: 'fp32' | 'int8';
  trainingSnapshot: string;
  parentVersion: string | null;
}

export interface BoxMetadata {
  kind: 'box';
  version: string;
  roiSize: number;
  contextMargin: number;
  trainingSnapshot: string;
  parentVersion: string | null;
}

export type ModelMetadata = DetectionMetadata | BoxMetadata;

const SIGNATURES = {
  detection: { inputs: ['images'], outputs: ['boxes', 'scores', 'class_ids', 'embedding', 'object_embeddings'] },
  box: { inputs: ['roi'], outputs: ['box', 'score'] },
} as const;

export class ModelContractError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelContractError';
  }
}

/**
 * Bounds of the metadata a model may declare: what this platform can run. An input of 16,000
 * pixels a side would take gigabytes at the registration probe; the embedding width is the
 * database's vector column.
 */
const METADATA_LIMITS = { input_size: 2048, roi_size: 1024, max_detections: 1000, classes: 1000, className: 100, contextMargin: 4 } as const;

function positiveInt(props: Record<string, string>, key: string, max: number): number {
  const n = Number(props[key]);
  if (!Number.isInteger(n) || n <= 0 || n > max)
    throw new ModelContractError(`metadata_props.${key} must be an integer from 1 to ${max}, got ${JSON.stringify(props[key])}`);
  return n;
}

/** Parses and checks the contract metadata of an ONNX file. */
export function parseModelMetadata(bytes: Uint8Array): ModelMetadata {
  let props: Record<string, string>;
  try {
    props = readOnnxMetadata(bytes);
  } catch (err) {
    throw new ModelContractError(`not an ONNX model: ${(err as Error).message}`);
  }
  const kind = props.kind;
  const version = props.version ?? '';
  const common = { version, trainingSnapshot: props.training_snapshot ?? '', parentVersion: props.parent_version || null };
  if (kind === 'detection') {
    let classNames: unknown;
    try {
      classNames = JSON.parse(props.class_names ?? '');
    } catch {
      throw new ModelContractError('metadata_props.class_names must be a JSON array of class names');
    }
    if (
      !Array.isArray(classNames) ||
      classNames.length === 0 ||
      classNames.length > METADATA_LIMITS.classes ||
      !classNames.every((c) => typeof c === 'string' && c.length > 0 && c.length <= METADATA_LIMITS.className)
    ) {
      throw new ModelContractError(
        `metadata_props.class_names must be a JSON array of 1 to ${METADATA_LIMITS.classes} class names of 1 to ${METADATA_LIMITS.className} characters`,
      );
    }
    const embeddingDim = Number(props.embedding_dim);
    if (embeddingDim !== EMBEDDING_DIM)
      throw new ModelContractError(
        `metadata_props.embedding_dim must be ${EMBEDDING_DIM} (the platform's embedding width), got ${JSON.stringify(props.embedding_dim)}`,
      );
    const objectEmbeddingDim = Number(props.object_embedding_dim);
    if (objectEmbeddingDim !== OBJECT_EMBEDDING_DIM)
      throw new ModelContractError(
        `metadata_props.object_embedding_dim must be ${OBJECT_EMBEDDING_DIM} (the vector index's object width), got ${JSON.stringify(props.object_embedding_dim)}`,
      );
    const precision = props.precision ?? 'fp32';
    if (precision !== 'fp32' && precision !== 'int8')
      throw new ModelContractError(`metadata_props.precision must be "fp32" or "int8", got ${JSON.stringify(props.precision)}`);
    return {
      kind,
      ...common,
      precision,
      classNames,
      inputSize: positiveInt(props, 'input_size', METADATA_LIMITS.input_size),
      embeddingDim,
      objectEmbeddingDim,
      maxDetections: positiveInt(props, 'max_detections', METADATA_LIMITS.max_detections),
    };
  }
  if (kind === 'box') {
    const margin = Number(props.context_margin ?? '0.5');
    if (!(margin >= 0 && margin <= METADATA_LIMITS.contextMargin))
      throw new ModelContractError(`metadata_props.context_margin must be a number from 0 to ${METADATA_LIMITS.contextMargin}`);
    return { kind, ...common, roiSize: positiveInt(props, 'roi_size', METADATA_LIMITS.roi_size), contextMargin: margin };
  }
  throw new ModelContractError(`metadata_props.kind must be "detection" or "box", got ${JSON.stringify(kind)}`);
}

/** Checks a loaded session's input and output names against the contract of its kind. */
export function checkSignature(kind: ModelKind, inputNames: readonly string[], outputNames: readonly string[]): void {
  const want = SIGNATURES[kind];
  const missingIn = want.inputs.filter((n) => !inputNames.includes(n));
  const missingOut = want.outputs.filter((n) => !outputNames.includes(n));
  if (missingIn.length || missingOut.length) {
    const parts = [];
    if (missingIn.length) parts.push(`inputs ${missingIn.join(', ')} missing (has ${inputNames.join(', ') || 'none'})`);
    if (missingOut.length) parts.push(`outputs ${missingOut.join(', ')} missing (has ${outputNames.join(', ') || 'none'})`);
    throw new ModelContractError(`${kind} model signature does not match the contract: ${parts.join('; ')}`);
  }
}

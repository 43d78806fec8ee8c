// The vector index of object embeddings: one seam, two implementations (db/pgvector-index.ts,
// the default; storage/pinecone-index.ts, for indexes larger than one Postgres). Ids are
// prediction ids, so a record and its detection share one key everywhere.
import type { DbOrTx } from '../db/client.ts';

/** What a search can filter on, stored with each vector. */
export interface ObjectMetadata {
  frameId: string;
  streamId: string;
  cameraId: string;
  modelVersion: string;
  className: string;
  score: number;
  capturedAt: Date;
  /** The class a person confirmed for the object; null while unlabelled. */
  labelClass: string | null;
}

export interface ObjectRecord {
  id: string;
  /** Unit length (the detector's contract), compared by cosine distance. */
  vector: number[];
  metadata: ObjectMetadata;
}

export interface ObjectFilter {
  /** Vectors of two model versions live in two spaces: every search names one. */
  modelVersion: string;
  /** The streams to search (Pinecone keeps a namespace per stream): never empty. */
  streamIds: string[];
  cameraIds?: string[];
  classNames?: string[];
  capturedFrom?: Date;
  capturedTo?: Date;
  labelState?: 'labelled' | 'unlabelled';
  /** Only detections at least this confident. */
  minScore?: number;
  excludeIds?: string[];
}

export interface VectorQuery {
  vector: number[];
  k: number;
  /** Cosine distance (0 = same direction, 2 = opposite); farther neighbours are left out. */
  maxDistance?: number;
  filter: ObjectFilter;
  /**
   * The matches are likely far from the query (a class filter none of its examples is of): an
   * index that walks a graph outwards from the query should scan the filtered rows instead.
   */
  farFromQuery?: boolean;
}

export interface Neighbour {
  id: string;
  distance: number;
  metadata: ObjectMetadata;
}

export interface VectorIndex {
  readonly kind: 'pgvector' | 'pinecone';
  /**
   * Stores records (an existing id is overwritten, so a retried batch adds nothing). `tx` is the
   * transaction that stores the records' detections: pgvector writes inside it, so vectors and
   * detections commit together; Pinecone writes before it commits (same ids on a retry).
   */
  upsert(records: ObjectRecord[], tx: DbOrTx): Promise<void>;
  /** The k nearest records that pass the filter, nearest first. */
  query(q: VectorQuery): Promise<Neighbour[]>;
  /** The stored vectors of these ids (ids not stored are absent from the map). */
  vectors(ids: string[], streamIds: string[]): Promise<Map<string, number[]>>;
  /** Records what class a person confirmed for these objects (null: unlabelled again). */
  setLabelClass(items: { id: string; streamId: string }[], labelClass: string | null): Promise<void>;
}

/** The normalized mean of unit vectors: the direction a set of examples shares. */
export function centroid(vectors: number[][]): number[] {
  const dim = vectors[0].length;
  const sum = new Array<number>(dim).fill(0);
  for (const v of vectors) for (let i = 0; i < dim; i++) sum[i] += v[i];
  const norm = Math.sqrt(sum.reduce((s, x) => s + x * x, 0)) || 1;
  return sum.map((x) => x / norm);
}

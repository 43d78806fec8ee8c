// The vector index on Pinecone (the official client), for object counts beyond what one Postgres
// should hold: one namespace per stream, the filters as metadata, batched upserts.
import { Pinecone, type Index, type RecordMetadata } from '@pinecone-database/pinecone';
import type { Neighbour, ObjectFilter, ObjectMetadata, ObjectRecord, VectorIndex, VectorQuery } from './vector-index.ts';

/** Pinecone metadata holds strings, numbers, booleans and string lists: no null, no Date. */
type StoredMetadata = RecordMetadata &
  Omit<ObjectMetadata, 'capturedAt' | 'labelClass'> & {
    objectId: string;
    capturedAt: number;
    labelClass: string;
    labelled: boolean;
  };

/** Records per upsert request (Pinecone takes up to 1,000 or 2 MB; a 64-d record is ~1 KB). */
const UPSERT_BATCH = 200;
/** Metadata updates go one id per request; this many run at once. */
const UPDATE_CONCURRENCY = 8;

const toStored = (id: string, m: ObjectMetadata): StoredMetadata => ({
  ...m,
  objectId: id,
  capturedAt: m.capturedAt.getTime(),
  labelClass: m.labelClass ?? '',
  labelled: m.labelClass !== null,
});

const fromStored = ({ objectId: _id, labelled: _labelled, ...m }: StoredMetadata): ObjectMetadata => ({
  ...m,
  capturedAt: new Date(m.capturedAt),
  labelClass: m.labelClass === '' ? null : m.labelClass,
});

/** The search filter in Pinecone's filter language (the stream is the namespace). */
export function pineconeFilter(f: ObjectFilter): Record<string, unknown> {
  const filter: Record<string, unknown> = { modelVersion: { $eq: f.modelVersion } };
  if (f.cameraIds?.length) filter.cameraId = { $in: f.cameraIds };
  if (f.classNames?.length) filter.className = { $in: f.classNames };
  if (f.capturedFrom || f.capturedTo) {
    filter.capturedAt = {
      ...(f.capturedFrom ? { $gte: f.capturedFrom.getTime() } : {}),
      ...(f.capturedTo ? { $lte: f.capturedTo.getTime() } : {}),
    };
  }
  if (f.labelState) filter.labelled = { $eq: f.labelState === 'labelled' };
  if (f.minScore !== undefined) filter.score = { $gte: f.minScore };
  if (f.excludeIds?.length) filter.objectId = { $nin: f.excludeIds };
  return filter;
}

const groupBy = <T>(items: T[], key: (t: T) => string) => {
  const groups = new Map<string, T[]>();
  for (const it of items) groups.set(key(it), [...(groups.get(key(it)) ?? []), it]);
  return groups;
};

export class PineconeIndex implements VectorIndex {
  readonly kind = 'pinecone';
  private readonly index: Index<StoredMetadata>;

  constructor(opts: { apiKey: string; indexName: string }) {
    this.index = new Pinecone({ apiKey: opts.apiKey }).index<StoredMetadata>({ name: opts.indexName });
  }

  async upsert(records: ObjectRecord[]): Promise<void> {
    for (const [streamId, group] of groupBy(records, (r) => r.metadata.streamId)) {
      for (let i = 0; i < group.length; i += UPSERT_BATCH) {
        await this.index.upsert({
          namespace: streamId,
          records: group.slice(i, i + UPSERT_BATCH).map((r) => ({ id: r.id, values: r.vector, metadata: toStored(r.id, r.metadata) })),
        });
      }
    }
  }

  async query(q: VectorQuery): Promise<Neighbour[]> {
    const filter = pineconeFilter(q.filter);
    const perStream = await Promise.all(
      q.filter.streamIds.map((namespace) => this.index.query({ namespace, vector: q.vector, topK: q.k, filter, includeMetadata: true })),
    );
    return perStream
      .flatMap((r) => r.matches)
      .map((m) => ({ id: m.id, distance: 1 - (m.score ?? -1), metadata: fromStored(m.metadata!) }))
      .filter((n) => q.maxDistance === undefined || n.distance <= q.maxDistance)
      .sort((a, b) => a.distance - b.distance)
      .slice(0, q.k);
  }

  async vectors(ids: string[], streamIds: string[]): Promise<Map<string, number[]>> {
    const out = new Map<string, number[]>();
    if (ids.length === 0) return out;
    for (const namespace of streamIds) {
      const { records } = await this.index.fetch({ namespace, ids });
      for (const [id, r] of Object.entries(records)) if (r.values) out.set(id, r.values);
    }
    return out;
  }

  async setLabelClass(items: { id: string; streamId: string }[], labelClass: string | null): Promise<void> {
    const metadata = { labelClass: labelClass ?? '', labelled: labelClass !== null };
    for (let i = 0; i < items.length; i += UPDATE_CONCURRENCY) {
      await Promise.all(items.slice(i, i + UPDATE_CONCURRENCY).map((it) => this.index.update({ namespace: it.streamId, id: it.id, metadata })));
    }
  }
}

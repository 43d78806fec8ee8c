// The default vector index: object embeddings in Postgres (or PGlite) with pgvector, an HNSW
// index with cosine distance, and filtered searches that keep scanning the graph until k rows
// pass the filter (pgvector's iterative scan), so a selective filter does not return a short list.
import { and, eq, gte, inArray, isNotNull, isNull, lte, notInArray, sql, type SQL } from 'drizzle-orm';
import type { Neighbour, ObjectRecord, VectorIndex, VectorQuery } from '../storage/vector-index.ts';
import type { Db, DbOrTx } from './client.ts';
import { objectVectors } from './schema.ts';

export interface PgvectorSettings {
  /** HNSW candidate list per search: recall against latency (pgvector's default is 40). */
  efSearch: number;
  /** Most index tuples one filtered search may visit before it gives up on filling k. */
  maxScanTuples: number;
}

const asVector = (v: number[]) => `[${v.join(',')}]`;

export class PgvectorIndex implements VectorIndex {
  readonly kind = 'pgvector';

  constructor(
    private readonly db: Db,
    private readonly settings: PgvectorSettings,
  ) {}

  async upsert(records: ObjectRecord[], tx: DbOrTx): Promise<void> {
    if (records.length === 0) return;
    await tx
      .insert(objectVectors)
      .values(records.map((r) => ({ predictionId: r.id, ...r.metadata, embedding: r.vector })))
      .onConflictDoNothing();
  }

  async query(q: VectorQuery): Promise<Neighbour[]> {
    const f = q.filter;
    const where: SQL[] = [eq(objectVectors.modelVersion, f.modelVersion)];
    where.push(inArray(objectVectors.streamId, f.streamIds));
    if (f.cameraIds?.length) where.push(inArray(objectVectors.cameraId, f.cameraIds));
    if (f.classNames?.length) where.push(inArray(objectVectors.className, f.classNames));
    if (f.capturedFrom) where.push(gte(objectVectors.capturedAt, f.capturedFrom));
    if (f.capturedTo) where.push(lte(objectVectors.capturedAt, f.capturedTo));
    if (f.labelState === 'labelled') where.push(isNotNull(objectVectors.labelClass));
    if (f.labelState === 'unlabelled') where.push(isNull(objectVectors.labelClass));
    if (f.minScore !== undefined) where.push(gte(objectVectors.score, f.minScore));
    if (f.excludeIds?.length) where.push(notInArray(objectVectors.predictionId, f.excludeIds));
    const distance = sql<number>`${objectVectors.embedding} <=> ${asVector(q.vector)}::vector`;
    const search = (settings: string[]) =>
      this.db.transaction(async (tx) => {
        for (const statement of settings) await tx.execute(sql.raw(statement));
        return tx
          .select({
            id: objectVectors.predictionId,
            distance,
            frameId: objectVectors.frameId,
            streamId: objectVectors.streamId,
            cameraId: objectVectors.cameraId,
            modelVersion: objectVectors.modelVersion,
            className: objectVectors.className,
            score: objectVectors.score,
            capturedAt: objectVectors.capturedAt,
            labelClass: objectVectors.labelClass,
          })
          .from(objectVectors)
          .where(and(...where))
          .orderBy(distance)
          .limit(q.k);
      });
    // SET LOCAL takes no bind parameters; both values are integers from the validated config.
    // relaxed_order: rows may come slightly out of order, so they are sorted again below.
    const exact = ['set local enable_indexscan = off'];
    // Matches far from the query (e.g. cyclists searched with a car as the example): the graph
    // walk would pass max_scan_tuples rows of other kinds first, so scan the filtered rows.
    let rows = q.farFromQuery
      ? await search(exact)
      : await search([
          `set local hnsw.ef_search = ${Math.trunc(Math.max(q.k, this.settings.efSearch))}`,
          `set local hnsw.max_scan_tuples = ${Math.trunc(this.settings.maxScanTuples)}`,
          'set local hnsw.iterative_scan = relaxed_order',
        ]);
    // Fewer than k rows: either fewer match the filter at all, or the graph walk gave up after
    // max_scan_tuples. An exact scan of the filtered rows answers both correctly.
    if (rows.length < q.k && !q.farFromQuery) rows = await search(exact);
    return rows
      .map(({ id, distance: d, ...metadata }) => ({ id, distance: Number(d), metadata }))
      .filter((n) => q.maxDistance === undefined || n.distance <= q.maxDistance)
      .sort((a, b) => a.distance - b.distance);
  }

  async vectors(ids: string[]): Promise<Map<string, number[]>> {
    if (ids.length === 0) return new Map();
    const rows = await this.db
      .select({ id: objectVectors.predictionId, embedding: objectVectors.embedding })
      .from(objectVectors)
      .where(inArray(objectVectors.predictionId, ids));
    return new Map(rows.map((r) => [r.id, r.embedding]));
  }

  async setLabelClass(items: { id: string }[], labelClass: string | null): Promise<void> {
    if (items.length === 0) return;
    await this.db
      .update(objectVectors)
      .set({ labelClass })
      .where(
        inArray(
          objectVectors.predictionId,
          items.map((i) => i.id),
        ),
      );
  }
}

/** pgvector releases before this one can corrupt an HNSW index during vacuum (fixed in 0.8.3). */
export const HNSW_SAFE_PGVECTOR = '0.8.3';

/** True when version a is older than b (dotted numbers). */
export function olderThan(a: string, b: string): boolean {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? 0;
    const y = pb[i] ?? 0;
    if (x !== y) return x < y;
  }
  return false;
}

/** The installed pgvector version, and a warning to log when its HNSW index is not safe. */
export async function checkPgvector(db: DbOrTx): Promise<{ version: string; warning: string | null }> {
  const result = await db.execute(sql`select extversion from pg_extension where extname = 'vector'`);
  const { rows } = result as { rows: { extversion: string }[] };
  const version = rows[0]?.extversion ?? 'missing';
  const warning =
    version === 'missing' || olderThan(version, HNSW_SAFE_PGVECTOR)
      ? `pgvector ${version} is older than ${HNSW_SAFE_PGVECTOR}: its HNSW index can be corrupted during vacuum, and the object index uses HNSW. Upgrade the extension (ALTER EXTENSION vector UPDATE) before running this in production.`
      : null;
  return { version, warning };
}

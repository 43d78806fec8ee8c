// Similar-object search and label propagation over the vector index: by one object, by a set
// of examples (positives, with negatives left out), and the neighbours a marked object proposes
// its class to. Vectors stay in the index; this module moves ids, distances and at most the
// examples' own vectors (to average them).
import { objectsByIds, objectsWithDecision, negativesFor, type ObjectRow, type Proposal } from '../db/object-labels.ts';
import type { DbOrTx } from '../db/client.ts';
import { streams } from '../db/schema.ts';
import { trackMembers } from '../db/tracks.ts';
import { cosineDistance } from '../policies/route.ts';
import { centroid, type Neighbour, type ObjectFilter, type VectorIndex } from './vector-index.ts';

/** The filters a person may set; the model version comes from the examples. */
export type SearchFilter = Omit<ObjectFilter, 'modelVersion' | 'streamIds' | 'excludeIds'> & { streamIds?: string[] };

/** Negatives of a class read per search (a search leaves them all out). */
const MAX_NEGATIVES = 10_000;

export class ExamplesError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = 'ExamplesError';
  }
}

async function allStreamIds(db: DbOrTx): Promise<string[]> {
  return (await db.select({ id: streams.id }).from(streams)).map((r) => r.id);
}

async function filterFor(db: DbOrTx, modelVersion: string, f: SearchFilter, excludeIds: string[]): Promise<ObjectFilter> {
  const streamIds = f.streamIds?.length ? f.streamIds : await allStreamIds(db);
  return { ...f, modelVersion, streamIds, excludeIds };
}

/**
 * The examples' vectors; all examples must come from one model version (one vector space).
 * `field` is the request field that named them, for the error.
 */
async function exampleVectors(index: VectorIndex, examples: ObjectRow[], field: string): Promise<number[][]> {
  const versions = new Set(examples.map((e) => e.modelVersion));
  if (versions.size > 1)
    throw new ExamplesError(field, `the examples were scored by ${versions.size} model versions (${[...versions].join(', ')}); choose examples of one`);
  const stored = await index.vectors(
    examples.map((e) => e.id),
    [...new Set(examples.map((e) => e.streamId))],
  );
  const missing = examples.filter((e) => !stored.has(e.id));
  if (missing.length) throw new ExamplesError(field, `objects ${missing.map((m) => m.id).join(', ')} have no embedding in the vector index`);
  return examples.map((e) => stored.get(e.id)!);
}

/**
 * The embedding separates classes: under a class filter that none of the examples' classes
 * passes, the matches lie far from the examples.
 */
export function farFromExamples(filter: Pick<ObjectFilter, 'classNames'>, exampleClasses: string[]): boolean {
  const classes = filter.classNames ?? [];
  return classes.length > 0 && !exampleClasses.some((c) => classes.includes(c));
}

export interface ExampleSearch {
  positives: ObjectRow[];
  /** The request field that named the examples (`positives`, `region`, `id`), for errors. */
  field: string;
  negatives?: string[];
  /** Leave out objects a person marked as not of this class. */
  className?: string;
  k: number;
  maxDistance?: number;
  filter: SearchFilter;
  /**
   * Average the first matches (within maxDistance) with the examples and search again: the
   * reference implementation's re-query, which pulls the search towards what the set shares.
   */
  refine: boolean;
}

export async function searchByExamples(index: VectorIndex, db: DbOrTx, q: ExampleSearch): Promise<Neighbour[]> {
  const vectors = await exampleVectors(index, q.positives, q.field);
  const exclude = [...q.positives.map((p) => p.id), ...(q.negatives ?? []), ...(q.className ? await negativesFor(db, q.className, MAX_NEGATIVES) : [])];
  const filter = await filterFor(db, q.positives[0].modelVersion, q.filter, [...new Set(exclude)]);
  const farFromQuery = farFromExamples(
    filter,
    q.positives.map((p) => p.className),
  );
  const first = await index.query({ vector: centroid(vectors), k: q.k, maxDistance: q.maxDistance, filter, farFromQuery });
  if (!q.refine || first.length === 0) return first;
  const matched = await index.vectors(
    first.map((n) => n.id),
    filter.streamIds,
  );
  return index.query({ vector: centroid([...vectors, ...matched.values()]), k: q.k, maxDistance: q.maxDistance, filter, farFromQuery });
}

/**
 * What marking `seeds` as `className` proposes: unlabelled objects within `maxDistance` of a seed
 * (its own model version, at least `minScore` confident), and the other detections of each seed's
 * track, that have no decision for the class yet; nearest first, each with the seed it is nearest
 * to and how it was found.
 */
export async function proposeNeighbours(
  index: VectorIndex,
  db: DbOrTx,
  args: { seeds: ObjectRow[]; className: string; maxDistance: number; minScore: number; maxProposals: number },
): Promise<Proposal[]> {
  const vectors = await exampleVectors(index, args.seeds, 'objectIds');
  const filter = await filterFor(
    db,
    args.seeds[0].modelVersion,
    { labelState: 'unlabelled', minScore: args.minScore },
    args.seeds.map((s) => s.id),
  );
  const nearest = new Map<string, { seedId: string; distance: number; via: Proposal['via'] }>();
  const consider = (id: string, seedId: string, distance: number, via: Proposal['via']) => {
    const known = nearest.get(id);
    // A track link is stronger evidence than closeness: it wins over an embedding match.
    if (!known || (via === 'track' && known.via !== 'track') || (via === known.via && distance < known.distance)) nearest.set(id, { seedId, distance, via });
  };
  const seedIds = new Set(args.seeds.map((s) => s.id));
  for (const [i, vector] of vectors.entries()) {
    const seed = args.seeds[i];
    for (const n of await index.query({ vector, k: args.maxProposals, maxDistance: args.maxDistance, filter }))
      consider(n.id, seed.id, n.distance, 'embedding');
    if (!seed.trackId) continue;
    const members = (await trackMembers(db, seed.trackId, args.maxProposals)).filter((id) => !seedIds.has(id));
    const memberVectors = await index.vectors(members, [seed.streamId]);
    for (const [id, v] of memberVectors) consider(id, seed.id, cosineDistance(v, vector), 'track');
  }
  const decided = await objectsWithDecision(db, args.className, [...nearest.keys()]);
  const chosen = [...nearest.entries()]
    .filter(([id]) => !decided.has(id))
    .sort((a, b) => (a[1].via === b[1].via ? a[1].distance - b[1].distance : a[1].via === 'track' ? -1 : 1))
    .slice(0, args.maxProposals);
  const rows = await objectsByIds(
    db,
    chosen.map(([id]) => id),
  );
  // An id the index holds but the database does not (a Pinecone record whose batch never
  // committed) is skipped.
  return chosen.flatMap(([id, near]) => (rows.has(id) ? [{ object: rows.get(id)!, ...near }] : []));
}

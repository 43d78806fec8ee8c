// Statements about objects (stored detections) and what people decided about them: marks,
// propagated proposals, and their confirmation or rejection.
import { and, asc, eq, inArray, isNull, lte, ne, notInArray, or, type SQL } from 'drizzle-orm';
import type { ObjectMetadata } from '../storage/vector-index.ts';
import type { DbOrTx } from './client.ts';
import { frames, objectLabels, predictions } from './schema.ts';

/** A stored detection: what the vector index keeps about it, and its box and track. */
export interface ObjectRow extends Omit<ObjectMetadata, 'labelClass'> {
  id: string;
  /** Box normalized to the frame (0..1). */
  box: { x1: number; y1: number; x2: number; y2: number };
  trackId: string | null;
}

/** Stored detections matching `where`, with their frame's stream, camera and time. */
async function objectRows(db: DbOrTx, where: SQL): Promise<ObjectRow[]> {
  const rows = await db
    .select({ p: predictions, streamId: frames.streamId, cameraId: frames.cameraId, capturedAt: frames.capturedAt })
    .from(predictions)
    .innerJoin(frames, eq(frames.id, predictions.frameId))
    .where(where);
  return rows.map(({ p, streamId, cameraId, capturedAt }) => ({
    id: p.id,
    frameId: p.frameId,
    streamId,
    cameraId,
    modelVersion: p.modelVersion,
    className: p.className,
    score: p.score,
    capturedAt,
    box: { x1: p.x1, y1: p.y1, x2: p.x2, y2: p.y2 },
    trackId: p.trackId,
  }));
}

/** The stored detections with these ids. */
export async function objectsByIds(db: DbOrTx, ids: string[]): Promise<Map<string, ObjectRow>> {
  if (ids.length === 0) return new Map();
  return new Map((await objectRows(db, inArray(predictions.id, ids))).map((o) => [o.id, o]));
}

/** The stored detections of a frame (every model version that scored it). */
export function objectsOfFrame(db: DbOrTx, frameId: string): Promise<ObjectRow[]> {
  return objectRows(db, eq(predictions.frameId, frameId));
}

/** Ids among `ids` that already carry a decision or a proposal for `className`. */
export async function objectsWithDecision(db: DbOrTx, className: string, ids: string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const rows = await db
    .select({ id: objectLabels.predictionId })
    .from(objectLabels)
    .where(and(eq(objectLabels.className, className), inArray(objectLabels.predictionId, ids)));
  return new Set(rows.map((r) => r.id));
}

/** Ids among `ids` a person confirmed as of `className`. */
export async function confirmedPositives(db: DbOrTx, className: string, ids: string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const rows = await db
    .select({ id: objectLabels.predictionId })
    .from(objectLabels)
    .where(
      and(
        eq(objectLabels.className, className),
        eq(objectLabels.status, 'confirmed'),
        eq(objectLabels.polarity, 'positive'),
        inArray(objectLabels.predictionId, ids),
      ),
    );
  return new Set(rows.map((r) => r.id));
}

/** Objects with a negative for `className`: a search for that class leaves them out. */
export async function negativesFor(db: DbOrTx, className: string, limit: number): Promise<string[]> {
  const rows = await db
    .select({ id: objectLabels.predictionId })
    .from(objectLabels)
    .where(and(eq(objectLabels.className, className), eq(objectLabels.polarity, 'negative')))
    .limit(limit);
  return rows.map((r) => r.id);
}

/**
 * A person's mark: these objects are (positive) or are not (negative) of `className`. It replaces
 * whatever stood for (object, class) before, a pending proposal included; marking the same
 * objects again changes nothing.
 */
export async function markObjects(
  db: DbOrTx,
  args: { objects: ObjectRow[]; className: string; polarity: 'positive' | 'negative'; userId: string; at: Date },
): Promise<void> {
  if (args.objects.length === 0) return;
  const decided = {
    polarity: args.polarity,
    status: 'confirmed' as const,
    provenance: 'review' as const,
    seedPredictionId: null,
    distance: null,
    createdBy: args.userId,
    decidedBy: args.userId,
    decidedAt: args.at,
  };
  await db
    .insert(objectLabels)
    .values(args.objects.map((o) => ({ predictionId: o.id, frameId: o.frameId, streamId: o.streamId, className: args.className, ...decided })))
    .onConflictDoUpdate({ target: [objectLabels.predictionId, objectLabels.className], set: decided });
}

export interface Proposal {
  object: ObjectRow;
  seedId: string;
  distance: number;
  via: 'embedding' | 'track';
}

/** Stores proposals; an object that already has a row for the class keeps it (returns the new ones). */
export async function insertProposals(db: DbOrTx, className: string, proposals: Proposal[], userId: string): Promise<string[]> {
  if (proposals.length === 0) return [];
  const rows = await db
    .insert(objectLabels)
    .values(
      proposals.map((p) => ({
        predictionId: p.object.id,
        frameId: p.object.frameId,
        streamId: p.object.streamId,
        className,
        polarity: 'positive' as const,
        status: 'proposed' as const,
        provenance: 'propagated' as const,
        seedPredictionId: p.seedId,
        distance: p.distance,
        via: p.via,
        createdBy: userId,
      })),
    )
    .onConflictDoNothing()
    .returning({ id: objectLabels.predictionId });
  return rows.map((r) => r.id);
}

/** Pending proposals, nearest to their seed first. */
export async function pendingProposals(db: DbOrTx, q: { className?: string; streamId?: string; limit: number }) {
  return db
    .select({
      objectId: objectLabels.predictionId,
      className: objectLabels.className,
      seedId: objectLabels.seedPredictionId,
      distance: objectLabels.distance,
      via: objectLabels.via,
      frameId: objectLabels.frameId,
      streamId: objectLabels.streamId,
      createdAt: objectLabels.createdAt,
    })
    .from(objectLabels)
    .where(
      and(
        eq(objectLabels.status, 'proposed'),
        q.className ? eq(objectLabels.className, q.className) : undefined,
        q.streamId ? eq(objectLabels.streamId, q.streamId) : undefined,
      ),
    )
    .orderBy(asc(objectLabels.distance), asc(objectLabels.predictionId))
    .limit(q.limit);
}

/**
 * Confirms or rejects pending proposals of `className`: a confirmed one becomes a positive label,
 * a rejected one a negative that keeps the object out of later proposals for the class. Only
 * pending rows change, so a repeated decision changes nothing; returns the objects it changed.
 */
export async function decideProposals(
  db: DbOrTx,
  args: { className: string; ids: string[]; decision: 'confirm' | 'reject'; userId: string; at: Date },
): Promise<{ id: string; streamId: string }[]> {
  if (args.ids.length === 0) return [];
  return db
    .update(objectLabels)
    .set({
      status: 'confirmed',
      polarity: args.decision === 'confirm' ? 'positive' : 'negative',
      decidedBy: args.userId,
      decidedAt: args.at,
    })
    .where(and(eq(objectLabels.className, args.className), eq(objectLabels.status, 'proposed'), inArray(objectLabels.predictionId, args.ids)))
    .returning({ id: objectLabels.predictionId, streamId: objectLabels.streamId });
}

/** Object labels none of `users` made (marked, or proposed from their mark) or decided. */
function byNoneOf(users: string[]) {
  if (users.length === 0) return undefined;
  return and(
    or(isNull(objectLabels.createdBy), notInArray(objectLabels.createdBy, users)),
    or(isNull(objectLabels.decidedBy), notInArray(objectLabels.decidedBy, users)),
  );
}

/**
 * Confirmed positive object labels per frame, for the retraining snapshot; `excludedUsers`: those
 * whose labels the snapshot leaves out (reviewers below the accuracy floor).
 */
export async function confirmedObjectLabels(db: DbOrTx, q: { to: Date; provenance: ('review' | 'propagated')[]; excludedUsers?: string[] }) {
  return db
    .select({
      predictionId: objectLabels.predictionId,
      frameId: objectLabels.frameId,
      className: objectLabels.className,
      provenance: objectLabels.provenance,
      modelVersion: predictions.modelVersion,
      x1: predictions.x1,
      y1: predictions.y1,
      x2: predictions.x2,
      y2: predictions.y2,
    })
    .from(objectLabels)
    .innerJoin(predictions, eq(predictions.id, objectLabels.predictionId))
    .where(
      and(
        eq(objectLabels.status, 'confirmed'),
        eq(objectLabels.polarity, 'positive'),
        inArray(objectLabels.provenance, q.provenance),
        lte(objectLabels.decidedAt, q.to),
        byNoneOf(q.excludedUsers ?? []),
      ),
    );
}

/**
 * Per frame, the objects with a decision a person made (positive or negative) up to `to`; without
 * `propagated`, confirmed proposals do not count (they are neither labels nor background then).
 */
export async function objectDecisionsOfFrames(
  db: DbOrTx,
  frameIds: string[],
  to: Date,
  propagated: boolean,
  excludedUsers: string[] = [],
): Promise<Map<string, Set<string>>> {
  const out = new Map<string, Set<string>>();
  if (frameIds.length === 0) return out;
  const rows = await db
    .select({ frameId: objectLabels.frameId, id: objectLabels.predictionId })
    .from(objectLabels)
    .where(
      and(
        inArray(objectLabels.frameId, frameIds),
        eq(objectLabels.status, 'confirmed'),
        lte(objectLabels.decidedAt, to),
        propagated ? undefined : or(ne(objectLabels.provenance, 'propagated'), eq(objectLabels.polarity, 'negative')),
        // A left-out reviewer's decisions are no decisions: their objects become ignore regions.
        byNoneOf(excludedUsers),
      ),
    );
  for (const r of rows) out.set(r.frameId, (out.get(r.frameId) ?? new Set()).add(r.id));
  return out;
}

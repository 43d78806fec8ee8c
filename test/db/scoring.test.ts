// The storage half of scoring: a batch is stored once, whatever retries happen.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { count, eq } from 'drizzle-orm';
import type { DbHandle } from '../../db/client.ts';
import { PgvectorIndex } from '../../db/pgvector-index.ts';
import { driftBoosts, frames, frameScores, labels, objectVectors, predictions, reviewTasks, streams } from '../../db/schema.ts';
import { savePolicy } from '../../db/policies.ts';
import { defaultSamplingPolicy, samplingPolicySchema } from '../../policies/sampling-policy.ts';
import { CursorMovedError, nextFrames, persistScoredBatch, routingInputs, streamCursor, type ScoredFrameRow } from '../../db/scoring.ts';
import { saveModelReference } from '../../db/drift.ts';
import { cosineDistance } from '../../policies/route.ts';
import { createTestDb, testFrame } from '../helpers/db.ts';
import { insertImportedLabel } from '../../db/labels.ts';
import { createUser } from '../../db/users.ts';

/** A frame the batch carries that is not stored. */
const NEW_FRAME = '00000000-0000-4000-8000-000000000001';
let handle: DbHandle;
let vectorIndex: PgvectorIndex;
beforeEach(async () => {
  handle = await createTestDb();
  vectorIndex = new PgvectorIndex(handle.db, { efSearch: 40, maxScanTuples: 20_000 });
});
afterEach(async () => {
  await handle.close();
});

async function seedFrames(n: number, streamId = 's1') {
  await handle.db.insert(streams).values({ id: streamId, name: streamId }).onConflictDoNothing();
  const rows = Array.from({ length: n }, (_, i) => testFrame(streamId, i, i % 2 ? 'cam-b' : 'cam-a'));
  return handle.db.insert(frames).values(rows).returning();
}

const unit = (seed: number, dim: number) => {
  const v = Array.from({ length: dim }, (_, i) => Math.sin(seed * 3.7 + i));
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
};

const scored = (frameId: string, cameraId: string, scores: number[]): ScoredFrameRow => ({
  frameId,
  cameraId,
  capturedAt: new Date(Date.UTC(2026, 0, 1)),
  embedding: Array.from({ length: 128 }, (_, i) => Math.sin(i + frameId.length)),
  detections: scores.map((score, rank) => ({ rank, className: 'vehicle', score, x1: 0.1, y1: 0.1, x2: 0.2, y2: 0.3, embedding: unit(rank + 1, 64) })),
});

/** A band task for a frame's first detection. */
const bandTask = (f: { id: string; cameraId: string }) => ({
  frameId: f.id,
  cameraId: f.cameraId,
  rank: 0,
  className: 'vehicle',
  score: 0.45,
  reason: 'band' as const,
  priority: 0,
  reviewsNeeded: 1,
  selection: { uncertainty: 0.9, novelty: 0.2, value: 0.18, threshold: null, targetRate: null },
});

type PersistArgs = Parameters<typeof persistScoredBatch>[1];
/** A batch of stream s1 under model m1 and policy 1, from `fromSeq` to `toSeq`. */
const persistArgs = (
  fromSeq: number,
  toSeq: number,
  frames: ScoredFrameRow[],
  tasks: PersistArgs['tasks'] = [],
  index: PersistArgs['vectorIndex'] = vectorIndex,
): PersistArgs => ({
  streamId: 's1',
  modelVersion: 'm1',
  policyVersion: 1,
  fromSeq,
  toSeq,
  frames,
  tasks,
  vectorIndex: index,
});

const total = async (table: typeof predictions | typeof reviewTasks | typeof frameScores | typeof objectVectors) =>
  (await handle.db.select({ n: count() }).from(table))[0].n;

describe('persistScoredBatch', () => {
  it('stores a batch once: a replay of the same batch adds no prediction, embedding, object vector or task', async () => {
    const rows = await seedFrames(4);
    const batch = rows.map((f) => scored(f.id, f.cameraId, [0.9, 0.45]));
    const selection = { uncertainty: 0.99, novelty: 0.2, value: 0.198, threshold: 0.1, targetRate: 0.05 };
    const tasks = rows.map((f) => ({
      frameId: f.id,
      cameraId: f.cameraId,
      rank: 1,
      className: 'vehicle',
      score: 0.45,
      reason: 'band' as const,
      priority: 0,
      reviewsNeeded: 1,
      selection,
    }));
    const args = {
      streamId: 's1',
      modelVersion: 'm1',
      policyVersion: 1,
      fromSeq: 0,
      toSeq: Math.max(...rows.map((r) => r.seq)),
      frames: batch,
      tasks,
      vectorIndex,
    };

    expect(await persistScoredBatch(handle.db, args)).toEqual({ predictions: 8, tasksRouted: 4 });
    expect(await streamCursor(handle.db, 's1')).toBe(args.toSeq);
    expect(await nextFrames(handle.db, 's1', 10)).toEqual([]);

    // A second attempt that started from the old cursor (its first try committed, but the
    // answer was lost) is refused as a whole...
    await expect(persistScoredBatch(handle.db, args)).rejects.toBeInstanceOf(CursorMovedError);
    // ...and one that re-read the cursor finds the rows already there and adds nothing.
    expect(await persistScoredBatch(handle.db, { ...args, fromSeq: args.toSeq })).toEqual({ predictions: 8, tasksRouted: 0 });
    expect(await total(predictions)).toBe(8);
    expect(await total(frameScores)).toBe(4);
    expect(await total(reviewTasks)).toBe(4);
    expect(await total(objectVectors)).toBe(8);
    const [task] = await handle.db.select().from(reviewTasks).where(eq(reviewTasks.frameId, rows[0].id));
    // The task points at its detection, whose object vector carries the detection's id.
    const [vector] = await handle.db.select().from(objectVectors).where(eq(objectVectors.predictionId, task.predictionId!));
    expect(vector).toMatchObject({ frameId: rows[0].id, streamId: 's1', cameraId: rows[0].cameraId, className: 'vehicle', labelClass: null });
    expect(vector.embedding[0]).toBeCloseTo(unit(2, 64)[0], 5);
    expect(task.policyVersion).toBe(1);
    expect(task.selection).toEqual(selection);
  });

  it('names the frames of a batch that already have a label (an imported one), and closes their pending tasks', async () => {
    const rows = await seedFrames(3);
    const batch = rows.map((f) => scored(f.id, f.cameraId, [0.45]));
    await persistScoredBatch(handle.db, persistArgs(0, rows[2].seq, batch, rows.map(bandTask)));
    const lead = (await createUser(handle.db, { name: 'lead', role: 'lead' })).user.id;
    const imported = await handle.db.transaction((tx) => insertImportedLabel(tx, { frameId: rows[0].id, streamId: 's1', boxes: [], importedBy: lead }));
    expect(imported).toBe(true);
    const at = new Date();
    const got = await routingInputs(handle.db, { streamId: 's1', modelVersion: 'm1', policyVersion: 1, at, anchor: at, batch });
    expect(got.labelled).toEqual(new Set([rows[0].id]));
    // The labelled frame's task is closed; the others stay in the queue.
    const open = await handle.db.select({ frameId: reviewTasks.frameId, status: reviewTasks.status }).from(reviewTasks).orderBy(reviewTasks.createdAt);
    expect(
      open
        .filter((t) => t.status === 'pending')
        .map((t) => t.frameId)
        .sort(),
    ).toEqual([rows[1].id, rows[2].id].sort());
    expect(open.find((t) => t.frameId === rows[0].id)?.status).toBe('done');
    // The same label again is not new and changes nothing.
    expect(await handle.db.transaction((tx) => insertImportedLabel(tx, { frameId: rows[0].id, streamId: 's1', boxes: [], importedBy: lead }))).toBe(false);
  });

  // PGlite runs one transaction at a time, so the race exists only on a server.
  it.runIf(process.env.DATABASE_URL)(
    'an import racing a scoring batch on the same frame leaves no open task for it, whichever holds the frame first (Postgres)',
    async () => {
      const lead = (await createUser(handle.db, { name: 'lead', role: 'lead' })).user.id;
      const rows = await seedFrames(4);
      const batch = (from: number, slice: typeof rows, index = vectorIndex) =>
        persistArgs(
          from,
          slice.at(-1)!.seq,
          slice.map((f) => scored(f.id, f.cameraId, [0.45])),
          slice.map(bandTask),
          index,
        );
      const gate = () => {
        let open!: () => void;
        const opened = new Promise<void>((resolve) => (open = resolve));
        return { open, opened };
      };
      const importInto = (frameId: string, held: Promise<void>, holding: () => void) =>
        handle.db.transaction(async (tx) => {
          const added = await insertImportedLabel(tx, { frameId, streamId: 's1', boxes: [], importedBy: lead });
          holding();
          await held;
          return added;
        });

      // 1. The import holds frame 0 first (uncommitted) while the batch routing frames 0-1 stores.
      const release = gate();
      const locked = gate();
      const importing = importInto(rows[0].id, release.opened, locked.open);
      await locked.opened;
      const persisting = persistScoredBatch(handle.db, batch(0, rows.slice(0, 2)));
      await new Promise((r) => setTimeout(r, 300));
      release.open();
      expect(await importing).toBe(true);
      expect((await persisting).tasksRouted).toBe(1);

      // 2. The batch routing frames 2-3 holds them first (paused inside its transaction) while an
      // import labels frame 2.
      const paused = gate();
      const resume = gate();
      const slowIndex: PgvectorIndex = Object.assign(Object.create(vectorIndex) as PgvectorIndex, {
        upsert: async (records: Parameters<PgvectorIndex['upsert']>[0], tx: Parameters<PgvectorIndex['upsert']>[1]) => {
          paused.open();
          await resume.opened;
          return vectorIndex.upsert(records, tx);
        },
      });
      const storing = persistScoredBatch(handle.db, batch(rows[1].seq, rows.slice(2), slowIndex));
      await paused.opened;
      const importing2 = importInto(rows[2].id, Promise.resolve(), () => {});
      await new Promise((r) => setTimeout(r, 300));
      resume.open();
      expect(await importing2).toBe(true);

      // The import waited for the batch's tasks and closed frame 2's.
      expect((await storing).tasksRouted).toBe(2);
      const tasks = await handle.db.select({ frameId: reviewTasks.frameId, status: reviewTasks.status }).from(reviewTasks);
      const pending = tasks.filter((t) => t.status === 'pending').map((t) => t.frameId);
      expect(pending.sort()).toEqual([rows[1].id, rows[3].id].sort());
    },
  );

  it('keeps the selection scores of a labelled frame and of a near-duplicate but leaves their values out of the pacing', async () => {
    const rows = await seedFrames(3);
    const selection = (value: number) => ({ uncertainty: 1, novelty: value, value, threshold: 0.2, targetRate: 0.1 });
    await persistScoredBatch(
      handle.db,
      persistArgs(0, rows[2].seq, [
        { ...scored(rows[0].id, rows[0].cameraId, [0.9]), selection: selection(0.3) },
        { ...scored(rows[1].id, rows[1].cameraId, [0.9]), selection: selection(0.7), labelled: true },
        // No candidate (a copy of a queued frame): a bar paced on it would sit above what can be routed.
        { ...scored(rows[2].id, rows[2].cameraId, [0.9]), selection: selection(0.9), nearDuplicate: true },
      ]),
    );
    const stored = await handle.db
      .select({ frameId: frameScores.frameId, value: frameScores.selectionValue, selection: frameScores.selection })
      .from(frameScores)
      .orderBy(frameScores.selectionValue);
    expect(stored.find((r) => r.frameId === rows[1].id)).toEqual({ frameId: rows[1].id, value: null, selection: selection(0.7) });
    expect(stored.find((r) => r.frameId === rows[0].id)).toEqual({ frameId: rows[0].id, value: 0.3, selection: selection(0.3) });
    expect(stored.find((r) => r.frameId === rows[2].id)).toEqual({ frameId: rows[2].id, value: null, selection: selection(0.9) });
    const at = new Date();
    expect((await routingInputs(handle.db, { streamId: 's1', modelVersion: 'm1', policyVersion: 1, at, anchor: at, batch: [] })).recentValues).toEqual([0.3]);
  });

  it('hands out frames oldest first and picks up a straggler that committed behind the cursor', async () => {
    const rows = await seedFrames(5);
    const first = await nextFrames(handle.db, 's1', 3);
    expect(first.map((f) => f.id)).toEqual(rows.slice(0, 3).map((r) => r.id));
    // Frames 0, 1 and 3 are scored; frame 2 stays behind (as if it committed late).
    const done = [rows[0], rows[1], rows[3]];
    await persistScoredBatch(handle.db, {
      streamId: 's1',
      modelVersion: 'm1',
      policyVersion: 1,
      fromSeq: 0,
      toSeq: rows[3].seq,
      frames: done.map((f) => scored(f.id, f.cameraId, [])),
      tasks: [],
      vectorIndex,
    });
    const next = await nextFrames(handle.db, 's1', 10);
    expect(next.map((f) => f.id)).toEqual([rows[2].id, rows[4].id]);
  });

  it("reads a batch's routing inputs in one statement: policy, boosts, today's tasks, the last hour's frames, recent values, and distances answered by pgvector", async () => {
    const rows = await seedFrames(3);
    const vec = (seed: number) => Array.from({ length: 128 }, (_, i) => Math.sin(seed * 7.1 + i * 0.37));
    const reference = [vec(1), vec(2)];
    await saveModelReference(handle.db, 'm1', { embeddings: reference, scores: [[], []], num_detections: [0, 0] });
    // Frame 0 is queued for review, frame 1 was scored but not routed.
    const batch = [rows[0], rows[1]].map((f, i) => ({
      ...scored(f.id, f.cameraId, [0.45]),
      embedding: vec(10 + i),
      selection: { uncertainty: 1, novelty: 0.5, value: 0.5 - i / 10, threshold: null, targetRate: 1 },
    }));
    const selection = batch[0].selection;
    await persistScoredBatch(handle.db, {
      streamId: 's1',
      modelVersion: 'm1',
      policyVersion: 1,
      fromSeq: 0,
      toSeq: rows[1].seq,
      frames: batch,
      tasks: [
        {
          frameId: rows[0].id,
          cameraId: rows[0].cameraId,
          rank: 0,
          className: 'vehicle',
          score: 0.45,
          reason: 'band',
          priority: 0,
          selection,
          reviewsNeeded: 1,
        },
      ],
      vectorIndex,
    });
    const probe = vec(11.5);
    const at = new Date();
    const inputs = (streamId: string, modelVersion: string, policyVersion = 1) =>
      routingInputs(handle.db, { streamId, modelVersion, policyVersion, at, anchor: at, batch: [{ frameId: NEW_FRAME, embedding: probe }] });
    const got = await inputs('s1', 'm1');
    const d = got.distances.get(NEW_FRAME)!;
    expect(d.queued).toBeCloseTo(cosineDistance(vec(10), probe), 5);
    expect(d.reference).toBeCloseTo(Math.min(...reference.map((r) => cosineDistance(r, probe))), 5);
    expect(got.policy).toEqual(defaultSamplingPolicy);
    expect(got.recentValues.sort()).toEqual([0.4, 0.5]);
    expect(got).toMatchObject({ routedToday: 1, framesLastHour: 3, boosted: new Set() });
    // A frame a reviewer labelled still sets the pace; a frame that came with its label does not.
    const lead = (await createUser(handle.db, { name: 'lead', role: 'lead' })).user.id;
    await handle.db.insert(labels).values({ frameId: rows[0].id, streamId: 's1', decision: 'accept', boxes: [], source: 'review' });
    await handle.db.transaction((tx) => insertImportedLabel(tx, { frameId: rows[2].id, streamId: 's1', boxes: [], importedBy: lead }));
    expect((await inputs('s1', 'm1')).framesLastHour).toBe(2);
    // Another model's references and another stream's tasks are not compared against.
    expect((await inputs('s2', 'm2')).distances).toEqual(new Map([[NEW_FRAME, { queued: null, reference: null }]]));
    // A stored version with the band selection: no recent values are read; a boost shows.
    await savePolicy(handle.db, 's1', samplingPolicySchema.parse({ selection: 'band', dailyBudget: 7 }), 'test');
    await handle.db.insert(driftBoosts).values({ streamId: 's1', cameraId: null, reason: 'drift', expiresAt: new Date(at.getTime() + 60_000) });
    const band = await inputs('s1', 'm1', 1);
    expect(band.policy).toMatchObject({ selection: 'band', dailyBudget: 7 });
    expect(band.recentValues).toEqual([]);
    expect(band.boosted).toEqual(new Set([null]));
    await expect(inputs('s1', 'm1', 9)).rejects.toThrow('has no sampling policy version 9');
    // An empty batch still answers the rest.
    expect((await routingInputs(handle.db, { streamId: 's1', modelVersion: 'm1', policyVersion: 1, at, anchor: at, batch: [] })).distances.size).toBe(0);
  });
});

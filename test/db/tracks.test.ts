// Tracks across batches: the second batch of a camera continues the tracks the first one
// stored, through the heads read from the database and the vectors in the index.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { eq } from 'drizzle-orm';
import type { DbHandle } from '../../db/client.ts';
import { PgvectorIndex } from '../../db/pgvector-index.ts';
import { frames, predictions, streams } from '../../db/schema.ts';
import { persistScoredBatch, predictionId, type ScoredFrameRow } from '../../db/scoring.ts';
import { linkTracks, trackMembers } from '../../db/tracks.ts';
import { objectsByIds } from '../../db/object-labels.ts';
import { proposeNeighbours } from '../../storage/object-search.ts';
import { createTestDb, testFrame } from '../helpers/db.ts';

let handle: DbHandle;
beforeEach(async () => {
  handle = await createTestDb();
});
afterEach(async () => {
  await handle.close();
});

const turned = (k: number, angle: number) => Array.from({ length: 64 }, (_, i) => (i === k ? Math.cos(angle) : i === k + 1 ? Math.sin(angle) : 0));

describe('linkTracks', () => {
  it('continues tracks from one batch into the next, per camera, and ends them after the gap', async () => {
    const index = new PgvectorIndex(handle.db, { efSearch: 40, maxScanTuples: 20_000 });
    await handle.db.insert(streams).values({ id: 's', name: 's' });
    // Camera a: frames 0-5 one second apart; camera b: frames 0-5 too, but frame 5 comes 30 s late.
    const rows = await handle.db
      .insert(frames)
      .values([
        ...Array.from({ length: 6 }, (_, i) => testFrame('s', i, 'a')),
        ...Array.from({ length: 6 }, (_, i) => ({ ...testFrame('s', 100 + i, 'b'), capturedAt: new Date(Date.UTC(2026, 0, 1, 0, 0, i < 5 ? i : 40)) })),
      ])
      .returning();
    const scored = (f: (typeof rows)[number], i: number): ScoredFrameRow => ({
      frameId: f.id,
      cameraId: f.cameraId,
      capturedAt: f.capturedAt,
      embedding: Array.from({ length: 128 }, (_, k) => (k === 0 ? 1 : 0)),
      // The object turns a little from frame to frame: its embedding drifts (0.1 rad per frame).
      detections: [
        {
          rank: 0,
          className: 'vehicle',
          score: 0.9,
          x1: 0.1 + 0.01 * i,
          y1: 0.2,
          x2: 0.3 + 0.01 * i,
          y2: 0.5,
          embedding: turned(f.cameraId === 'a' ? 1 : 3, 0.1 * i),
        },
      ],
    });
    const batches = [
      [...rows.slice(0, 3), ...rows.slice(6, 9)],
      [...rows.slice(3, 6), ...rows.slice(9, 12)],
    ];
    let seq = 0;
    for (const batch of batches) {
      const rowsOf = batch.map((f) => scored(f, rows.indexOf(f) % 6));
      await linkTracks(handle.db, index, { streamId: 's', modelVersion: 'm', frames: rowsOf, maxGapMs: 5000 });
      const toSeq = Math.max(...batch.map((f) => f.seq));
      await persistScoredBatch(handle.db, {
        streamId: 's',
        modelVersion: 'm',
        policyVersion: 1,
        fromSeq: seq,
        toSeq,
        frames: rowsOf,
        tasks: [],
        vectorIndex: index,
      });
      seq = toSeq;
    }
    const trackOf = async (f: (typeof rows)[number]) =>
      (await handle.db.select({ t: predictions.trackId }).from(predictions).where(eq(predictions.frameId, f.id)))[0].t;
    const first = predictionId(rows[0].id, 'm', 0);
    for (const f of rows.slice(0, 6)) expect(await trackOf(f)).toBe(first);
    for (const f of rows.slice(6, 11)) expect(await trackOf(f)).toBe(predictionId(rows[6].id, 'm', 0));
    // Camera b's last frame came after a 35 s gap: a new track.
    expect(await trackOf(rows[11])).toBe(predictionId(rows[11].id, 'm', 0));
    expect(await trackMembers(handle.db, first, 100)).toEqual(rows.slice(0, 6).map((f) => predictionId(f.id, 'm', 0)));

    // Marking the first detection proposes its class along the track, even where the embedding
    // moved beyond the radius; camera b's object (another track, another look) is not proposed.
    const [seed] = (await objectsByIds(handle.db, [first])).values();
    const proposals = await proposeNeighbours(index, handle.db, { seeds: [seed], className: 'vehicle', maxDistance: 0.001, minScore: 0, maxProposals: 50 });
    expect(proposals.map((p) => p.object.id).sort()).toEqual(
      rows
        .slice(1, 6)
        .map((f) => predictionId(f.id, 'm', 0))
        .sort(),
    );
    expect(proposals.every((p) => p.via === 'track' && p.seedId === first)).toBe(true);
    expect(proposals.find((p) => p.object.frameId === rows[5].id)!.distance).toBeCloseTo(1 - Math.cos(0.5), 4);
  });
});

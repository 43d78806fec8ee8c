// Consensus as a lead and reviewers meet it, with the real loop: a lead sends every routed frame to
// two reviewers; each reviewer is handed a task once; where they agree the merged boxes become
// the label, where they disagree the frame waits for the lead, who picks one reviewer's boxes.
import fs from 'node:fs';
import { and, count, eq, isNotNull } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DbHandle } from '../../db/client.ts';
import { labels, reviewTasks } from '../../db/schema.ts';
import { createTestDb } from '../helpers/db.ts';
import { auth, createStreamOverApi, framesScored, sampleFrames, startRunningPlatform, type TestPlatform } from '../helpers/platform.ts';
import { eventually } from '../helpers/temporal.ts';

let handle: DbHandle;
let p: TestPlatform;
let stop: (streams: string[]) => Promise<void>;
const STREAM = `consensus-${Math.random().toString(36).slice(2, 8)}`;
const FRAMES = 4;
type Box = { className: string; x1: number; y1: number; x2: number; y2: number };

beforeAll(async () => {
  handle = await createTestDb();
  ({ p, stop } = await startRunningPlatform(handle, { cameraStreams: [STREAM], env: { GOLD_RATE: '0' } }));
  await createStreamOverApi(p, STREAM);
  // Every frame routed (random rate 1), one task per frame, each to two reviewers.
  const put = await p.app.request(`/v1/streams/${STREAM}/policy`, {
    method: 'PUT',
    headers: lead(),
    body: JSON.stringify({
      band: { low: 0.99, high: 1 },
      randomRate: 1,
      randomBudgetShare: 1,
      diversityMinDistance: 0,
      novelFrameDistance: 0,
      consensus: { share: 1, reviewers: 2 },
    }),
  });
  expect(put.status).toBe(201);
  for (const s of sampleFrames().slice(0, FRAMES)) {
    const res = await p.app.request(`/v1/streams/${STREAM}/frames?cameraId=${s.cameraId}`, {
      method: 'POST',
      headers: auth(p.tokens.camera, { 'Content-Type': 'image/png' }),
      body: fs.readFileSync(s.file),
    });
    expect(res.status).toBe(201);
  }
  await eventually(async () => (await framesScored(p, STREAM)) === FRAMES, 60_000, 'frames scored');
});
afterAll(async () => {
  await stop([STREAM]);
  await handle.close();
});

function lead() {
  return auth(p.tokens.lead, { 'Content-Type': 'application/json' });
}
async function claim(token: string) {
  const res = await p.app.request('/v1/tasks/claim', {
    method: 'POST',
    headers: auth(token, { 'Content-Type': 'application/json' }),
    body: JSON.stringify({ streamId: STREAM }),
  });
  return res.status === 204 ? null : ((await res.json()) as { task: { id: string } });
}
async function submit(token: string, taskId: string, boxes: Box[]) {
  return p.app.request(`/v1/tasks/${taskId}/submit`, {
    method: 'POST',
    headers: auth(token, { 'Content-Type': 'application/json' }),
    body: JSON.stringify({ decision: 'correct', boxes }),
  });
}

describe('consensus', () => {
  it('merges two reviewers who agree into the label, and hands the lead a frame they disagree on', async () => {
    const tasks = await handle.db.select().from(reviewTasks).where(eq(reviewTasks.streamId, STREAM));
    expect(tasks.length).toBe(FRAMES);
    expect(tasks.every((t) => t.reviewsNeeded === 2)).toBe(true);

    const car: Box = { className: 'vehicle', x1: 0.1, y1: 0.1, x2: 0.3, y2: 0.3 };
    const carNearby: Box = { className: 'vehicle', x1: 0.12, y1: 0.1, x2: 0.32, y2: 0.3 };
    const elsewhere: Box = { className: 'vehicle', x1: 0.6, y1: 0.6, x2: 0.8, y2: 0.8 };

    // The first reviewer answers every task once: an answered task is never handed back to them.
    const first: string[] = [];
    for (let c = await claim(p.tokens.reviewer); c; c = await claim(p.tokens.reviewer)) {
      expect(first).not.toContain(c.task.id);
      first.push(c.task.id);
      expect((await submit(p.tokens.reviewer, c.task.id, [car])).status).toBe(201);
      // A retry of the same answer is a replay; a different one is refused.
      expect((await submit(p.tokens.reviewer, c.task.id, [car])).status).toBe(200);
      expect((await submit(p.tokens.reviewer, c.task.id, [])).status).toBe(409);
    }
    expect(first.sort()).toEqual(tasks.map((t) => t.id).sort());
    // Nothing is labelled after one answer each.
    expect((await handle.db.select({ n: count() }).from(labels).where(eq(labels.streamId, STREAM)))[0].n).toBe(0);

    // The second agrees on every task but the last, where they saw the car elsewhere.
    const second: string[] = [];
    for (let c = await claim(p.tokens.reviewer2); c; c = await claim(p.tokens.reviewer2)) {
      second.push(c.task.id);
      const disagree = second.length === FRAMES;
      expect((await submit(p.tokens.reviewer2, c.task.id, [disagree ? elsewhere : carNearby])).status).toBe(201);
    }
    expect(second).toHaveLength(FRAMES);
    const disputed = second[FRAMES - 1];

    const merged = await handle.db.select().from(labels).where(eq(labels.streamId, STREAM));
    expect(merged).toHaveLength(FRAMES - 1);
    for (const l of merged) {
      expect(l).toMatchObject({ source: 'consensus', reviewerId: null, decision: 'correct' });
      expect(l.boxes).toHaveLength(1);
      expect(l.boxes[0].x1).toBeCloseTo(0.11, 6);
      expect(l.boxes[0].x2).toBeCloseTo(0.31, 6);
    }
    expect(merged.map((l) => l.taskId)).not.toContain(disputed);

    // The lead sees the disputed frame with both answers, and picks the second reviewer's.
    const waiting = (await (await p.app.request(`/v1/consensus?streamId=${STREAM}&adjudication=needed`, { headers: lead() })).json()).results;
    expect(waiting).toHaveLength(1);
    expect(waiting[0]).toMatchObject({ taskId: disputed, agreement: 0, labelId: null, adjudication: 'needed' });
    expect(waiting[0].answers.map((a: { reviewer: string }) => a.reviewer)).toEqual(['reviewer', 'reviewer2']);
    const all = (await (await p.app.request(`/v1/consensus?streamId=${STREAM}`, { headers: lead() })).json()).results;
    expect(all).toHaveLength(FRAMES);
    expect(all.filter((r: { agreement: number }) => r.agreement === 1)).toHaveLength(FRAMES - 1);

    // A reviewer may not adjudicate; a bad box is refused naming the field.
    const body = (boxes: unknown) => JSON.stringify({ boxes });
    expect(
      (
        await p.app.request(`/v1/tasks/${disputed}/adjudicate`, {
          method: 'POST',
          headers: auth(p.tokens.reviewer, { 'Content-Type': 'application/json' }),
          body: body([elsewhere]),
        })
      ).status,
    ).toBe(403);
    const bad = await p.app.request(`/v1/tasks/${disputed}/adjudicate`, { method: 'POST', headers: lead(), body: body([{ ...elsewhere, x2: 0.5 }]) });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(await bad.json())).toContain('boxes.0.x2');
    const decided = await p.app.request(`/v1/tasks/${disputed}/adjudicate`, { method: 'POST', headers: lead(), body: body([elsewhere]) });
    expect(decided.status).toBe(201);
    expect((await decided.json()).label).toMatchObject({ taskId: disputed, boxes: [elsewhere], source: 'review' });
    expect((await p.app.request(`/v1/tasks/${disputed}/adjudicate`, { method: 'POST', headers: lead(), body: body([car]) })).status).toBe(409);
    expect((await p.app.request(`/v1/tasks/${first[0]}/adjudicate`, { method: 'POST', headers: lead(), body: body([car]) })).status).toBe(409);
    expect(
      (
        await handle.db
          .select({ n: count() })
          .from(reviewTasks)
          .where(and(eq(reviewTasks.streamId, STREAM), isNotNull(reviewTasks.adjudication)))
      )[0].n,
    ).toBe(1);

    // Each reviewer's agreement with the merged labels, for the lead page and /metrics.
    const reviewers = new Map(
      (
        (await (await p.app.request('/v1/reviewers', { headers: lead() })).json()).reviewers as { name: string; consensusAnswers: number; agreement: number }[]
      ).map((r) => [r.name, r]),
    );
    expect(reviewers.get('reviewer')).toMatchObject({ consensusAnswers: FRAMES });
    expect(reviewers.get('reviewer2')!.agreement).toBeLessThan(1);
  });
});

// Gold tasks as a lead and reviewers meet them: a lead imports labelled frames and marks them
// gold; the queue hands them to reviewers like any task; a careless reviewer's answers drag their
// rolling accuracy under the pass score and the queue pauses them with a message; a careful one
// stays; the lead sees both (API and /metrics) and resumes the paused one.
import fs from 'node:fs';
import path from 'node:path';
import { count, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { goldSettings } from '../../config.ts';
import type { DbHandle } from '../../db/client.ts';
import { frameScores, goldAnswers, labels, reviewTasks } from '../../db/schema.ts';
import { exposeDatabaseGauges } from '../../observability/database-gauges.ts';
import { createTestDb } from '../helpers/db.ts';
import { auth, createStreamOverApi, framesScored, startRunningPlatform, type TestPlatform } from '../helpers/platform.ts';
import { eventually } from '../helpers/temporal.ts';

let handle: DbHandle;
let p: TestPlatform;
let stop: (streams: string[]) => Promise<void>;
const STREAM = `gold-${Math.random().toString(36).slice(2, 8)}`;
const GOLD_FRAMES = 8;
type Box = { className: string; x1: number; y1: number; x2: number; y2: number };

beforeAll(async () => {
  handle = await createTestDb();
  // Every claim offers gold (the rate is a setting), three answers before anyone is paused.
  ({ p, stop } = await startRunningPlatform(handle, { env: { GOLD_RATE: '1', GOLD_MIN_ANSWERS: '3', GOLD_WINDOW: '5', GOLD_PASS_SCORE: '0.7' } }));
  exposeDatabaseGauges(handle.db, goldSettings(p.deps.config));
  await createStreamOverApi(p, STREAM);
  // Labelled frames come in as a COCO import; the loop scores them (and routes none: they are labelled).
  const dir = inject('sampleFramesDir');
  const dataset = JSON.parse(fs.readFileSync(path.join(dir, 'dataset.json'), 'utf8')) as {
    images: { id: number; file_name: string }[];
    annotations: { image_id: number }[];
  };
  const images = dataset.images.slice(0, GOLD_FRAMES);
  const ids = new Set(images.map((im) => im.id));
  const body = new FormData();
  body.append(
    'annotations',
    new Blob([JSON.stringify({ ...dataset, images, annotations: dataset.annotations.filter((a) => ids.has(a.image_id)) })]),
    'coco.json',
  );
  for (const im of images) body.append('images', new Blob([fs.readFileSync(path.join(dir, im.file_name))]), im.file_name);
  const res = await p.app.request(`/v1/streams/${STREAM}/imports/coco`, { method: 'POST', headers: auth(p.tokens.lead), body });
  expect(res.status).toBe(201);
  await eventually(async () => (await framesScored(p, STREAM)) === GOLD_FRAMES, 60_000, 'imported frames scored');
});
afterAll(async () => {
  await stop([STREAM]);
  await handle.close();
});

const lead = () => auth(p.tokens.lead, { 'Content-Type': 'application/json' });
async function claim(token: string) {
  const res = await p.app.request('/v1/tasks/claim', { method: 'POST', headers: auth(token, { 'Content-Type': 'application/json' }), body: '{}' });
  return { status: res.status, body: res.status === 204 ? null : await res.json() };
}
async function submit(token: string, taskId: string, boxes: Box[]) {
  const res = await p.app.request(`/v1/tasks/${taskId}/submit`, {
    method: 'POST',
    headers: auth(token, { 'Content-Type': 'application/json' }),
    body: JSON.stringify({ decision: 'correct', boxes }),
  });
  return { status: res.status, body: await res.json() };
}
const reviewers = async () =>
  (await (await p.app.request('/v1/reviewers', { headers: lead() })).json()).reviewers as {
    name: string;
    answers: number;
    accuracy: number | null;
    pausedReason: string | null;
  }[];

describe('gold tasks', () => {
  it('refuses to mark an unknown or unlabelled frame, naming why', async () => {
    expect((await p.app.request('/v1/frames/not-a-uuid/gold', { method: 'PUT', headers: lead() })).status).toBe(400);
    expect((await p.app.request('/v1/frames/00000000-0000-4000-8000-000000000000/gold', { method: 'PUT', headers: lead() })).status).toBe(404);
    // A label that is not the frame's is refused.
    const [one, other] = await handle.db.select({ frameId: labels.frameId, id: labels.id }).from(labels).where(eq(labels.streamId, STREAM)).limit(2);
    const wrong = await p.app.request(`/v1/frames/${one.frameId}/gold`, { method: 'PUT', headers: lead(), body: JSON.stringify({ labelId: other.id }) });
    expect(wrong.status).toBe(404);
    expect((await wrong.json()).detail).toContain(`label ${other.id} is not a label of frame ${one.frameId}`);
    // A reviewer may not mark gold.
    const [scored] = await handle.db.select({ frameId: frameScores.frameId }).from(frameScores).where(eq(frameScores.streamId, STREAM)).limit(1);
    expect((await p.app.request(`/v1/frames/${scored.frameId}/gold`, { method: 'PUT', headers: auth(p.tokens.reviewer) })).status).toBe(403);
  });

  it('checks reviewers against gold, pauses the careless one with a message, and a lead resumes them', async () => {
    // The queue is empty of routed work: imported frames are labelled, so nobody is asked about them.
    expect((await claim(p.tokens.reviewer)).status).toBe(204);

    const scored = await handle.db.select({ frameId: frameScores.frameId }).from(frameScores).where(eq(frameScores.streamId, STREAM));
    for (const { frameId } of scored) {
      const res = await p.app.request(`/v1/frames/${frameId}/gold`, { method: 'PUT', headers: lead() });
      expect(res.status).toBe(200);
    }
    const gold = (await (await p.app.request(`/v1/gold?streamId=${STREAM}`, { headers: lead() })).json()).gold as { frameId: string; boxes: Box[] }[];
    expect(gold).toHaveLength(GOLD_FRAMES);
    const goldBoxes = new Map(gold.map((g) => [g.frameId, g.boxes]));
    const labelsBefore = (await handle.db.select({ n: count() }).from(labels))[0].n;

    // The careful reviewer answers what gold says; the careless one draws nothing.
    const seen = { careful: new Set<string>(), careless: new Set<string>() };
    for (let round = 0; round < 3; round++) {
      const careful = await claim(p.tokens.reviewer2);
      expect(careful.status).toBe(200);
      // A gold task looks like any task: the same fields, nothing that says gold.
      expect(Object.keys(careful.body.task).sort()).toEqual(
        [
          'attempts',
          'band',
          'cameraId',
          'className',
          'id',
          'leaseExpiresAt',
          'modelVersion',
          'policyVersion',
          'predictionId',
          'reason',
          'score',
          'selection',
          'status',
          'streamId',
        ].sort(),
      );
      // Its frame came labelled (an import), so no task ever routed it; it still carries the
      // scores the loop gave the frame, as a routed random sample does.
      expect(careful.body.task.reason).toBe('random');
      expect(careful.body.task.selection).toEqual({
        uncertainty: expect.any(Number),
        novelty: expect.any(Number),
        value: expect.any(Number),
        threshold: expect.toBeOneOf([expect.any(Number), null]),
        targetRate: expect.toBeOneOf([expect.any(Number), null]),
      });
      seen.careful.add(careful.body.frame.id);
      expect((await submit(p.tokens.reviewer2, careful.body.task.id, goldBoxes.get(careful.body.frame.id)!)).status).toBe(201);

      const careless = await claim(p.tokens.reviewer);
      expect(careless.status).toBe(200);
      seen.careless.add(careless.body.frame.id);
      const answered = await submit(p.tokens.reviewer, careless.body.task.id, []);
      expect(answered.status).toBe(201);
      // The same answer again is a replay, as for any task.
      expect((await submit(p.tokens.reviewer, careless.body.task.id, [])).status).toBe(200);
    }
    // Nobody was shown the same gold frame twice.
    expect(seen.careful.size).toBe(3);
    expect(seen.careless.size).toBe(3);
    // Answers are scored, not stored as labels (they would train the model on a test).
    expect((await handle.db.select({ n: count() }).from(labels))[0].n).toBe(labelsBefore);
    expect((await handle.db.select({ n: count() }).from(goldAnswers))[0].n).toBe(6);

    const standing = new Map((await reviewers()).map((r) => [r.name, r]));
    expect(standing.get('reviewer2')).toMatchObject({ answers: 3, accuracy: 1, pausedReason: null });
    expect(standing.get('reviewer')).toMatchObject({ answers: 3, accuracy: 0 });
    expect(standing.get('reviewer')!.pausedReason).toMatch(/accuracy on check frames is 0.00 over your last 3 answers, below the pass score of 0.7/);

    // The paused reviewer is told why and gets nothing; the careful one goes on.
    const refused = await claim(p.tokens.reviewer);
    expect(refused.status).toBe(403);
    expect(refused.body).toMatchObject({ code: 'reviewer_paused', detail: expect.stringMatching(/until a lead resumes you/) });
    expect((await claim(p.tokens.reviewer2)).status).toBe(200);

    // Leads and their Prometheus (with a lead's token) see it in the reviewer metrics; the open
    // /metrics and a reviewer's token do not, or a reviewer could watch which answers were gold.
    expect((await p.app.request('/v1/metrics/reviewers', { headers: auth(p.tokens.reviewer) })).status).toBe(403);
    expect(await (await p.app.request('/metrics')).text()).not.toMatch(/dataengine_reviewer_/);
    const metrics = await (await p.app.request('/v1/metrics/reviewers', { headers: auth(p.tokens.lead) })).text();
    expect(metrics).toMatch(/dataengine_reviewer_gold_accuracy\{reviewer="reviewer2"\} 1/);
    expect(metrics).toMatch(/dataengine_reviewer_gold_accuracy\{reviewer="reviewer"\} 0/);
    expect(metrics).toMatch(/dataengine_reviewer_paused\{reviewer="reviewer"\} 1/);
    // Gold tasks are not routed work: queue counts leave them out.
    const depth = (await (await p.app.request('/v1/queue', { headers: lead() })).json()).depth as { streamId: string }[];
    expect(depth.filter((d) => d.streamId === STREAM)).toEqual([]);

    // The lead resumes the reviewer; their accuracy starts afresh and they claim again.
    const resumed = await p.app.request('/v1/reviewers/reviewer/resume', { method: 'POST', headers: lead() });
    expect(resumed.status).toBe(200);
    expect((await reviewers()).find((r) => r.name === 'reviewer')).toMatchObject({ answers: 0, accuracy: null, pausedReason: null });
    const again = await claim(p.tokens.reviewer);
    expect(again.status).toBe(200);
    expect(seen.careless.has(again.body.frame.id)).toBe(false);
    // A skipped gold task comes back to the same reviewer, never to another.
    expect((await p.app.request(`/v1/tasks/${again.body.task.id}/release`, { method: 'POST', headers: auth(p.tokens.reviewer) })).status).toBe(200);
    const [released] = await handle.db.select().from(reviewTasks).where(eq(reviewTasks.id, again.body.task.id));
    expect(released).toMatchObject({ status: 'pending' });
    expect((await claim(p.tokens.reviewer)).body.task.id).toBe(again.body.task.id);
    expect((await p.app.request('/v1/reviewers/nobody/resume', { method: 'POST', headers: lead() })).status).toBe(404);
    // Resuming someone who is not paused is refused, and does not clear their window.
    const notPaused = await p.app.request('/v1/reviewers/reviewer2/resume', { method: 'POST', headers: lead() });
    expect(notPaused.status).toBe(409);
    expect((await reviewers()).find((r) => r.name === 'reviewer2')).toMatchObject({ answers: 3, accuracy: 1 });

    // A lead correcting the gold label (marking the frame again with another of its labels) moves
    // the reference of its gold tasks not yet answered, so nobody is scored against the old one.
    const [corrected] = await handle.db
      .insert(labels)
      .values({ frameId: again.body.frame.id, streamId: STREAM, decision: 'correct', boxes: [], source: 'import' })
      .returning();
    const remarked = await p.app.request(`/v1/frames/${again.body.frame.id}/gold`, {
      method: 'PUT',
      headers: lead(),
      body: JSON.stringify({ labelId: corrected.id }),
    });
    expect(remarked.status).toBe(200);
    const held = await handle.db.select().from(reviewTasks).where(eq(reviewTasks.id, again.body.task.id));
    expect(held[0]).toMatchObject({ status: 'leased', goldLabelId: corrected.id });

    // Unmarking a frame closes its gold tasks not yet answered.
    expect((await p.app.request(`/v1/frames/${again.body.frame.id}/gold`, { method: 'DELETE', headers: lead() })).status).toBe(204);
    const [closed] = await handle.db.select().from(reviewTasks).where(eq(reviewTasks.id, again.body.task.id));
    expect(closed.status).toBe('done');
  });
});

// The review app in a real browser (Debian's Chromium through playwright-core), against the
// real API and database: a reviewer claims a task, drags a box corner, uses box assist and
// submits with the keyboard; opens similar objects from a task, marks them by drag, click and key
// and confirms proposals; searches objects across streams; a lead enters an invalid band and sees
// the error by the field; a paused reviewer reads why, and a lead marks gold and resumes them;
// a lead adjudicates a frame two reviewers disagreed on.
import fs from 'node:fs';
import path from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import { eq } from 'drizzle-orm';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { DbHandle } from '../../db/client.ts';
import {
  consensusAnswers,
  consensusResults,
  driftReports,
  frameFailures,
  frames,
  frameScores,
  labels,
  objectLabels,
  predictions,
  reviewTasks,
  users,
  videos,
  videoSegments,
} from '../../db/schema.ts';
import { persistScoredBatch, predictionId, streamCursor } from '../../db/scoring.ts';
import { DetectorSession } from '../../models/sessions.ts';
import { createTestDb } from '../helpers/db.ts';
import { auth, createTestPlatform, sampleFrames, type TestPlatform, stopStream } from '../helpers/platform.ts';
import { eventually } from '../helpers/temporal.ts';

let handle: DbHandle;
let p: TestPlatform;
let server: ServerType;
let base: string;
let browser: Browser;
const STREAM = `web-${Math.random().toString(36).slice(2, 8)}`;
const shots = path.join(process.cwd(), 'test-results');

beforeAll(async () => {
  handle = await createTestDb();
  p = await createTestPlatform(handle, { cameraStreams: [STREAM] });
  await p.app.request('/v1/streams', {
    method: 'POST',
    headers: auth(p.tokens.lead, { 'Content-Type': 'application/json' }),
    body: JSON.stringify({ id: STREAM }),
  });
  const sample = sampleFrames()[4];
  const ingested = await (
    await p.app.request(`/v1/streams/${STREAM}/frames?cameraId=${sample.cameraId}`, {
      method: 'POST',
      headers: auth(p.tokens.camera, { 'Content-Type': 'image/png' }),
      body: fs.readFileSync(sample.file),
    })
  ).json();
  // One prediction under review, one confident neighbour: what the loop would have stored.
  const [underReview, other] = await handle.db
    .insert(predictions)
    .values([
      { frameId: ingested.frameId, modelVersion: 'tiny-detection', rank: 0, className: 'vehicle', score: 0.45, x1: 0.3, y1: 0.5, x2: 0.5, y2: 0.7 },
      { frameId: ingested.frameId, modelVersion: 'tiny-detection', rank: 1, className: 'sign', score: 0.92, x1: 0.05, y1: 0.2, x2: 0.1, y2: 0.35 },
    ])
    .returning();
  void other;
  await handle.db.insert(reviewTasks).values({
    dedupeKey: `${ingested.frameId}:tiny-detection:0`,
    streamId: STREAM,
    cameraId: sample.cameraId,
    frameId: ingested.frameId,
    predictionId: underReview.id,
    modelVersion: 'tiny-detection',
    className: 'vehicle',
    score: 0.45,
    reason: 'band',
    policyVersion: 1,
    selection: { uncertainty: 0.993, novelty: 0.0213, value: 0.02115, threshold: 0.015, targetRate: 0.02 },
  });
  server = serve({ fetch: p.app.fetch, hostname: '127.0.0.1', port: 0 });
  await new Promise((r) => server.once('listening', r));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  fs.mkdirSync(shots, { recursive: true });
});

afterAll(async () => {
  await browser?.close();
  await new Promise((r) => server?.close(r));
  await stopStream(p, STREAM);
  await p.close();
  await handle.close();
});

describe('review app', () => {
  it('lets a reviewer correct a box by dragging, add one with box assist, and submit by keyboard', async () => {
    const page = await browser.newPage({ viewport: { width: 1366, height: 800 } });
    await page.goto(base + '/');
    await page.fill('#token', p.tokens.reviewer);
    const claimStarted = Date.now();
    await page.press('#token', 'Enter');
    await page.waitForSelector('#overlay g.box.review');
    const claimToVisibleMs = Date.now() - claimStarted;
    expect(await page.locator('#overlay g.box').count()).toBe(2);
    await expect.poll(() => page.textContent('#lease')).toMatch(/^[0-9]:\d\d$/);
    expect(await page.textContent('aside')).toContain('band [0.3, 0.6)');
    // Why the ranked selection sent this frame: its uncertainty, novelty and value.
    expect(await page.textContent('aside')).toMatch(/why this frame\s*uncertainty 0.99 × novelty 0.021 = 0.0211 ≥ bar 0.0150/);

    // Select the box under review and drag its south-east corner outwards.
    const reviewBox = page.locator('#overlay g.box.review rect.body');
    const before = await reviewBox.boundingBox();
    await reviewBox.click({ position: { x: before!.width / 2, y: before!.height / 2 } });
    const corner = page.locator('#overlay rect.handle[data-corner="se"]');
    const h = (await corner.boundingBox())!;
    await page.mouse.move(h.x + h.width / 2, h.y + h.height / 2);
    await page.mouse.down();
    const shown = (await page.locator('#frame').boundingBox())!;
    // Widen the box by a tenth of the frame: its right edge moves from 0.5 to about 0.6.
    await page.mouse.move(h.x + h.width / 2 + shown.width * 0.1, h.y + h.height / 2 + shown.height * 0.05, { steps: 5 });
    await page.mouse.up();
    const after = await page.locator('#overlay g.box.review rect.body').boundingBox();
    expect(after!.width).toBeGreaterThan(before!.width + shown.width * 0.08);

    // Box assist: press b, drag a rough region, get a refined box back from the box model.
    await page.keyboard.press('b');
    const img = (await page.locator('#frame').boundingBox())!;
    await page.mouse.move(img.x + img.width * 0.6, img.y + img.height * 0.55);
    await page.mouse.down();
    await page.mouse.move(img.x + img.width * 0.75, img.y + img.height * 0.75, { steps: 4 });
    await page.mouse.up();
    await page.waitForFunction(() => document.querySelectorAll('#overlay g.box').length === 3);
    await expect.poll(() => page.textContent('#status')).toContain('box assist:');
    await page.keyboard.press('2'); // the new box is a pedestrian
    await page.screenshot({ path: path.join(shots, 'review-app.png') });

    const taskId = await page.evaluate(() => document.body.dataset.taskId);
    const submitStarted = Date.now();
    await page.keyboard.press('Enter');
    await page.waitForSelector('.empty');
    const submitToNextMs = Date.now() - submitStarted;
    const [label] = await eventually(async () => {
      const rows = await handle.db.select().from(labels).where(eq(labels.taskId, taskId!));
      return rows.length ? rows : null;
    });
    expect(label.decision).toBe('correct');
    const boxes = label.boxes as { className: string; x2: number }[];
    expect(boxes.map((b) => b.className).sort()).toEqual(['pedestrian', 'sign', 'vehicle']);
    expect(boxes.find((b) => b.className === 'vehicle')!.x2).toBeGreaterThan(0.58);
    console.log(`review app: claim to task visible ${claimToVisibleMs} ms; submit to next task shown ${submitToNextMs} ms`);
    await page.close();
  });

  it('lets a reviewer open similar objects from a task, mark them by drag, click and key, and confirm the proposals with one key', async () => {
    // Objects of 8 sample frames: the tiny detector's embeddings, in what the loop would store
    // (a grid of boxes with a score in the band: the tiny detector's own have no area).
    const detector = await DetectorSession.load(fs.readFileSync(path.join(inject('tinyModelsDir'), 'detection.onnx')), { intraOpThreads: 1, minScore: 0 });
    const samples = sampleFrames().slice(8, 16);
    const rows = [];
    for (const sample of samples) {
      const res = await p.app.request(`/v1/streams/${STREAM}/frames?cameraId=${sample.cameraId}`, {
        method: 'POST',
        headers: auth(p.tokens.camera, { 'Content-Type': 'image/png' }),
        body: fs.readFileSync(sample.file),
      });
      const [row] = await handle.db
        .select()
        .from(frames)
        .where(eq(frames.id, ((await res.json()) as { frameId: string }).frameId));
      rows.push(row);
    }
    const { frames: out } = await detector.detect(samples.map((s) => fs.readFileSync(s.file)));
    await detector.release();
    const batch = rows.map((f, i) => ({
      frameId: f.id,
      cameraId: f.cameraId,
      capturedAt: f.capturedAt,
      embedding: Array.from(out[i].embedding),
      detections: out[i].detections.slice(0, 4).map((d, rank) => ({ ...d, rank, score: 0.55, x1: rank * 0.25, y1: 0.3, x2: rank * 0.25 + 0.2, y2: 0.7 })),
    }));
    await persistScoredBatch(handle.db, {
      streamId: STREAM,
      modelVersion: 'objects-web',
      policyVersion: 1,
      fromSeq: (await streamCursor(handle.db, STREAM))!,
      toSeq: Math.max(...rows.map((r) => r.seq)),
      frames: batch,
      tasks: [],
      vectorIndex: p.deps.vectorIndex,
    });
    const example = predictionId(rows[0].id, 'objects-web', 0);
    // A task on the example, as the loop would route it (first in the queue).
    await handle.db.insert(reviewTasks).values({
      priority: 100,
      dedupeKey: `${rows[0].id}:objects-web:0`,
      streamId: STREAM,
      cameraId: rows[0].cameraId,
      frameId: rows[0].id,
      predictionId: example,
      modelVersion: 'objects-web',
      className: batch[0].detections[0].className,
      score: 0.55,
      reason: 'band',
      policyVersion: 1,
    });

    const page = await browser.newPage({ viewport: { width: 1366, height: 800 } });
    await page.goto(base + '/');
    await page.fill('#token', p.tokens.reviewer);
    await page.press('#token', 'Enter');
    await page.waitForSelector('#overlay g.box.review');
    // o: the panel opens under the frame with the box under review as the example.
    await page.keyboard.press('o');
    const panel = page.locator('.similar-drawer');
    const tiles = panel.locator('.results figure.tile');
    await tiles.first().waitFor();
    expect(await tiles.count()).toBe(31);
    expect(await panel.locator('.examples figure.tile').count()).toBe(1);
    await panel.locator('input[name=className]').fill('cyclist');
    await panel.locator('input[name=className]').blur();
    // The nearest result is dragged onto "is this class"; the next one, clicked twice, is negative.
    const positive = await tiles.nth(0).getAttribute('data-id');
    const negative = await tiles.nth(1).getAttribute('data-id');
    await tiles.nth(0).dragTo(panel.locator('.drop.positive'));
    await expect.poll(() => tiles.nth(0).getAttribute('class')).toContain('positive');
    await tiles.nth(1).click();
    await tiles.nth(1).click();
    await expect.poll(() => tiles.nth(1).getAttribute('class')).toContain('negative');
    const status = panel.locator('.similar-status');
    await page.keyboard.press('m');
    await expect.poll(() => status.textContent()).toContain('1 marked not cyclist');
    await page.keyboard.press('p');
    await expect.poll(() => status.textContent()).toMatch(/2 marked cyclist; \d+ proposals/);
    const proposals = panel.locator('.proposals figure.tile');
    const proposed = await proposals.count();
    expect(proposed).toBeGreaterThan(3);
    // One proposal looks wrong: dragged onto "not this class" it turns red; c confirms the rest and rejects it.
    const wrong = await proposals.nth(0).getAttribute('data-id');
    await proposals.nth(0).dragTo(panel.locator('.drop.negative'));
    await expect.poll(() => proposals.nth(0).getAttribute('class')).toContain('negative');
    await page.screenshot({ path: path.join(shots, 'similar-objects-panel.png') });
    await page.keyboard.press('c');
    await expect.poll(() => status.textContent()).toBe(`${proposed - 1} confirmed, 1 rejected`);
    const decided = await handle.db.select().from(objectLabels).where(eq(objectLabels.className, 'cyclist'));
    const byId = new Map(decided.map((r) => [r.predictionId, r]));
    expect(byId.get(example)).toMatchObject({ polarity: 'positive', provenance: 'review' });
    expect(byId.get(positive!)).toMatchObject({ polarity: 'positive', provenance: 'review' });
    expect(byId.get(negative!)).toMatchObject({ polarity: 'negative', provenance: 'review' });
    expect(byId.get(wrong!)).toMatchObject({ polarity: 'negative', provenance: 'propagated', status: 'confirmed' });
    expect(decided.filter((r) => r.provenance === 'propagated' && r.polarity === 'positive' && r.status === 'confirmed')).toHaveLength(proposed - 1);
    // Esc closes the panel; the task is still the reviewer's.
    await page.keyboard.press('Escape');
    expect(await panel.count()).toBe(0);
    expect(await page.locator('#overlay g.box.review').count()).toBe(1);

    // The objects page searches the same objects across streams, with their labels shown; the
    // two marked not cyclist no longer come back for cyclist.
    await page.goto(`${base}/app/objects?object=${example}&class=cyclist`);
    await page.waitForSelector('.results figure.tile');
    expect(await page.locator('.results figure.tile').count()).toBe(29);
    expect(await page.locator('.results figcaption', { hasText: '✓ cyclist' }).count()).toBeGreaterThan(0);
    await page.screenshot({ path: path.join(shots, 'objects.png') });
    await page.fill('input[name=streams]', 'no-such-stream');
    await page.click('form.search button[type=submit]');
    await expect.poll(() => page.textContent('.similar-status')).toBe('0 similar objects');
    await page.close();
  });

  it('shows an operations page with scoring rate and drift p-values charted per stream', async () => {
    const [frameRow] = await handle.db.select().from(predictions).limit(1);
    await handle.db.insert(frameScores).values({
      frameId: frameRow.frameId,
      modelVersion: 'tiny-detection',
      streamId: STREAM,
      cameraId: 'cam-0',
      numDetections: 2,
      embedding: Array.from({ length: 128 }, (_, i) => Math.sin(i)),
    });
    for (const [i, p] of [0.4, 0.2, 1e-6].entries()) {
      await handle.db.insert(driftReports).values({
        checkId: `ops-${i}`,
        segmentType: 'stream',
        segmentKey: STREAM,
        modelVersion: 'tiny-detection',
        drift: p < 0.05,
        maxStatistic: 0.1 * (i + 1),
        minAdjustedP: p,
        windowSize: 200,
        // The page reads the summary of a report and the frames the novelty test named.
        report: { summary: p < 0.05 ? 'drift: 2 of 8 components shifted' : 'no drift', novelFrameIds: p < 0.05 ? [frameRow.frameId] : [] } as never,
        createdAt: new Date(Date.now() - (3 - i) * 60_000),
      });
    }
    // A video half-way through: one of three segments done.
    const [video] = await handle.db
      .insert(videos)
      .values({
        streamId: STREAM,
        cameraId: 'dashcam',
        contentHash: 'ops-video',
        storageKey: 'videos/op/ops-video.mp4',
        fileName: 'drive-0412.mp4',
        sizeBytes: 1000,
        startedAt: new Date(),
        source: 'http',
        sampling: { mode: 'fps', rate: 1 },
        probe: {},
        status: 'extracting',
        segmentsTotal: 3,
      })
      .returning();
    await handle.db.insert(videoSegments).values({
      videoId: video.id,
      index: 0,
      storageKey: 'videos/op/ops-video/segments/00000.mkv',
      startSeconds: 0,
      endSeconds: 10,
      frameOffset: 0,
      framesSampled: 10,
      framesStored: 10,
      doneAt: new Date(),
    });
    const page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
    page.on('pageerror', (err) => console.error('ops page error:', err.message));
    await page.goto(base + '/app/ops');
    await page.fill('#token', p.tokens.lead);
    await page.press('#token', 'Enter');
    const card = page.locator(`section[data-stream="${STREAM}"]`);
    await card.waitFor();
    await expect.poll(() => card.locator('.uplot canvas').count()).toBe(2);
    expect(await card.textContent()).toContain('drift: 2 of 8 components shifted');
    // The novel frame of the last check, as a thumbnail loaded with the lead's token.
    const thumb = card.locator(`.novel-frames img[data-frame="${frameRow.frameId}"]`);
    await expect.poll(() => thumb.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth)).toBeGreaterThan(0);
    expect(await card.textContent()).toContain('tiny-detection');
    // Today's selection: frames routed by reason against the daily budget (default 500 tasks).
    expect(await card.textContent()).toMatch(/ranked: \d+ of \d+ frames routed \([\d.]+%\)/);
    expect(await card.textContent()).toMatch(/\d+ of 500 tasks/);
    // The video ingest with its progress and a link to its workflow in the Temporal UI.
    const row = page.locator(`#videos tr[data-video="${video.id}"]`);
    expect(await row.textContent()).toMatch(/drive-0412\.mp4.*extracting.*1\/3.*10/s);
    expect(await row.locator('a').getAttribute('href')).toContain(`/workflows/video-${video.id}`);
    await page.screenshot({ path: path.join(shots, 'ops-page.png') });
    await page.close();
  });

  it('shows a lead the validation error next to the band field and stores nothing', async () => {
    const page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
    page.on('pageerror', (err) => console.error('lead page error:', err.message));
    // A frame the loop set aside, for the page to list.
    const [gone] = await handle.db
      .insert(frames)
      .values({
        streamId: STREAM,
        cameraId: 'cam-gone',
        capturedAt: new Date(),
        contentHash: 'gone',
        storageKey: 'frames/gone.png',
        mediaType: 'image/png',
        sizeBytes: 1,
        width: 320,
        height: 240,
      })
      .returning();
    await handle.db
      .insert(frameFailures)
      .values({ frameId: gone.id, streamId: STREAM, reason: 'missing_blob', detail: 'no blob at frames/gone.png', modelVersion: 'tiny-detection' });
    await page.goto(base + '/app/lead');
    await page.fill('#token', p.tokens.lead);
    await page.press('#token', 'Enter');
    await page.waitForSelector('[data-field="band.low"]');
    await expect.poll(() => page.textContent('#failed-frames')).toContain('missing_blob');
    expect(await page.textContent('#failed-frames')).toContain('cam-gone');
    await page.fill('[data-field="band.low"]', '0.7');
    await page.fill('[data-field="band.high"]', '0.4');
    await page.click('#policy-save');
    await expect.poll(() => page.textContent('[data-error-for="band.high"]')).toContain('band.low must be below band.high');
    expect(await page.getAttribute('[data-field="band.high"]', 'class')).toContain('invalid');
    await page.screenshot({ path: path.join(shots, 'lead-policy-error.png') });
    const policy = await (await p.app.request(`/v1/streams/${STREAM}/policy`, { headers: auth(p.tokens.lead) })).json();
    expect(policy.version).toBe(1);
    await page.close();
  });

  it('tells a paused reviewer why the queue paused them; a lead marks gold and resumes them from the lead page', async () => {
    const reason =
      'Your accuracy on check frames is 0.40 over your last 5 answers, below the pass score of 0.7. You are paused from the review queue until a lead resumes you.';
    await handle.db.update(users).set({ queuePausedAt: new Date(), queuePausedReason: reason }).where(eq(users.name, 'reviewer2'));
    const reviewer = await browser.newPage({ viewport: { width: 1366, height: 800 } });
    await reviewer.goto(base + '/');
    await reviewer.fill('#token', p.tokens.reviewer2);
    await reviewer.press('#token', 'Enter');
    await reviewer.waitForSelector('#paused');
    expect(await reviewer.textContent('#paused')).toContain('You are paused from the review queue');
    expect(await reviewer.textContent('#paused')).toContain('0.40 over your last 5 answers, below the pass score of 0.7');
    await reviewer.screenshot({ path: path.join(shots, 'review-paused.png') });

    const lead = await browser.newPage({ viewport: { width: 1366, height: 1200 } });
    lead.on('pageerror', (err) => console.error('lead page error:', err.message));
    await lead.goto(base + '/app/lead');
    await lead.fill('#token', p.tokens.lead);
    await lead.press('#token', 'Enter');
    const row = lead.locator('#reviewers tr[data-reviewer="reviewer2"]');
    await expect.poll(() => row.textContent()).toContain('paused');
    // A labelled frame becomes gold from the recent labels (the first test's label).
    await lead.locator('#labels button[data-gold]').first().click();
    await expect.poll(async () => (await (await p.app.request('/v1/gold', { headers: auth(p.tokens.lead) })).json()).gold.length).toBe(1);
    await lead.waitForSelector('#labels button[data-ungold]');
    await lead.click('#reviewers button[data-resume="reviewer2"]');
    await expect.poll(() => row.textContent()).toContain('active');
    await lead.screenshot({ path: path.join(shots, 'lead-reviewers.png') });

    // Resumed, the reviewer checks again and is no longer refused.
    await reviewer.click('#paused-retry');
    await reviewer.waitForSelector('#paused', { state: 'detached' });
    await reviewer.close();
    await lead.close();
  });

  it('shows a lead a frame two reviewers disagreed on with both answers, and stores the answer they pick as its label', async () => {
    // The state two disagreeing answers leave (the API test drives the real flow): no label, a lead needed.
    const [frame] = await handle.db.select().from(frames).where(eq(frames.streamId, STREAM)).limit(1);
    const reviewerIds = new Map((await handle.db.select().from(users)).map((u) => [u.name, u.id]));
    const [task] = await handle.db
      .insert(reviewTasks)
      .values({
        dedupeKey: `${frame.id}:tiny-detection:consensus`,
        streamId: STREAM,
        cameraId: frame.cameraId,
        frameId: frame.id,
        modelVersion: 'tiny-detection',
        reason: 'random',
        policyVersion: 1,
        reviewsNeeded: 2,
        status: 'done',
        adjudication: 'needed',
      })
      .returning();
    const mine = [{ className: 'vehicle', x1: 0.1, y1: 0.1, x2: 0.3, y2: 0.3 }];
    const theirs = [{ className: 'vehicle', x1: 0.6, y1: 0.5, x2: 0.8, y2: 0.7 }];
    await handle.db.insert(consensusAnswers).values([
      { taskId: task.id, reviewerId: reviewerIds.get('reviewer')!, decision: 'correct', boxes: mine, agreement: 0.67 },
      { taskId: task.id, reviewerId: reviewerIds.get('reviewer2')!, decision: 'correct', boxes: theirs, agreement: 0.67 },
    ]);
    await handle.db
      .insert(consensusResults)
      .values({ taskId: task.id, frameId: frame.id, streamId: STREAM, merged: [...mine, ...theirs], agreement: 0, byClass: { vehicle: 0 } });

    const page = await browser.newPage({ viewport: { width: 1366, height: 1600 } });
    page.on('pageerror', (err) => console.error('lead page error:', err.message));
    await page.goto(base + '/app/lead');
    await page.fill('#token', p.tokens.lead);
    await page.press('#token', 'Enter');
    const card = page.locator(`.adjudication[data-task="${task.id}"]`);
    await card.waitFor();
    // Every answer is drawn over the frame (merged dashed, one colour per reviewer), each with its button.
    expect(await card.locator('svg rect').count()).toBe(4);
    await expect.poll(() => card.locator('img').getAttribute('src')).toMatch(/^blob:/);
    expect(await card.textContent()).toContain("Use reviewer2's (1 box)");
    expect(await page.textContent('#consensus')).toContain('waits for a lead');
    await card.screenshot({ path: path.join(shots, 'lead-adjudication.png') });
    await card.locator('button', { hasText: "Use reviewer2's" }).click();
    await card.waitFor({ state: 'detached' });
    const [label] = await handle.db.select().from(labels).where(eq(labels.taskId, task.id));
    expect(label.boxes).toEqual(theirs);
    await expect.poll(() => page.textContent('#consensus')).toContain('decided by a lead');
    await page.close();
  });

  it("serves interactive API docs that list every operation with its roles, under the pages' CSP", async () => {
    const page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
    const problems: string[] = [];
    page.on('pageerror', (err) => problems.push(err.message));
    page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
    await page.goto(base + '/app/api');
    await page.waitForSelector('.opblock');
    const doc = await (await p.app.request('/v1/openapi.json')).json();
    const operations = Object.values(doc.paths as Record<string, object>).reduce((n: number, ops) => n + Object.keys(ops).length, 0);
    await expect.poll(() => page.locator('.opblock').count()).toBe(operations);
    expect(await page.textContent('.info')).toContain('dataengine API');
    // An operation opens with the roles that may call it.
    await page.locator('.opblock-summary-path', { hasText: '/v1/streams/{id}/frames' }).first().click();
    await expect.poll(() => page.locator('.opblock.is-open').first().textContent()).toContain('Roles: camera, lead, admin');
    await page.screenshot({ path: path.join(shots, 'api-docs.png') });
    expect(problems).toEqual([]);
    await page.close();
  });
});

// Reviewer quality for leads: gold frames (mark, unmark, list), each reviewer's rolling accuracy
// on them and agreement in consensus, resuming a reviewer the queue paused (db/gold.ts), and
// consensus results with the frames that wait for a lead to adjudicate (db/consensus.ts).
import { Hono } from 'hono';
import { z } from 'zod';
import { goldSettings } from '../../config.ts';
import { audit } from '../../db/audit.ts';
import { getFrame } from '../../db/frames.ts';
import { adjudicate, ConsensusError, listConsensus } from '../../db/consensus.ts';
import { GoldError, listGold, markGold, resumeReviewer, reviewerStandings, unmarkGold } from '../../db/gold.ts';
import { reviewerRegistry } from '../../observability/metrics.ts';
import type { ApiDeps, AppEnv } from '../env.ts';
import { defineOperation, handle } from '../operation.ts';
import { ProblemError, UUID } from '../problem.ts';
import { box, labelBoxInput, labelSchema } from '../schemas.ts';

const goldFrame = z.object({
  frameId: z.uuid(),
  streamId: z.string(),
  labelId: z.uuid().describe('the label answers are scored against: the frame’s newest when it was marked'),
  markedBy: z.uuid().nullable(),
  createdAt: z.date(),
  boxes: z.array(box),
  answers: z.number().int().describe('gold answers given on this frame'),
  meanScore: z.number().nullable().describe('their mean F1 against the gold boxes'),
});
const standing = z.object({
  reviewerId: z.uuid(),
  name: z.string(),
  answers: z.number().int().describe('gold answers the rolling accuracy counts (the last `window` since the reviewer was last resumed)'),
  accuracy: z.number().nullable().describe('mean F1 against gold at IoU 0.5 (null: no answers yet)'),
  precision: z.number().nullable(),
  recall: z.number().nullable(),
  classAccuracy: z.number().nullable().describe('of boxes that found a gold object, the share that named its class'),
  pausedAt: z.date().nullable(),
  pausedReason: z.string().nullable(),
  consensusAnswers: z.number().int().describe('answers to consensus tasks that were merged'),
  agreement: z.number().nullable().describe('mean F1 of those answers against the merged label (null: none)'),
});
const consensusResult = z.object({
  taskId: z.uuid(),
  frameId: z.uuid(),
  streamId: z.string(),
  width: z.number().int(),
  height: z.number().int(),
  merged: z.array(box).describe('the boxes kept by the quorum, each the mean of its reviewers’ boxes'),
  agreement: z.number().describe('mean pairwise F1 of the answers'),
  byClass: z.record(z.string(), z.number()).describe('the same, per class'),
  labelId: z.uuid().nullable().describe('the label it became (null: waits for a lead)'),
  adjudication: z.enum(['needed', 'resolved']).nullable(),
  createdAt: z.date(),
  answers: z.array(
    z.object({ reviewer: z.string(), decision: z.enum(['accept', 'reject', 'correct']), boxes: z.array(box), agreement: z.number().nullable() }),
  ),
});
const frameId = z.object({ id: z.string().regex(UUID, 'a frame id (UUID)') });

export const reviewerOperations = {
  reviewers: defineOperation({
    method: 'get',
    path: '/v1/reviewers',
    summary: "Each reviewer's rolling accuracy on gold tasks, and whether the queue paused them",
    responses: {
      200: {
        description: 'standings and the settings they are judged by',
        schema: z.object({
          settings: z.object({ rate: z.number(), passScore: z.number(), window: z.number().int(), minAnswers: z.number().int() }),
          reviewers: z.array(standing),
        }),
      },
    },
  }),
  resume: defineOperation({
    method: 'post',
    path: '/v1/reviewers/{name}/resume',
    summary: 'Let a paused reviewer claim again; their rolling accuracy starts afresh',
    params: z.object({ name: z.string() }),
    responses: { 200: { description: 'resumed', schema: z.object({ reviewer: z.object({ id: z.uuid(), name: z.string() }) }) } },
    problems: [409],
  }),
  gold: defineOperation({
    method: 'get',
    path: '/v1/gold',
    summary: 'Gold frames, newest first, with their boxes and how reviewers did on them',
    query: z.object({ streamId: z.string().optional() }).strict(),
    responses: { 200: { description: 'gold frames', schema: z.object({ gold: z.array(goldFrame) }) } },
  }),
  consensus: defineOperation({
    method: 'get',
    path: '/v1/consensus',
    summary: 'Consensus results, newest first: the merged boxes, agreement per frame and class, every answer',
    query: z
      .object({
        streamId: z.string().optional(),
        adjudication: z.literal('needed', { error: 'adjudication can only be "needed"' }).optional(),
        limit: z.coerce.number().int().min(1).max(500).default(50),
      })
      .strict(),
    responses: { 200: { description: 'results', schema: z.object({ results: z.array(consensusResult) }) } },
  }),
  adjudicate: defineOperation({
    method: 'post',
    path: '/v1/tasks/{id}/adjudicate',
    summary: "Decide a frame its reviewers disagreed on: the boxes given (the merged ones, one reviewer's, or new) become its label",
    params: z.object({ id: z.string().regex(UUID, 'a task id (UUID)') }),
    body: z.object({ boxes: z.array(labelBoxInput).max(200) }).strict(),
    bodyName: 'invalid adjudication',
    responses: { 201: { description: 'the label', schema: z.object({ label: labelSchema }) } },
    problems: [409],
  }),
  markGold: defineOperation({
    method: 'put',
    path: '/v1/frames/{id}/gold',
    summary: 'Mark a labelled frame as gold: reviewers are checked against the label named (else its newest) at GOLD_RATE of their claims',
    params: frameId,
    body: z.object({ labelId: z.uuid('labelId must be a label id (UUID)').optional() }).strict(),
    bodyName: 'invalid gold marking',
    responses: {
      200: {
        description: 'marked (again: the reference becomes the newest label)',
        schema: z.object({ gold: goldFrame.omit({ boxes: true, answers: true, meanScore: true }) }),
      },
    },
    problems: [409],
  }),
  metrics: defineOperation({
    method: 'get',
    path: '/v1/metrics/reviewers',
    summary:
      "Prometheus metrics of each reviewer's gold accuracy and consensus agreement: for leads (scrape it with a lead's token); the open /metrics leaves them out, since a reviewer could read which frames are gold from them",
    responses: { 200: { description: 'Prometheus text exposition format', contentType: 'text/plain' } },
  }),
  unmarkGold: defineOperation({
    method: 'delete',
    path: '/v1/frames/{id}/gold',
    summary: 'Stop using a frame as gold (answers given stay counted)',
    params: frameId,
    responses: { 204: { description: 'no longer gold' } },
  }),
};

const GOLD_STATUS = { not_found: 404, unlabelled: 409, not_paused: 409 } as const;
function goldProblem(err: unknown): never {
  if (err instanceof GoldError)
    throw new ProblemError(GOLD_STATUS[err.code], err.code === 'not_found' ? 'Not found' : 'Refused', err.message, undefined, err.code);
  throw err;
}

export function reviewerRoutes(deps: ApiDeps) {
  const app = new Hono<AppEnv>();
  const settings = goldSettings(deps.config);

  handle(app, reviewerOperations.reviewers, async (c) =>
    c.json({ settings: { rate: deps.config.GOLD_RATE, ...settings }, reviewers: await reviewerStandings(deps.db, settings) }),
  );

  handle(app, reviewerOperations.consensus, async (c, { query }) => c.json({ results: await listConsensus(deps.db, query) }));

  handle(app, reviewerOperations.adjudicate, async (c, { params, body }) => {
    try {
      const label = await adjudicate(deps.db, { taskId: params.id, leadId: c.get('user').id, boxes: body.boxes });
      await audit(deps.db, c.get('user').name, 'consensus.adjudicate', params.id, { labelId: label.id, boxes: body.boxes.length });
      return c.json({ label }, 201);
    } catch (err) {
      if (!(err instanceof ConsensusError)) throw err;
      if (err.code === 'not_found') throw new ProblemError(404, 'Not found', err.message, undefined, 'not_found');
      throw new ProblemError(409, 'Nothing to adjudicate', err.message, undefined, err.code);
    }
  });

  handle(app, reviewerOperations.resume, async (c, { params }) => {
    const reviewer = await resumeReviewer(deps.db, params.name).catch(goldProblem);
    await audit(deps.db, c.get('user').name, 'reviewer.resume', reviewer.name);
    return c.json({ reviewer });
  });

  handle(app, reviewerOperations.metrics, async (c) => c.text(await reviewerRegistry.metrics(), 200, { 'Content-Type': reviewerRegistry.contentType }));

  handle(app, reviewerOperations.gold, async (c, { query }) => c.json({ gold: await listGold(deps.db, query.streamId) }));

  handle(app, reviewerOperations.markGold, async (c, { params, body }) => {
    if (!(await getFrame(deps.db, params.id))) throw new ProblemError(404, 'Not found', `frame ${params.id} does not exist`, undefined, 'not_found');
    const gold = await markGold(deps.db, params.id, c.get('user').id, body.labelId).catch(goldProblem);
    await audit(deps.db, c.get('user').name, 'gold.mark', params.id, { labelId: gold.labelId });
    return c.json({ gold });
  });

  handle(app, reviewerOperations.unmarkGold, async (c, { params }) => {
    if (!(await unmarkGold(deps.db, params.id))) throw new ProblemError(404, 'Not found', `frame ${params.id} is not gold`, undefined, 'not_found');
    await audit(deps.db, c.get('user').name, 'gold.unmark', params.id);
    return c.body(null, 204);
  });

  return app;
}

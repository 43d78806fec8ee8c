// The review queue over HTTP: claim with a lease, submit a decision, release; queue depth,
// recent labels (exports: label-formats.ts).
import { Hono } from 'hono';
import { z } from 'zod';
import { claimNext, getTask, queueDepth, QueueError, releaseTask, submitDecision, taskContext, type TaskRow } from '../../db/queue.ts';
import { queuePause } from '../../db/gold.ts';
import { recentLabels } from '../../db/labels.ts';
import { goldSettings } from '../../config.ts';
import { getPolicy } from '../../db/policies.ts';
import { bandFor, samplingPolicySchema } from '../../policies/sampling-policy.ts';
import { reviewClaims, reviewDecisions, reviewLeaseExpiries } from '../../observability/metrics.ts';
import { getModel } from '../../db/models.ts';
import { LRUCache } from 'lru-cache';
import type { ApiDeps, AppEnv } from '../env.ts';
import { defineOperation, handle } from '../operation.ts';
import { ProblemError } from '../problem.ts';
import { frameSchema, labelBoxInput, labelSchema, predictionSchema, streamTimeRange, taskSchema } from '../schemas.ts';

const submitInput = z
  .object({ decision: z.enum(['accept', 'reject', 'correct']), boxes: z.array(labelBoxInput).max(200).optional() })
  .strict()
  .refine((s) => s.decision !== 'correct' || s.boxes !== undefined, { message: 'a correction needs boxes (an empty list means no object)', path: ['boxes'] });
const claimInput = z.object({ streamId: z.string().min(1).optional() }).strict();
const timeRange = streamTimeRange.extend({ limit: z.coerce.number().int().min(1).max(1000).default(100) });

const presentedTask = z.object({
  classNames: z.array(z.string()).describe('the classes a reviewer may pick: those of the model that routed the task'),
  task: taskSchema
    .pick({
      id: true,
      status: true,
      reason: true,
      policyVersion: true,
      modelVersion: true,
      predictionId: true,
      className: true,
      score: true,
      leaseExpiresAt: true,
      attempts: true,
      streamId: true,
      cameraId: true,
    })
    .extend({
      selection: z
        .object({ uncertainty: z.number(), novelty: z.number(), value: z.number(), threshold: z.number().nullable(), targetRate: z.number().nullable() })
        .nullable()
        .describe('why the frame was routed: its uncertainty, novelty and value, and the paced threshold it reached'),
      band: samplingPolicySchema.shape.band.nullable().describe('the confidence band that routed it'),
    }),
  frame: frameSchema.pick({ id: true, width: true, height: true, cameraId: true, capturedAt: true, streamId: true }).extend({ imageUrl: z.string() }),
  predictions: z.array(
    predictionSchema
      .pick({ id: true, rank: true, className: true, score: true, x1: true, y1: true, x2: true, y2: true })
      .extend({ underReview: z.boolean().describe('the prediction this task asks about') }),
  ),
});
const taskId = z.object({ id: z.string() });
const labelResult = z.object({ label: labelSchema, replayed: z.boolean() });
export const taskOperations = {
  claim: defineOperation({
    method: 'post',
    path: '/v1/tasks/claim',
    summary: 'Lease the next task (or your current one)',
    body: claimInput,
    bodyName: 'invalid claim',
    responses: { 200: { description: 'task, frame and predictions', schema: presentedTask }, 204: { description: 'the queue is empty' } },
    problems: [403],
  }),
  get: defineOperation({
    method: 'get',
    path: '/v1/tasks/{id}',
    summary: 'A task with its frame and predictions',
    params: taskId,
    responses: { 200: { description: 'the task', schema: presentedTask } },
  }),
  submit: defineOperation({
    method: 'post',
    path: '/v1/tasks/{id}/submit',
    summary: 'Submit a decision; stores a label',
    params: taskId,
    body: submitInput,
    bodyName: 'invalid decision',
    responses: { 201: { description: 'label stored', schema: labelResult }, 200: { description: 'the same decision, replayed', schema: labelResult } },
    problems: [409, 410],
  }),
  release: defineOperation({
    method: 'post',
    path: '/v1/tasks/{id}/release',
    summary: 'Give a leased task back to the queue',
    params: taskId,
    responses: { 200: { description: 'released', schema: z.object({ task: taskSchema.pick({ id: true, status: true }) }) } },
    problems: [409],
  }),
  queue: defineOperation({
    method: 'get',
    path: '/v1/queue',
    summary: 'Open tasks per stream and class, with the oldest task time',
    responses: {
      200: {
        description: 'queue depth',
        schema: z.object({
          depth: z.array(
            z.object({
              streamId: z.string(),
              className: z.string().nullable(),
              open: z.number().int(),
              leased: z.number().int(),
              oldestCreatedAt: z.date().nullable(),
            }),
          ),
        }),
      },
    },
  }),
  labels: defineOperation({
    method: 'get',
    path: '/v1/labels',
    summary: 'Recent labels with reviewer, newest first',
    query: timeRange,
    responses: { 200: { description: 'labels', schema: z.object({ labels: z.array(labelSchema.extend({ reviewer: z.string().nullable() })) }) } },
  }),
};

const STATUS: Record<QueueError['code'], 400 | 404 | 409 | 410> = {
  not_found: 404,
  held_by_other: 409,
  not_leased: 409,
  already_decided: 409,
  lease_expired: 410,
  invalid: 400,
};

function queueProblem(err: unknown): never {
  if (err instanceof QueueError) throw new ProblemError(STATUS[err.code], 'Task refused', err.message, undefined, err.code);
  throw err;
}

export function taskRoutes(deps: ApiDeps) {
  const app = new Hono<AppEnv>();

  // The classes a reviewer may pick: those of the model that routed the task (its metadata).
  // A registered model never changes, so each version's list is read once.
  const classesOfVersion = new LRUCache<string, string[]>({ max: 64 });
  async function classNamesOf(modelVersion: string): Promise<string[]> {
    let names = classesOfVersion.get(modelVersion);
    if (!names) {
      const model = await getModel(deps.db, 'detection', modelVersion);
      names = model?.metadata.kind === 'detection' ? model.metadata.classNames : [];
      classesOfVersion.set(modelVersion, names);
    }
    return names;
  }

  async function taskOr404(id: string) {
    const task = await getTask(deps.db, id).catch(() => null);
    if (!task) throw new ProblemError(404, 'Not found', `task ${id} does not exist`, undefined, 'not_found');
    return task;
  }

  async function present(task: TaskRow) {
    const { frame, predictions } = await taskContext(deps.db, task);
    const policy = await getPolicy(deps.db, task.streamId, task.policyVersion).catch(() => null);
    return {
      classNames: await classNamesOf(task.modelVersion),
      task: {
        id: task.id,
        status: task.status,
        reason: task.reason,
        policyVersion: task.policyVersion,
        band: policy && task.className ? bandFor(policy, task.className) : (policy?.band ?? null),
        modelVersion: task.modelVersion,
        predictionId: task.predictionId,
        className: task.className,
        score: task.score,
        leaseExpiresAt: task.leaseExpiresAt,
        attempts: task.attempts,
        selection: task.selection,
        streamId: task.streamId,
        cameraId: task.cameraId,
      },
      frame: {
        id: frame.id,
        width: frame.width,
        height: frame.height,
        cameraId: frame.cameraId,
        capturedAt: frame.capturedAt,
        streamId: frame.streamId,
        imageUrl: `/v1/frames/${frame.id}/image`,
      },
      predictions: predictions.map((p) => ({
        id: p.id,
        rank: p.rank,
        className: p.className,
        score: p.score,
        x1: p.x1,
        y1: p.y1,
        x2: p.x2,
        y2: p.y2,
        underReview: p.id === task.predictionId,
      })),
    };
  }

  handle(app, taskOperations.claim, async (c, { body: input }) => {
    const user = c.get('user');
    const paused = await queuePause(deps.db, user.id);
    if (paused) throw new ProblemError(403, 'Paused from the queue', paused, undefined, 'reviewer_paused');
    const claimed = await claimNext(deps.db, {
      userId: user.id,
      streamId: input.streamId,
      leaseSeconds: deps.config.LEASE_SECONDS,
      // Reviewers are checked against gold frames at GOLD_RATE of their claims (leads mark them).
      offerGold: user.role === 'reviewer' && Math.random() < deps.config.GOLD_RATE,
    });
    if (!claimed) return c.body(null, 204);
    reviewClaims.inc({ stream: claimed.task.streamId });
    if (claimed.expired) reviewLeaseExpiries.inc({ stream: claimed.task.streamId });
    return c.json(await present(claimed.task));
  });

  handle(app, taskOperations.get, async (c, { params }) => {
    const task = await taskOr404(params.id);
    return c.json(await present(task));
  });

  handle(app, taskOperations.submit, async (c, { params, body: input }) => {
    await taskOr404(params.id);
    const result = await submitDecision(
      deps.db,
      { taskId: params.id, userId: c.get('user').id, decision: input.decision, boxes: input.boxes },
      goldSettings(deps.config),
    ).catch(queueProblem);
    if (!result.replayed) reviewDecisions.inc({ stream: result.label.streamId, decision: result.label.decision });
    return c.json({ label: result.label, replayed: result.replayed }, result.replayed ? 200 : 201);
  });

  handle(app, taskOperations.release, async (c, { params }) => {
    await taskOr404(params.id);
    const task = await releaseTask(deps.db, { taskId: params.id, userId: c.get('user').id }).catch(queueProblem);
    return c.json({ task: { id: task.id, status: task.status } });
  });

  handle(app, taskOperations.queue, async (c) => c.json({ depth: await queueDepth(deps.db) }));

  handle(app, taskOperations.labels, async (c, { query: q }) => {
    return c.json({ labels: await recentLabels(deps.db, q) });
  });

  return app;
}

// The review queue over HTTP: claim with a lease, submit a decision, release; queue depth,
// recent labels, and COCO export of labels.
import { Hono } from 'hono';
import { z } from 'zod';
import { claimNext, getTask, queueDepth, QueueError, releaseTask, submitDecision, taskContext, type TaskRow } from '../../db/queue.ts';
import { toCocoBbox } from '../../db/coco.ts';
import { labelsWithFrames, recentLabels, type LabelWithFrame } from '../../db/labels.ts';
import { getPolicy } from '../../db/policies.ts';
import { bandFor } from '../../policies/sampling-policy.ts';
import { reviewClaims, reviewDecisions, reviewLeaseExpiries } from '../../observability/metrics.ts';
import { getModel, productionModel } from '../../db/models.ts';
import { Lru } from '../lru.ts';
import type { ApiDeps, AppEnv } from '../env.ts';
import { parseOrThrow, ProblemError, readJson } from '../problem.ts';

const unit = z.number().min(0).max(1);
const labelBox = z
  .object({ className: z.string().min(1).max(100), x1: unit, y1: unit, x2: unit, y2: unit })
  .strict()
  .refine((b) => b.x2 > b.x1 && b.y2 > b.y1, { message: 'x2 must exceed x1 and y2 must exceed y1', path: ['x2'] });
const submitInput = z
  .object({ decision: z.enum(['accept', 'reject', 'correct']), boxes: z.array(labelBox).max(200).optional() })
  .strict()
  .refine((s) => s.decision !== 'correct' || s.boxes !== undefined, { message: 'a correction needs boxes (an empty list means no object)', path: ['boxes'] });
const claimInput = z.object({ streamId: z.string().min(1).optional() }).strict();
const timeRange = z.object({
  streamId: z.string().min(1).optional(),
  from: z.coerce.date({ error: 'from must be an ISO 8601 time' }).optional(),
  to: z.coerce.date({ error: 'to must be an ISO 8601 time' }).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

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
  const classesOfVersion = new Lru<string, string[]>(64);
  async function classNamesOf(modelVersion: string): Promise<string[]> {
    let names = classesOfVersion.get(modelVersion);
    if (!names) {
      const model = await getModel(deps.db, 'detection', modelVersion);
      names = model?.metadata.kind === 'detection' ? model.metadata.classNames : [];
      classesOfVersion.set(modelVersion, names);
    }
    return names;
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

  app.post('/v1/tasks/claim', async (c) => {
    const input = parseOrThrow(claimInput, await readJson(c), 'invalid claim');
    const claimed = await claimNext(deps.db, { userId: c.get('user').id, streamId: input.streamId, leaseSeconds: deps.config.LEASE_SECONDS });
    if (!claimed) return c.body(null, 204);
    reviewClaims.inc({ stream: claimed.task.streamId });
    if (claimed.expired) reviewLeaseExpiries.inc({ stream: claimed.task.streamId });
    return c.json(await present(claimed.task));
  });

  app.get('/v1/tasks/:id', async (c) => {
    const task = await getTask(deps.db, c.req.param('id')).catch(() => null);
    if (!task) throw new ProblemError(404, 'Not found', `task ${c.req.param('id')} does not exist`, undefined, 'not_found');
    return c.json(await present(task));
  });

  app.post('/v1/tasks/:id/submit', async (c) => {
    const input = parseOrThrow(submitInput, await readJson(c), 'invalid decision');
    if (!(await getTask(deps.db, c.req.param('id')).catch(() => null))) {
      throw new ProblemError(404, 'Not found', `task ${c.req.param('id')} does not exist`, undefined, 'not_found');
    }
    const result = await submitDecision(deps.db, { taskId: c.req.param('id'), userId: c.get('user').id, decision: input.decision, boxes: input.boxes }).catch(
      queueProblem,
    );
    if (!result.replayed) reviewDecisions.inc({ stream: result.label.streamId, decision: result.label.decision });
    return c.json({ label: result.label, replayed: result.replayed }, result.replayed ? 200 : 201);
  });

  app.post('/v1/tasks/:id/release', async (c) => {
    if (!(await getTask(deps.db, c.req.param('id')).catch(() => null))) {
      throw new ProblemError(404, 'Not found', `task ${c.req.param('id')} does not exist`, undefined, 'not_found');
    }
    const task = await releaseTask(deps.db, { taskId: c.req.param('id'), userId: c.get('user').id }).catch(queueProblem);
    return c.json({ task: { id: task.id, status: task.status } });
  });

  app.get('/v1/queue', async (c) => c.json({ depth: await queueDepth(deps.db) }));

  app.get('/v1/labels', async (c) => {
    const q = parseOrThrow(timeRange, c.req.query(), 'invalid query');
    return c.json({ labels: await recentLabels(deps.db, q) });
  });

  app.get('/v1/labels/export', async (c) => {
    const q = parseOrThrow(timeRange.omit({ limit: true }), c.req.query(), 'invalid query');
    const rows = await labelsWithFrames(deps.db, q);
    const production = await productionModel(deps.db, 'detection');
    const fromModel = production?.metadata.kind === 'detection' ? production.metadata.classNames : [];
    const seen = new Set(rows.flatMap((r) => r.label.boxes.map((b) => b.className)));
    const classNames = [...fromModel, ...[...seen].filter((n) => !fromModel.includes(n)).sort()];
    return c.json(toCoco(rows, classNames));
  });

  return app;
}

/** COCO JSON (docs/contracts.md): one image per labelled frame, its newest label's boxes. */
function toCoco(rows: LabelWithFrame[], classNames: string[]) {
  const newest = new Map<string, LabelWithFrame>();
  for (const r of rows) newest.set(r.frame.id, r);
  const images: object[] = [];
  const annotations: object[] = [];
  [...newest.values()].forEach((r, i) => {
    const imageId = i + 1;
    images.push({
      id: imageId,
      file_name: r.frame.storageKey,
      width: r.frame.width,
      height: r.frame.height,
      frame_id: r.frame.id,
      stream_id: r.frame.streamId,
      camera_id: r.frame.cameraId,
      captured_at: r.frame.capturedAt,
      label_id: r.label.id,
      decision: r.label.decision,
    });
    for (const b of r.label.boxes) {
      const bbox = toCocoBbox(b, r.frame.width, r.frame.height);
      annotations.push({
        id: annotations.length + 1,
        image_id: imageId,
        category_id: classNames.indexOf(b.className) + 1,
        bbox,
        area: bbox[2] * bbox[3],
        iscrowd: 0,
      });
    }
  });
  return {
    info: { description: 'dataengine label export', date_created: new Date().toISOString() },
    categories: classNames.map((name, i) => ({ id: i + 1, name })),
    images,
    annotations,
  };
}

// The operations summary behind the lead's operations page: per stream, scoring rate over the
// last hour, queue depth, model version, drift decisions and p-values over time, and the latest
// retraining run. It reads the platform's own tables, so it works without Prometheus.
import { Hono } from 'hono';
import { streamDriftSeries } from '../../db/drift.ts';
import { queueDepth } from '../../db/queue.ts';
import { listRuns } from '../../db/retrain.ts';
import { framesScoredPerMinute, selectionToday } from '../../db/scoring.ts';
import { currentPolicy } from '../../db/policies.ts';
import { listStreams } from '../../db/streams.ts';
import { productionModel } from '../../db/models.ts';
import { registeredArtifacts } from '../../models/registry.ts';
import type { ApiDeps, AppEnv } from '../env.ts';
import { defineOperation, handle } from '../operation.ts';
import { retrainRunSchema } from '../schemas.ts';
import { z } from 'zod';

export const opsOperations = {
  summary: defineOperation({
    method: 'get',
    path: '/v1/ops',
    summary: 'Operations summary per stream: frames per minute (last hour), open tasks, model version, drift p-values over time, latest retraining',
    responses: {
      200: {
        description: 'the summary',
        schema: z.object({
          streams: z.array(
            z.object({
              id: z.string(),
              frames: z.number().int(),
              openTasks: z.number().int(),
              modelVersion: z.string().nullable(),
              modelPrecision: z.enum(['fp32', 'int8']).nullable().describe("the encoding of that version loops run under this deployment's DETECTOR_PRECISION"),
              framesPerMinute: z.array(z.object({ at: z.string(), frames: z.number().int() })),
              drift: z.array(z.object({ at: z.date(), p: z.number(), statistic: z.number(), drift: z.boolean() })),
              lastDrift: z
                .object({
                  at: z.date(),
                  drift: z.boolean(),
                  summary: z.string().nullable(),
                  novelFrameIds: z.array(z.string()).describe('frames of the window unlike every reference frame, farthest first'),
                })
                .nullable(),
              selection: z
                .object({
                  mode: z.enum(['ranked', 'band']),
                  dailyBudget: z.number().int().nullable(),
                  framesScored: z.number().int(),
                  framesRouted: z.number().int(),
                  tasks: z.number().int(),
                  byReason: z.record(z.string(), z.object({ tasks: z.number().int(), frames: z.number().int() })),
                  latest: z
                    .object({
                      uncertainty: z.number(),
                      novelty: z.number(),
                      value: z.number(),
                      threshold: z.number().nullable(),
                      targetRate: z.number().nullable(),
                    })
                    .nullable(),
                })
                .describe('today (UTC): frames scored and routed, tasks by reason against the daily budget, and the bar the newest routed frame met'),
            }),
          ),
          latestRetraining: retrainRunSchema.pick({ id: true, status: true, trigger: true, reason: true, createdAt: true, updatedAt: true }).nullable(),
        }),
      },
    },
  }),
};

export function opsRoutes(deps: ApiDeps) {
  const app = new Hono<AppEnv>();
  handle(app, opsOperations.summary, async (c) => {
    const since = new Date(Date.now() - 60 * 60_000);
    const [streams, depth, production, [latestRun]] = await Promise.all([
      listStreams(deps.db),
      queueDepth(deps.db),
      productionModel(deps.db, 'detection'),
      listRuns(deps.db, 1),
    ]);
    const perMinute = await framesScoredPerMinute(deps.db, since);
    const result = await Promise.all(
      streams.map(async (s) => {
        const drift = await streamDriftSeries(deps.db, s.id, 100);
        const loop = await deps.loopControl.status(s.id).catch(() => null);
        const policy = (await currentPolicy(deps.db, s.id))?.policy;
        const today = await selectionToday(deps.db, s.id, new Date());
        const modelVersion = loop?.modelVersion ?? production?.version ?? null;
        const served = modelVersion ? await registeredArtifacts(deps.db, deps.config.DETECTOR_PRECISION)('detection', modelVersion) : undefined;
        return {
          id: s.id,
          frames: s.frames,
          openTasks: depth.filter((d) => d.streamId === s.id).reduce((a, d) => a + d.open, 0),
          modelVersion,
          modelPrecision: served?.precision ?? null,
          framesPerMinute: perMinute.filter((r) => r.streamId === s.id).map((r) => ({ at: r.minute.toISOString(), frames: r.frames })),
          drift: drift.reverse().map((d) => ({ at: d.at, p: d.p, statistic: d.statistic, drift: d.drift })),
          selection: { mode: policy?.selection ?? 'ranked', dailyBudget: policy?.dailyBudget ?? null, ...today },
          lastDrift: drift.length ? (({ at, drift, summary, novelFrameIds }) => ({ at, drift, summary, novelFrameIds }))(drift[drift.length - 1]) : null,
        };
      }),
    );
    return c.json({
      streams: result,
      latestRetraining: latestRun
        ? {
            id: latestRun.id,
            status: latestRun.status,
            trigger: latestRun.trigger,
            reason: latestRun.reason,
            createdAt: latestRun.createdAt,
            updatedAt: latestRun.updatedAt,
          }
        : null,
    });
  });
  return app;
}

// The model registry over HTTP, deploys and rollbacks, and box assist.
import { Hono, type Context } from 'hono';
import { z } from 'zod';
import { deploymentProgress, deployVersion, rollbackVersion, type DeployOutcome } from '../../control/deploy.ts';
import { getFrame } from '../../db/frames.ts';
import { boxAssistBytesDecoded, boxAssistSeconds } from '../../observability/metrics.ts';
import { registerModel, RegistryError } from '../../models/registry.ts';
import { deploymentHistory, getModel, listModels, productionModel } from '../../db/models.ts';
import { Lru } from '../lru.ts';
import type { ApiDeps, AppEnv } from '../env.ts';
import { parseOrThrow, ProblemError, readJson, UUID } from '../problem.ts';

const kindSchema = z.enum(['detection', 'box']);
const deploymentId = z.coerce
  .number()
  .int()
  .min(1)
  .max(2 ** 31 - 1);

const boxRequest = z
  .object({
    frameId: z.string().regex(UUID, 'frameId must be a frame id (uuid)'),
    region: z
      .object({ x1: z.number().finite(), y1: z.number().finite(), x2: z.number().finite(), y2: z.number().finite() })
      .strict()
      .refine((r) => r.x2 > r.x1 && r.y2 > r.y1, { message: 'the region has zero or negative size (x2 must exceed x1, y2 must exceed y1)', path: ['x2'] }),
  })
  .strict();

function registryProblem(err: unknown): never {
  if (err instanceof RegistryError) {
    const status = { invalid_model: 422, version_conflict: 409, not_found: 404, no_previous_version: 409 }[err.code] as 404 | 409 | 422;
    throw new ProblemError(status, 'Model refused', err.message, undefined, err.code);
  }
  throw err;
}

export function modelRoutes(deps: ApiDeps) {
  const app = new Hono<AppEnv>();
  // Box assist answers within a reviewer's gesture, so it avoids repeat work: a frame's row and
  // bytes never change (content-addressed), and reviewers ask about the same frame repeatedly.
  const frameRows = new Lru<string, { storageKey: string; width: number; height: number }>(10_000);
  const frameBytes = new Lru<string, Buffer>(64);
  let boxVersion: { version: string | null; at: number } = { version: null, at: 0 };
  const productionBoxVersion = async () => {
    // Re-read at most once a second: a deploy reaches box assist within a second.
    if (Date.now() - boxVersion.at > 1000) boxVersion = { version: (await productionModel(deps.db, 'box'))?.version ?? null, at: Date.now() };
    return boxVersion.version;
  };
  const kindOf = (raw: string) => parseOrThrow(kindSchema, raw, 'invalid model kind', 'kind');
  const deployDeps = { db: deps.db, loopControl: deps.loopControl, warm: (kind: 'detection' | 'box', v: string) => deps.models.warm(kind, v) };

  app.get('/v1/models', async (c) => {
    const kind = c.req.query('kind');
    return c.json({ models: await listModels(deps.db, kind ? kindOf(kind) : undefined) });
  });

  app.get('/v1/models/:kind/:version', async (c) => {
    const row = await getModel(deps.db, kindOf(c.req.param('kind')), c.req.param('version'));
    if (!row) throw new ProblemError(404, 'Not found', `no ${c.req.param('kind')} model ${c.req.param('version')}`, undefined, 'not_found');
    return c.json({ model: row });
  });

  // Upload an ONNX file (application/octet-stream). The version comes from ?version= or from
  // the model's metadata; the file must meet the contract or nothing is stored.
  app.post('/v1/models/:kind', async (c) => {
    const kind = kindOf(c.req.param('kind'));
    const bytes = new Uint8Array(await c.req.arrayBuffer());
    if (bytes.length === 0)
      throw new ProblemError(400, 'Invalid input', 'send the ONNX file as the request body', [{ field: 'body', message: 'empty' }], 'invalid_input');
    const row = await registerModel(deps.db, deps.store, { kind, bytes, version: c.req.query('version') || undefined }).catch(registryProblem);
    return c.json({ model: row }, 201);
  });

  // 200 when every running loop confirmed the deployment; 202 naming the loops still pending
  // (their next batch reads the registry and catches up; GET /v1/deployments/:id shows it).
  const answer = (c: Context<AppEnv>, result: DeployOutcome) =>
    c.json({ ...result, statusUrl: `/v1/deployments/${result.deploymentId}` }, result.pending.length ? 202 : 200);

  app.post('/v1/models/:kind/:version/deploy', async (c) => {
    const kind = kindOf(c.req.param('kind'));
    const result = await deployVersion(deployDeps, kind, c.req.param('version'), {
      triggeredBy: c.get('user').name,
      reason: c.req.query('reason') ?? 'manual deploy',
    }).catch(registryProblem);
    return answer(c, result);
  });

  app.post('/v1/models/:kind/rollback', async (c) => {
    const kind = kindOf(c.req.param('kind'));
    const to = c.req.query('version') || undefined;
    const result = await rollbackVersion(deployDeps, kind, { triggeredBy: c.get('user').name, reason: c.req.query('reason') ?? 'manual rollback' }, to).catch(
      registryProblem,
    );
    return answer(c, result);
  });

  app.get('/v1/deployments', async (c) => {
    const kind = c.req.query('kind');
    return c.json({ deployments: await deploymentHistory(deps.db, kind ? kindOf(kind) : undefined) });
  });

  app.get('/v1/deployments/:id', async (c) => {
    const id = parseOrThrow(deploymentId, c.req.param('id'), 'invalid deployment id', 'id');
    const progress = await deploymentProgress(deployDeps, id);
    if (!progress) throw new ProblemError(404, 'Not found', `deployment ${id} does not exist`, undefined, 'not_found');
    return c.json(progress);
  });

  // Box assist: stateless; reads only the part of the frame the crop needs.
  app.post('/v1/box-predictions', async (c) => {
    const started = performance.now();
    const input = parseOrThrow(boxRequest, await readJson(c), 'invalid box request');
    let frame = frameRows.get(input.frameId);
    if (!frame) {
      const row = await getFrame(deps.db, input.frameId);
      if (row) frameRows.set(input.frameId, (frame = { storageKey: row.storageKey, width: row.width, height: row.height }));
    }
    if (!frame)
      throw new ProblemError(404, 'Not found', `frame ${input.frameId} does not exist`, [{ field: 'frameId', message: 'unknown frame' }], 'unknown_frame');
    const r = input.region;
    if (r.x1 < 0 || r.y1 < 0 || r.x2 > frame.width || r.y2 > frame.height) {
      throw new ProblemError(
        400,
        'Invalid input',
        `the region must lie inside the ${frame.width}x${frame.height} frame`,
        [{ field: 'region', message: 'outside the frame' }],
        'invalid_input',
      );
    }
    const version = await productionBoxVersion();
    if (!version) throw new ProblemError(503, 'No box model', 'no box model is in production yet', undefined, 'no_model');
    let bytes = frameBytes.get(frame.storageKey);
    if (!bytes) {
      bytes = await deps.store.get(frame.storageKey);
      frameBytes.set(frame.storageKey, bytes);
    }
    const refined = await deps.models.refine(version, bytes, r);
    const latencyMs = performance.now() - started;
    boxAssistSeconds.observe({ model_version: version }, latencyMs / 1000);
    boxAssistBytesDecoded.observe(refined.bytesDecoded);
    return c.json({
      box: refined.box,
      score: refined.score,
      modelVersion: version,
      bytesDecoded: refined.bytesDecoded,
      frameBytes: refined.frameBytes,
      latencyMs,
    });
  });

  return app;
}

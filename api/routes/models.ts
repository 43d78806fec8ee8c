// The model registry over HTTP, deploys and rollbacks, and box assist.
import { Hono, type Context } from 'hono';
import { z } from 'zod';
import { deploymentProgress, deployVersion, rollbackVersion, type DeployOutcome } from '../../control/deploy.ts';
import { getFrame } from '../../db/frames.ts';
import { boxAssistBytesDecoded, boxAssistSeconds } from '../../observability/metrics.ts';
import { decodeRgb, type RgbImage } from '../../models/preprocess.ts';
import { registerModel, registerVariant, RegistryError } from '../../models/registry.ts';
import { deploymentHistory, getModel, listModels, productionModel } from '../../db/models.ts';
import { LRUCache } from 'lru-cache';
import type { ApiDeps, AppEnv } from '../env.ts';
import { defineOperation, handle } from '../operation.ts';
import { ProblemError, UUID } from '../problem.ts';
import { deploymentProgressSchema, deploymentSchema, deployOutcomeSchema, modelSchema } from '../schemas.ts';

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

const kindParam = z.object({ kind: kindSchema });
const kindQuery = z.object({ kind: kindSchema.optional() });
const reasonQuery = z.object({ reason: z.string().max(500).optional() });
const modelAnswer = { description: 'the model', schema: z.object({ model: modelSchema }) };
const deployAnswers = {
  200: { description: 'every running loop confirmed', schema: deployOutcomeSchema },
  202: { description: 'done; the loops named in `pending` have not confirmed yet (see statusUrl)', schema: deployOutcomeSchema },
};

export const modelOperations = {
  list: defineOperation({
    method: 'get',
    path: '/v1/models',
    summary: 'Registered models, newest first',
    query: kindQuery,
    responses: { 200: { description: 'models', schema: z.object({ models: z.array(modelSchema) }) } },
  }),
  get: defineOperation({
    method: 'get',
    path: '/v1/models/{kind}/{version}',
    summary: 'One model',
    params: z.object({ kind: kindSchema, version: z.string() }),
    responses: { 200: modelAnswer },
  }),
  register: defineOperation({
    method: 'post',
    path: '/v1/models/{kind}',
    summary: 'Register an ONNX model (validated and probed; refused if it does not meet the contract)',
    params: kindParam,
    query: z.object({ version: z.string().max(100).optional().describe("defaults to the version in the model's metadata") }),
    rawBody: { 'application/octet-stream': 'the ONNX file' },
    responses: { 201: { description: 'registered', schema: z.object({ model: modelSchema }) } },
    problems: [409, 422],
  }),
  registerVariant: defineOperation({
    method: 'post',
    path: '/v1/models/{kind}/{version}/variants/{precision}',
    summary:
      'Register another encoding of a registered version (an INT8 detector quantised elsewhere): same classes and input size, metadata_props.precision saying what it is; loops serve it per DETECTOR_PRECISION',
    params: z.object({ kind: kindSchema, version: z.string(), precision: z.enum(['int8']) }),
    rawBody: { 'application/octet-stream': 'the ONNX file' },
    responses: { 201: { description: 'registered', schema: z.object({ model: modelSchema }) } },
    problems: [404, 409, 422],
  }),
  deploy: defineOperation({
    method: 'post',
    path: '/v1/models/{kind}/{version}/deploy',
    summary: 'Make a version production and switch running loops at their next batch',
    params: z.object({ kind: kindSchema, version: z.string() }),
    query: reasonQuery,
    responses: deployAnswers,
  }),
  rollback: defineOperation({
    method: 'post',
    path: '/v1/models/{kind}/rollback',
    summary: 'Roll back to the previous (or a given) version; running loops switch at their next batch',
    params: kindParam,
    query: reasonQuery.extend({ version: z.string().max(100).optional().describe('the version to go back to; the previous one when omitted') }),
    responses: deployAnswers,
    problems: [409],
  }),
  deployments: defineOperation({
    method: 'get',
    path: '/v1/deployments',
    summary: 'Deployment history, newest first',
    query: kindQuery,
    responses: { 200: { description: 'deployments', schema: z.object({ deployments: z.array(deploymentSchema) }) } },
  }),
  deployment: defineOperation({
    method: 'get',
    path: '/v1/deployments/{id}',
    summary: 'One deployment and where each running loop stands (confirmed or pending)',
    params: z.object({ id: deploymentId }),
    responses: { 200: { description: 'the deployment', schema: deploymentProgressSchema } },
  }),
  boxAssist: defineOperation({
    method: 'post',
    path: '/v1/box-predictions',
    summary: 'Box assist: refine a rough region with the production box model',
    body: boxRequest,
    bodyName: 'invalid box request',
    responses: {
      200: {
        description: 'the refined box in frame pixels',
        schema: z.object({
          box: z.object({ x1: z.number(), y1: z.number(), x2: z.number(), y2: z.number() }),
          score: z.number(),
          modelVersion: z.string(),
          bytesDecoded: z
            .number()
            .int()
            .describe('bytes of pixels decoded for this answer: the whole frame at the first ask about a small one, then 0; the region only for a large one'),
          frameBytes: z.number().int().describe('pixels of the whole frame'),
          latencyMs: z.number(),
          timings: z
            .object({ frame: z.number(), crop: z.number(), inference: z.number() })
            .describe(
              'ms spent finding the frame and its pixels (decoding a small frame at its first ask), cropping the region, and running the model (also sent as Server-Timing)',
            ),
        }),
      },
    },
    problems: [503],
  }),
};

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
  // pixels never change (content-addressed), and reviewers ask about the same frame repeatedly.
  const frameRows = new LRUCache<string, { storageKey: string; width: number; height: number }>({ max: 10_000 });
  // A frame whose decoded pixels take at most 1/16 of the cache is decoded whole at the first ask
  // and kept decoded, so the next asks decode nothing (at 16 clients decoding was two thirds of
  // the server's time). A larger frame is kept encoded and each ask decodes only its region, so a
  // 40 MP frame never sits decoded in memory. Bounded by bytes, not count.
  const decodeWholeUpTo = deps.config.BOX_ASSIST_CACHE_BYTES / 16;
  const framePixels = new LRUCache<string, Uint8Array | RgbImage>({
    max: 1024,
    maxSize: deps.config.BOX_ASSIST_CACHE_BYTES,
    sizeCalculation: (v) => Math.max(1, v instanceof Uint8Array ? v.length : v.data.length),
  });
  let boxVersion: { version: string | null; at: number } = { version: null, at: 0 };
  const productionBoxVersion = async () => {
    // Re-read at most once a second: a deploy reaches box assist within a second.
    if (Date.now() - boxVersion.at > 1000) boxVersion = { version: (await productionModel(deps.db, 'box'))?.version ?? null, at: Date.now() };
    return boxVersion.version;
  };
  const deployDeps = { db: deps.db, loopControl: deps.loopControl, warm: (kind: 'detection' | 'box', v: string) => deps.models.warm(kind, v) };

  handle(app, modelOperations.list, async (c, { query }) => c.json({ models: await listModels(deps.db, query.kind) }));

  handle(app, modelOperations.get, async (c, { params: { kind, version } }) => {
    const row = await getModel(deps.db, kind, version);
    if (!row) throw new ProblemError(404, 'Not found', `no ${kind} model ${version}`, undefined, 'not_found');
    return c.json({ model: row });
  });

  // Upload an ONNX file (application/octet-stream). The version comes from ?version= or from
  // the model's metadata; the file must meet the contract or nothing is stored.
  handle(app, modelOperations.register, async (c, { params: { kind }, query }) => {
    const bytes = new Uint8Array(await c.req.arrayBuffer());
    if (bytes.length === 0)
      throw new ProblemError(400, 'Invalid input', 'send the ONNX file as the request body', [{ field: 'body', message: 'empty' }], 'invalid_input');
    const row = await registerModel(deps.db, deps.store, { kind, bytes, version: query.version || undefined }).catch(registryProblem);
    return c.json({ model: row }, 201);
  });

  // Loops that already run the version keep the encoding they loaded until it is evicted or the
  // worker restarts; a deploy of a new version picks the variant up at once.
  handle(app, modelOperations.registerVariant, async (c, { params: { kind, version, precision } }) => {
    const bytes = new Uint8Array(await c.req.arrayBuffer());
    if (bytes.length === 0)
      throw new ProblemError(400, 'Invalid input', 'send the ONNX file as the request body', [{ field: 'body', message: 'empty' }], 'invalid_input');
    const row = await registerVariant(deps.db, deps.store, { kind, version, precision, bytes }).catch(registryProblem);
    return c.json({ model: row }, 201);
  });

  // 200 when every running loop confirmed the deployment; 202 naming the loops still pending
  // (their next batch reads the registry and catches up; GET /v1/deployments/:id shows it).
  const answer = (c: Context<AppEnv>, result: DeployOutcome) =>
    c.json({ ...result, statusUrl: `/v1/deployments/${result.deploymentId}` }, result.pending.length ? 202 : 200);

  handle(app, modelOperations.deploy, async (c, { params: { kind, version }, query }) => {
    const result = await deployVersion(deployDeps, kind, version, {
      triggeredBy: c.get('user').name,
      reason: query.reason ?? 'manual deploy',
    }).catch(registryProblem);
    return answer(c, result);
  });

  handle(app, modelOperations.rollback, async (c, { params: { kind }, query }) => {
    const to = query.version || undefined;
    const result = await rollbackVersion(deployDeps, kind, { triggeredBy: c.get('user').name, reason: query.reason ?? 'manual rollback' }, to).catch(
      registryProblem,
    );
    return answer(c, result);
  });

  handle(app, modelOperations.deployments, async (c, { query }) => c.json({ deployments: await deploymentHistory(deps.db, query.kind) }));

  handle(app, modelOperations.deployment, async (c, { params: { id } }) => {
    const progress = await deploymentProgress(deployDeps, id);
    if (!progress) throw new ProblemError(404, 'Not found', `deployment ${id} does not exist`, undefined, 'not_found');
    return c.json(progress);
  });

  // Box assist: stateless; reads only the part of the frame the crop needs.
  handle(app, modelOperations.boxAssist, async (c, { body: input }) => {
    const started = performance.now();
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
    let pixels = framePixels.get(frame.storageKey);
    let decodedWhole = 0;
    if (!pixels) {
      const bytes = await deps.store.get(frame.storageKey);
      if (frame.width * frame.height * 3 <= decodeWholeUpTo) {
        pixels = await decodeRgb(bytes);
        decodedWhole = pixels.data.length;
      } else pixels = bytes;
      framePixels.set(frame.storageKey, pixels);
    }
    const frameMs = performance.now() - started;
    const refined = await deps.models.refine(version, pixels, r);
    const latencyMs = performance.now() - started;
    const bytesDecoded = decodedWhole + refined.bytesDecoded;
    boxAssistSeconds.observe({ model_version: version }, latencyMs / 1000);
    boxAssistBytesDecoded.observe(bytesDecoded);
    const timings = { frame: frameMs, crop: refined.timings.crop, inference: refined.timings.inference };
    // Browsers show Server-Timing in their developer tools: where a slow answer spent its time.
    c.header('Server-Timing', [...Object.entries(timings), ['total', latencyMs] as const].map(([k, v]) => `${k};dur=${v.toFixed(2)}`).join(', '));
    return c.json({
      box: refined.box,
      score: refined.score,
      modelVersion: version,
      bytesDecoded,
      frameBytes: refined.frameBytes,
      latencyMs,
      timings,
    });
  });

  return app;
}

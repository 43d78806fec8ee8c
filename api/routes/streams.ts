// Streams, their loops and their sampling policies.
import { Hono } from 'hono';
import { z } from 'zod';
import { getPolicy, currentPolicy, listPolicyVersions, savePolicy } from '../../db/policies.ts';
import { audit } from '../../db/audit.ts';
import { createStream, getStream, listStreams } from '../../db/streams.ts';
import { samplingPolicySchema } from '../../policies/sampling-policy.ts';
import { LoopUnavailableError } from '../../control/loop-control.ts';
import type { ApiDeps, AppEnv } from '../env.ts';
import { defineOperation, handle } from '../operation.ts';
import { ProblemError } from '../problem.ts';
import { loopOfStreamSchema, storedPolicySchema, streamSchema } from '../schemas.ts';

const streamInput = z
  .object({
    id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'id must be 1-63 lowercase letters, digits or "-", starting with a letter or digit'),
    name: z.string().min(1).max(200).optional(),
  })
  .strict();

const streamId = z.object({ id: z.string() });
const withLoop = streamSchema.extend(loopOfStreamSchema);
const requested = (action: string) => ({ description: 'requested', schema: z.object({ streamId: z.string(), requested: z.literal(action) }) });

export const streamOperations = {
  create: defineOperation({
    method: 'post',
    path: '/v1/streams',
    summary: 'Create a stream (idempotent) and start its loop',
    body: streamInput,
    bodyName: 'invalid stream',
    responses: {
      201: { description: 'created', schema: z.object({ stream: streamSchema }) },
      200: { description: 'existed already', schema: z.object({ stream: streamSchema }) },
    },
  }),
  list: defineOperation({
    method: 'get',
    path: '/v1/streams',
    summary: 'Streams with frame counts, open tasks and loop status',
    responses: {
      200: {
        description: 'streams by id',
        schema: z.object({ streams: z.array(withLoop.extend({ frames: z.number().int(), pendingTasks: z.number().int() })) }),
      },
    },
  }),
  get: defineOperation({
    method: 'get',
    path: '/v1/streams/{id}',
    summary: 'One stream, its policy and loop status',
    params: streamId,
    responses: { 200: { description: 'the stream', schema: z.object({ stream: streamSchema, policy: storedPolicySchema.nullable(), ...loopOfStreamSchema }) } },
  }),
  pause: defineOperation({
    method: 'post',
    path: '/v1/streams/{id}/pause',
    summary: 'Pause the loop after its current batch',
    params: streamId,
    responses: { 202: requested('pause') },
  }),
  resume: defineOperation({
    method: 'post',
    path: '/v1/streams/{id}/resume',
    summary: 'Resume the loop',
    params: streamId,
    responses: { 202: requested('resume') },
  }),
  policy: defineOperation({
    method: 'get',
    path: '/v1/streams/{id}/policy',
    summary: 'Current sampling policy',
    params: streamId,
    responses: { 200: { description: 'the newest version', schema: storedPolicySchema.partial({ id: true, createdBy: true, createdAt: true }) } },
  }),
  policies: defineOperation({
    method: 'get',
    path: '/v1/streams/{id}/policies',
    summary: 'All policy versions, newest first',
    params: streamId,
    responses: { 200: { description: 'versions', schema: z.object({ versions: z.array(storedPolicySchema) }) } },
  }),
  setPolicy: defineOperation({
    method: 'put',
    path: '/v1/streams/{id}/policy',
    summary: 'Store a new policy version; running loops switch at their next batch',
    params: streamId,
    body: samplingPolicySchema,
    bodyName: 'invalid sampling policy',
    responses: {
      201: {
        description: 'stored',
        schema: storedPolicySchema.extend({ appliedToLoop: z.boolean().describe('the running loop confirmed; otherwise its next batch reads the version') }),
      },
    },
  }),
};

export function streamRoutes(deps: ApiDeps) {
  const app = new Hono<AppEnv>();

  /** The loop's live status (a query), or what the server knows when no worker answers. */
  async function loopOf(streamId: string) {
    try {
      return { loop: await deps.loopControl.status(streamId), loopServer: null };
    } catch (err) {
      if (!(err instanceof LoopUnavailableError)) throw err;
      return { loop: null, loopServer: await deps.loopControl.describe(streamId).catch(() => null) };
    }
  }

  async function mustExist(id: string) {
    const stream = await getStream(deps.db, id);
    if (!stream) throw new ProblemError(404, 'Not found', `stream ${JSON.stringify(id)} does not exist`, undefined, 'unknown_stream');
    return stream;
  }

  handle(app, streamOperations.create, async (c, { body: input }) => {
    const { stream, created } = await createStream(deps.db, { id: input.id, name: input.name ?? input.id, createdBy: c.get('user').name });
    await deps.loopControl.ensureLoop(stream.id);
    if (created) await audit(deps.db, c.get('user').name, 'stream.create', stream.id);
    return c.json({ stream }, created ? 201 : 200);
  });

  handle(app, streamOperations.list, async (c) => {
    const streams = await listStreams(deps.db);
    const withStatus = await Promise.all(streams.map(async (s) => ({ ...s, ...(await loopOf(s.id)) })));
    return c.json({ streams: withStatus });
  });

  handle(app, streamOperations.get, async (c, { params }) => {
    const stream = await mustExist(params.id);
    const policy = await currentPolicy(deps.db, stream.id);
    return c.json({ stream, policy, ...(await loopOf(stream.id)) });
  });

  for (const action of ['pause', 'resume'] as const) {
    handle(app, streamOperations[action], async (c, { params }) => {
      const stream = await mustExist(params.id);
      await deps.loopControl[action](stream.id);
      await audit(deps.db, c.get('user').name, `stream.${action}`, stream.id);
      return c.json({ streamId: stream.id, requested: action }, 202);
    });
  }

  handle(app, streamOperations.policy, async (c, { params }) => {
    const stream = await mustExist(params.id);
    const stored = await currentPolicy(deps.db, stream.id);
    return c.json(stored ?? { streamId: stream.id, version: 1, policy: await getPolicy(deps.db, stream.id, 1) });
  });

  handle(app, streamOperations.policies, async (c, { params }) => {
    const stream = await mustExist(params.id);
    return c.json({ versions: await listPolicyVersions(deps.db, stream.id) });
  });

  handle(app, streamOperations.setPolicy, async (c, { params, body: policy }) => {
    const stream = await mustExist(params.id);
    const stored = await savePolicy(deps.db, stream.id, policy, c.get('user').name);
    await audit(deps.db, c.get('user').name, 'policy.set', stream.id, { version: stored.version });
    // The loop switches at its next batch. If it cannot confirm now (no worker running), its
    // next batch still reads this version from the database.
    let appliedToLoop = true;
    try {
      await deps.loopControl.setPolicy(stream.id, stored.version);
    } catch (err) {
      if (!(err instanceof LoopUnavailableError)) throw err;
      appliedToLoop = false;
    }
    return c.json({ ...stored, appliedToLoop }, 201);
  });

  return app;
}

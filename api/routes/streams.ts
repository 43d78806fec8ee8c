// Streams, their loops and their sampling policies.
import { Hono } from 'hono';
import { z } from 'zod';
import { getPolicy, currentPolicy, listPolicyVersions, savePolicy } from '../../db/policies.ts';
import { audit } from '../../db/audit.ts';
import { createStream, getStream, listStreams } from '../../db/streams.ts';
import { samplingPolicySchema } from '../../policies/sampling-policy.ts';
import { LoopUnavailableError } from '../../control/loop-control.ts';
import type { ApiDeps, AppEnv } from '../env.ts';
import { parseOrThrow, ProblemError, readJson } from '../problem.ts';

const streamInput = z
  .object({
    id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'id must be 1-63 lowercase letters, digits or "-", starting with a letter or digit'),
    name: z.string().min(1).max(200).optional(),
  })
  .strict();

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

  app.post('/v1/streams', async (c) => {
    const input = parseOrThrow(streamInput, await readJson(c), 'invalid stream');
    const { stream, created } = await createStream(deps.db, { id: input.id, name: input.name ?? input.id, createdBy: c.get('user').name });
    await deps.loopControl.ensureLoop(stream.id);
    if (created) await audit(deps.db, c.get('user').name, 'stream.create', stream.id);
    return c.json({ stream }, created ? 201 : 200);
  });

  app.get('/v1/streams', async (c) => {
    const streams = await listStreams(deps.db);
    const withStatus = await Promise.all(streams.map(async (s) => ({ ...s, ...(await loopOf(s.id)) })));
    return c.json({ streams: withStatus });
  });

  app.get('/v1/streams/:id', async (c) => {
    const stream = await mustExist(c.req.param('id'));
    const policy = await currentPolicy(deps.db, stream.id);
    return c.json({ stream, policy, ...(await loopOf(stream.id)) });
  });

  for (const action of ['pause', 'resume'] as const) {
    app.post(`/v1/streams/:id/${action}`, async (c) => {
      const stream = await mustExist(c.req.param('id'));
      await deps.loopControl[action](stream.id);
      await audit(deps.db, c.get('user').name, `stream.${action}`, stream.id);
      return c.json({ streamId: stream.id, requested: action }, 202);
    });
  }

  app.get('/v1/streams/:id/policy', async (c) => {
    const stream = await mustExist(c.req.param('id'));
    const stored = await currentPolicy(deps.db, stream.id);
    return c.json(stored ?? { streamId: stream.id, version: 1, policy: await getPolicy(deps.db, stream.id, 1) });
  });

  app.get('/v1/streams/:id/policies', async (c) => {
    const stream = await mustExist(c.req.param('id'));
    return c.json({ versions: await listPolicyVersions(deps.db, stream.id) });
  });

  app.put('/v1/streams/:id/policy', async (c) => {
    const stream = await mustExist(c.req.param('id'));
    const policy = parseOrThrow(samplingPolicySchema, await readJson(c), 'invalid sampling policy');
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

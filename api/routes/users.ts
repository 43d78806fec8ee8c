// Users (admin only, see api/access.ts). A token is returned once, at creation or rotation; it can
// expire, be revoked, and its user disabled. A camera is bound to the streams it sends into.
import { Hono } from 'hono';
import { z } from 'zod';
import { audit } from '../../db/audit.ts';
import { createUser, findUser, listUsers, revokeToken, ROLES, rotateToken, setDisabled } from '../../db/users.ts';
import type { ApiDeps, AppEnv } from '../env.ts';
import { parseOrThrow, ProblemError, readJson } from '../problem.ts';

const STREAM_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;
const CAMERA_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$/;
const MAX_TOKEN_DAYS = 3650;

const expiresInDays = z.number().int().min(1).max(MAX_TOKEN_DAYS).nullable().optional();
const userInput = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9._@-]{1,100}$/, 'name must be 1-100 letters, digits, ".", "_", "@" or "-"'),
    role: z.enum(ROLES as [string, ...string[]]),
    /** Camera tokens: the streams they may send frames to (required for cameras). */
    streams: z.array(z.string().regex(STREAM_ID, 'a stream id')).min(1).max(100).optional(),
    /** Camera tokens: the camera ids they may send as (omit for any). */
    cameraIds: z.array(z.string().regex(CAMERA_ID, 'a camera id')).min(1).max(1000).optional(),
    expiresInDays,
  })
  .strict()
  .refine((u) => u.role !== 'camera' || u.streams !== undefined, { message: 'a camera needs the streams it may send to', path: ['streams'] })
  .refine((u) => u.role === 'camera' || (u.streams === undefined && u.cameraIds === undefined), {
    message: 'only cameras are bound to streams',
    path: ['streams'],
  });
const rotateInput = z.object({ expiresInDays }).strict();

const expiry = (days: number | null | undefined) => (days ? new Date(Date.now() + days * 86_400_000) : null);

export function userRoutes(deps: ApiDeps) {
  const app = new Hono<AppEnv>();
  const changed = () => deps.forgetTokens?.();
  const mustExist = async (name: string) => {
    const user = await findUser(deps.db, name);
    if (!user) throw new ProblemError(404, 'Not found', `user ${JSON.stringify(name)} does not exist`, undefined, 'not_found');
    return user;
  };

  app.get('/v1/me', (c) => c.json({ user: c.get('user') }));

  app.get('/v1/users', async (c) => c.json({ users: await listUsers(deps.db) }));

  app.post('/v1/users', async (c) => {
    const input = parseOrThrow(userInput, await readJson(c), 'invalid user');
    if (await findUser(deps.db, input.name))
      throw new ProblemError(409, 'Conflict', `user ${input.name} exists; rotate their token instead`, [{ field: 'name', message: 'taken' }], 'exists');
    const { user, token } = await createUser(deps.db, {
      name: input.name,
      role: input.role as (typeof ROLES)[number],
      streams: input.streams ?? null,
      cameraIds: input.cameraIds ?? null,
      tokenExpiresAt: expiry(input.expiresInDays),
    });
    await audit(deps.db, c.get('user').name, 'user.create', user.name, {
      role: user.role,
      streams: user.streams,
      cameraIds: user.cameraIds,
      tokenExpiresAt: user.tokenExpiresAt,
    });
    return c.json({ user, token }, 201);
  });

  app.post('/v1/users/:name/token', async (c) => {
    const input = parseOrThrow(rotateInput, await readJson(c), 'invalid token request');
    await mustExist(c.req.param('name'));
    const token = await rotateToken(deps.db, c.req.param('name'), expiry(input.expiresInDays));
    changed();
    await audit(deps.db, c.get('user').name, 'user.rotate_token', c.req.param('name'), { expiresInDays: input.expiresInDays ?? null });
    return c.json({ token });
  });

  app.delete('/v1/users/:name/token', async (c) => {
    await mustExist(c.req.param('name'));
    await revokeToken(deps.db, c.req.param('name'));
    changed();
    await audit(deps.db, c.get('user').name, 'user.revoke_token', c.req.param('name'));
    return c.json({ revoked: c.req.param('name') });
  });

  for (const action of ['disable', 'enable'] as const) {
    app.post(`/v1/users/:name/${action}`, async (c) => {
      const name = c.req.param('name');
      await mustExist(name);
      if (action === 'disable' && name === c.get('user').name)
        throw new ProblemError(409, 'Conflict', 'an admin cannot disable themselves', [{ field: 'name', message: 'yourself' }], 'self');
      const user = await setDisabled(deps.db, name, action === 'disable');
      changed();
      await audit(deps.db, c.get('user').name, `user.${action}`, name);
      return c.json({ user });
    });
  }

  return app;
}

// Users (admin only, see api/access.ts). A token is returned once, at creation or rotation; it can
// expire, be revoked, and its user disabled. A camera is bound to the streams it sends into.
import { CAMERA_ID } from '../../ingest/ingest-frame.ts';
import { Hono } from 'hono';
import { z } from 'zod';
import { audit } from '../../db/audit.ts';
import { createUser, findUser, listUsers, revokeToken, ROLES, rotateToken, setDisabled } from '../../db/users.ts';
import type { ApiDeps, AppEnv } from '../env.ts';
import { defineOperation, handle } from '../operation.ts';
import { ProblemError } from '../problem.ts';
import { userSchema } from '../schemas.ts';

const STREAM_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;
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

const userName = z.object({ name: z.string() });
const userAnswer = { description: 'the user', schema: z.object({ user: userSchema }) };
const tokenOnce = z.string().describe('the bearer token; shown this once');

export const userOperations = {
  me: defineOperation({
    method: 'get',
    path: '/v1/me',
    summary: 'The authenticated user',
    responses: {
      200: {
        description: 'who the token belongs to',
        schema: z.object({ user: userSchema.pick({ id: true, name: true, role: true, streams: true, cameraIds: true }) }),
      },
    },
  }),
  list: defineOperation({
    method: 'get',
    path: '/v1/users',
    summary: 'Users with role, camera binding, token expiry and disabled state (never tokens)',
    responses: { 200: { description: 'users by name', schema: z.object({ users: z.array(userSchema) }) } },
  }),
  create: defineOperation({
    method: 'post',
    path: '/v1/users',
    summary: 'Create a user; returns their token once. Cameras are bound to streams (and optionally camera ids)',
    body: userInput,
    bodyName: 'invalid user',
    responses: { 201: { description: 'created', schema: z.object({ user: userSchema, token: tokenOnce }) } },
    problems: [409],
  }),
  rotateToken: defineOperation({
    method: 'post',
    path: '/v1/users/{name}/token',
    summary: 'Rotate a user token (the old one stops working); optionally with an expiry',
    params: userName,
    body: rotateInput,
    bodyName: 'invalid token request',
    responses: { 200: { description: 'the new token', schema: z.object({ token: tokenOnce }) } },
  }),
  revokeToken: defineOperation({
    method: 'delete',
    path: '/v1/users/{name}/token',
    summary: 'Revoke a user token without issuing a new one',
    params: userName,
    responses: { 200: { description: 'revoked', schema: z.object({ revoked: z.string() }) } },
  }),
  disable: defineOperation({
    method: 'post',
    path: '/v1/users/{name}/disable',
    summary: 'Disable a user: every token of theirs is refused',
    params: userName,
    responses: { 200: userAnswer },
    problems: [409],
  }),
  enable: defineOperation({
    method: 'post',
    path: '/v1/users/{name}/enable',
    summary: 'Enable a disabled user again',
    params: userName,
    responses: { 200: userAnswer },
  }),
};

const expiry = (days: number | null | undefined) => (days ? new Date(Date.now() + days * 86_400_000) : null);

export function userRoutes(deps: ApiDeps) {
  const app = new Hono<AppEnv>();
  const changed = () => deps.forgetTokens?.();
  const mustExist = async (name: string) => {
    const user = await findUser(deps.db, name);
    if (!user) throw new ProblemError(404, 'Not found', `user ${JSON.stringify(name)} does not exist`, undefined, 'not_found');
    return user;
  };

  handle(app, userOperations.me, async (c) => c.json({ user: c.get('user') }));

  handle(app, userOperations.list, async (c) => c.json({ users: await listUsers(deps.db) }));

  handle(app, userOperations.create, async (c, { body: input }) => {
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

  handle(app, userOperations.rotateToken, async (c, { params: { name }, body: input }) => {
    await mustExist(name);
    const token = await rotateToken(deps.db, name, expiry(input.expiresInDays));
    changed();
    await audit(deps.db, c.get('user').name, 'user.rotate_token', name, { expiresInDays: input.expiresInDays ?? null });
    return c.json({ token });
  });

  handle(app, userOperations.revokeToken, async (c, { params: { name } }) => {
    await mustExist(name);
    await revokeToken(deps.db, name);
    changed();
    await audit(deps.db, c.get('user').name, 'user.revoke_token', name);
    return c.json({ revoked: name });
  });

  for (const action of ['disable', 'enable'] as const) {
    handle(app, userOperations[action], async (c, { params: { name } }) => {
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

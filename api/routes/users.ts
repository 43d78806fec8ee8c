// Users (admin only). The token is returned once, at creation or rotation.
import { Hono } from 'hono';
import { z } from 'zod';
import { createUser, findUser, ROLES, rotateToken } from '../../db/users.ts';
import { auditLog } from '../../db/schema.ts';
import { requireRole } from '../auth.ts';
import type { ApiDeps, AppEnv } from '../env.ts';
import { parseOrThrow, ProblemError, readJson } from '../problem.ts';

const userInput = z.object({ name: z.string().regex(/^[A-Za-z0-9._@-]{1,100}$/, 'name must be 1-100 letters, digits, ".", "_", "@" or "-"'), role: z.enum(ROLES as [string, ...string[]]) }).strict();

export function userRoutes(deps: ApiDeps) {
  const app = new Hono<AppEnv>();
  app.get('/v1/me', (c) => c.json({ user: c.get('user') }));

  app.post('/v1/users', requireRole('admin'), async (c) => {
    const input = parseOrThrow(userInput, await readJson(c), 'invalid user');
    if (await findUser(deps.db, input.name)) throw new ProblemError(409, 'Conflict', `user ${input.name} exists; rotate their token instead`, [{ field: 'name', message: 'taken' }], 'exists');
    const { user, token } = await createUser(deps.db, input as { name: string; role: 'reviewer' });
    await deps.db.insert(auditLog).values({ actor: c.get('user').name, action: 'user.create', target: user.name, details: { role: user.role } });
    return c.json({ user, token }, 201);
  });

  app.post('/v1/users/:name/token', requireRole('admin'), async (c) => {
    const token = await rotateToken(deps.db, c.req.param('name'));
    if (!token) throw new ProblemError(404, 'Not found', `user ${c.req.param('name')} does not exist`, undefined, 'not_found');
    await deps.db.insert(auditLog).values({ actor: c.get('user').name, action: 'user.rotate_token', target: c.req.param('name') });
    return c.json({ token });
  });
  return app;
}

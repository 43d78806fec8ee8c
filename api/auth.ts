// Bearer-token authentication and role checks. Roles: reviewer (works the queue), lead (also
// sets policies, streams, models), admin (everything, including users), camera (ingest only).
import type { MiddlewareHandler } from 'hono';
import { authenticate, type Role } from '../db/users.ts';
import type { ApiDeps, AppEnv } from './env.ts';
import { ProblemError } from './problem.ts';

export function authenticated(deps: ApiDeps): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const header = c.req.header('authorization') ?? '';
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) {
      c.header('WWW-Authenticate', 'Bearer');
      throw new ProblemError(401, 'Unauthorized', 'send Authorization: Bearer <token>', undefined, 'unauthenticated');
    }
    const user = await authenticate(deps.db, match[1]);
    if (!user) {
      c.header('WWW-Authenticate', 'Bearer error="invalid_token"');
      throw new ProblemError(401, 'Unauthorized', 'the token is not valid', undefined, 'invalid_token');
    }
    c.set('user', user);
    await next();
  };
}

export function requireRole(...roles: Role[]): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const user = c.get('user');
    if (!roles.includes(user.role) && user.role !== 'admin') {
      throw new ProblemError(403, 'Forbidden', `this needs the role ${roles.join(' or ')}; you are ${user.role}`, undefined, 'forbidden');
    }
    await next();
  };
}

// Bearer-token authentication and role checks. Roles: reviewer (works the queue), lead (also
// sets policies, streams, models), admin (everything, including users), camera (ingest only).
import type { MiddlewareHandler } from 'hono';
import { authenticate, type Role, type User } from '../db/users.ts';
import { Lru } from './lru.ts';
import type { ApiDeps, AppEnv } from './env.ts';
import { ProblemError } from './problem.ts';

/** A rotated token stops working within this many milliseconds on every API process. */
const TOKEN_CACHE_MS = 5000;

export function authenticated(deps: ApiDeps): MiddlewareHandler<AppEnv> {
  // Every request is authenticated; remembering recent tokens briefly keeps a database round
  // trip off hot paths such as box assist.
  const recent = new Lru<string, { user: User; at: number }>(1000);
  const lookup = async (token: string) => {
    const hit = recent.get(token);
    if (hit && Date.now() - hit.at < TOKEN_CACHE_MS) return hit.user;
    const user = await authenticate(deps.db, token);
    if (user) recent.set(token, { user, at: Date.now() });
    return user;
  };
  return async (c, next) => {
    const header = c.req.header('authorization') ?? '';
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) {
      c.header('WWW-Authenticate', 'Bearer');
      throw new ProblemError(401, 'Unauthorized', 'send Authorization: Bearer <token>', undefined, 'unauthenticated');
    }
    const user = await lookup(match[1]);
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

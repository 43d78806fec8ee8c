// Bearer-token authentication. Which role may call which route is api/access.ts; this module
// answers who the caller is, refuses expired, revoked and disabled tokens, and slows down token
// guessing: a client address with too many failed attempts in a minute gets 429 for a while.
import type { MiddlewareHandler } from 'hono';
import { getConnInfo } from '@hono/node-server/conninfo';
import { authenticate, type User } from '../db/users.ts';
import { LRUCache } from 'lru-cache';
import type { ApiDeps, AppEnv } from './env.ts';
import { ProblemError } from './problem.ts';

/** A rotated, revoked or disabled token stops working within this many milliseconds on every API process. */
const TOKEN_CACHE_MS = 5000;
const FAILURE_WINDOW_MS = 60_000;

export interface Authenticator {
  middleware: MiddlewareHandler<AppEnv>;
  /** Forgets cached tokens, so a change made by this process applies to its next request. */
  forget: () => void;
}

/** The socket's address. Forwarded headers are not trusted: any client can write them. */
function clientAddress(c: Parameters<MiddlewareHandler<AppEnv>>[0]): string {
  try {
    return getConnInfo(c).remote.address ?? 'unknown';
  } catch {
    return 'unknown'; // no socket (in-process requests in tests)
  }
}

export function createAuthenticator(deps: ApiDeps): Authenticator {
  // Every request is authenticated; remembering recent tokens briefly keeps a database round
  // trip off hot paths such as box assist.
  const recent = new LRUCache<string, { user: User; at: number }>({ max: 1000 });
  // Failed attempts per client address in the current window; bounded, so a flood of addresses
  // cannot grow it without limit.
  const failures = new LRUCache<string, { count: number; since: number }>({ max: 10_000 });
  const limit = deps.config.AUTH_MAX_FAILURES_PER_MINUTE;

  const lookup = async (token: string) => {
    const hit = recent.get(token);
    if (hit && Date.now() - hit.at < TOKEN_CACHE_MS) return { user: hit.user } as const;
    const outcome = await authenticate(deps.db, token);
    if ('user' in outcome) recent.set(token, { user: outcome.user, at: Date.now() });
    return outcome;
  };

  const middleware: MiddlewareHandler<AppEnv> = async (c, next) => {
    const address = clientAddress(c);
    const now = Date.now();
    const failed = failures.get(address);
    if (failed && now - failed.since < FAILURE_WINDOW_MS && failed.count >= limit) {
      const retryAfter = Math.ceil((failed.since + FAILURE_WINDOW_MS - now) / 1000);
      c.header('Retry-After', String(retryAfter));
      throw new ProblemError(
        429,
        'Too many failed logins',
        `${failed.count} failed authentications from this address within a minute; try again in ${retryAfter} s`,
        undefined,
        'rate_limited',
      );
    }
    const refuse = (detail: string, code: string, challenge: string): never => {
      const current = failures.get(address);
      failures.set(address, current && now - current.since < FAILURE_WINDOW_MS ? { count: current.count + 1, since: current.since } : { count: 1, since: now });
      c.header('WWW-Authenticate', challenge);
      throw new ProblemError(401, 'Unauthorized', detail, undefined, code);
    };
    const header = c.req.header('authorization') ?? '';
    const match = /^Bearer ([A-Za-z0-9._~+/=-]{1,512})$/.exec(header);
    if (!match) return refuse('send Authorization: Bearer <token>', 'unauthenticated', 'Bearer');
    const outcome = await lookup(match[1]);
    if (!('user' in outcome)) {
      const why = { unknown: 'the token is not valid', expired: 'the token has expired; ask an admin for a new one', disabled: 'this user is disabled' }[
        outcome.refused
      ];
      return refuse(why, outcome.refused === 'unknown' ? 'invalid_token' : `token_${outcome.refused}`, 'Bearer error="invalid_token"');
    }
    c.set('user', outcome.user);
    await next();
  };
  return { middleware, forget: () => recent.clear() };
}

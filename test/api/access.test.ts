// Least privilege, checked the way an attacker with a stolen token would probe it: every
// operation of the OpenAPI document, called with a token of every role. The allowed roles come
// from the document's `x-roles` (written from api/access.ts, the table the API enforces), and a
// route the app serves without a rule fails the test. Then tokens that expire, are revoked or
// belong to a disabled user; camera tokens bound to streams and cameras; failed logins limited;
// security headers on the pages.
import fs from 'node:fs';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCESS, openApiPath } from '../../api/access.ts';
import { createApp } from '../../api/app.ts';
import { loadConfig } from '../../config.ts';
import type { DbHandle } from '../../db/client.ts';
import { users } from '../../db/schema.ts';
import type { Role } from '../../db/users.ts';
import { createTestDb } from '../helpers/db.ts';
import { auth, createTestPlatform, sampleFrames, type TestPlatform, stopStream } from '../helpers/platform.ts';

let handle: DbHandle;
let p: TestPlatform;
const STREAM = `acl-${Math.random().toString(36).slice(2, 8)}`;
const ROLES: Role[] = ['camera', 'reviewer', 'lead', 'admin'];
const json = (token: string) => auth(token, { 'Content-Type': 'application/json' });

beforeAll(async () => {
  handle = await createTestDb();
  p = await createTestPlatform(handle, { cameraStreams: [STREAM] });
  expect((await p.app.request('/v1/streams', { method: 'POST', headers: json(p.tokens.lead), body: JSON.stringify({ id: STREAM }) })).status).toBe(201);
});
afterAll(async () => {
  await stopStream(p, STREAM);
  await p.close();
  await handle.close();
});

/** Path parameters that exist where it is cheap (the stream) and are harmless elsewhere. */
const PARAMS: Record<string, string> = { id: STREAM, kind: 'detection', version: 'no-such-version', name: 'no-such-user', file: 'x.js' };
const fill = (route: string) =>
  route.replace(/\{(\w+)\}/g, (_, name: string) => {
    if (name === 'id' && route.startsWith('/v1/deployments')) return '999999';
    if (name === 'id' && /^\/v1\/(tasks|frames|drift\/reports)/.test(route)) return '00000000-0000-4000-8000-000000000000';
    if (name === 'id' && route.startsWith('/v1/retrain/runs')) return 'retrain-none';
    return PARAMS[name];
  });

describe('route x role matrix', () => {
  it('lets exactly the roles in x-roles call each operation, and every served route has a rule', async () => {
    const doc = await (await p.app.request('/v1/openapi.json')).json();
    const operations = Object.entries(doc.paths as Record<string, Record<string, { 'x-roles'?: Role[] }>>)
      .filter(([route]) => route.startsWith('/v1/') && route !== '/v1/openapi.json')
      .flatMap(([route, ops]) => Object.entries(ops).map(([method, op]) => ({ route, method: method.toUpperCase(), roles: op['x-roles'] })));

    // A route the app serves must be documented and have a rule.
    const served = [
      ...new Set(
        p.app.routes
          .filter((r) => r.method !== 'ALL' && r.path.startsWith('/v1/') && r.path !== '/v1/openapi.json')
          .map((r) => `${r.method} ${openApiPath(r.path)}`),
      ),
    ];
    expect(served.filter((key) => !ACCESS[key])).toEqual([]);
    expect(served.filter((key) => !operations.some((o) => `${o.method} ${o.route}` === key))).toEqual([]);
    expect(operations.filter((o) => !o.roles).map((o) => `${o.method} ${o.route}`)).toEqual([]);

    const wrong: string[] = [];
    for (const op of operations) {
      for (const role of ROLES) {
        // A body every route refuses (strict schemas name the unknown field), so an allowed call
        // changes nothing; the question is only whether the role got past the access check.
        const res = await p.app.request(fill(op.route), {
          method: op.method,
          headers: json(p.tokens[role]),
          body: op.method === 'GET' || op.method === 'DELETE' ? undefined : JSON.stringify({ probe: true }),
        });
        const allowed = op.roles!.includes(role);
        if (allowed ? res.status === 403 || res.status === 401 : res.status !== 403) wrong.push(`${role} ${op.method} ${op.route} -> ${res.status}`);
      }
    }
    expect(wrong).toEqual([]);
    // Every rule of the table is an operation of the document (no rule for a route that is gone).
    expect(operations.length).toBe(Object.keys(ACCESS).length);
  });
});

describe('tokens and users', () => {
  it('refuses expired, revoked and disabled tokens with the reason, and an enabled user works again', async () => {
    const admin = json(p.tokens.admin);
    const create = await p.app.request('/v1/users', {
      method: 'POST',
      headers: admin,
      body: JSON.stringify({ name: 'temp-lead', role: 'lead', expiresInDays: 30 }),
    });
    expect(create.status).toBe(201);
    const { token, user } = await create.json();
    expect(new Date(user.tokenExpiresAt).getTime()).toBeGreaterThan(Date.now() + 29 * 86_400_000);

    // Expired: the clock passes the expiry (before first use: this process caches good tokens for 5 s).
    await handle.db
      .update(users)
      .set({ tokenExpiresAt: new Date(Date.now() - 1000) })
      .where(eq(users.name, 'temp-lead'));
    const expired = await p.app.request('/v1/me', { headers: auth(token) });
    expect(expired.status).toBe(401);
    expect((await expired.json()).code).toBe('token_expired');

    // A new token, then revoked.
    const rotated = await (
      await p.app.request('/v1/users/temp-lead/token', { method: 'POST', headers: admin, body: JSON.stringify({ expiresInDays: 1 }) })
    ).json();
    expect((await p.app.request('/v1/me', { headers: auth(rotated.token) })).status).toBe(200);
    expect((await p.app.request('/v1/users/temp-lead/token', { method: 'DELETE', headers: admin })).status).toBe(200);
    expect((await p.app.request('/v1/me', { headers: auth(rotated.token) })).status).toBe(401);

    // Disabled and enabled again.
    const again = await (await p.app.request('/v1/users/temp-lead/token', { method: 'POST', headers: admin, body: '{}' })).json();
    expect((await p.app.request('/v1/users/temp-lead/disable', { method: 'POST', headers: admin })).status).toBe(200);
    const disabled = await p.app.request('/v1/streams', { headers: auth(again.token) });
    expect(disabled.status).toBe(401);
    expect((await disabled.json()).code).toBe('token_disabled');
    expect((await p.app.request('/v1/users/temp-lead/enable', { method: 'POST', headers: admin })).status).toBe(200);
    expect((await p.app.request('/v1/me', { headers: auth(again.token) })).status).toBe(200);
    // An admin cannot lock themselves out.
    expect((await p.app.request('/v1/users/admin/disable', { method: 'POST', headers: admin })).status).toBe(409);

    const listed = (await (await p.app.request('/v1/users', { headers: admin })).json()).users as Record<string, unknown>[];
    expect(listed.find((u) => u.name === 'temp-lead')).toMatchObject({ role: 'lead', disabledAt: null });
    expect(JSON.stringify(listed)).not.toMatch(/token_?hash/i);
  });

  it('binds a camera token to its streams and camera ids', async () => {
    const admin = json(p.tokens.admin);
    expect((await p.app.request('/v1/users', { method: 'POST', headers: admin, body: JSON.stringify({ name: 'cam-unbound', role: 'camera' }) })).status).toBe(
      400,
    );
    const made = await p.app.request('/v1/users', {
      method: 'POST',
      headers: admin,
      body: JSON.stringify({ name: 'cam-7', role: 'camera', streams: [STREAM], cameraIds: ['cam-7'] }),
    });
    expect(made.status).toBe(201);
    const { token } = await made.json();
    const png = fs.readFileSync(sampleFrames()[5].file);
    const post = (stream: string, camera: string) =>
      p.app.request(`/v1/streams/${stream}/frames?cameraId=${camera}`, { method: 'POST', headers: auth(token, { 'Content-Type': 'image/png' }), body: png });
    expect((await post(STREAM, 'cam-7')).status).toBe(201);
    const asOther = await post(STREAM, 'cam-8');
    expect(asOther.status).toBe(403);
    expect((await asOther.json()).errors[0].field).toBe('cameraId');
    expect((await post('other-stream', 'cam-7')).status).toBe(403);
    // And it reads nothing: not the streams, the queue, the models or a frame.
    for (const url of ['/v1/streams', '/v1/queue', '/v1/ops', '/v1/models', `/v1/streams/${STREAM}`])
      expect((await p.app.request(url, { headers: auth(token) })).status, url).toBe(403);
  });

  it('answers 429 with Retry-After after too many failed logins from one address', async () => {
    // An app of its own: the limit counts per process, and other tests share this one's.
    const app = createApp({ ...p.deps, config: loadConfig({ ...process.env, AUTH_MAX_FAILURES_PER_MINUTE: '3' }) });
    for (let i = 0; i < 3; i++) expect((await app.request('/v1/me', { headers: auth(`guess-${i}`) })).status).toBe(401);
    const limited = await app.request('/v1/me', { headers: auth(p.tokens.lead) });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await limited.json()).code).toBe('rate_limited');
  });

  it('sends security headers with the pages', async () => {
    for (const page of ['/', '/app/lead', '/app/ops']) {
      const res = await p.app.request(page);
      expect(res.status).toBe(200);
      const csp = res.headers.get('content-security-policy') ?? '';
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).toContain("script-src 'self'");
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('x-frame-options')).toBe('DENY');
    }
  });
});

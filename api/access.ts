// Who may call what: one table for the whole API, enforced by one middleware and published in
// the OpenAPI document (`x-roles`), so the rule a route follows is written once. A /v1 route
// without a rule is refused to everyone (deny by default), and the route x role test fails.
//
// Roles: camera = ingestion only, into the streams (and cameras) its token was issued for;
// reviewer = the review queue, the frames it shows and box assist; lead = streams, policies,
// models, deployments, drift, retraining, labels, operations; admin = users, and everything a
// lead may do (an admin can issue themselves any token, so withholding it would protect nothing).
import type { MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import type { Role, User } from '../db/users.ts';
import type { AppEnv } from './env.ts';
import { ProblemError } from './problem.ts';

const ANY: readonly Role[] = ['camera', 'reviewer', 'lead', 'admin'];
const REVIEW: readonly Role[] = ['reviewer', 'lead', 'admin'];
const LEAD: readonly Role[] = ['lead', 'admin'];
const ADMIN: readonly Role[] = ['admin'];

/** `METHOD /path/{param}` (the OpenAPI spelling) -> roles allowed. */
export const ACCESS: Readonly<Record<string, readonly Role[]>> = {
  'GET /v1/me': ANY,

  'GET /v1/users': ADMIN,
  'POST /v1/users': ADMIN,
  'POST /v1/users/{name}/token': ADMIN,
  'DELETE /v1/users/{name}/token': ADMIN,
  'POST /v1/users/{name}/disable': ADMIN,
  'POST /v1/users/{name}/enable': ADMIN,

  'POST /v1/streams/{id}/frames': ['camera', 'lead', 'admin'],
  'POST /v1/streams/{id}/videos': ['camera', 'lead', 'admin'],
  'GET /v1/videos': LEAD,
  'GET /v1/videos/{id}': LEAD,
  'POST /v1/videos/{id}/cancel': LEAD,

  'POST /v1/tasks/claim': REVIEW,
  'GET /v1/tasks/{id}': REVIEW,
  'POST /v1/tasks/{id}/submit': REVIEW,
  'POST /v1/tasks/{id}/release': REVIEW,
  'GET /v1/queue': REVIEW,
  'POST /v1/box-predictions': REVIEW,
  'GET /v1/frames/{id}': REVIEW,
  'GET /v1/frames/{id}/image': REVIEW,
  'GET /v1/objects/{id}': REVIEW,
  'GET /v1/objects/{id}/similar': REVIEW,
  'POST /v1/objects/search': REVIEW,
  'POST /v1/objects/labels': REVIEW,
  'GET /v1/objects/proposals': REVIEW,
  'POST /v1/objects/proposals/decisions': REVIEW,

  'GET /v1/frames': LEAD,
  'GET /v1/streams': LEAD,
  'POST /v1/streams': LEAD,
  'GET /v1/streams/{id}': LEAD,
  'POST /v1/streams/{id}/pause': LEAD,
  'POST /v1/streams/{id}/resume': LEAD,
  'GET /v1/streams/{id}/policy': LEAD,
  'PUT /v1/streams/{id}/policy': LEAD,
  'GET /v1/streams/{id}/policies': LEAD,
  'GET /v1/labels': LEAD,
  'GET /v1/labels/export': LEAD,
  'GET /v1/labels/export/yolo': LEAD,
  'POST /v1/streams/{id}/imports/coco': LEAD,
  'GET /v1/models': LEAD,
  'POST /v1/models/{kind}': LEAD,
  'GET /v1/models/{kind}/{version}': LEAD,
  'POST /v1/models/{kind}/{version}/variants/{precision}': LEAD,
  'POST /v1/models/{kind}/{version}/deploy': LEAD,
  'POST /v1/models/{kind}/rollback': LEAD,
  'GET /v1/deployments': LEAD,
  'GET /v1/deployments/{id}': LEAD,
  'GET /v1/drift/reports': LEAD,
  'GET /v1/drift/reports/{id}': LEAD,
  'GET /v1/streams/{id}/drift-settings': LEAD,
  'PUT /v1/streams/{id}/drift-settings': LEAD,
  'POST /v1/streams/{id}/drift/check': LEAD,
  'POST /v1/retrain': LEAD,
  'GET /v1/retrain/runs': LEAD,
  'GET /v1/retrain/runs/{id}': LEAD,
  'POST /v1/retrain/runs/{id}/approve': LEAD,
  'POST /v1/retrain/runs/{id}/reject': LEAD,
  'POST /v1/retrain/runs/{id}/cancel': LEAD,
  'GET /v1/retrain/schedule': LEAD,
  'PUT /v1/retrain/schedule': LEAD,
  'GET /v1/ops': LEAD,
  'GET /v1/reviewers': LEAD,
  'GET /v1/metrics/reviewers': LEAD,
  'POST /v1/reviewers/{name}/resume': LEAD,
  'GET /v1/gold': LEAD,
  'PUT /v1/frames/{id}/gold': LEAD,
  'DELETE /v1/frames/{id}/gold': LEAD,
  'GET /v1/consensus': LEAD,
  'POST /v1/tasks/{id}/adjudicate': LEAD,
};

/** Hono's `/v1/streams/:id` (with an optional `{regex}`) in OpenAPI spelling: `/v1/streams/{id}`. */
export const openApiPath = (honoPath: string) => honoPath.replace(/:(\w+)(\{[^}]*\})?/g, '{$1}');

/** The rule key (`METHOD /path/{param}`) of the route that will answer this request. */
export function routeKey(c: Parameters<MiddlewareHandler<AppEnv>>[0]): string | null {
  const handlers = matchedRoutes(c).filter((r) => r.method !== 'ALL');
  const last = handlers[handlers.length - 1];
  return last ? `${c.req.method === 'HEAD' ? 'GET' : c.req.method} ${openApiPath(last.path)}` : null;
}

/** Checks the authenticated user's role against the table (after `authenticated`). */
export function enforceAccess(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const key = routeKey(c);
    // No route matched: let the not-found handler answer 404.
    if (key === null) return next();
    const allowed = ACCESS[key];
    const user = c.get('user');
    if (!allowed) throw new ProblemError(403, 'Forbidden', `no access rule covers ${key}; refused to every role`, undefined, 'forbidden');
    if (!allowed.includes(user.role)) {
      throw new ProblemError(403, 'Forbidden', `${key} needs the role ${allowed.join(' or ')}; you are ${user.role}`, undefined, 'forbidden');
    }
    await next();
  };
}

/** A camera token sends frames and videos only into the streams (and as the cameras) it was issued for. */
export function assertCameraMaySend(user: User, streamId: string, cameraId: string): void {
  if (user.role !== 'camera') return;
  if (!user.streams?.includes(streamId)) {
    throw new ProblemError(
      403,
      'Forbidden',
      `this camera token may not send to stream ${JSON.stringify(streamId)}`,
      [{ field: 'id', message: 'not a stream of this token' }],
      'forbidden',
    );
  }
  if (user.cameraIds && !user.cameraIds.includes(cameraId)) {
    throw new ProblemError(
      403,
      'Forbidden',
      `this camera token may not send as camera ${JSON.stringify(cameraId)}`,
      [{ field: 'cameraId', message: 'not a camera of this token' }],
      'forbidden',
    );
  }
}

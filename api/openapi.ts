// The OpenAPI 3.1 description of the HTTP API, written by hand as data (the routes validate
// with zod; @hono/zod-openapi would mean a second way to declare every route). A test checks
// that every route the app serves is described here. Who may call each operation comes from
// api/access.ts (`x-roles`), the table the API enforces.
import { ACCESS } from './access.ts';

const problem = { description: 'Problem details (RFC 9457)', content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } };
const ok = (description: string) => ({ description, content: { 'application/json': { schema: { type: 'object' } } } });
const bearer = [{ bearer: [] }];
const idParam = (name: string, description: string) => ({ name, in: 'path', required: true, schema: { type: 'string' }, description });
const kind = idParam('kind', '`detection` or `box`');

type Op = { summary: string; params?: object[]; body?: object; responses?: Record<string, object> };
const op = (o: Op) => ({
  summary: o.summary,
  security: bearer,
  ...(o.params ? { parameters: o.params } : {}),
  ...(o.body ? { requestBody: o.body } : {}),
  responses: { ...(o.responses ?? { 200: ok('OK') }), 400: problem, 401: problem, 403: problem, 404: problem, 413: problem, 429: problem },
});
const json = (schema: object) => ({ required: true, content: { 'application/json': { schema } } });

const paths: Record<string, Record<string, Record<string, unknown>>> = {
  '/': { get: { summary: 'The review app (HTML)', responses: { 200: { description: 'text/html' } } } },
  '/app/lead': { get: { summary: 'The lead pages (HTML)', responses: { 200: { description: 'text/html' } } } },
  '/app/config.json': { get: { summary: 'Settings the pages need (Temporal UI link)', responses: { 200: ok('config') } } },
  '/app/{file}': {
    get: {
      summary: 'Static assets of the pages',
      parameters: [{ name: 'file', in: 'path', required: true, schema: { type: 'string' } }],
      responses: { 200: { description: 'JavaScript or CSS' } },
    },
  },
  '/healthz': { get: { summary: 'Liveness and database check', responses: { 200: ok('healthy') } } },
  '/metrics': { get: { summary: 'Prometheus metrics', responses: { 200: { description: 'text exposition format' } } } },
  '/v1/openapi.json': { get: { summary: 'This document', responses: { 200: ok('OpenAPI document') } } },
  '/v1/me': { get: op({ summary: 'The authenticated user' }) },
  '/v1/users': {
    get: op({ summary: 'Users with role, camera binding, token expiry and disabled state (never tokens)' }),
    post: op({
      summary: 'Create a user; returns their token once. Cameras are bound to streams (and optionally camera ids)',
      body: json({
        type: 'object',
        required: ['name', 'role'],
        properties: {
          name: { type: 'string', pattern: '^[A-Za-z0-9._@-]{1,100}$' },
          role: { enum: ['reviewer', 'lead', 'admin', 'camera'] },
          streams: { type: 'array', items: { type: 'string' }, minItems: 1, maxItems: 100 },
          cameraIds: { type: 'array', items: { type: 'string' }, minItems: 1, maxItems: 1000 },
          expiresInDays: { type: ['integer', 'null'], minimum: 1, maximum: 3650 },
        },
      }),
      responses: { 201: ok('created'), 409: problem },
    }),
  },
  '/v1/users/{name}/token': {
    post: op({
      summary: 'Rotate a user token (the old one stops working); optionally with an expiry',
      params: [idParam('name', 'user name')],
      body: {
        content: {
          'application/json': { schema: { type: 'object', properties: { expiresInDays: { type: ['integer', 'null'], minimum: 1, maximum: 3650 } } } },
        },
      },
    }),
    delete: op({ summary: 'Revoke a user token without issuing a new one', params: [idParam('name', 'user name')] }),
  },
  '/v1/users/{name}/disable': {
    post: op({
      summary: 'Disable a user: every token of theirs is refused',
      params: [idParam('name', 'user name')],
      responses: { 200: ok('disabled'), 409: problem },
    }),
  },
  '/v1/users/{name}/enable': { post: op({ summary: 'Enable a disabled user again', params: [idParam('name', 'user name')] }) },
  '/v1/frames': {
    get: op({
      summary: 'Frames the loop set aside (status=failed): missing blob, undecodable, over the pixel limit, with the reason',
      params: [
        { name: 'status', in: 'query', required: true, schema: { enum: ['failed'] } },
        { name: 'streamId', in: 'query', schema: { type: 'string' } },
        { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000 } },
      ],
    }),
  },
  '/v1/streams': {
    get: op({ summary: 'Streams with frame counts, open tasks and loop status' }),
    post: op({
      summary: 'Create a stream (idempotent) and start its loop',
      body: json({ type: 'object', properties: { id: { type: 'string' }, name: { type: 'string' } } }),
      responses: { 201: ok('created'), 200: ok('existed') },
    }),
  },
  '/v1/streams/{id}': { get: op({ summary: 'One stream, its policy and loop status', params: [idParam('id', 'stream id')] }) },
  '/v1/streams/{id}/pause': {
    post: op({ summary: 'Pause the loop after its current batch', params: [idParam('id', 'stream id')], responses: { 202: ok('requested') } }),
  },
  '/v1/streams/{id}/resume': { post: op({ summary: 'Resume the loop', params: [idParam('id', 'stream id')], responses: { 202: ok('requested') } }) },
  '/v1/streams/{id}/policy': {
    get: op({ summary: 'Current sampling policy', params: [idParam('id', 'stream id')] }),
    put: op({
      summary: 'Store a new policy version; running loops switch at their next batch',
      params: [idParam('id', 'stream id')],
      body: json({ $ref: '#/components/schemas/SamplingPolicy' }),
      responses: { 201: ok('stored') },
    }),
  },
  '/v1/streams/{id}/policies': { get: op({ summary: 'All policy versions', params: [idParam('id', 'stream id')] }) },
  '/v1/streams/{id}/frames': {
    post: op({
      summary: 'Ingest a frame (raw PNG or JPEG body)',
      params: [
        idParam('id', 'stream id'),
        { name: 'cameraId', in: 'query', required: true, schema: { type: 'string' } },
        { name: 'capturedAt', in: 'query', schema: { type: 'string', format: 'date-time' } },
      ],
      body: {
        required: true,
        content: { 'image/png': { schema: { type: 'string', format: 'binary' } }, 'image/jpeg': { schema: { type: 'string', format: 'binary' } } },
      },
      responses: { 201: ok('stored'), 200: ok('already stored (same image)'), 413: problem, 415: problem },
    }),
  },
  '/v1/frames/{id}': { get: op({ summary: 'Frame metadata and its predictions', params: [idParam('id', 'frame id')] }) },
  '/v1/frames/{id}/image': {
    get: op({ summary: 'The frame bytes', params: [idParam('id', 'frame id')], responses: { 200: { description: 'image/png or image/jpeg' } } }),
  },
  '/v1/tasks/claim': {
    post: op({
      summary: 'Lease the next task (or your current one)',
      body: { content: { 'application/json': { schema: { type: 'object', properties: { streamId: { type: 'string' } } } } } },
      responses: { 200: ok('task, frame and predictions'), 204: { description: 'queue empty' } },
    }),
  },
  '/v1/tasks/{id}': { get: op({ summary: 'A task with its frame and predictions', params: [idParam('id', 'task id')] }) },
  '/v1/tasks/{id}/submit': {
    post: op({
      summary: 'Submit a decision; stores a label',
      params: [idParam('id', 'task id')],
      body: json({
        type: 'object',
        required: ['decision'],
        properties: { decision: { enum: ['accept', 'reject', 'correct'] }, boxes: { type: 'array', items: { $ref: '#/components/schemas/Box' } } },
      }),
      responses: { 201: ok('label stored'), 200: ok('same decision replayed'), 409: problem, 410: problem },
    }),
  },
  '/v1/tasks/{id}/release': {
    post: op({ summary: 'Give a leased task back to the queue', params: [idParam('id', 'task id')], responses: { 200: ok('released'), 409: problem } }),
  },
  '/v1/queue': { get: op({ summary: 'Open tasks per stream and class, with the oldest task time' }) },
  '/v1/labels': {
    get: op({
      summary: 'Recent labels with reviewer',
      params: [
        { name: 'streamId', in: 'query', schema: { type: 'string' } },
        { name: 'from', in: 'query', schema: { type: 'string', format: 'date-time' } },
        { name: 'to', in: 'query', schema: { type: 'string', format: 'date-time' } },
        { name: 'limit', in: 'query', schema: { type: 'integer' } },
      ],
    }),
  },
  '/v1/labels/export': {
    get: op({
      summary: 'Labels as COCO JSON',
      params: [
        { name: 'streamId', in: 'query', schema: { type: 'string' } },
        { name: 'from', in: 'query', schema: { type: 'string', format: 'date-time' } },
        { name: 'to', in: 'query', schema: { type: 'string', format: 'date-time' } },
      ],
    }),
  },
  '/v1/models': { get: op({ summary: 'Registered models', params: [{ name: 'kind', in: 'query', schema: { enum: ['detection', 'box'] } }] }) },
  '/v1/models/{kind}': {
    post: op({
      summary: 'Register an ONNX model (validated and probed; refused if it does not meet the contract)',
      params: [kind, { name: 'version', in: 'query', schema: { type: 'string' } }],
      body: { required: true, content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } },
      responses: { 201: ok('registered'), 409: problem, 413: problem, 422: problem },
    }),
  },
  '/v1/models/{kind}/{version}': { get: op({ summary: 'One model', params: [kind, idParam('version', 'model version')] }) },
  '/v1/models/{kind}/{version}/deploy': {
    post: op({
      summary: 'Make a version production and switch running loops at their next batch',
      params: [kind, idParam('version', 'model version')],
      responses: { 200: ok('every running loop confirmed'), 202: ok('deployed; the loops named in `pending` have not confirmed yet (see statusUrl)') },
    }),
  },
  '/v1/models/{kind}/rollback': {
    post: op({
      summary: 'Roll back to the previous (or a given) version; running loops switch at their next batch',
      params: [kind, { name: 'version', in: 'query', schema: { type: 'string' } }],
      responses: {
        200: ok('rolled back; every running loop confirmed'),
        202: ok('rolled back; the loops named in `pending` have not confirmed yet (see statusUrl)'),
        409: problem,
      },
    }),
  },
  '/v1/deployments': { get: op({ summary: 'Deployment history', params: [{ name: 'kind', in: 'query', schema: { enum: ['detection', 'box'] } }] }) },
  '/v1/deployments/{id}': {
    get: op({ summary: 'One deployment and where each running loop stands (confirmed or pending)', params: [idParam('id', 'deployment id')] }),
  },
  '/v1/drift/reports': {
    get: op({
      summary: 'Drift reports, newest first',
      params: [
        { name: 'streamId', in: 'query', schema: { type: 'string' } },
        { name: 'limit', in: 'query', schema: { type: 'integer' } },
        { name: 'driftOnly', in: 'query', schema: { enum: ['true', 'false'] } },
      ],
    }),
  },
  '/v1/drift/reports/{id}': {
    get: op({ summary: 'One drift report with per-component statistics, p-values and decisions', params: [idParam('id', 'report id')] }),
  },
  '/v1/streams/{id}/drift-settings': {
    get: op({ summary: 'Drift monitor settings of a stream', params: [idParam('id', 'stream id')] }),
    put: op({
      summary:
        'Set alpha, components, correction, minimum effect, window, interval, boost duration, labels a drift-started retraining waits for, or pin a reference window',
      params: [idParam('id', 'stream id')],
      body: json({
        type: 'object',
        properties: {
          alpha: { type: 'number' },
          components: { type: 'integer' },
          correction: { enum: ['bonferroni', 'bh'] },
          minEffect: { type: 'number' },
          windowSize: { type: 'integer' },
          windowStride: { type: 'integer' },
          intervalSeconds: { type: 'integer' },
          boostMinutes: { type: 'integer' },
          retrainMinLabels: { type: 'integer' },
          retrainMaxWaitHours: { type: 'number' },
          pinnedReference: {
            type: ['object', 'null'],
            properties: { from: { type: 'string', format: 'date-time' }, to: { type: 'string', format: 'date-time' } },
          },
        },
      }),
    }),
  },
  '/v1/streams/{id}/drift/check': {
    post: op({ summary: 'Run the stream drift check now', params: [idParam('id', 'stream id')], responses: { 202: ok('requested') } }),
  },
  '/v1/retrain': {
    post: op({
      summary: 'Start a retraining run',
      body: json({
        type: 'object',
        properties: {
          reason: { type: 'string' },
          requireApproval: { type: 'boolean' },
          approvalTimeoutMinutes: { type: 'integer' },
          epochs: { type: 'integer' },
          boxEpochs: { type: 'integer' },
          gate: { type: 'object', properties: { maxMapDrop: { type: 'number' }, maxClassDrop: { type: 'number' } } },
        },
      }),
      responses: { 202: ok('started') },
    }),
  },
  '/v1/retrain/runs': { get: op({ summary: 'Recent retraining runs with their steps' }) },
  '/v1/retrain/runs/{id}': { get: op({ summary: 'One retraining run', params: [idParam('id', 'run id (workflow id)')] }) },
  '/v1/retrain/runs/{id}/approve': {
    post: op({ summary: 'Approve a run waiting for approval', params: [idParam('id', 'run id')], responses: { 202: ok('requested'), 409: problem } }),
  },
  '/v1/retrain/runs/{id}/reject': {
    post: op({
      summary: 'Reject a run waiting for approval',
      params: [idParam('id', 'run id'), { name: 'reason', in: 'query', schema: { type: 'string' } }],
      responses: { 202: ok('requested'), 409: problem },
    }),
  },
  '/v1/retrain/runs/{id}/cancel': {
    post: op({
      summary: 'Cancel a run (training stops; production is untouched)',
      params: [idParam('id', 'run id')],
      responses: { 202: ok('requested'), 409: problem },
    }),
  },
  '/v1/retrain/schedule': {
    get: op({ summary: 'The weekly retraining schedule' }),
    put: op({
      summary: 'Create or change the retraining schedule (cron, UTC; overlapping runs are skipped)',
      body: json({ type: 'object', properties: { cron: { type: 'string' } } }),
    }),
  },
  '/v1/ops': {
    get: op({
      summary: 'Operations summary per stream: frames per minute (last hour), open tasks, model version, drift p-values over time, latest retraining',
    }),
  },
  '/app/ops': { get: { summary: 'The operations page (HTML)', responses: { 200: { description: 'text/html' } } } },
  '/app/api': { get: { summary: 'Interactive API docs (Swagger UI over this document)', responses: { 200: { description: 'text/html' } } } },
  '/app/vendor/{file}': {
    get: {
      summary: 'Libraries the pages use, from their npm packages: uPlot (charts) and Swagger UI (API docs)',
      parameters: [{ name: 'file', in: 'path', required: true, schema: { type: 'string' } }],
      responses: { 200: { description: 'JavaScript or CSS' } },
    },
  },
  '/v1/box-predictions': {
    post: op({
      summary: 'Box assist: refine a rough region with the production box model',
      body: json({
        type: 'object',
        required: ['frameId', 'region'],
        properties: {
          frameId: { type: 'string' },
          region: { type: 'object', properties: { x1: { type: 'number' }, y1: { type: 'number' }, x2: { type: 'number' }, y2: { type: 'number' } } },
        },
      }),
      responses: { 200: ok('refined box in frame pixels'), 503: problem },
    }),
  },
};

// Every /v1 operation carries the roles that may call it, from the table the API enforces.
for (const [route, ops] of Object.entries(paths)) {
  for (const [method, operation] of Object.entries(ops)) {
    const roles = ACCESS[`${method.toUpperCase()} ${route}`];
    if (roles) Object.assign(operation, { 'x-roles': roles, description: `Roles: ${roles.join(', ')}.` });
  }
}

export const openApiDocument = {
  openapi: '3.1.0',
  info: { title: 'dataengine API', version: '0.1.0', description: 'Streams, ingestion, sampling policies, the review queue, labels, models and box assist.' },
  components: {
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
    schemas: {
      Problem: {
        type: 'object',
        properties: {
          type: { type: 'string' },
          title: { type: 'string' },
          status: { type: 'integer' },
          detail: { type: 'string' },
          code: { type: 'string' },
          errors: { type: 'array', items: { type: 'object', properties: { field: { type: 'string' }, message: { type: 'string' } } } },
        },
      },
      SamplingPolicy: {
        type: 'object',
        description: 'See policies/sampling-policy.ts; unknown fields are refused.',
        properties: {
          band: { type: 'object', properties: { low: { type: 'number' }, high: { type: 'number' } } },
          classBands: { type: 'object' },
          dailyBudget: { type: ['integer', 'null'] },
          maxTasksPerFrame: { type: 'integer' },
          randomRate: { type: 'number' },
          diversityMinDistance: { type: 'number' },
          priority: { type: 'integer' },
          driftBoost: { type: 'object' },
        },
      },
      Box: {
        type: 'object',
        required: ['className', 'x1', 'y1', 'x2', 'y2'],
        properties: { className: { type: 'string' }, x1: { type: 'number' }, y1: { type: 'number' }, x2: { type: 'number' }, y2: { type: 'number' } },
      },
    },
  },
  paths,
};

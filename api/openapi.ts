// The served OpenAPI 3.1 document, generated from the operations the routes declare (their zod
// schemas, through zod's own JSON Schema conversion) and the access table (`x-roles`). Nothing
// here describes an operation by hand, so the document says what the code accepts and returns.
import { z } from 'zod';
import { ACCESS } from './access.ts';
import type { OperationSpec } from './operation.ts';
import { problemSchema } from './problem.ts';
import { driftOperations } from './routes/drift.ts';
import { frameOperations } from './routes/frames.ts';
import { videoOperations } from './routes/videos.ts';
import { modelOperations } from './routes/models.ts';
import { objectOperations } from './routes/objects.ts';
import { opsOperations } from './routes/ops.ts';
import { retrainOperations } from './routes/retrain.ts';
import { streamOperations } from './routes/streams.ts';
import { systemOperations } from './routes/system.ts';
import { taskOperations } from './routes/tasks.ts';
import { reviewerOperations } from './routes/reviewers.ts';
import { labelFormatOperations } from './routes/label-formats.ts';
import { userOperations } from './routes/users.ts';
import { webOperations } from './routes/web.ts';

/** Every operation the API serves, by group (the group and key make the operationId). */
const operationGroups: Record<string, Record<string, OperationSpec>> = {
  system: systemOperations,
  web: webOperations,
  users: userOperations,
  streams: streamOperations,
  frames: frameOperations,
  videos: videoOperations,
  tasks: taskOperations,
  reviewers: reviewerOperations,
  labels: labelFormatOperations,
  objects: objectOperations,
  models: modelOperations,
  drift: driftOperations,
  retrain: retrainOperations,
  ops: opsOperations,
};

/** What any /v1 operation may answer besides its own responses (bad input, no token, wrong role,
 * unknown id, body too large, too many failed logins, database unavailable). */
const COMMON_PROBLEMS = [400, 401, 403, 404, 413, 429, 503];

type JsonSchema = Record<string, unknown>;

/** A zod schema as JSON Schema: the request side (`input`: before defaults and coercion) or the
 * response side (`output`). Dates travel as ISO strings. */
function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const converted = z.toJSONSchema(schema, {
    io,
    target: 'draft-2020-12',
    // Transforms and refinements have no JSON Schema; the document keeps the shape around them.
    unrepresentable: 'any',
    override: (ctx) => {
      if (ctx.zodSchema._zod.def.type === 'date') Object.assign(ctx.jsonSchema, { type: 'string', format: 'date-time' });
    },
  }) as JsonSchema;
  delete converted.$schema;
  return converted;
}

function parameters(spec: OperationSpec): JsonSchema[] {
  const of = (where: 'path' | 'query', object: z.ZodObject | undefined) => {
    if (!object) return [];
    const s = jsonSchema(object, 'input') as { properties?: Record<string, JsonSchema>; required?: string[] };
    return Object.entries(s.properties ?? {}).map(([name, schema]) => ({
      name,
      in: where,
      required: where === 'path' || (s.required ?? []).includes(name),
      ...(typeof schema.description === 'string' ? { description: schema.description } : {}),
      schema,
    }));
  };
  const params =
    spec.params ?? (spec.path.includes('{') ? z.object(Object.fromEntries([...spec.path.matchAll(/\{(\w+)\}/g)].map((m) => [m[1], z.string()]))) : undefined);
  return [...of('path', params), ...of('query', spec.query)];
}

function requestBody(spec: OperationSpec) {
  if (spec.rawBody) {
    return {
      required: true,
      content: Object.fromEntries(
        Object.entries(spec.rawBody).map(([type, description]) => [type, { schema: { type: 'string', format: 'binary', description } }]),
      ),
    };
  }
  if (!spec.body) return undefined;
  // An empty body reads as `{}`: it is optional exactly when `{}` is a valid body.
  return { required: !spec.body.safeParse({}).success, content: { 'application/json': { schema: jsonSchema(spec.body, 'input') } } };
}

const problemRef = { description: 'Problem details (RFC 9457)', content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } };

function responses(spec: OperationSpec) {
  const out: Record<string, unknown> = {};
  for (const [status, r] of Object.entries(spec.responses)) {
    const contentType = r.contentType ?? (r.schema ? 'application/json' : undefined);
    out[status] = {
      description: r.description,
      ...(contentType ? { content: { [contentType]: r.schema ? { schema: jsonSchema(r.schema, 'output') } : {} } } : {}),
    };
  }
  for (const status of [...(spec.public ? [] : COMMON_PROBLEMS), ...(spec.problems ?? [])]) out[status] ??= problemRef;
  return out;
}

function buildDocument() {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const [group, operations] of Object.entries(operationGroups)) {
    for (const [name, spec] of Object.entries(operations)) {
      const roles = ACCESS[`${spec.method.toUpperCase()} ${spec.path}`];
      const params = parameters(spec);
      const body = requestBody(spec);
      (paths[spec.path] ??= {})[spec.method] = {
        operationId: `${group}.${name}`,
        tags: [group],
        summary: spec.summary,
        ...(roles ? { description: `Roles: ${roles.join(', ')}.`, 'x-roles': roles } : {}),
        security: spec.public ? [] : [{ bearer: [] }],
        ...(params.length ? { parameters: params } : {}),
        ...(body ? { requestBody: body } : {}),
        responses: responses(spec),
      };
    }
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'dataengine API',
      version: '0.1.0',
      description: 'Streams, ingestion, sampling policies, the review queue, labels, models, deployments, drift, retraining and box assist.',
    },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: { Problem: jsonSchema(problemSchema, 'output') },
    },
    paths,
  };
}

export const openApiDocument = buildDocument();

// Holds every request a test makes through the platform's app to the served OpenAPI document:
// the answer's status must be one the operation documents and its JSON body must match the
// documented schema; a request the API accepted (2xx) must match the documented parameters and
// body. A mismatch throws from the request, so the test that made it fails and says why.
// ajv reads the document as any client generator would, not the zod schemas behind it.
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import type { Hono } from 'hono';

// ajv-formats is CommonJS with a default export.
const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

interface Operation {
  method: string;
  path: string;
  pattern: RegExp;
  literalSegments: number;
  parameters?: { name: string; in: 'path' | 'query'; required: boolean; schema: object }[];
  requestBody?: { content: Record<string, { schema?: object }> };
  responses: Record<string, { content?: Record<string, { schema?: object }> }>;
}

type Doc = { paths: Record<string, Record<string, Omit<Operation, 'method' | 'path' | 'pattern' | 'literalSegments'>>>; components: object };

function operationsOf(doc: Doc): Operation[] {
  const ops = Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, op]) => ({
      ...op,
      method: method.toUpperCase(),
      path,
      pattern: new RegExp(`^${path.replace(/[.]/g, '\\.').replace(/\{\w+\}/g, '[^/]+')}$`),
      literalSegments: path.split('/').filter((s) => s && !s.startsWith('{')).length,
    })),
  );
  // `/app/lead` before `/app/{file}`: the most literal path wins, as in the router.
  return ops.sort((a, b) => b.literalSegments - a.literalSegments);
}

export function checkResponsesAgainstDocument(app: { fetch: Hono['fetch'] }, served: unknown): void {
  const doc = served as Doc;
  const ajv = addFormats(new Ajv2020({ strict: false, allErrors: true }));
  // Query values are strings on the wire; the document types them (integer, enum...).
  const coercing = addFormats(new Ajv2020({ strict: false, allErrors: true, coerceTypes: true }));
  ajv.addSchema({ ...doc, $id: 'doc' });
  const compiled = new Map<object, ValidateFunction>();
  const validator = (schema: object, which = ajv) => {
    let v = compiled.get(schema);
    if (!v) compiled.set(schema, (v = which.compile(JSON.parse(JSON.stringify(schema).replaceAll('"#/components', '"doc#/components')))));
    return v;
  };
  const operations = operationsOf(doc);

  const original = app.fetch.bind(app);
  const fetch = async (...[request, env, ctx]: Parameters<Hono['fetch']>) => {
    const url = new URL(request.url);
    const method = request.method === 'HEAD' ? 'GET' : request.method;
    const op = operations.find((o) => o.method === method && o.pattern.test(url.pathname));
    const requestText = op?.requestBody?.content['application/json'] ? await request.clone().text() : null;
    const response = await original(request, env, ctx);
    if (!op) return response; // no route: the app's own 404
    const where = `${method} ${url.pathname} (${op.path}) -> ${response.status}`;
    const documented = op.responses[String(response.status)];
    if (!documented) throw new Error(`contract: ${where}: status not in the OpenAPI document`);
    const type = response.headers.get('content-type')?.split(';')[0] ?? '';
    const schema = documented.content?.[type]?.schema;
    if (type.endsWith('json') && schema) {
      const validate = validator(schema);
      if (!validate(await response.clone().json())) throw new Error(`contract: ${where}: response body ${ajv.errorsText(validate.errors)}`);
    }
    if (response.status < 300) {
      const query = (op.parameters ?? []).filter((p) => p.in === 'query');
      const validateQuery = validator(
        { type: 'object', properties: Object.fromEntries(query.map((p) => [p.name, p.schema])), required: query.filter((p) => p.required).map((p) => p.name) },
        coercing,
      );
      if (!validateQuery(Object.fromEntries(url.searchParams))) throw new Error(`contract: ${where}: accepted query ${ajv.errorsText(validateQuery.errors)}`);
      const bodySchema = op.requestBody?.content['application/json']?.schema;
      if (bodySchema && requestText !== null) {
        const validateBody = validator(bodySchema);
        const body: unknown = requestText.trim() ? JSON.parse(requestText) : {};
        if (!validateBody(body)) throw new Error(`contract: ${where}: accepted body ${ajv.errorsText(validateBody.errors)}`);
      }
    }
    return response;
  };
  Object.assign(app, { fetch });
}

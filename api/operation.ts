// One declaration per HTTP operation: its method and path, its inputs as zod schemas, and its
// responses as zod schemas. The route handler gets its inputs parsed by those schemas (a 400
// names each bad field), and api/openapi.ts turns the same declarations into the served
// OpenAPI document, so the document cannot drift from what the API accepts and returns.
//
// Why not @hono/zod-openapi: its JSON validator skips bodies sent without a JSON Content-Type
// (curl -d), which this API reads as JSON and checks like any other body, and it would mean
// zod's `.openapi()` extension on every schema; the conversion itself is zod's `z.toJSONSchema`.
import type { Context, Hono } from 'hono';
import type { z } from 'zod';
import type { AppEnv } from './env.ts';
import { parseOrThrow, readJson } from './problem.ts';

type Method = 'get' | 'post' | 'put' | 'delete';

interface ResponseSpec {
  description: string;
  /** The JSON body; omit for empty bodies (204) and non-JSON ones (say which in `contentType`). */
  schema?: z.ZodType;
  contentType?: string;
}

export interface OperationSpec {
  method: Method;
  /** OpenAPI form, `/v1/streams/{id}`. */
  path: string;
  /** Hono's path when it needs a pattern the OpenAPI path cannot carry (`:file{...}`). */
  honoPath?: string;
  summary: string;
  /** Pages and health checks answer without a token; everything under /v1 needs one. */
  public?: boolean;
  params?: z.ZodObject;
  query?: z.ZodObject;
  /** A JSON body; an empty body reads as `{}` so the schema names each missing field. */
  body?: z.ZodType;
  /** Which body is refused, in the 400's detail ("invalid sampling policy: band.high: ..."). */
  bodyName?: string;
  /** A non-JSON body: content type → what it is. */
  rawBody?: Record<string, string>;
  responses: Record<number, ResponseSpec>;
  /** Problem statuses this operation answers beyond the ones every /v1 operation may. */
  problems?: number[];
}

/** Keeps the literal types of a declaration, so its handler's inputs are typed from its schemas. */
export const defineOperation = <const S extends OperationSpec>(spec: S): S => spec;

type Parsed<T> = T extends z.ZodType ? z.output<T> : undefined;
interface Inputs<S extends OperationSpec> {
  params: S['params'] extends z.ZodType ? z.output<S['params']> : Record<string, string>;
  query: Parsed<S['query']>;
  body: Parsed<S['body']>;
}

/** `/v1/streams/{id}` → `/v1/streams/:id`. */
const toHonoPath = (spec: OperationSpec) => spec.honoPath ?? spec.path.replace(/\{(\w+)\}/g, ':$1');

async function inputsOf<S extends OperationSpec>(c: Context<AppEnv>, spec: S): Promise<Inputs<S>> {
  const params = spec.params ? parseOrThrow(spec.params, c.req.param(), 'invalid path') : c.req.param();
  const query = spec.query ? parseOrThrow(spec.query, c.req.query(), 'invalid query') : undefined;
  const body = spec.body ? parseOrThrow(spec.body, await readJson(c), spec.bodyName ?? 'invalid body') : undefined;
  return { params, query, body } as Inputs<S>;
}

/** Registers the operation on `app`; the handler receives its parsed inputs. */
export function handle<S extends OperationSpec>(
  app: Hono<AppEnv>,
  spec: S,
  handler: (c: Context<AppEnv>, input: Inputs<S>) => Response | Promise<Response>,
): void {
  app.on(spec.method.toUpperCase(), toHonoPath(spec), async (c) => handler(c, await inputsOf(c, spec)));
}

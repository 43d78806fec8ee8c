// Errors as RFC 9457 problem details. Every refusal says what was wrong and, for bad input,
// which field: `errors: [{ field: 'band.high', message }]`.
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { z } from 'zod';

export interface FieldError {
  field: string;
  message: string;
}

export class ProblemError extends HTTPException {
  constructor(
    readonly problemStatus: ContentfulStatusCode,
    readonly title: string,
    readonly detail: string,
    readonly errors?: FieldError[],
    readonly code?: string,
  ) {
    super(problemStatus, { message: detail });
  }
}

/** The body of every refusal, as the OpenAPI document describes it. */
export const problemSchema = z.object({
  type: z.string(),
  title: z.string(),
  status: z.number().int(),
  detail: z.string(),
  code: z.string().optional().describe('a stable machine-readable reason, e.g. invalid_input, not_found'),
  errors: z
    .array(z.object({ field: z.string(), message: z.string() }))
    .optional()
    .describe('each invalid field and what is wrong with it'),
});

export function problemBody(status: number, title: string, detail: string, errors?: FieldError[], code?: string) {
  return {
    type: code ? `https://dataengine.dev/problems/${code}` : 'about:blank',
    title,
    status,
    detail,
    ...(code ? { code } : {}),
    ...(errors ? { errors } : {}),
  };
}

function fieldErrors(error: z.ZodError, prefix = ''): FieldError[] {
  return error.issues.map((i) => ({ field: [prefix, ...i.path.map(String)].filter(Boolean).join('.') || '(body)', message: i.message }));
}

/** Throws a 400 naming every invalid field. */
function badInput(error: z.ZodError, what: string, prefix = ''): never {
  const errors = fieldErrors(error, prefix);
  throw new ProblemError(400, 'Invalid input', `${what}: ${errors.map((e) => `${e.field}: ${e.message}`).join('; ')}`, errors, 'invalid_input');
}

/** A path or body id that must be a UUID (frames, reports...): checked before the database sees it. */
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The request body as JSON. An empty body reads as `{}`, so the route's schema names each
 * missing field instead of the client getting one vague "not JSON". */
export async function readJson(c: { req: { text(): Promise<string> } }): Promise<unknown> {
  const text = await c.req.text();
  if (!text.trim()) return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new ProblemError(400, 'Invalid JSON', 'the request body must be JSON', [{ field: '(body)', message: 'not valid JSON' }], 'invalid_json');
  }
}

export function parseOrThrow<T extends z.ZodType>(schema: T, value: unknown, what: string, prefix = ''): z.infer<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) badInput(parsed.error, what, prefix);
  return parsed.data;
}

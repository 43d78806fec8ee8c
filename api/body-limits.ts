// One body limit for every route, enforced while the body streams in (an oversized upload is cut
// off, not buffered): the upload routes take their own settings, every other route reads at
// most MAX_JSON_BYTES of JSON.
import type { MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { Config } from '../config.ts';
import { routeKey } from './access.ts';
import type { AppEnv } from './env.ts';
import { ProblemError } from './problem.ts';

export function limitBodies(config: Config): MiddlewareHandler<AppEnv> {
  const uploads: Record<string, { bytes: number; what: string }> = {
    'POST /v1/streams/{id}/frames': { bytes: config.MAX_FRAME_BYTES, what: 'the image' },
    'POST /v1/models/{kind}': { bytes: config.MAX_MODEL_BYTES, what: 'the model file' },
    'POST /v1/models/{kind}/{version}/variants/{precision}': { bytes: config.MAX_MODEL_BYTES, what: 'the model file' },
    'POST /v1/streams/{id}/videos': { bytes: config.VIDEO_MAX_BYTES, what: 'the video' },
    'POST /v1/streams/{id}/imports/coco': { bytes: config.IMPORT_MAX_BYTES, what: 'the import (annotations and images)' },
  };
  const json = { bytes: config.MAX_JSON_BYTES, what: 'the JSON body' };
  const limiters = new Map(
    [...Object.entries(uploads), ['*', json] as const].map(([key, { bytes, what }]) => [
      key,
      bodyLimit({
        maxSize: bytes,
        onError: () => {
          throw new ProblemError(
            413,
            'Payload too large',
            `${what} is larger than the limit of ${bytes} bytes`,
            [{ field: 'body', message: `over ${bytes} bytes` }],
            'too_large',
          );
        },
      }),
    ]),
  );
  return (c, next) => {
    const key = routeKey(c) ?? '*';
    return (limiters.get(key) ?? limiters.get('*')!)(c, next);
  };
}

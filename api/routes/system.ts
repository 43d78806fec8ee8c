// Liveness, Prometheus metrics and the OpenAPI document: answered without a token.
import { Hono } from 'hono';
import { z } from 'zod';
import { ping } from '../../db/client.ts';
import { registry } from '../../observability/metrics.ts';
import { allMetricsText } from '../../observability/temporal-runtime.ts';
import type { ApiDeps, AppEnv } from '../env.ts';
import { defineOperation, handle } from '../operation.ts';

export const systemOperations = {
  health: defineOperation({
    method: 'get',
    path: '/healthz',
    summary: 'Liveness and database check',
    public: true,
    responses: { 200: { description: 'healthy', schema: z.object({ ok: z.literal(true) }) } },
    problems: [503],
  }),
  metrics: defineOperation({
    method: 'get',
    path: '/metrics',
    summary: 'Prometheus metrics of the API process (and its Temporal client)',
    public: true,
    responses: { 200: { description: 'Prometheus text exposition format', contentType: 'text/plain' } },
  }),
  openApi: defineOperation({
    method: 'get',
    path: '/v1/openapi.json',
    summary: 'This document',
    public: true,
    responses: { 200: { description: 'OpenAPI 3.1', schema: z.looseObject({ openapi: z.string(), paths: z.record(z.string(), z.unknown()) }) } },
  }),
};

export function systemRoutes(deps: ApiDeps) {
  const app = new Hono<AppEnv>();
  handle(app, systemOperations.health, async (c) => {
    await ping(deps.db);
    return c.json({ ok: true as const });
  });
  handle(app, systemOperations.metrics, async (c) => c.text(await allMetricsText(), 200, { 'Content-Type': registry.contentType }));
  return app;
}

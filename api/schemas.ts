// The shapes the API answers with, derived from the tables (drizzle-zod) so a column added to
// db/schema.ts shows up in the OpenAPI document. Timestamps are Date here and ISO strings on the
// wire; api/openapi.ts writes them as `string, format: date-time`.
import { createSelectSchema } from 'drizzle-zod';
import { z } from 'zod';
import {
  deployments,
  driftReports,
  frames,
  labels,
  models,
  predictions,
  retrainRuns,
  reviewTasks,
  samplingPolicies,
  streams,
  users,
  videos,
} from '../db/schema.ts';
import { samplingPolicySchema } from '../policies/sampling-policy.ts';

/** A stored box (normalised to the frame). */
export const box = z.object({ className: z.string(), x1: z.number(), y1: z.number(), x2: z.number(), y2: z.number() });
const unit = z.number().min(0).max(1);
/** A box a person sends (a decision, an adjudication): inside the frame, with area. */
export const labelBoxInput = z
  .object({ className: z.string().min(1).max(100), x1: unit, y1: unit, x2: unit, y2: unit })
  .strict()
  .refine((b) => b.x2 > b.x1 && b.y2 > b.y1, { message: 'x2 must exceed x1 and y2 must exceed y1', path: ['x2'] });

export const userSchema = createSelectSchema(users).omit({ tokenHash: true, goldSince: true });
export const streamSchema = createSelectSchema(streams);
export const storedPolicySchema = createSelectSchema(samplingPolicies, { policy: samplingPolicySchema });
export const frameSchema = createSelectSchema(frames);
export const videoSchema = createSelectSchema(videos);
export const predictionSchema = createSelectSchema(predictions);
export const taskSchema = createSelectSchema(reviewTasks);
export const labelSchema = createSelectSchema(labels, { boxes: z.array(box) });
export const modelSchema = createSelectSchema(models);
export const deploymentSchema = createSelectSchema(deployments);
export const driftReportSchema = createSelectSchema(driftReports);
export const retrainRunSchema = createSelectSchema(retrainRuns, {
  steps: z.array(z.object({ name: z.string(), status: z.enum(['running', 'done', 'failed', 'skipped']), at: z.string(), detail: z.string().optional() })),
});

/** What a running loop answers to its status query (more fields may come with new loop versions). */
const loopStatusSchema = z.looseObject({
  streamId: z.string(),
  state: z.enum(['RUNNING', 'PAUSED', 'WAITING_FOR_MODEL']),
  batchInFlight: z.boolean(),
  historyLength: z.number().int(),
  paused: z.boolean(),
  modelVersion: z.string().nullable(),
  deploymentId: z.number().int().nullable(),
  policyVersion: z.number().int().nullable(),
  totals: z.object({ batches: z.number().int(), framesScored: z.number().int(), predictions: z.number().int(), tasksRouted: z.number().int() }),
  runs: z.number().int(),
  lastBatchAt: z.string().nullable(),
  seenUpdateIds: z.array(z.string()),
});
/** What the Temporal server knows of a loop when no worker answers its query. */
const loopServerSchema = z.object({ execution: z.string(), state: z.string().nullable(), modelVersion: z.string().nullable() });
export const loopOfStreamSchema = { loop: loopStatusSchema.nullable(), loopServer: loopServerSchema.nullable() };

const loopDeployState = z.object({
  streamId: z.string(),
  status: z.enum(['confirmed', 'pending']),
  modelVersion: z.string().nullable(),
  deploymentId: z.number().int().nullable(),
  detail: z.string().optional(),
});
export const deployOutcomeSchema = z.object({
  kind: z.enum(['detection', 'box']),
  version: z.string(),
  previousVersion: z.string().nullable(),
  deploymentId: z.number().int(),
  loops: z.array(loopDeployState),
  pending: z.array(z.string()).describe('streams whose loop has not confirmed yet'),
  statusUrl: z.string().describe('GET it to watch the pending loops catch up'),
});
export const deploymentProgressSchema = z.object({
  deployment: deploymentSchema,
  superseded: z.boolean().describe('a newer deployment replaced this one; loops follow the newer one'),
  loops: z.array(loopDeployState),
  pending: z.array(z.string()),
});

// A capture time must be an ISO 8601 time with a zone, from 1970 to a day ahead of the server
// clock (camera clocks drift; a far future or past time is a bug, and Postgres cannot hold some).
const EARLIEST_CAPTURE = Date.UTC(1970, 0, 1);
export const captureTime = (field: string) =>
  z.iso
    .datetime({ offset: true, error: `${field} must be an ISO 8601 time with a zone, e.g. 2026-11-23T10:00:00Z` })
    .transform((v) => new Date(v))
    .refine((d) => d.getTime() >= EARLIEST_CAPTURE && d.getTime() <= Date.now() + 24 * 3600_000, `${field} must lie between 1970 and one day from now`);

/** Labels of one stream (or all) in a time window: the label list and the exports. */
export const streamTimeRange = z.object({
  streamId: z.string().min(1).optional(),
  from: z.coerce.date({ error: 'from must be an ISO 8601 time' }).optional(),
  to: z.coerce.date({ error: 'to must be an ISO 8601 time' }).optional(),
});

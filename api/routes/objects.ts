// Objects over HTTP: similar-object search (by an object, a frame region, or a set of examples),
// positive and negative marks, and the label proposals a mark propagates to close neighbours.
import { Hono } from 'hono';
import { z } from 'zod';
import {
  confirmedPositives,
  decideProposals,
  insertProposals,
  markObjects,
  objectsByIds,
  objectsOfFrame,
  pendingProposals,
  type ObjectRow,
} from '../../db/object-labels.ts';
import { ExamplesError, proposeNeighbours, searchByExamples, type SearchFilter } from '../../storage/object-search.ts';
import type { Neighbour } from '../../storage/vector-index.ts';
import { iou } from '../../models/tracker.ts';
import type { ApiDeps, AppEnv } from '../env.ts';
import { defineOperation, handle } from '../operation.ts';
import { ProblemError, UUID } from '../problem.ts';

const unit = z.number().min(0).max(1);
const box = z.object({ x1: unit, y1: unit, x2: unit, y2: unit });
const objectId = z.string().regex(UUID, 'must be an object id (a UUID)');
const className = z.string().min(1).max(100);
/** A comma-separated query value: `cameraId=a,b`. */
const list = (what: string) =>
  z
    .string()
    .max(4000)
    .transform((v) => v.split(',').filter(Boolean))
    .refine((v) => v.length <= 100, { message: `at most 100 ${what}` })
    .optional()
    .describe(`comma-separated ${what}`);
const filterQuery = z.object({
  streamId: list('stream ids'),
  cameraId: list('camera ids'),
  className: list('predicted classes'),
  from: z.coerce.date({ error: 'from must be an ISO 8601 time' }).optional(),
  to: z.coerce.date({ error: 'to must be an ISO 8601 time' }).optional(),
  labelState: z.enum(['labelled', 'unlabelled']).optional(),
});
const filterBody = z
  .object({
    streamIds: z.array(z.string().min(1)).max(100).optional(),
    cameraIds: z.array(z.string().min(1)).max(100).optional(),
    classNames: z.array(className).max(100).optional(),
    from: z.coerce.date({ error: 'from must be an ISO 8601 time' }).optional(),
    to: z.coerce.date({ error: 'to must be an ISO 8601 time' }).optional(),
    labelState: z.enum(['labelled', 'unlabelled']).optional(),
  })
  .strict();
const distance = z.number().min(0).max(2).describe('cosine distance: 0 is the same direction, 2 the opposite');

const objectSchema = z.object({
  id: z.uuid(),
  frameId: z.uuid(),
  streamId: z.string(),
  cameraId: z.string(),
  modelVersion: z.string(),
  className: z.string().describe('the class the detector predicted'),
  score: z.number(),
  capturedAt: z.date(),
  box: box.describe('normalized to the frame (0..1)'),
  trackId: z.uuid().nullable().describe('detections of one object on consecutive frames of a camera share it'),
  imageUrl: z.string(),
});
const neighbourSchema = objectSchema.extend({ distance, labelClass: z.string().nullable().describe('the class a person confirmed, if any') });
const searchResult = z.object({ query: z.array(objectSchema).describe('the examples searched by'), neighbours: z.array(neighbourSchema) });
const proposalSchema = objectSchema.extend({
  proposedClass: z.string(),
  seedId: z.uuid(),
  distance,
  via: z.enum(['embedding', 'track']).describe("close to the seed's embedding, or on the seed's track"),
});

export const objectOperations = {
  get: defineOperation({
    method: 'get',
    path: '/v1/objects/{id}',
    summary: 'A stored detection (an object)',
    params: z.object({ id: z.string() }),
    responses: { 200: { description: 'the object', schema: objectSchema } },
  }),
  similar: defineOperation({
    method: 'get',
    path: '/v1/objects/{id}/similar',
    summary: 'Objects similar to one object, nearest first',
    params: z.object({ id: z.string() }),
    query: filterQuery.extend({
      k: z.coerce.number().int().min(1).default(20),
      maxDistance: z.coerce.number().min(0).max(2).optional(),
    }),
    responses: { 200: { description: 'the neighbours', schema: searchResult } },
    problems: [422],
  }),
  search: defineOperation({
    method: 'post',
    path: '/v1/objects/search',
    summary: 'Objects similar to a set of examples (or to the object in a frame region), without the negatives',
    body: z
      .object({
        positives: z.array(objectId).min(1).max(100).optional(),
        region: z
          .object({ frameId: objectId.describe('the frame (a UUID)'), box })
          .strict()
          .optional()
          .describe('search by the stored detection that best covers this region of a frame'),
        negatives: z.array(objectId).max(1000).optional(),
        className: className.optional().describe('also leave out objects marked as not of this class'),
        k: z.number().int().min(1).default(20),
        maxDistance: distance.optional(),
        filter: filterBody.optional(),
      })
      .strict()
      .refine((b) => (b.positives ? 1 : 0) + (b.region ? 1 : 0) === 1, { message: 'give either positives or a region', path: ['positives'] }),
    bodyName: 'invalid search',
    responses: { 200: { description: 'the neighbours', schema: searchResult } },
    problems: [422],
  }),
  mark: defineOperation({
    method: 'post',
    path: '/v1/objects/labels',
    summary: 'Mark objects as (not) of a class; a positive mark proposes the class for close neighbours',
    body: z
      .object({
        objectIds: z.array(objectId).min(1).max(100),
        className,
        polarity: z.enum(['positive', 'negative']),
        propagate: z.boolean().default(true),
        maxDistance: distance.optional().describe('proposal radius; the server setting PROPAGATION_MAX_DISTANCE by default'),
      })
      .strict(),
    bodyName: 'invalid mark',
    responses: {
      200: {
        description: 'the marks are stored; new proposals listed',
        schema: z.object({ marked: z.number().int(), proposals: z.array(proposalSchema) }),
      },
    },
    problems: [404, 422],
  }),
  proposals: defineOperation({
    method: 'get',
    path: '/v1/objects/proposals',
    summary: 'Label proposals waiting for a person, nearest to their seed first',
    query: z.object({
      className: className.optional(),
      streamId: z.string().min(1).optional(),
      limit: z.coerce.number().int().min(1).max(1000).default(100),
    }),
    responses: { 200: { description: 'pending proposals', schema: z.object({ proposals: z.array(proposalSchema) }) } },
  }),
  decide: defineOperation({
    method: 'post',
    path: '/v1/objects/proposals/decisions',
    summary: 'Confirm and reject pending proposals of a class in bulk',
    body: z
      .object({
        className,
        confirm: z.array(objectId).max(1000).default([]),
        reject: z.array(objectId).max(1000).default([]),
      })
      .strict()
      .refine((b) => b.confirm.length + b.reject.length > 0, { message: 'confirm or reject at least one object', path: ['confirm'] })
      .refine((b) => !b.confirm.some((id) => b.reject.includes(id)), { message: 'an object cannot be confirmed and rejected at once', path: ['reject'] }),
    bodyName: 'invalid decision',
    responses: {
      200: {
        description: 'how many pending proposals changed (already decided ones are left as they are)',
        schema: z.object({ confirmed: z.number().int(), rejected: z.number().int() }),
      },
    },
  }),
} as const;

const present = (o: ObjectRow) => ({ ...o, imageUrl: `/v1/frames/${o.frameId}/image` });

/** A region searches by the frame's stored detection that overlaps it most, if any overlaps this much. */
const MIN_REGION_IOU = 0.3;

export function objectRoutes(deps: ApiDeps) {
  const app = new Hono<AppEnv>();
  const maxK = deps.config.SIMILAR_MAX_K;

  async function objectsOr404(ids: string[], field: string): Promise<ObjectRow[]> {
    const found = await objectsByIds(
      deps.db,
      ids.filter((id) => UUID.test(id)),
    );
    const missing = ids.filter((id) => !found.has(id));
    if (missing.length)
      throw new ProblemError(
        404,
        'Not found',
        `${field}: no object ${missing.join(', ')}`,
        [{ field, message: `unknown object ${missing.join(', ')}` }],
        'unknown_object',
      );
    return ids.map((id) => found.get(id)!);
  }

  function checkK(k: number) {
    if (k > maxK)
      throw new ProblemError(400, 'Bad request', `k must be at most ${maxK} (SIMILAR_MAX_K)`, [{ field: 'k', message: `at most ${maxK}` }], 'invalid_request');
  }

  /** Runs a search; an example problem (no embedding, two model versions) is a 422 naming the field. */
  async function run<T>(search: () => Promise<T>): Promise<T> {
    try {
      return await search();
    } catch (err) {
      if (err instanceof ExamplesError)
        throw new ProblemError(422, 'Cannot search', err.message, [{ field: err.field, message: err.message }], 'invalid_examples');
      throw err;
    }
  }

  async function withNeighbours(query: ObjectRow[], neighbours: Neighbour[]) {
    const rows = await objectsByIds(
      deps.db,
      neighbours.map((n) => n.id),
    );
    return {
      query: query.map(present),
      neighbours: neighbours.flatMap((n) => (rows.has(n.id) ? [{ ...present(rows.get(n.id)!), distance: n.distance, labelClass: n.metadata.labelClass }] : [])),
    };
  }

  // Registered before /v1/objects/{id}, which would otherwise take `proposals` for an id.
  handle(app, objectOperations.proposals, async (c, { query }) => {
    const pending = await pendingProposals(deps.db, query);
    const rows = await objectsByIds(
      deps.db,
      pending.map((p) => p.objectId),
    );
    return c.json({
      proposals: pending.flatMap((p) =>
        rows.has(p.objectId)
          ? [{ ...present(rows.get(p.objectId)!), proposedClass: p.className, seedId: p.seedId!, distance: p.distance ?? 0, via: p.via ?? 'embedding' }]
          : [],
      ),
    });
  });

  handle(app, objectOperations.get, async (c, { params }) => {
    const [object] = await objectsOr404([params.id], 'id');
    return c.json(present(object));
  });

  handle(app, objectOperations.similar, async (c, { params, query }) => {
    checkK(query.k);
    const [object] = await objectsOr404([params.id], 'id');
    const filter: SearchFilter = {
      streamIds: query.streamId,
      cameraIds: query.cameraId,
      classNames: query.className,
      capturedFrom: query.from,
      capturedTo: query.to,
      labelState: query.labelState,
    };
    const neighbours = await run(() =>
      searchByExamples(deps.vectorIndex, deps.db, { positives: [object], field: 'id', k: query.k, maxDistance: query.maxDistance, filter, refine: false }),
    );
    return c.json(await withNeighbours([object], neighbours));
  });

  handle(app, objectOperations.search, async (c, { body }) => {
    checkK(body.k);
    let positives: ObjectRow[];
    if (body.region) {
      const region = body.region;
      const candidates = await objectsOfFrame(deps.db, region.frameId);
      const best = candidates.map((o) => ({ o, iou: iou(o.box, region.box) })).sort((a, b) => b.iou - a.iou)[0];
      if (!best || best.iou < MIN_REGION_IOU) {
        const why = best ? `the best overlap is ${best.iou.toFixed(2)}, under ${MIN_REGION_IOU}` : 'the frame has no stored detection';
        throw new ProblemError(
          422,
          'Cannot search',
          `region: no detection covers this region (${why})`,
          [{ field: 'region', message: why }],
          'no_object_in_region',
        );
      }
      positives = [best.o];
    } else {
      positives = await objectsOr404(body.positives!, 'positives');
    }
    const f = body.filter ?? {};
    const neighbours = await run(() =>
      searchByExamples(deps.vectorIndex, deps.db, {
        positives,
        field: body.region ? 'region' : 'positives',
        negatives: body.negatives,
        className: body.className,
        k: body.k,
        maxDistance: body.maxDistance,
        filter: { streamIds: f.streamIds, cameraIds: f.cameraIds, classNames: f.classNames, capturedFrom: f.from, capturedTo: f.to, labelState: f.labelState },
        refine: true,
      }),
    );
    return c.json(await withNeighbours(positives, neighbours));
  });

  handle(app, objectOperations.mark, async (c, { body }) => {
    const user = c.get('user');
    const objects = await objectsOr404([...new Set(body.objectIds)], 'objectIds');
    const positive = body.polarity === 'positive';
    // A negative for the class an object was labelled with takes that label back.
    const unlabel = positive
      ? new Set<string>()
      : await confirmedPositives(
          deps.db,
          body.className,
          objects.map((o) => o.id),
        );
    await markObjects(deps.db, { objects, className: body.className, polarity: body.polarity, userId: user.id, at: new Date() });
    if (positive) await deps.vectorIndex.setLabelClass(objects, body.className);
    else
      await deps.vectorIndex.setLabelClass(
        objects.filter((o) => unlabel.has(o.id)),
        null,
      );
    let proposals: Awaited<ReturnType<typeof proposeNeighbours>> = [];
    if (positive && body.propagate) {
      const candidates = await run(() =>
        proposeNeighbours(deps.vectorIndex, deps.db, {
          seeds: objects,
          className: body.className,
          maxDistance: body.maxDistance ?? deps.config.PROPAGATION_MAX_DISTANCE,
          minScore: deps.config.PROPAGATION_MIN_SCORE,
          maxProposals: deps.config.PROPAGATION_MAX_PROPOSALS,
        }),
      );
      const stored = new Set(await insertProposals(deps.db, body.className, candidates, user.id));
      proposals = candidates.filter((p) => stored.has(p.object.id));
    }
    return c.json({
      marked: objects.length,
      proposals: proposals.map((p) => ({ ...present(p.object), proposedClass: body.className, seedId: p.seedId, distance: p.distance, via: p.via })),
    });
  });

  handle(app, objectOperations.decide, async (c, { body }) => {
    const user = c.get('user');
    const at = new Date();
    const confirmed = await decideProposals(deps.db, { className: body.className, ids: body.confirm, decision: 'confirm', userId: user.id, at });
    const rejected = await decideProposals(deps.db, { className: body.className, ids: body.reject, decision: 'reject', userId: user.id, at });
    await deps.vectorIndex.setLabelClass(confirmed, body.className);
    return c.json({ confirmed: confirmed.length, rejected: rejected.length });
  });

  return app;
}

// Labels in and out: COCO import (with a dry run), COCO export and YOLO export.
//
// An import is one multipart request: the `annotations` part (a COCO dataset, or a pycocotools
// results list with the `dataset` part it refers to) and the image files it names, in any other
// parts. An image may instead name a frame of the stream by `frame_id` (as this platform's
// export writes), so labels can come back without their pixels. Every image is checked like an
// upload before anything is written; each accepted image becomes a frame (stored once per content,
// as ingestion does) with a label of source `import`; refused entries are listed with the reason.
// Importing the same file again adds nothing, and an import never changes a label stored before.
import { Hono } from 'hono';
import { z } from 'zod';
import { streamTimeRange } from '../schemas.ts';
import { findFrameByHash, framesOfStream } from '../../db/frames.ts';
import { importedLabelExists, importKeyOf, insertImportedLabel, labelsWithFrames } from '../../db/labels.ts';
import { productionModel } from '../../db/models.ts';
import { getStream } from '../../db/streams.ts';
import { CocoFileError, planCocoImport, type PlannedImage, type Refusal } from '../../formats/coco-import.ts';
import { exportClassNames, toCoco } from '../../formats/coco-export.ts';
import { yoloZip } from '../../formats/yolo-export.ts';
import { CAMERA_ID, IngestError, ingestFrame, inspectFrame, sniffImageType } from '../../ingest/ingest-frame.ts';
import { sha256Hex } from '../../storage/blob-store.ts';
import type { Tx } from '../../db/client.ts';
import type { ApiDeps, AppEnv } from '../env.ts';
import { defineOperation, handle } from '../operation.ts';
import { ProblemError, UUID } from '../problem.ts';

const importQuery = z
  .object({
    dryRun: z.enum(['true', 'false'], { error: 'dryRun must be true or false' }).default('false'),
    cameraId: z.string().regex(CAMERA_ID, 'cameraId must be 1-100 characters of letters, digits, ".", "_", ":" or "-"').default('import'),
    minScore: z.coerce.number().min(0, 'minScore lies between 0 and 1').max(1, 'minScore lies between 0 and 1').default(0.5),
  })
  .strict();

const status = z.enum(['new', 'stored']).describe('new: created by this import (or, in a dry run, would be); stored: there already');
const importResult = z.object({
  dryRun: z.boolean(),
  format: z.enum(['dataset', 'results']),
  totals: z.object({
    images: z.number().int().describe('images accepted'),
    newFrames: z.number().int(),
    newLabels: z.number().int(),
    boxes: z.number().int(),
    refused: z.number().int(),
    belowMinScore: z.number().int().describe('results-format detections under minScore, left out'),
  }),
  images: z.array(
    z.object({
      imageId: z.union([z.number(), z.string()]),
      fileName: z.string(),
      frameId: z.uuid().nullable().describe('null in a dry run for a frame not stored yet'),
      boxes: z.number().int(),
      classes: z.record(z.string(), z.number().int()),
      frame: status,
      label: status,
    }),
  ),
  refused: z.array(
    z.object({
      entry: z.enum(['file', 'image', 'annotation', 'category']),
      id: z.union([z.number(), z.string()]).nullable(),
      reason: z.string(),
    }),
  ),
});
const coco = z.object({
  info: z.object({ description: z.string(), date_created: z.string() }),
  categories: z.array(z.object({ id: z.number().int(), name: z.string() })),
  images: z.array(
    z.object({
      id: z.number().int(),
      file_name: z.string(),
      width: z.number().int(),
      height: z.number().int(),
      frame_id: z.uuid(),
      stream_id: z.string(),
      camera_id: z.string(),
      captured_at: z.date(),
      label_id: z.uuid(),
      decision: z.enum(['accept', 'reject', 'correct']),
    }),
  ),
  annotations: z.array(
    z.object({
      id: z.number().int(),
      image_id: z.number().int(),
      category_id: z.number().int(),
      bbox: z.array(z.number()).length(4).describe('x, y, width, height in pixels'),
      area: z.number(),
      iscrowd: z.literal(0),
    }),
  ),
});

export const labelFormatOperations = {
  importCoco: defineOperation({
    method: 'post',
    path: '/v1/streams/{id}/imports/coco',
    summary:
      'Import frames and boxes from COCO: a multipart body with the `annotations` part (a COCO dataset, or a pycocotools results list plus the `dataset` part it refers to) and the image files; ?dryRun=true lists what would be created and every refused entry, storing nothing',
    params: z.object({ id: z.string() }),
    query: importQuery,
    rawBody: {
      'multipart/form-data':
        'annotations: the COCO JSON file; dataset: the dataset a results list refers to; any other part: an image file named as in file_name',
    },
    responses: {
      200: { description: 'dry run, or nothing new', schema: importResult },
      201: { description: 'frames or labels created', schema: importResult },
    },
    problems: [409, 415],
  }),
  exportCoco: defineOperation({
    method: 'get',
    path: '/v1/labels/export',
    summary: 'Labels as COCO JSON (each frame with its newest label)',
    query: streamTimeRange,
    responses: { 200: { description: 'COCO JSON', schema: coco } },
  }),
  exportYolo: defineOperation({
    method: 'get',
    path: '/v1/labels/export/yolo',
    summary: 'Labels as a YOLO dataset zip: images/{train,val}, labels/{train,val} (class cx cy w h per line, normalised) and data.yaml',
    query: streamTimeRange,
    responses: { 200: { description: 'a zip file', contentType: 'application/zip' } },
  }),
};

type ImageStatus = z.output<typeof importResult>['images'][number];

export function labelFormatRoutes(deps: ApiDeps) {
  const app = new Hono<AppEnv>();
  const checks = { maxFrameBytes: deps.config.MAX_FRAME_BYTES, maxFramePixels: deps.config.MAX_FRAME_PIXELS };

  async function productionClasses(): Promise<string[]> {
    const production = await productionModel(deps.db, 'detection');
    return production?.metadata.kind === 'detection' ? production.metadata.classNames : [];
  }

  handle(app, labelFormatOperations.importCoco, async (c, { params, query: q }) => {
    const streamId = params.id;
    if (!(await getStream(deps.db, streamId)))
      throw new ProblemError(404, 'Not found', `stream ${JSON.stringify(streamId)} does not exist`, undefined, 'unknown_stream');
    if (!(c.req.header('content-type') ?? '').toLowerCase().startsWith('multipart/form-data')) {
      throw new ProblemError(415, 'Unsupported body', 'send multipart/form-data: an `annotations` part and the image files', [
        { field: 'Content-Type', message: 'must be multipart/form-data' },
      ]);
    }
    const parts = await c.req.parseBody({ all: true });
    const files = new Map<string, Uint8Array>();
    for (const [field, value] of Object.entries(parts)) {
      if (field === 'annotations' || field === 'dataset') continue;
      for (const v of Array.isArray(value) ? value : [value]) {
        if (typeof v === 'string') continue;
        if (files.has(v.name)) throw refusedPart(v.name, `two files are named ${v.name}`);
        files.set(v.name, new Uint8Array(await v.arrayBuffer()));
      }
    }
    if (files.size > deps.config.IMPORT_MAX_IMAGES) {
      throw new ProblemError(413, 'Too many images', `${files.size} image files; one request takes at most ${deps.config.IMPORT_MAX_IMAGES}`, [
        { field: 'images', message: `more than ${deps.config.IMPORT_MAX_IMAGES} files` },
      ]);
    }
    const annotations = await jsonPart(parts.annotations, 'annotations');
    const dataset = parts.dataset === undefined ? undefined : await jsonPart(parts.dataset, 'dataset');
    const frameIds = [...imagesOf(annotations), ...imagesOf(dataset)]
      .map((im) => (im as { frame_id?: unknown })?.frame_id)
      .filter((id): id is string => typeof id === 'string' && UUID.test(id));
    const classNames = await productionClasses();
    if (classNames.length === 0)
      throw new ProblemError(409, 'No production detector', "the production detector's classes decide which categories import; deploy a detector first");

    let plan;
    try {
      plan = planCocoImport({
        annotations,
        dataset,
        files: [...files.keys()],
        frames: new Map((await framesOfStream(deps.db, streamId, frameIds)).map((f) => [f.id, f])),
        classNames,
        minScore: q.minScore,
        defaultCameraId: q.cameraId,
        now: new Date(),
      });
    } catch (err) {
      if (err instanceof CocoFileError)
        throw new ProblemError(400, 'Invalid COCO file', err.message, [{ field: err.field, message: err.message }], 'invalid_coco');
      throw err;
    }
    if (plan.images.length > deps.config.IMPORT_MAX_IMAGES) {
      throw new ProblemError(413, 'Too many images', `${plan.images.length} images; one request takes at most ${deps.config.IMPORT_MAX_IMAGES}`, [
        { field: 'annotations', message: `more than ${deps.config.IMPORT_MAX_IMAGES} images` },
      ]);
    }

    const dryRun = q.dryRun === 'true';
    const refused: Refusal[] = [...plan.refused];
    const images: ImageStatus[] = [];
    // Each image's frame -> the image that named it first: two images of one request for the same
    // frame would give it two labels. A file names its frame by its bytes' hash and by the stored
    // frame with those bytes; an image named by frame_id by that id.
    const namedBy = new Map<string, string>();
    for (const image of plan.images) {
      try {
        let identities: string[];
        if ('frameId' in image.source) identities = [`frame:${image.source.frameId}`];
        else {
          const hash = sha256Hex(files.get(image.source.file)!);
          const stored = await findFrameByHash(deps.db, streamId, hash);
          identities = [`bytes:${hash}`, ...(stored ? [`frame:${stored.id}`] : [])];
        }
        const first = identities.map((id) => namedBy.get(id)).find((name) => name !== undefined);
        if (first !== undefined) throw new IngestError(`the same image as ${first}, earlier in this import`, 400, 'duplicate');
        const status = await importImage(image, streamId, files, c.get('user').id, dryRun);
        images.push(status);
        // Only an image that imported stands for its frame: a refused one's twin may still import.
        for (const id of [...identities, ...(status.frameId ? [`frame:${status.frameId}`] : [])]) namedBy.set(id, image.fileName);
      } catch (err) {
        if (!(err instanceof IngestError)) throw err;
        refused.push({ entry: 'image', id: image.imageId, reason: `${image.fileName}: ${err.message}` });
      }
    }
    const created = images.some((i) => i.frame === 'new' || i.label === 'new');
    const body = {
      dryRun,
      format: plan.format,
      totals: {
        images: images.length,
        newFrames: images.filter((i) => i.frame === 'new').length,
        newLabels: images.filter((i) => i.label === 'new').length,
        boxes: images.reduce((n, i) => n + i.boxes, 0),
        refused: refused.length,
        belowMinScore: plan.belowMinScore,
      },
      images,
      refused,
    };
    return c.json(body, created && !dryRun ? 201 : 200);
  });

  /**
   * Stores (or, in a dry run, checks) one image's frame and label; the label is written in the
   * transaction of a new frame's row, so the loop never sees the frame unlabelled.
   */
  async function importImage(image: PlannedImage, streamId: string, files: Map<string, Uint8Array>, userId: string, dryRun: boolean): Promise<ImageStatus> {
    let frameId: string | null;
    let frameIsNew = false;
    let labelIsNew = false;
    const storeLabel = async (tx: Tx, id: string) => {
      labelIsNew = await insertImportedLabel(tx, { frameId: id, streamId, boxes: image.boxes, importedBy: userId });
    };
    if ('frameId' in image.source) {
      frameId = image.source.frameId;
      if (!dryRun) await deps.db.transaction((tx) => storeLabel(tx, frameId!));
    } else {
      const bytes = files.get(image.source.file)!;
      const contentType = sniffImageType(bytes);
      if (!contentType) throw new IngestError('not a PNG or JPEG image (its first bytes are neither)', 415, 'content_type');
      const input = { cameraId: image.cameraId, capturedAt: image.capturedAt, contentType, bytes };
      const { width, height } = await inspectFrame(checks, input);
      if (width !== image.width || height !== image.height) {
        throw new IngestError(`the file is ${width}x${height}, the annotations say ${image.width}x${image.height}`, 400, 'size_mismatch');
      }
      if (dryRun) {
        frameId = (await findFrameByHash(deps.db, streamId, sha256Hex(bytes)))?.id ?? null;
        frameIsNew = frameId === null;
      } else {
        const stored = await ingestFrame(
          { db: deps.db, store: deps.store, ...checks, wakeLoop: (id) => deps.loopControl.wake(id) },
          { ...input, streamId, source: 'import' },
          storeLabel,
        );
        frameId = stored.frameId;
        frameIsNew = stored.created;
      }
    }
    if (dryRun) labelIsNew = frameId === null || !(await importedLabelExists(deps.db, importKeyOf(frameId, image.boxes)));
    const classes: Record<string, number> = {};
    for (const b of image.boxes) classes[b.className] = (classes[b.className] ?? 0) + 1;
    return {
      imageId: image.imageId,
      fileName: image.fileName,
      frameId,
      boxes: image.boxes.length,
      classes,
      frame: frameIsNew ? 'new' : 'stored',
      label: labelIsNew ? 'new' : 'stored',
    };
  }

  handle(app, labelFormatOperations.exportCoco, async (c, { query: q }) => {
    const rows = await labelsWithFrames(deps.db, q);
    return c.json(toCoco(rows, exportClassNames(rows, await productionClasses())));
  });

  handle(app, labelFormatOperations.exportYolo, async (c, { query: q }) => {
    const rows = await labelsWithFrames(deps.db, q);
    const zip = yoloZip(rows, exportClassNames(rows, await productionClasses()), (key) => deps.store.get(key));
    return c.body(zip, 200, { 'Content-Type': 'application/zip', 'Content-Disposition': 'attachment; filename="labels-yolo.zip"' });
  });

  return app;
}

/** The `images` list of a parsed dataset part; nothing for anything else (the plan says what is wrong). */
const imagesOf = (part: unknown): unknown[] =>
  part !== null && typeof part === 'object' && Array.isArray((part as { images?: unknown }).images) ? (part as { images: unknown[] }).images : [];

function refusedPart(field: string, message: string): ProblemError {
  return new ProblemError(400, 'Invalid import', message, [{ field, message }], 'invalid_import');
}

async function jsonPart(value: unknown, field: string): Promise<unknown> {
  if (value === undefined) throw refusedPart(field, `the ${field} part is missing (the COCO JSON file)`);
  if (Array.isArray(value)) throw refusedPart(field, `send one ${field} part`);
  const text = typeof value === 'string' ? value : await (value as File).text();
  try {
    return JSON.parse(text);
  } catch (err) {
    throw refusedPart(field, `the ${field} part is not JSON: ${(err as Error).message}`);
  }
}

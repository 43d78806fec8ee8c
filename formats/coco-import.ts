// What a COCO file would import, decided before anything is stored: which images become frames
// (from an attached file, or a frame of the stream the file names by `frame_id`, as this
// platform's export writes), each image's boxes, and every refused entry with its reason.
//
// Accepted: a COCO dataset (`images`, `annotations`, `categories`: this platform's export,
// CVAT's "COCO 1.0", the trainer's generated datasets) and a pycocotools results file (a list of
// `{image_id, category_id, bbox, score}`) together with the dataset it refers to.
//
// An image is all or nothing: if one of its annotations is refused, the whole image is, because a
// label missing one box would teach the detector that the object is background.
import path from 'node:path';
import { z } from 'zod';
import { fromCocoBbox } from '../db/coco.ts';
import type { LabelBox } from '../db/queue.ts';
import { CAMERA_ID } from '../ingest/ingest-frame.ts';

export interface Refusal {
  entry: 'file' | 'image' | 'annotation' | 'category';
  /** The entry's id in the COCO file (a file's name for `file`); null when it has none. */
  id: string | number | null;
  reason: string;
}

export interface PlannedImage {
  imageId: string | number;
  fileName: string;
  width: number;
  height: number;
  /** The attached file's name, or the stream's frame the image names. */
  source: { file: string } | { frameId: string };
  cameraId: string;
  capturedAt: Date;
  /** Normalised to the image; empty when the image has no objects (a label of its own). */
  boxes: LabelBox[];
}

export interface CocoPlan {
  format: 'dataset' | 'results';
  images: PlannedImage[];
  refused: Refusal[];
  /** Results-format detections under `minScore`, left out as intended (not refusals). */
  belowMinScore: number;
}

export interface PlanInput {
  /** The parsed `annotations` part: a dataset, or a results list. */
  annotations: unknown;
  /** The dataset a results list refers to (its images and categories). */
  dataset?: unknown;
  /** Names of the attached image files. */
  files: readonly string[];
  /** Frames of the stream the file's `frame_id`s name, with their sizes. */
  frames: ReadonlyMap<string, { width: number; height: number }>;
  /** The classes the production detector knows; other categories are refused. */
  classNames: readonly string[];
  minScore: number;
  defaultCameraId: string;
  now: Date;
}

/** The file as a whole is unusable (not a dataset or results list): a 400, nothing planned. */
export class CocoFileError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = 'CocoFileError';
  }
}

const id = z.union([z.number().int(), z.string().min(1)]);
const imageEntry = z.object({
  id,
  file_name: z.string().min(1).max(1024),
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  frame_id: z.string().optional(),
  camera_id: z.string().optional(),
  captured_at: z.string().optional(),
  // COCO writes "2013-11-14 11:18:45"; CVAT writes 0.
  date_captured: z.union([z.string(), z.number()]).optional(),
});
const annotationEntry = z.object({
  id: id.optional(),
  image_id: id,
  category_id: z.number().int(),
  bbox: z.tuple([z.number(), z.number(), z.number(), z.number()], { error: 'bbox must be [x, y, width, height] in pixels' }),
  iscrowd: z.number().int().optional(),
  score: z.number().optional(),
});
const categoryEntry = z.object({ id: z.number().int(), name: z.string().min(1).max(100) });
const topLevel = z.object({ images: z.array(z.unknown()), annotations: z.array(z.unknown()).default([]), categories: z.array(z.unknown()) });

// A box may overhang its image by this many pixels (rounding in other tools); it is clipped.
const EDGE_TOLERANCE_PX = 1;

// Normalised coordinates to 1e-7 (a tenth of a pixel on a 1M-pixel-wide image): an exported
// label imported again has the same boxes, not ones differing in the last float bits.
const round = (v: number) => Math.round(v * 1e7) / 1e7;

const issueText = (e: z.ZodError) => e.issues.map((i) => `${i.path.join('.') || '(entry)'}: ${i.message}`).join('; ');

function dataset(value: unknown, field: string) {
  const parsed = topLevel.safeParse(value);
  if (!parsed.success) throw new CocoFileError(field, `not a COCO dataset (${issueText(parsed.error)})`);
  return parsed.data;
}

function captureTime(image: z.output<typeof imageEntry>, now: Date): Date {
  for (const candidate of [image.captured_at, typeof image.date_captured === 'string' ? image.date_captured : undefined]) {
    if (!candidate) continue;
    const t = new Date(candidate.includes('T') || candidate.endsWith('Z') ? candidate : `${candidate.replace(' ', 'T')}Z`);
    if (!Number.isNaN(t.getTime())) return t;
  }
  return now;
}

/** Matches an image's file_name to an attached file: exactly, or by a base name no other file shares. */
function fileMatcher(files: readonly string[]) {
  const exact = new Set(files);
  const byBase = new Map<string, string[]>();
  for (const f of files) byBase.set(path.posix.basename(f), [...(byBase.get(path.posix.basename(f)) ?? []), f]);
  return (fileName: string): string | null => {
    if (exact.has(fileName)) return fileName;
    const candidates = byBase.get(path.posix.basename(fileName)) ?? [];
    return candidates.length === 1 ? candidates[0] : null;
  };
}

export function planCocoImport(input: PlanInput): CocoPlan {
  const refused: Refusal[] = [];
  const format = Array.isArray(input.annotations) ? 'results' : 'dataset';
  let source: ReturnType<typeof dataset>;
  let rawAnnotations: unknown[];
  if (format === 'results') {
    if (input.dataset === undefined) {
      throw new CocoFileError('dataset', 'a results list (pycocotools format) needs the dataset it refers to, for its images and categories');
    }
    source = dataset(input.dataset, 'dataset');
    rawAnnotations = input.annotations as unknown[];
  } else {
    source = dataset(input.annotations, 'annotations');
    rawAnnotations = source.annotations;
  }

  const classes = new Set(input.classNames);
  const categories = new Map<number, string>();
  for (const raw of source.categories) {
    const c = categoryEntry.safeParse(raw);
    if (!c.success) refused.push({ entry: 'category', id: null, reason: issueText(c.error) });
    else if (!classes.has(c.data.name)) {
      refused.push({
        entry: 'category',
        id: c.data.id,
        reason: `"${c.data.name}" is not a class of the production detector (${input.classNames.join(', ')})`,
      });
    } else categories.set(c.data.id, c.data.name);
  }

  // Images: valid entries, unique ids, a source for their pixels.
  const matchFile = fileMatcher(input.files);
  const images = new Map<string, PlannedImage>();
  const seenIds = new Map<string, number>();
  const validImages: z.output<typeof imageEntry>[] = [];
  for (const raw of source.images) {
    const im = imageEntry.safeParse(raw);
    if (!im.success) {
      const rawId = (raw as { id?: unknown })?.id;
      refused.push({ entry: 'image', id: typeof rawId === 'number' || typeof rawId === 'string' ? rawId : null, reason: issueText(im.error) });
      continue;
    }
    seenIds.set(String(im.data.id), (seenIds.get(String(im.data.id)) ?? 0) + 1);
    validImages.push(im.data);
  }
  const usedFiles = new Set<string>();
  for (const im of validImages) {
    const key = String(im.id);
    if (seenIds.get(key)! > 1) {
      refused.push({ entry: 'image', id: im.id, reason: `image id ${key} appears ${seenIds.get(key)} times` });
      continue;
    }
    const file = matchFile(im.file_name);
    const frame = im.frame_id ? input.frames.get(im.frame_id) : undefined;
    let imageSource: PlannedImage['source'];
    if (file) imageSource = { file };
    else if (frame && im.frame_id) {
      if (frame.width !== im.width || frame.height !== im.height) {
        refused.push({ entry: 'image', id: im.id, reason: `frame ${im.frame_id} is ${frame.width}x${frame.height}, the file says ${im.width}x${im.height}` });
        continue;
      }
      imageSource = { frameId: im.frame_id };
    } else {
      refused.push({
        entry: 'image',
        id: im.id,
        reason: im.frame_id
          ? `no file named ${im.file_name} is attached and frame ${im.frame_id} is not in this stream`
          : `no file named ${im.file_name} is attached`,
      });
      continue;
    }
    if ('file' in imageSource) {
      if (usedFiles.has(imageSource.file)) {
        refused.push({ entry: 'image', id: im.id, reason: `the file ${imageSource.file} is already the pixels of another image of the file` });
        continue;
      }
      usedFiles.add(imageSource.file);
    }
    images.set(key, {
      imageId: im.id,
      fileName: im.file_name,
      width: im.width,
      height: im.height,
      source: imageSource,
      cameraId: im.camera_id && CAMERA_ID.test(im.camera_id) ? im.camera_id : input.defaultCameraId,
      capturedAt: captureTime(im, input.now),
      boxes: [],
    });
  }
  for (const f of input.files) if (!usedFiles.has(f)) refused.push({ entry: 'file', id: f, reason: 'no image of the annotations names this file' });

  // Annotations: each to a box of its image; a refused one refuses its image.
  const brokenImages = new Map<string, string>();
  let belowMinScore = 0;
  rawAnnotations.forEach((raw, index) => {
    const a = annotationEntry.safeParse(raw);
    const rawId = (raw as { id?: unknown })?.id;
    const label = typeof rawId === 'number' || typeof rawId === 'string' ? rawId : `#${index + 1}`;
    const refuse = (reason: string, imageId?: string | number) => {
      refused.push({ entry: 'annotation', id: label, reason });
      if (imageId !== undefined && !brokenImages.has(String(imageId))) brokenImages.set(String(imageId), `annotation ${label} was refused (${reason})`);
    };
    if (!a.success) {
      const imageId = (raw as { image_id?: unknown })?.image_id;
      return refuse(issueText(a.error), typeof imageId === 'number' || typeof imageId === 'string' ? imageId : undefined);
    }
    const ann = a.data;
    if (format === 'results') {
      if (ann.score === undefined) return refuse('a results entry needs a score', ann.image_id);
      if (ann.score < input.minScore) return void belowMinScore++;
    }
    const image = images.get(String(ann.image_id));
    if (!image) {
      if (!seenIds.has(String(ann.image_id))) refuse(`image_id ${ann.image_id} is not an image of the file`);
      else refused.push({ entry: 'annotation', id: label, reason: `its image ${ann.image_id} was refused` });
      return;
    }
    if (ann.iscrowd === 1) return refuse('a crowd region (iscrowd 1) is not a box around one object', ann.image_id);
    const className = categories.get(ann.category_id);
    if (!className) return refuse(`category_id ${ann.category_id} is not a category of the file the detector knows`, ann.image_id);
    const [x, y, w, h] = ann.bbox;
    if (!(w > 0 && h > 0)) return refuse(`the box has width ${w} and height ${h}; both must be positive`, ann.image_id);
    const t = EDGE_TOLERANCE_PX;
    if (x < -t || y < -t || x + w > image.width + t || y + h > image.height + t) {
      return refuse(`the box [${ann.bbox.join(', ')}] lies outside the ${image.width}x${image.height} image`, ann.image_id);
    }
    const x1 = Math.max(0, x);
    const y1 = Math.max(0, y);
    const box = fromCocoBbox(className, [x1, y1, Math.min(image.width, x + w) - x1, Math.min(image.height, y + h) - y1], image.width, image.height);
    image.boxes.push({ className, x1: round(box.x1), y1: round(box.y1), x2: round(box.x2), y2: round(box.y2) });
  });
  for (const [imageId, reason] of brokenImages) {
    const image = images.get(imageId);
    if (!image) continue;
    images.delete(imageId);
    refused.push({ entry: 'image', id: image.imageId, reason });
  }
  return { format, images: [...images.values()], refused, belowMinScore };
}

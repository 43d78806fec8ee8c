// Dataset snapshots for retraining: reviewed labels (plus the parent snapshot's data) frozen
// into a COCO JSON file in the blob store, with a train/val split that keeps the frames of one
// sequence (a camera's frames close in time) on the same side.
import { createHash } from 'node:crypto';
import { and, eq, inArray } from 'drizzle-orm';
import type { BlobStore } from '../storage/blob-store.ts';
import type { DbOrTx } from './client.ts';
import { toCocoBbox } from './coco.ts';
import { reviewersBelow, type ReviewerQuality } from './consensus.ts';
import { labelsWithFrames } from './labels.ts';
import { confirmedObjectLabels, objectDecisionsOfFrames, objectsOfFrame } from './object-labels.ts';
import { datasetSnapshots, frames, labels } from './schema.ts';

/** Frames of one camera within this many seconds form one sequence for the split. */
const SEQUENCE_SECONDS = 30;

interface CocoImage {
  id: number;
  file_name: string;
  width: number;
  height: number;
  split: 'train' | 'val';
  [extra: string]: unknown;
}
interface CocoAnnotation {
  id: number;
  image_id: number;
  category_id: number;
  bbox: [number, number, number, number];
  area: number;
  /** 1: an ignore region (COCO's crowd), where the trainer neither rewards nor penalises a detection. */
  iscrowd: 0 | 1;
}
interface CocoDataset {
  info: Record<string, unknown>;
  categories: { id: number; name: string }[];
  images: CocoImage[];
  annotations: CocoAnnotation[];
}

export function splitOf(sequenceKey: string, valFraction = 0.2): 'train' | 'val' {
  const h = createHash('sha256').update(sequenceKey).digest().readUInt32BE(0) / 2 ** 32;
  return h < valFraction ? 'val' : 'train';
}

const snapshotKey = (id: string) => `snapshots/${id}/dataset.json`;

export const sequenceOf = (frame: { streamId: string; cameraId: string; capturedAt: Date }) =>
  `${frame.streamId}/${frame.cameraId}/${Math.floor(frame.capturedAt.getTime() / 1000 / SEQUENCE_SECONDS)}`;

/** A detection at least this confident that nobody decided on is an ignore region of its frame. */
const IGNORE_MIN_SCORE = 0.3;

type AddImage = (
  img: { file_name: string; width: number; height: number; [extra: string]: unknown },
  boxes: { className: string; bbox: [number, number, number, number]; ignore?: boolean }[],
) => void;

/**
 * Frames that carry confirmed object labels but no frame label (a frame label lists every object,
 * so it wins). Such a frame is labelled only in part: its confirmed objects are boxes, the
 * detections nobody decided on (at IGNORE_MIN_SCORE or more) are ignore regions, so training
 * neither rewards nor penalises the model there; a detection marked only negative is background.
 */
async function addObjectLabelledFrames(
  db: DbOrTx,
  opts: { asOf: Date; propagatedLabels?: boolean; excluded: string[] },
  labelledFrames: Map<string, unknown>,
  add: AddImage,
): Promise<void> {
  const propagated = opts.propagatedLabels ?? true;
  const positives = (
    await confirmedObjectLabels(db, { to: opts.asOf, provenance: propagated ? ['review', 'propagated'] : ['review'], excludedUsers: opts.excluded })
  ).filter((l) => !labelledFrames.has(l.frameId));
  if (positives.length === 0) return;
  const frameIds = [...new Set(positives.map((l) => l.frameId))];
  const frameRows = await db.select().from(frames).where(inArray(frames.id, frameIds));
  const decisions = await objectDecisionsOfFrames(db, frameIds, opts.asOf, propagated, opts.excluded);
  for (const frame of frameRows) {
    const mine = positives.filter((l) => l.frameId === frame.id);
    const labelled = new Set(mine.map((l) => l.predictionId));
    const decided = decisions.get(frame.id) ?? new Set<string>();
    const versions = new Set(mine.map((l) => l.modelVersion));
    const ignore = (await objectsOfFrame(db, frame.id)).filter(
      (p) => versions.has(p.modelVersion) && !labelled.has(p.id) && !decided.has(p.id) && p.score >= IGNORE_MIN_SCORE,
    );
    add(
      {
        file_name: frame.storageKey,
        width: frame.width,
        height: frame.height,
        frame_id: frame.id,
        stream_id: frame.streamId,
        camera_id: frame.cameraId,
        sequence_id: sequenceOf(frame),
        object_labels: mine.map((l) => ({ object_id: l.predictionId, provenance: l.provenance })),
      },
      [
        ...mine.map((l) => ({ className: l.className, bbox: toCocoBbox(l, frame.width, frame.height) })),
        ...ignore.map((p) => ({ className: p.className, bbox: toCocoBbox(p.box, frame.width, frame.height), ignore: true })),
      ],
    );
  }
}

/**
 * Builds and stores snapshot `id` (idempotent: the same id is written once, with the labels
 * that existed up to `asOf`). Each labelled frame appears once, with its newest label.
 */
export async function createSnapshot(
  db: DbOrTx,
  store: BlobStore,
  opts: {
    id: string;
    asOf: Date;
    trigger: string;
    classNames?: string[];
    parentKey?: string | null;
    /** Earlier frames (the parent snapshot's) kept per frame labelled since: the replay that
     * keeps fine-tuning on the picks from costing the scenes the model already handled. null
     * keeps them all. The kept ones are chosen by a hash of their file, the same on every run. */
    replayRatio?: number | null;
    /** At least this many earlier frames are kept whatever the ratio gives: a retraining run on
     * 50 picks with ratio 1 would otherwise see only 50 of the scenes the model handled, and the
     * label-efficiency benchmark shows clear-scene accuracy falling with so few. */
    replayMin?: number;
    /** Take confirmed proposals (provenance `propagated`) as labels (RETRAIN_PROPAGATED_LABELS). */
    propagatedLabels?: boolean;
    /** Leave out the labels of reviewers whose gold accuracy or consensus agreement is below a floor. */
    reviewerQuality?: ReviewerQuality;
  },
): Promise<{ id: string; datasetKey: string; numImages: number; numAnnotations: number; numVal: number }> {
  const [existing] = await db.select().from(datasetSnapshots).where(eq(datasetSnapshots.id, opts.id));
  if (existing) {
    const ds = JSON.parse((await store.get(existing.datasetKey)).toString()) as CocoDataset;
    return {
      id: existing.id,
      datasetKey: existing.datasetKey,
      numImages: existing.numImages,
      numAnnotations: existing.numAnnotations,
      numVal: ds.images.filter((i) => i.split === 'val').length,
    };
  }
  const parent: CocoDataset | null = opts.parentKey && (await store.exists(opts.parentKey)) ? JSON.parse((await store.get(opts.parentKey)).toString()) : null;
  const leftOut = opts.reviewerQuality?.minAccuracy ? await reviewersBelow(db, opts.reviewerQuality) : [];
  const excluded = new Set(leftOut.map((r) => r.reviewerId));
  // What goes with a left-out reviewer: their answers in the queue (an import or an adjudication
  // names a lead, who is never judged, and a merged consensus label names nobody).
  const distrust = (l: { reviewerId: string | null; source: string }) => l.source === 'review' && l.reviewerId !== null && excluded.has(l.reviewerId);
  const all = await labelsWithFrames(db, { to: opts.asOf });
  // A frame whose newest label is an excluded reviewer's keeps the label before it, if any.
  const rows = all.filter((r) => !distrust(r.label));
  // The production model's classes, in its order; without a production model, the classes the
  // labels (and the parent snapshot) name, sorted: never a list written into the code.
  const classNames =
    opts.classNames ?? [...new Set([...rows.flatMap((r) => r.label.boxes.map((b) => b.className)), ...(parent?.categories.map((c) => c.name) ?? [])])].sort();
  const newest = new Map<string, (typeof rows)[number]>();
  for (const r of rows) newest.set(r.frame.id, r);

  const dataset: CocoDataset = {
    info: {
      description: `snapshot ${opts.id}`,
      trigger: opts.trigger,
      as_of: opts.asOf.toISOString(),
      // Who was left out for low accuracy on gold tasks or low agreement in consensus, and how many
      // labels went with them.
      reviewers_left_out: leftOut.map((r) => ({ ...r, labels: all.filter((x) => x.label.reviewerId === r.reviewerId && distrust(x.label)).length })),
    },
    categories: classNames.map((name, i) => ({ id: i + 1, name })),
    images: [],
    annotations: [],
  };
  const seen = new Set<string>();
  const addImage = (
    img: { file_name: string; width: number; height: number; split: 'train' | 'val'; [extra: string]: unknown },
    boxes: { className: string; bbox: [number, number, number, number]; ignore?: boolean }[],
  ) => {
    if (seen.has(img.file_name)) return;
    seen.add(img.file_name);
    const id = dataset.images.length + 1;
    dataset.images.push({ ...img, id });
    for (const b of boxes) {
      const category = classNames.indexOf(b.className) + 1;
      const [, , w, h] = b.bbox;
      if (category === 0 || w <= 0 || h <= 0) continue;
      const iscrowd = b.ignore ? 1 : 0;
      dataset.annotations.push({ id: dataset.annotations.length + 1, image_id: id, category_id: category, bbox: b.bbox, area: w * h, iscrowd });
    }
  };
  for (const { label, frame } of newest.values()) {
    const sequence = sequenceOf(frame);
    const boxes = label.boxes.map((b) => ({ className: b.className, bbox: toCocoBbox(b, frame.width, frame.height) }));
    addImage(
      {
        file_name: frame.storageKey,
        width: frame.width,
        height: frame.height,
        split: splitOf(sequence),
        frame_id: frame.id,
        stream_id: frame.streamId,
        camera_id: frame.cameraId,
        sequence_id: sequence,
        label_id: label.id,
      },
      boxes,
    );
  }
  await addObjectLabelledFrames(db, { ...opts, excluded: [...excluded] }, newest, (img, boxes) =>
    addImage({ ...img, split: splitOf(String(img.sequence_id)) }, boxes),
  );
  if (parent) {
    const byName = new Map(parent.categories.map((c) => [c.id, c.name]));
    const anns = new Map<number, CocoAnnotation[]>();
    for (const a of parent.annotations) anns.set(a.image_id, [...(anns.get(a.image_id) ?? []), a]);
    const replayRatio = opts.replayRatio ?? null;
    const hash = (name: string) => createHash('sha256').update(name).digest().readUInt32BE(0);
    // A parent frame labelled by a reviewer left out now is not replayed with their boxes either.
    const distrusted = excluded.size
      ? new Set(
          (
            await db
              .select({ id: labels.id })
              .from(labels)
              .where(and(inArray(labels.reviewerId, [...excluded]), eq(labels.source, 'review')))
          ).map((r) => r.id),
        )
      : new Set<string>();
    const replayable = parent.images.filter((im) => !(typeof im.label_id === 'string' && distrusted.has(im.label_id)));
    const kept =
      replayRatio === null
        ? replayable
        : [...replayable].sort((a, b) => hash(a.file_name) - hash(b.file_name)).slice(0, Math.max(opts.replayMin ?? 0, Math.ceil(replayRatio * newest.size)));
    for (const im of kept) {
      addImage(
        { ...im, split: im.split === 'val' ? 'val' : 'train' },
        (anns.get(im.id) ?? []).map((a) => ({ className: byName.get(a.category_id) ?? '', bbox: a.bbox, ignore: a.iscrowd === 1 })),
      );
    }
  }
  const datasetKey = snapshotKey(opts.id);
  await store.put(datasetKey, Buffer.from(JSON.stringify(dataset)));
  await db
    .insert(datasetSnapshots)
    .values({ id: opts.id, datasetKey, numImages: dataset.images.length, numAnnotations: dataset.annotations.length, trigger: opts.trigger })
    .onConflictDoNothing();
  return {
    id: opts.id,
    datasetKey,
    numImages: dataset.images.length,
    numAnnotations: dataset.annotations.length,
    numVal: dataset.images.filter((i) => i.split === 'val').length,
  };
}

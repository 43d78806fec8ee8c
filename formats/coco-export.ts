// Labels as a COCO dataset (docs/contracts.md): one image per labelled frame with its newest
// label's boxes, the platform's ids beside COCO's (frame_id lets a COCO import find the frame
// again without its file).
import { toCocoBbox } from '../db/coco.ts';
import type { LabelWithFrame } from '../db/labels.ts';

/** Each frame's newest label, in the order the frames were first labelled. */
export function newestPerFrame(rows: readonly LabelWithFrame[]): LabelWithFrame[] {
  const newest = new Map<string, LabelWithFrame>();
  for (const r of rows) newest.set(r.frame.id, r);
  return [...newest.values()];
}

/** The production detector's classes first (their order is the model's), then any other class a label uses. */
export function exportClassNames(rows: readonly LabelWithFrame[], fromModel: readonly string[]): string[] {
  const seen = new Set(rows.flatMap((r) => r.label.boxes.map((b) => b.className)));
  return [...fromModel, ...[...seen].filter((n) => !fromModel.includes(n)).sort()];
}

export function toCoco(rows: readonly LabelWithFrame[], classNames: readonly string[]) {
  const images: object[] = [];
  const annotations: object[] = [];
  newestPerFrame(rows).forEach((r, i) => {
    const imageId = i + 1;
    images.push({
      id: imageId,
      file_name: r.frame.storageKey,
      width: r.frame.width,
      height: r.frame.height,
      frame_id: r.frame.id,
      stream_id: r.frame.streamId,
      camera_id: r.frame.cameraId,
      captured_at: r.frame.capturedAt,
      label_id: r.label.id,
      decision: r.label.decision,
    });
    for (const b of r.label.boxes) {
      const bbox = toCocoBbox(b, r.frame.width, r.frame.height);
      annotations.push({
        id: annotations.length + 1,
        image_id: imageId,
        category_id: classNames.indexOf(b.className) + 1,
        bbox,
        area: bbox[2] * bbox[3],
        iscrowd: 0,
      });
    }
  });
  return {
    info: { description: 'dataengine label export', date_created: new Date().toISOString() },
    categories: classNames.map((name, i) => ({ id: i + 1, name })),
    images,
    annotations,
  };
}

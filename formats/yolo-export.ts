// Labels in the YOLO layout that Ultralytics and most YOLO trainers read, as one zip streamed
// frame by frame: images/{train,val}/<frame id>.<ext>, labels/{train,val}/<frame id>.txt (a line
// per box: class index, then centre x, centre y, width, height, all normalised to the image; an
// empty file for a frame with no objects) and data.yaml (the split folders and class names).
// The split is the retraining snapshot's: a camera's frames close in time stay on one side, so
// validation frames are not near-copies of training frames.
//
// fflate writes the zip (images are stored as they are, since PNG and JPEG are compressed already;
// the text files are deflated).
import { Zip, ZipDeflate, ZipPassThrough } from 'fflate';
import { dump } from 'js-yaml';
import type { LabelWithFrame } from '../db/labels.ts';
import { sequenceOf, splitOf } from '../db/snapshots.ts';
import { newestPerFrame } from './coco-export.ts';

const EXTENSION: Record<string, string> = { 'image/png': 'png', 'image/jpeg': 'jpg' };

/** One frame's label file: `class cx cy w h` per box, normalised, six decimals. */
function yoloLines(boxes: LabelWithFrame['label']['boxes'], classNames: readonly string[]): string {
  return boxes
    .map((b) => {
      const values = [(b.x1 + b.x2) / 2, (b.y1 + b.y2) / 2, b.x2 - b.x1, b.y2 - b.y1].map((v) => v.toFixed(6));
      return `${classNames.indexOf(b.className)} ${values.join(' ')}\n`;
    })
    .join('');
}

function dataYaml(classNames: readonly string[]): string {
  // names as a list (a class's index is its position), the form every YOLO trainer reads.
  return dump({ path: '.', train: 'images/train', val: 'images/val', nc: classNames.length, names: [...classNames] });
}

/** The zip as a stream: one frame's image is read from the store at a time, when the reader asks for more. */
export function yoloZip(rows: readonly LabelWithFrame[], classNames: readonly string[], readImage: (storageKey: string) => Promise<Uint8Array>) {
  const frames = newestPerFrame(rows);
  const encoder = new TextEncoder();
  let zip: Zip;
  const add = (name: string, data: Uint8Array, deflate: boolean) => {
    const entry = deflate ? new ZipDeflate(name, { level: 6 }) : new ZipPassThrough(name);
    zip.add(entry);
    entry.push(data, true);
  };
  let next = 0;
  return new ReadableStream<Uint8Array>({
    start(controller) {
      zip = new Zip((err, chunk, final) => {
        if (err) return controller.error(err);
        controller.enqueue(chunk);
        if (final) controller.close();
      });
      add('data.yaml', encoder.encode(dataYaml(classNames)), true);
    },
    async pull() {
      if (next === frames.length) return zip.end();
      const { frame, label } = frames[next++];
      const split = splitOf(sequenceOf(frame));
      add(`images/${split}/${frame.id}.${EXTENSION[frame.mediaType] ?? 'bin'}`, await readImage(frame.storageKey), false);
      add(`labels/${split}/${frame.id}.txt`, encoder.encode(yoloLines(label.boxes, classNames)), true);
    },
  });
}

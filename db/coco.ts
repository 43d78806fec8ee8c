// The platform's boxes (normalised to the frame: x1 y1 x2 y2 in 0..1) as COCO boxes (pixels:
// x y width height) and back, for exports, snapshots and whatever reads a COCO file.
import type { LabelBox } from './queue.ts';

type Corners = Pick<LabelBox, 'x1' | 'y1' | 'x2' | 'y2'>;

export function toCocoBbox(b: Corners, width: number, height: number): [number, number, number, number] {
  return [b.x1 * width, b.y1 * height, (b.x2 - b.x1) * width, (b.y2 - b.y1) * height];
}

export function fromCocoBbox(className: string, bbox: readonly number[], width: number, height: number): LabelBox {
  const [x, y, w, h] = bbox;
  return { className, x1: x / width, y1: y / height, x2: (x + w) / width, y2: (y + h) / height };
}

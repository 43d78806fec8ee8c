// How a reviewer's answer to a gold task is scored against the gold label: boxes are matched
// one-to-one, greedily by IoU (highest first), as COCO's evaluation matches detections to ground
// truth. Written here because the evaluators that do this (pycocotools, torchmetrics) are Python
// and score whole datasets, not one answer inside a request.
import type { LabelBox } from '../db/schema.ts';

/** The overlap two boxes need to count as the same object (CVAT and COCO's mAP@0.5 use 0.5). */
const GOLD_MIN_IOU = 0.5;

export interface GoldScore {
  /** Answer boxes matched to a gold box of the same class, over the answer's boxes (null: none drawn). */
  precision: number | null;
  /** Gold boxes matched by an answer box of the same class, over the gold boxes (null: gold has none). */
  recall: number | null;
  /** Of the answer boxes that overlap a gold box (any class), the share that named its class (null: none overlap). */
  classAccuracy: number | null;
  /** F1 of precision and recall; 1 when answer and gold are both empty. */
  score: number;
}

export function iou(a: LabelBox, b: LabelBox): number {
  const w = Math.min(a.x2, b.x2) - Math.max(a.x1, b.x1);
  const h = Math.min(a.y2, b.y2) - Math.max(a.y1, b.y1);
  if (w <= 0 || h <= 0) return 0;
  const inter = w * h;
  return inter / ((a.x2 - a.x1) * (a.y2 - a.y1) + (b.x2 - b.x1) * (b.y2 - b.y1) - inter);
}

/** One-to-one pairs (answer index, gold index) with IoU >= minIou, best overlaps first. */
function match(answer: LabelBox[], gold: LabelBox[], sameClass: boolean, minIou: number): [number, number][] {
  const candidates: { a: number; g: number; iou: number }[] = [];
  answer.forEach((x, a) =>
    gold.forEach((y, g) => {
      if (sameClass && x.className !== y.className) return;
      const o = iou(x, y);
      if (o >= minIou) candidates.push({ a, g, iou: o });
    }),
  );
  candidates.sort((p, q) => q.iou - p.iou || p.a - q.a || p.g - q.g);
  const usedA = new Set<number>();
  const usedG = new Set<number>();
  const pairs: [number, number][] = [];
  for (const c of candidates) {
    if (usedA.has(c.a) || usedG.has(c.g)) continue;
    usedA.add(c.a);
    usedG.add(c.g);
    pairs.push([c.a, c.g]);
  }
  return pairs;
}

export function scoreAgainstGold(answer: LabelBox[], gold: LabelBox[], minIou = GOLD_MIN_IOU): GoldScore {
  const tp = match(answer, gold, true, minIou).length;
  const located = match(answer, gold, false, minIou);
  const named = located.filter(([a, g]) => answer[a].className === gold[g].className).length;
  const total = answer.length + gold.length;
  return {
    precision: answer.length ? tp / answer.length : null,
    recall: gold.length ? tp / gold.length : null,
    classAccuracy: located.length ? named / located.length : null,
    score: total === 0 ? 1 : (2 * tp) / total,
  };
}

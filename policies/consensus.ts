// Consensus: several reviewers label the same frame and their boxes are merged, as CVAT merges
// the replicas of a consensus job: boxes of different reviewers that overlap (IoU at least
// `minIou`) are one object; an object kept by at least `quorum` of the reviewers is part of the
// merged label, its box the mean of theirs and its class the one most of them gave. Agreement is
// the mean pairwise F1 of the answers (policies/gold-score.ts scores one answer against another).
// Written here because the tools that merge annotations (CVAT, Label Studio) do it on their own
// servers, not as a library.
import type { LabelBox } from '../db/schema.ts';
import { iou, scoreAgainstGold } from './gold-score.ts';

export interface ConsensusSettings {
  /** IoU at which boxes of different reviewers are the same object. */
  minIou: number;
  /** Share of the reviewers who must have drawn an object for it to be kept. */
  quorum: number;
}

export interface ConsensusResult {
  merged: LabelBox[];
  /** Mean pairwise F1 of the answers (1 when all are empty). */
  agreement: number;
  /** Per class: mean F1 of the answers' boxes of that class, over the pairs where one drew it. */
  byClass: Record<string, number>;
  /** Per answer (in the order given): its F1 against the merged label. */
  byAnswer: number[];
}

/** Merges k answers (each a list of boxes by one reviewer) into one label. */
export function mergeAnswers(answers: LabelBox[][], settings: ConsensusSettings): ConsensusResult {
  // Greedy clustering, highest-overlap pairs first: each cluster holds at most one box per answer.
  type Member = { answer: number; box: LabelBox };
  const clusters: Member[][] = [];
  const pairs: { a: number; i: number; b: number; j: number; iou: number }[] = [];
  answers.forEach((boxesA, a) =>
    answers.forEach((boxesB, b) => {
      if (b <= a) return;
      boxesA.forEach((x, i) =>
        boxesB.forEach((y, j) => {
          const o = iou(x, y);
          if (o >= settings.minIou) pairs.push({ a, i, b, j, iou: o });
        }),
      );
    }),
  );
  pairs.sort((p, q) => q.iou - p.iou || p.a - q.a || p.i - q.i || p.b - q.b || p.j - q.j);
  const clusterOf = new Map<string, Member[]>();
  const key = (answer: number, index: number) => `${answer}:${index}`;
  for (const p of pairs) {
    const ca = clusterOf.get(key(p.a, p.i));
    const cb = clusterOf.get(key(p.b, p.j));
    if (ca && cb) continue;
    const cluster = ca ?? cb;
    if (cluster) {
      const [answer, index, box] = ca ? [p.b, p.j, answers[p.b][p.j]] : [p.a, p.i, answers[p.a][p.i]];
      if (cluster.some((m) => m.answer === answer)) continue;
      cluster.push({ answer, box });
      clusterOf.set(key(answer, index), cluster);
    } else {
      const fresh = [
        { answer: p.a, box: answers[p.a][p.i] },
        { answer: p.b, box: answers[p.b][p.j] },
      ];
      clusters.push(fresh);
      clusterOf.set(key(p.a, p.i), fresh);
      clusterOf.set(key(p.b, p.j), fresh);
    }
  }
  answers.forEach((boxes, answer) =>
    boxes.forEach((box, index) => {
      if (!clusterOf.has(key(answer, index))) clusters.push([{ answer, box }]);
    }),
  );

  const needed = settings.quorum * answers.length;
  const merged: LabelBox[] = [];
  for (const cluster of clusters) {
    if (cluster.length < needed) continue;
    const votes = new Map<string, number>();
    for (const m of cluster) votes.set(m.box.className, (votes.get(m.box.className) ?? 0) + 1);
    // The class most reviewers gave; a tie goes to the one named first.
    const className = [...votes.entries()].sort((x, y) => y[1] - x[1])[0][0];
    const mean = (f: (b: LabelBox) => number) => cluster.reduce((s, m) => s + f(m.box), 0) / cluster.length;
    merged.push({ className, x1: mean((b) => b.x1), y1: mean((b) => b.y1), x2: mean((b) => b.x2), y2: mean((b) => b.y2) });
  }
  merged.sort((p, q) => p.y1 - q.y1 || p.x1 - q.x1);

  const classes = [...new Set(answers.flat().map((b) => b.className))].sort();
  // Per class, a pair of answers counts only if at least one of them drew the class.
  const pairwise = (filter: (b: LabelBox) => boolean, skipEmptyPairs: boolean) => {
    const scores: number[] = [];
    for (let a = 0; a < answers.length; a++)
      for (let b = a + 1; b < answers.length; b++) {
        const [x, y] = [answers[a].filter(filter), answers[b].filter(filter)];
        if (!(skipEmptyPairs && x.length === 0 && y.length === 0)) scores.push(scoreAgainstGold(x, y).score);
      }
    return scores.length ? scores.reduce((s, v) => s + v, 0) / scores.length : 1;
  };
  return {
    merged,
    agreement: pairwise(() => true, false),
    byClass: Object.fromEntries(classes.map((c) => [c, pairwise((b) => b.className === c, true)])),
    byAnswer: answers.map((boxes) => scoreAgainstGold(boxes, merged).score),
  };
}

// Label quality: what noisy reviewers cost the fine-tuned model, and what consensus and the gold
// filter win back. The platform's policy (ranked, as the scoring activity routes) picks the same
// frames of a shifted stream for every arm; only who labels them changes:
//   oracle             the generator's truth;
//   one reviewer       one reviewer who drops or displaces `noise` of the boxes;
//   consensus of 3     three such reviewers, independently, merged as the platform merges them
//                      (policies/consensus.ts; 3x the answers);
//   pool               reviewers of mixed care (`pool`: their noise rates) take the picks in turn;
//   pool + gold        the same labels, less those of reviewers whose accuracy on `goldFrames`
//                      check frames is below `minAccuracy` (RETRAIN_MIN_REVIEWER_ACCURACY);
//   pool + consensus   every pick labelled by the whole pool and merged.
// A displaced box is moved by half its width and height (IoU 0.14 with the truth): the kind of
// box that trains the detector to miss.
import { mean } from 'simple-statistics';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { LabelBox } from '../db/schema.ts';
import { DetectorSession } from '../models/sessions.ts';
import { mergeAnswers } from '../policies/consensus.ts';
import { scoreAgainstGold } from '../policies/gold-score.ts';
import { mulberry32 } from '../test/helpers/random.ts';
import {
  defaultLabelEfficiency,
  fineTuneAndScore,
  generate,
  pick,
  scoreAll,
  streamDataset,
  trainBaseDetector,
  trainingSet,
  type Coco,
} from './label-efficiency.ts';
import { table } from './stats.ts';

export interface LabelNoiseOptions {
  scenario: string;
  seeds: number[];
  /** Frames the policy picks (one label each, per reviewer who answers). */
  budget: number;
  /** Share of boxes a noisy reviewer gets wrong: half dropped, half displaced. */
  noise: number;
  /** The mixed pool: each reviewer's noise rate. */
  pool: number[];
  /** Check frames each pool reviewer answers, and the accuracy (mean F1) below which their labels go. */
  goldFrames: number;
  minAccuracy: number;
}

export const defaultLabelNoise: LabelNoiseOptions = {
  scenario: 'new_camera',
  seeds: [1, 2],
  budget: 200,
  noise: 0.2,
  pool: [0.1, 0.1, 0.6],
  goldFrames: 20,
  minAccuracy: 0.7,
};

type Annotation = { id: number; image_id: number; category_id: number; bbox: [number, number, number, number]; [k: string]: unknown };

const toBox = (a: Annotation): LabelBox => ({
  className: String(a.category_id),
  x1: a.bbox[0],
  y1: a.bbox[1],
  x2: a.bbox[0] + a.bbox[2],
  y2: a.bbox[1] + a.bbox[3],
});
const fromBox = (b: LabelBox, imageId: number, id: number): Annotation => ({
  id,
  image_id: imageId,
  category_id: Number(b.className),
  bbox: [b.x1, b.y1, b.x2 - b.x1, b.y2 - b.y1],
  area: (b.x2 - b.x1) * (b.y2 - b.y1),
  iscrowd: 0,
});

/** One reviewer's answer for a frame: each box dropped with probability rate/2, displaced with rate/2. */
function answer(truth: LabelBox[], rate: number, rand: () => number): LabelBox[] {
  const out: LabelBox[] = [];
  for (const b of truth) {
    const u = rand();
    if (u < rate / 2) continue;
    if (u < rate) {
      const dx = ((b.x2 - b.x1) / 2) * (rand() < 0.5 ? -1 : 1);
      const dy = ((b.y2 - b.y1) / 2) * (rand() < 0.5 ? -1 : 1);
      out.push({ ...b, x1: b.x1 + dx, x2: b.x2 + dx, y1: b.y1 + dy, y2: b.y2 + dy });
    } else out.push(b);
  }
  return out;
}

/** The stream's COCO with the picked frames' boxes replaced by `labelOf` (null: the frame is left out). */
function relabelled(coco: Coco, ids: number[], labelOf: (imageId: number) => LabelBox[] | null): { coco: Coco; ids: number[] } {
  const kept: number[] = [];
  const annotations: Annotation[] = [];
  for (const id of ids) {
    const boxes = labelOf(id);
    if (boxes === null) continue;
    kept.push(id);
    for (const b of boxes) annotations.push(fromBox(b, id, annotations.length + 1));
  }
  return { coco: { ...coco, annotations }, ids: kept };
}

interface Arm {
  arm: string;
  seed: number;
  /** Frames trained on, and answers reviewers gave (consensus costs k per frame; gold checks count). */
  frames: number;
  answers: number;
  shift: number;
  clear: number;
}

export async function benchLabelNoise(opts: LabelNoiseOptions, resultsDir: string, resultsFile: string) {
  const le = defaultLabelEfficiency;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'label-noise-'));
  const started = performance.now();
  const arms: Arm[] = [];
  const results: Record<string, unknown> = { options: opts, startedAt: new Date().toISOString(), machine: `${os.cpus().length} cores`, arms };
  const save = () => fs.writeFileSync(path.join(resultsDir, resultsFile), JSON.stringify(results, null, 2));
  try {
    const { coco: baseSet, model: baseModel } = trainBaseDetector(le, path.join(work, 'base'), path.join(work, 'base-model'), 'clear');
    const detector = await DetectorSession.load(fs.readFileSync(baseModel), { intraOpThreads: 2, minScore: 0.1 });
    const refs = generate(path.join(work, 'references'), 'clear', le.referenceFrames, 500, 16);
    const references = [...(await scoreAll(detector, path.join(work, 'references'), refs.images)).values()].map((r) => r.embedding);
    const evalSets = { shift: path.join(work, 'eval-shift'), clear: path.join(work, 'eval-clear') };
    generate(evalSets.shift, opts.scenario, 300, 1000, 16);
    generate(evalSets.clear, 'clear', 200, 1000, 16);
    const evalArg = Object.entries(evalSets)
      .map(([n, d]) => `${n}=${path.join(d, 'dataset.json')}`)
      .join(',');
    // Check frames with known truth: the base set's, as a lead marks labelled frames gold.
    const goldTruth = new Map<number, LabelBox[]>();
    for (const a of baseSet.annotations as Annotation[]) goldTruth.set(a.image_id, [...(goldTruth.get(a.image_id) ?? []), toBox(a)]);
    const goldIds = baseSet.images.slice(0, opts.goldFrames).map((im) => im.id);
    const goldAccuracyBySeed: Record<number, number[]> = {};
    results.goldAccuracy = goldAccuracyBySeed;

    for (const seed of opts.seeds) {
      const dir = path.join(work, `seed-${seed}`);
      fs.mkdirSync(dir);
      const clear = generate(path.join(dir, 'clear'), 'clear', le.clearFrames, 100 + seed, 4);
      const shift = generate(path.join(dir, 'shift'), opts.scenario, le.shiftFrames, 100 + seed, 4);
      const { coco, stream } = streamDataset(dir, [
        { sub: 'clear', coco: clear, shifted: false },
        { sub: 'shift', coco: shift, shifted: true },
      ]);
      const scored = await scoreAll(
        detector,
        dir,
        stream.map((f) => f.image),
      );
      const ids = pick('ranked', stream, scored, references, opts.budget, seed);
      // Each reviewer's answers are drawn once per frame, so the arms that share a reviewer see
      // the same boxes: the gold filter's arm is the pool's labels less the dropped reviewers'.
      const truthOf = new Map<number, LabelBox[]>();
      for (const a of coco.annotations as Annotation[]) truthOf.set(a.image_id, [...(truthOf.get(a.image_id) ?? []), toBox(a)]);
      const answersOf = (rate: number, salt: number) => {
        const rand = mulberry32(seed * 7919 + salt);
        return new Map(ids.map((id) => [id, answer(truthOf.get(id) ?? [], rate, rand)]));
      };
      const single = answersOf(opts.noise, 1);
      const triple = [answersOf(opts.noise, 2), answersOf(opts.noise, 3), answersOf(opts.noise, 4)];
      const pool = opts.pool.map((rate, r) => answersOf(rate, 10 + r));
      const reviewerOf = (id: number) => ids.indexOf(id) % opts.pool.length;
      // Each pool reviewer's accuracy on the check frames, as the gold tasks measure it.
      const goldRand = mulberry32(seed * 7919 + 99);
      const goldAccuracy = opts.pool.map((rate) =>
        mean(goldIds.map((g) => scoreAgainstGold(answer(goldTruth.get(g) ?? [], rate, goldRand), goldTruth.get(g) ?? []).score)),
      );
      const trusted = goldAccuracy.map((a) => a >= opts.minAccuracy);
      goldAccuracyBySeed[seed] = goldAccuracy;
      const merge = (answers: LabelBox[][]) => mergeAnswers(answers, { minIou: 0.5, quorum: 0.5 }).merged;

      const plans: { arm: string; labelOf: (id: number) => LabelBox[] | null; answersPerFrame: number; extra: number }[] = [
        { arm: 'oracle', labelOf: (id) => truthOf.get(id) ?? [], answersPerFrame: 1, extra: 0 },
        { arm: `one reviewer (${opts.noise * 100}% wrong)`, labelOf: (id) => single.get(id)!, answersPerFrame: 1, extra: 0 },
        { arm: 'consensus of 3', labelOf: (id) => merge(triple.map((t) => t.get(id)!)), answersPerFrame: 3, extra: 0 },
        { arm: `pool (${opts.pool.map((r) => `${r * 100}%`).join(', ')} wrong)`, labelOf: (id) => pool[reviewerOf(id)].get(id)!, answersPerFrame: 1, extra: 0 },
        {
          arm: 'pool + gold filter',
          labelOf: (id) => (trusted[reviewerOf(id)] ? pool[reviewerOf(id)].get(id)! : null),
          answersPerFrame: 1,
          extra: opts.goldFrames * opts.pool.length,
        },
        { arm: 'pool + consensus', labelOf: (id) => merge(pool.map((p) => p.get(id)!)), answersPerFrame: opts.pool.length, extra: 0 },
      ];
      for (const plan of plans) {
        const labelled = relabelled(coco, ids, plan.labelOf);
        const file = path.join(dir, `${arms.length}.json`);
        const set = trainingSet(labelled.coco, labelled.ids, baseSet, le.replayRatio, le.replayMin);
        const map50 = fineTuneAndScore(set, file, dir, path.join(work, 'base-model', 'checkpoint.pt'), le.minFramePasses, seed, evalArg);
        const point = {
          arm: plan.arm,
          seed,
          frames: labelled.ids.length,
          answers: ids.length * plan.answersPerFrame + plan.extra,
          shift: map50.shift,
          clear: map50.clear,
        };
        arms.push(point);
        save();
        console.error(
          `label noise: seed ${seed} ${plan.arm}: ${point.frames} frames, ${point.answers} answers -> mAP@0.5 shift ${point.shift.toFixed(3)} clear ${point.clear.toFixed(3)}`,
        );
      }
    }
    await detector.release();
    const names = [...new Set(arms.map((a) => a.arm))];
    const rows = names.map((arm) => {
      const of = arms.filter((a) => a.arm === arm);
      return [arm, mean(of.map((a) => a.frames)), mean(of.map((a) => a.answers)), mean(of.map((a) => a.shift)), mean(of.map((a) => a.clear))];
    });
    results.table = rows;
    results.minutes = (performance.now() - started) / 60000;
    save();
    table(
      `Label noise on ${opts.scenario}: ${opts.budget} frames picked by the ranked policy, ${opts.seeds.length} seed(s), mean mAP@0.5 after fine-tuning (gold accuracy per pool reviewer, by seed: ${JSON.stringify(goldAccuracyBySeed)})`,
      ['labels from', 'frames trained on', 'answers given', 'mAP shift', 'mAP clear'],
      rows,
    );
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

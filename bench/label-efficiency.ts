// Label efficiency: how many reviewed frames does the platform's sampling policy need to reach
// a target mAP on a shift, against random sampling (and an entropy ranking, the usual
// active-learning baseline)? Each policy picks frames from the same simulated stream, the picks
// are labelled by an oracle (the generator's ground truth), the base detector is fine-tuned on
// them, and the fine-tuned model is scored on held-out frames of the shift.
//
// The stream mixes in-distribution frames with frames of the shift (a new camera by default), as
// a fleet's stream does: most frames are ones the model already handles. The platform's policy
// is applied exactly as the scoring activity applies it: routeBatch over batches of 16 in stream
// order with the default SamplingPolicy (band 0.3-0.6, 1% random, diversity filter against the
// embeddings of frames already routed). Cost = frames a reviewer labels.
import { mean } from 'simple-statistics';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cosineDistance } from '../db/scoring.ts';
import { DetectorSession, type FrameResult } from '../models/sessions.ts';
import { routeBatch, stableUniform } from '../policies/route.ts';
import { defaultSamplingPolicy } from '../policies/sampling-policy.ts';
import { requireTool, trainerPython } from '../scripts/tools.ts';
import { table } from './stats.ts';

export interface LabelEfficiencyOptions {
  scenario: string;
  seeds: number[];
  budgets: number[];
  /** Frames of the stream that are in-distribution / of the shift. */
  clearFrames: number;
  shiftFrames: number;
  policies: Policy[];
  /** Fine-tuning sees at least this many frames in total (small selections get more epochs). */
  minFramePasses: number;
  /** The base detector: trained on this many in-distribution frames for this many epochs. */
  baseFrames: number;
  baseEpochs: number;
  /** Target = this share of the mAP random sampling reaches with the largest budget. */
  targetShare: number;
}

type Policy = 'platform' | 'random' | 'entropy';

export const defaultLabelEfficiency: LabelEfficiencyOptions = {
  scenario: 'new_camera',
  seeds: [1, 2, 3],
  budgets: [50, 100, 200, 400],
  clearFrames: 2400,
  shiftFrames: 800,
  policies: ['platform', 'random', 'entropy'],
  minFramePasses: 800,
  baseFrames: 2000,
  baseEpochs: 5,
  targetShare: 0.95,
};

interface CocoImage {
  id: number;
  file_name: string;
  camera_id: string;
  frame_index: number;
  [k: string]: unknown;
}
interface Coco {
  images: CocoImage[];
  annotations: { id: number; image_id: number }[];
  categories: unknown[];
}

interface StreamFrame {
  image: CocoImage;
  shifted: boolean;
  time: number;
}

function trainer(args: string[]): string {
  return execFileSync(requireTool(trainerPython), ['-m', 'dataengine_trainer', ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 64 << 20,
  });
}

function generate(out: string, scenario: string, count: number, seed: number, stride = 1): Coco {
  trainer(['generate', '--out', out, '--scenario', scenario, '--count', String(count), '--seed', String(seed), '--stride', String(stride)]);
  return JSON.parse(fs.readFileSync(path.join(out, 'dataset.json'), 'utf8'));
}

/** One COCO file over the stream's frames, file names relative to the stream folder. */
function streamDataset(dir: string, parts: { sub: string; coco: Coco; shifted: boolean }[]): { coco: Coco; stream: StreamFrame[] } {
  const images: CocoImage[] = [];
  const annotations: Coco['annotations'] = [];
  const stream: StreamFrame[] = [];
  for (const { sub, coco, shifted } of parts) {
    const perCamera = new Map<string, number>();
    for (const im of coco.images) perCamera.set(im.camera_id, (perCamera.get(im.camera_id) ?? 0) + 1);
    const seen = new Map<string, number>();
    for (const im of coco.images) {
      const id = images.length + 1;
      const image = { ...im, id, file_name: `${sub}/${im.file_name}`, camera_id: `${sub}-${im.camera_id}` };
      images.push(image);
      for (const a of coco.annotations.filter((x) => x.image_id === im.id)) annotations.push({ ...a, id: annotations.length + 1, image_id: id });
      // Every camera streams over the same period, so frames interleave by time of capture.
      const k = seen.get(im.camera_id) ?? 0;
      seen.set(im.camera_id, k + 1);
      stream.push({ image, shifted, time: k / perCamera.get(im.camera_id)! });
    }
  }
  stream.sort((a, b) => a.time - b.time || a.image.id - b.image.id);
  const coco = { images, annotations, categories: parts[0].coco.categories };
  fs.writeFileSync(path.join(dir, 'stream.json'), JSON.stringify(coco));
  return { coco, stream };
}

/** The frames the scoring activity would route, in stream order, until `budget` frames. */
function platformPicks(stream: StreamFrame[], scored: Map<number, FrameResult>, budget: number): number[] {
  const policy = { ...defaultSamplingPolicy, dailyBudget: null };
  const picked: number[] = [];
  const routedEmbeddings: Float32Array[] = [];
  for (let i = 0; i < stream.length && picked.length < budget; i += 16) {
    const batch = stream.slice(i, i + 16).map((f) => {
      const r = scored.get(f.image.id)!;
      return {
        frameId: String(f.image.id),
        cameraId: f.image.camera_id,
        embedding: r.embedding,
        detections: r.detections.map((d, rank) => ({ rank, className: d.className, score: d.score })),
      };
    });
    const nearDuplicates = new Set(
      batch.filter((f) => routedEmbeddings.some((q) => cosineDistance(q, f.embedding) < policy.diversityMinDistance)).map((f) => f.frameId),
    );
    const tasks = routeBatch(batch, { policy, budgetRemaining: null, isBoosted: () => false, nearDuplicates }, 1);
    for (const frameId of new Set(tasks.map((t) => t.frameId))) {
      if (picked.length >= budget) break;
      picked.push(Number(frameId));
      routedEmbeddings.push(batch.find((f) => f.frameId === frameId)!.embedding);
    }
  }
  return picked;
}

const binaryEntropy = (p: number) => (p <= 0 || p >= 1 ? 0 : -(p * Math.log2(p) + (1 - p) * Math.log2(1 - p)));

function pick(policy: Policy, stream: StreamFrame[], scored: Map<number, FrameResult>, budget: number, seed: number): number[] {
  if (policy === 'platform') return platformPicks(stream, scored, budget);
  const key = (f: StreamFrame) =>
    policy === 'random'
      ? stableUniform(String(f.image.id), `random:${seed}`)
      : -scored.get(f.image.id)!.detections.reduce((s, d) => s + binaryEntropy(d.score), 0);
  return [...stream]
    .sort((a, b) => key(a) - key(b))
    .slice(0, budget)
    .map((f) => f.image.id);
}

/** Labels at which a curve (running maximum, log-linear between points) first reaches target;
 * `labels` ascending. */
function labelsToReach(labels: number[], map: number[], target: number): number | null {
  let best = -Infinity;
  for (let i = 0; i < labels.length; i++) {
    const prev = best;
    best = Math.max(best, map[i]);
    if (best >= target) {
      if (i === 0) return labels[0];
      const t = (target - prev) / (best - prev);
      return Math.exp(Math.log(labels[i - 1]) + t * (Math.log(labels[i]) - Math.log(labels[i - 1])));
    }
  }
  return null;
}

export async function benchLabelEfficiency(opts: LabelEfficiencyOptions = defaultLabelEfficiency, resultsDir?: string) {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'label-efficiency-'));
  const started = performance.now();
  try {
    // The base detector: in-distribution frames only, as a fleet's first model.
    generate(path.join(work, 'base'), 'clear', opts.baseFrames, 0);
    trainer([
      'train-detector',
      '--dataset',
      path.join(work, 'base', 'dataset.json'),
      '--out',
      path.join(work, 'base-model'),
      '--version',
      'base',
      '--epochs',
      String(opts.baseEpochs),
    ]);
    const baseModel = path.join(work, 'base-model', 'model.onnx');
    const evalSets = { shift: path.join(work, 'eval-shift'), clear: path.join(work, 'eval-clear') };
    generate(evalSets.shift, opts.scenario, 300, 1000, 16);
    generate(evalSets.clear, 'clear', 200, 1000, 16);
    const evalArg = Object.entries(evalSets)
      .map(([n, d]) => `${n}=${path.join(d, 'dataset.json')}`)
      .join(',');
    const base = Object.fromEntries(
      Object.entries(evalSets).map(([n, d]) => [
        n,
        JSON.parse(trainer(['evaluate', '--model', baseModel, '--dataset', path.join(d, 'dataset.json')])).map50 as number,
      ]),
    );
    const detector = await DetectorSession.load(fs.readFileSync(baseModel), { intraOpThreads: 2, minScore: 0.1 });

    type Point = { policy: Policy; seed: number; budget: number; labels: number; shiftShare: number; shift: number; clear: number };
    const points: Point[] = [];
    for (const seed of opts.seeds) {
      const dir = path.join(work, `stream-${seed}`);
      fs.mkdirSync(dir);
      // Stride 4: four frames of each 16-frame scene, i.e. a camera at a quarter of the render rate.
      const clear = generate(path.join(dir, 'clear'), 'clear', opts.clearFrames, 100 + seed, 4);
      const shift = generate(path.join(dir, 'shift'), opts.scenario, opts.shiftFrames, 100 + seed, 4);
      const { coco, stream } = streamDataset(dir, [
        { sub: 'clear', coco: clear, shifted: false },
        { sub: 'shift', coco: shift, shifted: true },
      ]);
      const scored = new Map<number, FrameResult>();
      for (let i = 0; i < stream.length; i += 16) {
        const chunk = stream.slice(i, i + 16);
        const { frames } = await detector.detect(chunk.map((f) => fs.readFileSync(path.join(dir, f.image.file_name))));
        chunk.forEach((f, k) => scored.set(f.image.id, frames[k]));
      }
      const isShifted = new Map(stream.map((f) => [f.image.id, f.shifted]));
      for (const policy of opts.policies) {
        for (const budget of opts.budgets) {
          const ids = pick(policy, stream, scored, budget, seed);
          const chosen = new Set(ids);
          const subset = {
            ...coco,
            images: coco.images.filter((im) => chosen.has(im.id)),
            annotations: coco.annotations.filter((a) => chosen.has(a.image_id)),
          };
          const file = path.join(dir, `${policy}-${budget}.json`);
          fs.writeFileSync(file, JSON.stringify(subset));
          const epochs = Math.max(6, Math.ceil(opts.minFramePasses / ids.length));
          const r = JSON.parse(
            trainer([
              'fine-tune-eval',
              '--dataset',
              file,
              '--image-root',
              dir,
              '--parent-checkpoint',
              path.join(work, 'base-model', 'checkpoint.pt'),
              '--epochs',
              String(epochs),
              '--seed',
              String(seed),
              '--eval',
              evalArg,
            ]),
          );
          const shiftShare = ids.filter((id) => isShifted.get(id)).length / ids.length;
          points.push({ policy, seed, budget, labels: ids.length, shiftShare, shift: r.map50.shift, clear: r.map50.clear });
          if (resultsDir) fs.writeFileSync(path.join(resultsDir, 'label-efficiency.json'), JSON.stringify({ options: opts, base, points }, null, 2));
          console.error(
            `label efficiency: seed ${seed} ${policy} ${ids.length} labels (${(shiftShare * 100).toFixed(0)}% shifted) -> mAP@0.5 shift ${r.map50.shift.toFixed(3)} clear ${r.map50.clear.toFixed(3)}`,
          );
        }
      }
    }
    await detector.release();

    const at = (policy: Policy, budget: number) => points.filter((p) => p.policy === policy && p.budget === budget);
    table(
      `Label efficiency on ${opts.scenario} (stream ${opts.clearFrames} clear + ${opts.shiftFrames} shifted frames, ${opts.seeds.length} seeds; base mAP@0.5 shift ${base.shift.toFixed(3)}, clear ${base.clear.toFixed(3)}): mean mAP@0.5 after fine-tuning`,
      ['policy', 'labels', 'shifted share of picks', 'mAP@0.5 shift', 'mAP@0.5 clear'],
      opts.policies.flatMap((policy) =>
        opts.budgets.map((b) => {
          const ps = at(policy, b);
          return [policy, mean(ps.map((p) => p.labels)), mean(ps.map((p) => p.shiftShare)), mean(ps.map((p) => p.shift)), mean(ps.map((p) => p.clear))];
        }),
      ),
    );
    // Per seed: the target is a share of what random sampling reaches with the largest budget.
    const rows: (string | number)[][] = [];
    const reductions: Record<string, number[]> = {};
    for (const seed of opts.seeds) {
      // x = labels a policy actually obtained (the platform's policy may route fewer frames than
      // the budget allows: it only sends what it is unsure of and skips near-duplicates).
      const curve = (policy: Policy) => points.filter((p) => p.policy === policy && p.seed === seed).sort((a, b) => a.budget - b.budget);
      const random = curve('random');
      const target = opts.targetShare * random.at(-1)!.shift;
      const randomLabels = labelsToReach(
        random.map((p) => p.labels),
        random.map((p) => p.shift),
        target,
      )!;
      for (const policy of opts.policies) {
        const c = curve(policy);
        const labels = labelsToReach(
          c.map((p) => p.labels),
          c.map((p) => p.shift),
          target,
        );
        const reduction = labels === null ? NaN : 1 - labels / randomLabels;
        (reductions[policy] ??= []).push(reduction);
        rows.push([
          seed,
          policy,
          target,
          labels === null ? `> ${c.at(-1)!.labels}` : labels,
          Number.isNaN(reduction) ? '—' : `${(reduction * 100).toFixed(0)}%`,
        ]);
      }
    }
    table(
      `Labels to reach ${opts.targetShare * 100}% of random sampling's mAP@0.5 at ${opts.budgets.at(-1)} labels (reduction vs random)`,
      ['seed', 'policy', 'target mAP@0.5', 'labels', 'reduction'],
      rows,
    );
    const summary = Object.fromEntries(Object.entries(reductions).map(([p, r]) => [p, r.every((x) => !Number.isNaN(x)) ? mean(r) : null]));
    console.log(
      `\nMean reduction in labels vs random: ${Object.entries(summary)
        .map(([p, r]) => `${p} ${r === null ? 'target not reached in every seed' : `${(r * 100).toFixed(0)}%`}`)
        .join(', ')} (${((performance.now() - started) / 60000).toFixed(1)} min)`,
    );
    if (resultsDir)
      fs.writeFileSync(path.join(resultsDir, 'label-efficiency.json'), JSON.stringify({ options: opts, base, points, reductions: summary }, null, 2));
    return summary;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

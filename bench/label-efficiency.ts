// Label efficiency: how many reviewed frames does the platform's sampling policy need to reach
// a target mAP on a shift, against random sampling (and an entropy ranking, the usual
// active-learning baseline)? Each policy picks frames from the same simulated stream, the picks
// are labelled by an oracle (the generator's ground truth), the base detector is fine-tuned on
// them, and the fine-tuned model is scored on held-out frames of the shift.
//
// The stream mixes in-distribution frames with frames of the shift (a new camera by default), as
// a fleet's stream does: most frames are ones the model already handles. The platform's policy
// is applied exactly as the scoring activity applies it: routeBatch over batches of 16 in stream
// order with the default SamplingPolicy (band 0.3-0.6, ranked selection paced over the day,
// random samples within 5% of the budget, near-duplicate filter against the embeddings of
// frames already routed). Cost = frames a reviewer labels.
import { mean, median } from 'simple-statistics';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DetectorSession, type FrameResult } from '../models/sessions.ts';
import { pacedThreshold, targetRate } from '../policies/pacing.ts';
import { binaryEntropy, cosineDistance, routeBatch, stableUniform } from '../policies/route.ts';
import { defaultSamplingPolicy } from '../policies/sampling-policy.ts';
import { requireTool, trainerPython } from '../scripts/tools.ts';
import { table } from './stats.ts';

export interface LabelEfficiencyOptions {
  /** Shifts the stream moves into; each gets the whole comparison. */
  scenarios: string[];
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
  /** Earlier labelled frames (the base model's training set) mixed into every fine-tuning set,
   * per picked frame: the retraining replay that keeps the scenes the model already handled. */
  replayRatio: number;
  /** ...and at least this many (RETRAIN_REPLAY_MIN). */
  replayMin: number;
  /** Frames like the base model's training set, scored by it: the reference of the novelty term. */
  referenceFrames: number;
  /** The rare-event stream (a class in about 0.1% of frames): frames and budgets; null to skip. */
  rare: { frames: number; budgets: number[] } | null;
}

type Policy = 'ranked' | 'band' | 'random' | 'entropy';

export const defaultLabelEfficiency: LabelEfficiencyOptions = {
  scenarios: ['new_camera', 'night'],
  seeds: [1, 2, 3],
  budgets: [50, 100, 200, 400],
  clearFrames: 2400,
  shiftFrames: 800,
  policies: ['ranked', 'band', 'random', 'entropy'],
  minFramePasses: 800,
  baseFrames: 2000,
  baseEpochs: 5,
  targetShare: 0.95,
  replayRatio: 1,
  replayMin: 200,
  referenceFrames: 200,
  rare: { frames: 10_000, budgets: [50, 100, 200] },
};

/** `npm run bench -- labels quick`: one shift, one seed, two budgets, to check the direction. */
export const quickLabelEfficiency: LabelEfficiencyOptions = {
  ...defaultLabelEfficiency,
  scenarios: ['new_camera'],
  seeds: [1],
  budgets: [50, 200],
  rare: null,
};

export interface CocoImage {
  id: number;
  file_name: string;
  camera_id: string;
  frame_index: number;
  [k: string]: unknown;
}
export interface Coco {
  images: CocoImage[];
  annotations: { id: number; image_id: number }[];
  categories: unknown[];
}

export interface StreamFrame {
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

export function generate(out: string, scenario: string, count: number, seed: number, stride = 1): Coco {
  trainer(['generate', '--out', out, '--scenario', scenario, '--count', String(count), '--seed', String(seed), '--stride', String(stride)]);
  return JSON.parse(fs.readFileSync(path.join(out, 'dataset.json'), 'utf8'));
}

/** One COCO file over the stream's frames, file names relative to the stream folder. */
export function streamDataset(dir: string, parts: { sub: string; coco: Coco; shifted: boolean }[]): { coco: Coco; stream: StreamFrame[] } {
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

const nearest = (to: ArrayLike<number>, among: ArrayLike<number>[]) => (among.length ? Math.min(...among.map((e) => cosineDistance(e, to))) : null);

/**
 * The frames the scoring activity would route, in stream order, until `budget` frames: batches
 * of 16 through the same routeBatch and pacing functions, with the distances the vector index
 * would answer (to frames already routed, and to the base model's reference frames) computed
 * here. The stream is one day, so the budget is the daily budget. One task per frame: a label
 * costs a frame.
 */
function platformPicks(
  selection: 'ranked' | 'band',
  stream: StreamFrame[],
  scored: Map<number, FrameResult>,
  references: Float32Array[],
  budget: number,
): number[] {
  const policy = { ...defaultSamplingPolicy, selection, dailyBudget: budget, maxTasksPerFrame: 1 };
  const picked: number[] = [];
  const pickedEmbeddings: Float32Array[] = [];
  const history: number[] = [];
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
    const distances = new Map(batch.map((f) => [f.frameId, { queued: nearest(f.embedding, pickedEmbeddings), reference: nearest(f.embedding, references) }]));
    const rate = targetRate(budget - picked.length, stream.length - i);
    const pacing = { threshold: pacedThreshold(history.slice(-policy.pacingWindow), rate, policy.pacingWarmup), targetRate: rate };
    const { tasks, selections, nearDuplicates } = routeBatch(
      batch,
      { policy, budgetRemaining: budget - picked.length, isBoosted: () => false, distances, pacing },
      1,
    );
    for (const frameId of new Set(tasks.map((t) => t.frameId))) {
      picked.push(Number(frameId));
      pickedEmbeddings.push(batch.find((f) => f.frameId === frameId)!.embedding);
    }
    // As the scoring activity stores them: a near-duplicate is no candidate, so no part of the bar.
    for (const [frameId, s] of selections) if (!nearDuplicates.has(frameId)) history.push(s.value);
  }
  return picked;
}

export function pick(
  policy: Policy,
  stream: StreamFrame[],
  scored: Map<number, FrameResult>,
  references: Float32Array[],
  budget: number,
  seed: number,
): number[] {
  if (policy === 'ranked' || policy === 'band') return platformPicks(policy, stream, scored, references, budget);
  // Random over the whole stream, and the pool-based entropy ranking (it sees the whole stream
  // before choosing, which a streaming router cannot).
  const key = (f: StreamFrame) =>
    policy === 'random'
      ? stableUniform(String(f.image.id), `random:${seed}`)
      : -scored.get(f.image.id)!.detections.reduce((s, d) => s + binaryEntropy(d.score), 0);
  return [...stream]
    .sort((a, b) => key(a) - key(b))
    .slice(0, budget)
    .map((f) => f.image.id);
}

export async function scoreAll(detector: DetectorSession, root: string, images: CocoImage[]): Promise<Map<number, FrameResult>> {
  const scored = new Map<number, FrameResult>();
  for (let i = 0; i < images.length; i += 16) {
    const chunk = images.slice(i, i + 16);
    const { frames } = await detector.detect(chunk.map((im) => fs.readFileSync(path.join(root, im.file_name))));
    chunk.forEach((im, k) => scored.set(im.id, frames[k]));
  }
  return scored;
}

/** The picks plus `replayRatio` earlier labelled frames per pick, at least `replayMin` (the base
 * training set, read from `../base`), as one COCO file relative to the stream folder: the same
 * rule as the retraining snapshot's. */
/**
 * Writes a training set to `file`, fine-tunes the base detector (`baseCheckpoint`) on it for at
 * least `minFramePasses` frame passes (6 epochs or more), and returns its mAP@0.5 on the
 * evaluation sets `evalArg` names (`shift=...,clear=...`).
 */
export function fineTuneAndScore(
  set: Coco,
  file: string,
  imageRoot: string,
  baseCheckpoint: string,
  minFramePasses: number,
  seed: number,
  evalArg: string,
): { shift: number; clear: number } {
  fs.writeFileSync(file, JSON.stringify(set));
  const epochs = Math.max(6, Math.ceil(minFramePasses / set.images.length));
  const args = ['--dataset', file, '--image-root', imageRoot, '--parent-checkpoint', baseCheckpoint, '--epochs', String(epochs), '--seed', String(seed)];
  return JSON.parse(trainer(['fine-tune-eval', ...args, '--eval', evalArg])).map50;
}

export function trainingSet(coco: Coco, ids: number[], base: Coco, replayRatio: number, replayMin: number) {
  const chosen = new Set(ids);
  const images = coco.images.filter((im) => chosen.has(im.id));
  const annotations = coco.annotations.filter((a) => chosen.has(a.image_id));
  const replay = [...base.images]
    .sort((a, b) => stableUniform(String(a.id), 'replay') - stableUniform(String(b.id), 'replay'))
    .slice(0, Math.max(replayMin, Math.round(replayRatio * ids.length)));
  for (const im of replay) {
    const id = 1_000_000 + im.id;
    images.push({ ...im, id, file_name: path.join('..', 'base', im.file_name) });
    for (const a of base.annotations.filter((x) => x.image_id === im.id)) annotations.push({ ...a, id: 1_000_000 + a.id, image_id: id });
  }
  return { ...coco, images, annotations };
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

/** A base detector trained on `baseFrames` frames of `scenario` for `baseEpochs` epochs: its
 * training set and its ONNX file (checkpoint.pt beside it). */
export function trainBaseDetector(opts: Pick<LabelEfficiencyOptions, 'baseFrames' | 'baseEpochs'>, dataDir: string, modelDir: string, scenario: string) {
  const coco = generate(dataDir, scenario, opts.baseFrames, 0);
  trainer([
    'train-detector',
    '--dataset',
    path.join(dataDir, 'dataset.json'),
    '--out',
    modelDir,
    '--version',
    `base-${scenario}`,
    '--epochs',
    String(opts.baseEpochs),
  ]);
  return { coco, model: path.join(modelDir, 'model.onnx') };
}

interface Point {
  scenario: string;
  policy: Policy;
  seed: number;
  budget: number;
  labels: number;
  shiftShare: number;
  shift: number;
  clear: number;
}

export async function benchLabelEfficiency(opts: LabelEfficiencyOptions, resultsDir: string, resultsFile: string) {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'label-efficiency-'));
  const started = performance.now();
  const results: Record<string, unknown> = { options: opts, startedAt: new Date().toISOString(), machine: `${os.cpus().length} cores` };
  const save = () => fs.writeFileSync(path.join(resultsDir, resultsFile), JSON.stringify(results, null, 2));
  try {
    // The base detector: in-distribution frames only, as a fleet's first model.
    const { coco: baseSet, model: baseModel } = trainBaseDetector(opts, path.join(work, 'base'), path.join(work, 'base-model'), 'clear');
    const detector = await DetectorSession.load(fs.readFileSync(baseModel), { intraOpThreads: 2, minScore: 0.1 });
    const refs = generate(path.join(work, 'references'), 'clear', opts.referenceFrames, 500, 16);
    const references = [...(await scoreAll(detector, path.join(work, 'references'), refs.images)).values()].map((r) => r.embedding);

    const points: Point[] = [];
    const baseMap: Record<string, { shift: number; clear: number }> = {};
    results.points = points;
    results.base = baseMap;
    for (const scenario of opts.scenarios) {
      const evalSets = { shift: path.join(work, `eval-${scenario}`), clear: path.join(work, 'eval-clear') };
      generate(evalSets.shift, scenario, 300, 1000, 16);
      if (!fs.existsSync(evalSets.clear)) generate(evalSets.clear, 'clear', 200, 1000, 16);
      const evalArg = Object.entries(evalSets)
        .map(([n, d]) => `${n}=${path.join(d, 'dataset.json')}`)
        .join(',');
      baseMap[scenario] = Object.fromEntries(
        Object.entries(evalSets).map(([n, d]) => [
          n,
          JSON.parse(trainer(['evaluate', '--model', baseModel, '--dataset', path.join(d, 'dataset.json')])).map50 as number,
        ]),
      ) as { shift: number; clear: number };

      for (const seed of opts.seeds) {
        const dir = path.join(work, `${scenario}-${seed}`);
        fs.mkdirSync(dir);
        // Stride 4: four frames of each 16-frame scene, i.e. a camera at a quarter of the render rate.
        const clear = generate(path.join(dir, 'clear'), 'clear', opts.clearFrames, 100 + seed, 4);
        const shift = generate(path.join(dir, 'shift'), scenario, opts.shiftFrames, 100 + seed, 4);
        const { coco, stream } = streamDataset(dir, [
          { sub: 'clear', coco: clear, shifted: false },
          { sub: 'shift', coco: shift, shifted: true },
        ]);
        const scored = await scoreAll(
          detector,
          dir,
          stream.map((f) => f.image),
        );
        const isShifted = new Map(stream.map((f) => [f.image.id, f.shifted]));
        // How far each kind of frame lies from the base model's reference frames: the scale of
        // the novelty term and of novelFrameDistance.
        const referenceDistance = (shifted: boolean) =>
          median(stream.filter((f) => f.shifted === shifted).map((f) => nearest(scored.get(f.image.id)!.embedding, references)!));
        const distances = { clear: referenceDistance(false), shift: referenceDistance(true) };
        ((results.referenceDistance ??= {}) as Record<string, unknown>)[`${scenario}-${seed}`] = distances;
        console.error(
          `label efficiency: ${scenario} seed ${seed} median cosine distance to the reference frames: clear ${distances.clear.toFixed(4)}, shifted ${distances.shift.toFixed(4)}`,
        );
        for (const policy of opts.policies) {
          for (const budget of opts.budgets) {
            const ids = pick(policy, stream, scored, references, budget, seed);
            const file = path.join(dir, `${policy}-${budget}.json`);
            const set = trainingSet(coco, ids, baseSet, opts.replayRatio, opts.replayMin);
            const map50 = fineTuneAndScore(set, file, dir, path.join(work, 'base-model', 'checkpoint.pt'), opts.minFramePasses, seed, evalArg);
            const shiftShare = ids.filter((id) => isShifted.get(id)).length / ids.length;
            points.push({ scenario, policy, seed, budget, labels: ids.length, shiftShare, shift: map50.shift, clear: map50.clear });
            save();
            console.error(
              `label efficiency: ${scenario} seed ${seed} ${policy} ${ids.length} labels (${(shiftShare * 100).toFixed(0)}% shifted) -> mAP@0.5 shift ${map50.shift.toFixed(3)} clear ${map50.clear.toFixed(3)}`,
            );
          }
        }
      }
      summarise(opts, scenario, baseMap[scenario], points, results);
      save();
    }
    await detector.release();

    const overall = meanReductions(opts.policies, opts.scenarios, results);
    results.meanReduction = overall;
    if (opts.rare) results.rare = await benchRareEvents(opts, work);
    results.minutes = (performance.now() - started) / 60000;
    save();
    console.log(
      `\nMean reduction in labels vs random over ${opts.scenarios.join(' and ')}: ${Object.entries(overall)
        .map(([p, r]) => `${p} ${r === null ? 'target not reached in every seed' : `${(r * 100).toFixed(0)}%`}`)
        .join(', ')} (${(results.minutes as number).toFixed(1)} min)`,
    );
    return overall;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/**
 * The tables of a saved run, including one stopped part-way (a full run takes over an hour on 2
 * cores): for each shift, over the seeds on which every policy finished every budget. The file
 * gains the reductions and clear-scene gaps of those seeds, and `summarisedSeeds` names them.
 */
export function summariseSaved(file: string) {
  const results = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown> & {
    options: LabelEfficiencyOptions;
    points: Point[];
    base: Record<string, { shift: number; clear: number }>;
  };
  const { options: opts, points } = results;
  const done = (scenario: string, seed: number) =>
    opts.policies.every((policy) =>
      opts.budgets.every((budget) => points.some((p) => p.scenario === scenario && p.seed === seed && p.policy === policy && p.budget === budget)),
    );
  const summarised: Record<string, number[]> = {};
  for (const scenario of opts.scenarios) {
    const seeds = opts.seeds.filter((seed) => done(scenario, seed));
    if (seeds.length === 0 || !results.base?.[scenario]) continue;
    summarised[scenario] = seeds;
    summarise(
      { ...opts, seeds },
      scenario,
      results.base[scenario],
      points.filter((p) => seeds.includes(p.seed)),
      results,
    );
  }
  results.summarisedSeeds = summarised;
  results.meanReduction = meanReductions(opts.policies, Object.keys(summarised), results);
  fs.writeFileSync(file, JSON.stringify(results, null, 2));
  return summarised;
}

/** Per policy, the mean over shifts of its mean reduction in labels against random (null when
 * it missed the target on some seed). */
function meanReductions(policies: Policy[], scenarios: string[], results: Record<string, unknown>) {
  return Object.fromEntries(
    policies.map((policy) => {
      const r = scenarios.map((sc) => (results.reductions as Record<string, Record<string, number | null>>)[sc][policy]);
      const reached = r.filter((x): x is number => x !== null);
      return [policy, reached.length === r.length ? mean(reached) : null];
    }),
  );
}

/** The tables of one shift: mAP by budget, labels to the target per seed, the clear-scene gap. */
function summarise(opts: LabelEfficiencyOptions, scenario: string, base: { shift: number; clear: number }, all: Point[], results: Record<string, unknown>) {
  const points = all.filter((p) => p.scenario === scenario);
  const at = (policy: Policy, budget: number) => points.filter((p) => p.policy === policy && p.budget === budget);
  table(
    `Label efficiency on ${scenario} (stream ${opts.clearFrames} clear + ${opts.shiftFrames} shifted frames, ${opts.seeds.length} seeds, replay ${opts.replayRatio} earlier frame per pick, at least ${opts.replayMin}; base mAP@0.5 shift ${base.shift.toFixed(3)}, clear ${base.clear.toFixed(3)}): mean mAP@0.5 after fine-tuning`,
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
    // x = labels a policy actually obtained (the platform's policies may route fewer frames than
    // the budget allows: they only send what the model is unsure of).
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
      rows.push([seed, policy, target, labels === null ? `> ${c.at(-1)!.labels}` : labels, Number.isNaN(reduction) ? '—' : `${(reduction * 100).toFixed(0)}%`]);
    }
  }
  table(
    `${scenario}: labels to reach ${opts.targetShare * 100}% of random sampling's mAP@0.5 at ${opts.budgets.at(-1)} labels (reduction vs random)`,
    ['seed', 'policy', 'target mAP@0.5', 'labels', 'reduction'],
    rows,
  );
  // Clear-scene mAP against random's at every budget (mean over seeds): what fine-tuning on the
  // picks cost the scenes the model already handled.
  const clearGap = Object.fromEntries(
    opts.policies.map((policy) => [
      policy,
      Math.max(...opts.budgets.map((b) => mean(at('random', b).map((p) => p.clear)) - mean(at(policy, b).map((p) => p.clear)))),
    ]),
  );
  ((results.reductions ??= {}) as Record<string, unknown>)[scenario] = Object.fromEntries(
    Object.entries(reductions).map(([p, r]) => [p, r.every((x) => !Number.isNaN(x)) ? mean(r) : null]),
  );
  ((results.perSeedReductions ??= {}) as Record<string, unknown>)[scenario] = reductions;
  ((results.clearGapVsRandom ??= {}) as Record<string, unknown>)[scenario] = clearGap;
  console.log(
    `${scenario}: worst clear-scene mAP gap to random over budgets: ${Object.entries(clearGap)
      .map(([p, g]) => `${p} ${g.toFixed(3)}`)
      .join(', ')}`,
  );
}

/**
 * Rare events: a stream where cyclists appear in about 0.1% of frames, and a base model trained
 * on that world (it has seen almost none). What share of the frames with a cyclist does each
 * policy send to review within its budget? No fine-tuning: this is about what people get to see.
 */
async function benchRareEvents(opts: LabelEfficiencyOptions, work: string) {
  const rare = opts.rare!;
  const dir = path.join(work, 'rare');
  const { model } = trainBaseDetector(opts, path.join(dir, 'base'), path.join(dir, 'model'), 'rare');
  const detector = await DetectorSession.load(fs.readFileSync(model), { intraOpThreads: 2, minScore: 0.1 });
  const refs = generate(path.join(dir, 'references'), 'rare', opts.referenceFrames, 500, 16);
  const references = [...(await scoreAll(detector, path.join(dir, 'references'), refs.images)).values()].map((r) => r.embedding);
  const rows: (string | number)[][] = [];
  const out: { seed: number; positives: number; frames: number; found: Record<string, Record<number, number>> }[] = [];
  for (const seed of opts.seeds) {
    // Stride 16: one frame per scene, so the 0.1% of scenes with a cyclist is 0.1% of frames.
    const coco = generate(path.join(dir, `stream-${seed}`), 'rare', rare.frames, 300 + seed, 16);
    const cyclist = (coco.categories as { id: number; name: string }[]).find((c) => c.name === 'cyclist')!.id;
    const positives = new Set(coco.annotations.filter((a) => (a as { category_id?: number }).category_id === cyclist).map((a) => a.image_id));
    const stream: StreamFrame[] = coco.images.map((image, i) => ({ image, shifted: positives.has(image.id), time: i }));
    const scored = await scoreAll(detector, path.join(dir, `stream-${seed}`), coco.images);
    const found: Record<string, Record<number, number>> = {};
    for (const policy of opts.policies) {
      for (const budget of rare.budgets) {
        const ids = pick(policy, stream, scored, references, budget, seed);
        const hits = ids.filter((id) => positives.has(id)).length;
        (found[policy] ??= {})[budget] = hits;
        rows.push([seed, policy, budget, ids.length, `${hits} of ${positives.size}`, positives.size ? hits / positives.size : NaN]);
      }
    }
    out.push({ seed, positives: positives.size, frames: coco.images.length, found });
  }
  await detector.release();
  table(
    `Rare events: frames with a cyclist (about 0.1% of ${rare.frames} frames) sent to review within the budget`,
    ['seed', 'policy', 'budget', 'labels', 'cyclist frames routed', 'share'],
    rows,
  );
  return out;
}

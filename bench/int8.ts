// The seed detector in float and as its INT8 variant (models/seed/detection.int8.onnx): frames/s
// of bare session.run and of the wrapper (decode, letterbox, run, map boxes back) on the same
// frames and threads, and mAP of both on the same held-out frames, scored by the trainer's
// pycocotools evaluation.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from '../config.ts';
import { decodeRgb, letterboxInto } from '../models/preprocess.ts';
import { DetectorSession } from '../models/sessions.ts';
import { requireTool, trainerPython } from '../scripts/tools.ts';
import { table } from './stats.ts';

const THREADS = 2;
const BATCHES = [1, 16];
// The held-out frames seed-models evaluates on (seed 1000: no frame of them was trained on).
const EVAL = { scenarios: ['clear', 'new_camera'], frames: 300, seed: 1000 };

async function framesPerSecond(file: string, frames: Buffer[]) {
  const det = await DetectorSession.load(fs.readFileSync(file), { intraOpThreads: THREADS, minScore: 0.1 });
  const S = det.meta.inputSize;
  const out: Record<number, { bare: number; wrapper: number }> = {};
  for (const batch of BATCHES) {
    const images = Array.from({ length: batch }, (_, i) => frames[i % frames.length]);
    const input = new Float32Array(batch * 3 * S * S);
    (await Promise.all(images.map((b) => decodeRgb(b)))).forEach((img, i) => letterboxInto(img, S, input, i * 3 * S * S));
    const reps = Math.max(4, Math.round(128 / batch));
    await det.runRaw(input, batch);
    await det.detect(images);
    let t = performance.now();
    for (let r = 0; r < reps; r++) await det.runRaw(input, batch);
    const bare = (reps * batch) / ((performance.now() - t) / 1000);
    t = performance.now();
    for (let r = 0; r < reps; r++) await det.detect(images);
    out[batch] = { bare, wrapper: (reps * batch) / ((performance.now() - t) / 1000) };
  }
  await det.release();
  return out;
}

function evaluate(python: string, model: string, dataset: string): { map50: number; map50_95: number } {
  return JSON.parse(execFileSync(python, ['-m', 'dataengine_trainer', 'evaluate', '--model', model, '--dataset', dataset], { encoding: 'utf8' }));
}

export async function benchInt8(frames: Buffer[]) {
  const float = path.join(repoRoot, 'models/seed/detection.onnx');
  const int8 = path.join(repoRoot, 'models/seed/detection.int8.onnx');
  if (!fs.existsSync(int8)) throw new Error('models/seed/detection.int8.onnx is missing: run `make models` (or seed-models --int8-only)');
  const speed = { fp32: await framesPerSecond(float, frames), int8: await framesPerSecond(int8, frames) };
  table(
    `Seed detector, fp32 against INT8 (${THREADS} intra-op threads), frames/s`,
    ['batch', 'fp32 bare', 'int8 bare', 'ratio', 'fp32 wrapper', 'int8 wrapper', 'ratio'],
    BATCHES.map((b) => [
      b,
      speed.fp32[b].bare,
      speed.int8[b].bare,
      speed.int8[b].bare / speed.fp32[b].bare,
      speed.fp32[b].wrapper,
      speed.int8[b].wrapper,
      speed.int8[b].wrapper / speed.fp32[b].wrapper,
    ]),
  );

  const python = requireTool(trainerPython);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-int8-'));
  const accuracy: Record<string, { fp32: { map50: number; map50_95: number }; int8: { map50: number; map50_95: number } }> = {};
  try {
    for (const scenario of EVAL.scenarios) {
      const dir = path.join(tmp, scenario);
      execFileSync(python, [
        '-m',
        'dataengine_trainer',
        'generate',
        '--out',
        dir,
        '--scenario',
        scenario,
        '--count',
        String(EVAL.frames),
        '--seed',
        String(EVAL.seed),
      ]);
      const dataset = path.join(dir, 'dataset.json');
      accuracy[scenario] = { fp32: evaluate(python, float, dataset), int8: evaluate(python, int8, dataset) };
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  table(
    `Seed detector, fp32 against INT8: mAP on ${EVAL.frames} held-out frames per scenario`,
    ['scenario', 'fp32 mAP@0.5', 'int8 mAP@0.5', 'change', 'fp32 mAP@[.5:.95]', 'int8 mAP@[.5:.95]', 'change'],
    Object.entries(accuracy).map(([s, a]) => [
      s,
      a.fp32.map50,
      a.int8.map50,
      a.int8.map50 - a.fp32.map50,
      a.fp32.map50_95,
      a.int8.map50_95,
      a.int8.map50_95 - a.fp32.map50_95,
    ]),
  );
  return { speed, accuracy };
}

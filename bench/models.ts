// Inference through the wrapper (decode, letterbox, run, map boxes back) against bare
// session.run on the same model, input and threads.
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../config.ts';
import { decodeRgb, letterboxInto } from '../models/preprocess.ts';
import { BoxModelSession, DetectorSession } from '../models/sessions.ts';
import { ownCpu } from './cpu.ts';
import { summarize, table } from './stats.ts';

export async function benchModels(frames: Buffer[]) {
  const threads = 2;
  const det = await DetectorSession.load(fs.readFileSync(path.join(repoRoot, 'models/seed/detection.onnx')), { intraOpThreads: threads, minScore: 0.1 });
  const S = det.meta.inputSize;
  const rows: (string | number)[][] = [];
  const results: Record<string, number> = {};
  for (const batch of [1, 8, 16, 32]) {
    const images = Array.from({ length: batch }, (_, i) => frames[i % frames.length]);
    const input = new Float32Array(batch * 3 * S * S);
    const decoded = await Promise.all(images.map((b) => decodeRgb(b)));
    decoded.forEach((img, i) => letterboxInto(img, S, input, i * 3 * S * S));
    const reps = Math.max(8, Math.round(128 / batch));
    await det.detect(images);
    await det.runRaw(input, batch);
    let t = performance.now();
    for (let r = 0; r < reps; r++) await det.runRaw(input, batch);
    const bare = (reps * batch) / ((performance.now() - t) / 1000);
    // The work no loop can avoid: decoding the frames, then bare session.run on them.
    t = performance.now();
    const cpu = ownCpu();
    for (let r = 0; r < reps; r++) {
      await Promise.all(images.map((b) => decodeRgb(b)));
      await det.runRaw(input, batch);
    }
    const decodeRun = (reps * batch) / ((performance.now() - t) / 1000);
    // Its CPU per frame, every thread counted: the cores the loop's baseline keeps busy.
    results[`batch${batch}DecodeRunCpuMs`] = ((ownCpu() - cpu) * 1000) / (reps * batch);
    t = performance.now();
    for (let r = 0; r < reps; r++) await det.detect(images);
    const wrapped = (reps * batch) / ((performance.now() - t) / 1000);
    results[`batch${batch}`] = wrapped;
    results[`batch${batch}Bare`] = bare;
    results[`batch${batch}DecodeRun`] = decodeRun;
    rows.push([batch, bare, decodeRun, wrapped, wrapped / bare]);
  }
  table(
    `Detector inference (seed model, ${threads} intra-op threads), frames/s`,
    ['batch', 'bare session.run', 'decode + bare session.run', 'wrapper (decode+letterbox+run+map)', 'ratio wrapper / bare'],
    rows,
  );

  const box = await BoxModelSession.load(fs.readFileSync(path.join(repoRoot, 'models/seed/box.onnx')), { intraOpThreads: 1 });
  const roi = new Float32Array(3 * 64 * 64).fill(0.5);
  const bare: number[] = [];
  const wrapped: number[] = [];
  const region = { x1: 120, y1: 110, x2: 180, y2: 160 };
  for (let i = 0; i < 200; i++) {
    let t = performance.now();
    await box.runRaw(roi, 1);
    bare.push(performance.now() - t);
    t = performance.now();
    await box.refine(frames[i % frames.length], region);
    wrapped.push(performance.now() - t);
  }
  const b = summarize(bare.slice(20));
  const w = summarize(wrapped.slice(20));
  table(
    'Box model, one region (ms)',
    ['', 'p50', 'p99'],
    [
      ['bare session.run', b.p50, b.p99],
      ['wrapper (region decode + crop + run)', w.p50, w.p99],
      ['ratio', w.p50 / b.p50, w.p99 / b.p99],
    ],
  );
  await det.release();
  await box.release();
  return { detector: results, boxBareP50: b.p50, boxWrappedP50: w.p50 };
}

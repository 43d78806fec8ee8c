// Which detections of a scored batch go to human review, under a sampling policy.
// Pure: the scoring activity gathers the inputs (budget left today, active drift boosts,
// near-duplicate frames) and persists what this returns.
import { createHash } from 'node:crypto';
import { bandFor, type SamplingPolicy } from './sampling-policy.ts';

interface RoutableDetection {
  rank: number;
  className: string;
  score: number;
}

export interface RoutableFrame {
  frameId: string;
  cameraId: string;
  detections: RoutableDetection[];
}

export interface RoutingContext {
  policy: SamplingPolicy;
  /** Tasks this stream may still receive today; null for no limit. */
  budgetRemaining: number | null;
  /** Whether a drift boost is active for this camera of the stream. */
  isBoosted(cameraId: string): boolean;
  /** Frames the diversity filter rejected (near-duplicates of queued or labeled frames). */
  nearDuplicates: ReadonlySet<string>;
}

export interface TaskCandidate {
  frameId: string;
  cameraId: string;
  /** Rank of the detection under review; null for a whole-frame (random sample) task. */
  rank: number | null;
  className: string | null;
  score: number | null;
  reason: 'band' | 'random' | 'drift_boost';
  priority: number;
}

/**
 * A number in [0, 1) fixed by the frame id and policy version. Random sampling uses it instead
 * of Math.random so that a retried batch makes the same choice and routes no second task.
 */
export function stableUniform(frameId: string, salt: string): number {
  const digest = createHash('sha256').update(`${frameId}:${salt}`).digest();
  return digest.readUInt32BE(0) / 2 ** 32;
}

export function routeBatch(frames: RoutableFrame[], ctx: RoutingContext, policyVersion: number): TaskCandidate[] {
  const { policy } = ctx;
  const tasks: TaskCandidate[] = [];
  let budget = ctx.budgetRemaining ?? Number.POSITIVE_INFINITY;

  for (const frame of frames) {
    if (budget <= 0) break;
    if (ctx.nearDuplicates.has(frame.frameId)) continue;
    const boosted = ctx.isBoosted(frame.cameraId);
    const widen = boosted ? policy.driftBoost.bandWiden : 0;

    const inBand = frame.detections
      .map((d) => {
        const band = bandFor(policy, d.className);
        const inBase = d.score >= band.low && d.score < band.high;
        const inWidened = d.score >= band.low - widen && d.score < band.high + widen;
        const mid = (band.low + band.high) / 2;
        return { d, inBase, inWidened, uncertainty: Math.abs(d.score - mid) };
      })
      .filter((c) => c.inWidened)
      // The detection nearest the band's middle is the one the model is least sure of.
      .sort((a, b) => a.uncertainty - b.uncertainty || a.d.rank - b.d.rank)
      .slice(0, Math.min(policy.maxTasksPerFrame, budget));

    for (const c of inBand) {
      tasks.push({
        frameId: frame.frameId,
        cameraId: frame.cameraId,
        rank: c.d.rank,
        className: c.d.className,
        score: c.d.score,
        reason: c.inBase ? 'band' : 'drift_boost',
        priority: policy.priority + (boosted ? 10 : 0),
      });
      budget -= 1;
    }

    if (inBand.length === 0 && budget > 0) {
      const rate = Math.min(1, policy.randomRate * (boosted ? policy.driftBoost.randomRateFactor : 1));
      if (stableUniform(frame.frameId, `random:${policyVersion}`) < rate) {
        tasks.push({
          frameId: frame.frameId,
          cameraId: frame.cameraId,
          rank: null,
          className: null,
          score: null,
          reason: 'random',
          priority: policy.priority - 1,
        });
        budget -= 1;
      }
    }
  }
  return tasks;
}

import { describe, expect, it } from 'vitest';
import { routeBatch, type RoutableFrame, type RoutingContext } from '../../policies/route.ts';
import { defaultSamplingPolicy, samplingPolicySchema } from '../../policies/sampling-policy.ts';

const frame = (frameId: string, scores: [string, number][], cameraId = 'cam-1'): RoutableFrame => ({
  frameId,
  cameraId,
  detections: scores.map(([className, score], rank) => ({ rank, className, score })),
});

const ctx = (overrides: Partial<RoutingContext> = {}): RoutingContext => ({
  policy: samplingPolicySchema.parse({ randomRate: 0 }),
  budgetRemaining: null,
  isBoosted: () => false,
  nearDuplicates: new Set(),
  ...overrides,
});

describe('routeBatch', () => {
  it('routes detections inside the default band [0.3, 0.6) and nothing else', () => {
    const tasks = routeBatch(
      [
        frame('f1', [
          ['vehicle', 0.95],
          ['pedestrian', 0.45],
          ['sign', 0.6],
          ['cyclist', 0.29],
          ['sign', 0.3],
        ]),
      ],
      ctx(),
      7,
    );
    expect(tasks.map((t) => [t.rank, t.reason, t.className])).toEqual([
      [1, 'band', 'pedestrian'],
      [4, 'band', 'sign'],
    ]);
    expect(defaultSamplingPolicy.band).toEqual({ low: 0.3, high: 0.6 });
  });

  it('applies per-class bands, max tasks per frame (nearest the middle of the band first) and the daily budget', () => {
    const policy = samplingPolicySchema.parse({
      randomRate: 0,
      maxTasksPerFrame: 2,
      classBands: { sign: { low: 0.7, high: 0.9 } },
    });
    const tasks = routeBatch(
      [
        frame('f1', [
          ['sign', 0.8],
          ['vehicle', 0.5],
          ['vehicle', 0.35],
          ['vehicle', 0.4],
        ]),
        frame('f2', [['vehicle', 0.5]]),
      ],
      ctx({ policy, budgetRemaining: 2 }),
      1,
    );
    expect(tasks).toHaveLength(2);
    expect(tasks.every((t) => t.frameId === 'f1')).toBe(true);
    expect(tasks.map((t) => t.score)).toEqual([0.8, 0.4]);
  });

  it('skips near-duplicate frames and widens the band for boosted cameras', () => {
    const frames = [frame('dup', [['vehicle', 0.5]]), frame('f2', [['vehicle', 0.65]], 'cam-boosted')];
    const plain = routeBatch(frames, ctx({ nearDuplicates: new Set(['dup']) }), 1);
    expect(plain).toEqual([]);
    const boosted = routeBatch(frames, ctx({ nearDuplicates: new Set(['dup']), isBoosted: (c) => c === 'cam-boosted' }), 1);
    expect(boosted.map((t) => [t.frameId, t.reason])).toEqual([['f2', 'drift_boost']]);
  });

  it('samples whole frames at the random rate, the same way on every retry', () => {
    const policy = samplingPolicySchema.parse({ randomRate: 0.25, band: { low: 0.98, high: 0.99 } });
    const frames = Array.from({ length: 2000 }, (_, i) => frame(`frame-${i}`, [['vehicle', 0.9]]));
    const first = routeBatch(frames, ctx({ policy }), 3);
    const again = routeBatch(frames, ctx({ policy }), 3);
    expect(first).toEqual(again);
    expect(first.every((t) => t.reason === 'random' && t.rank === null)).toBe(true);
    expect(first.length / frames.length).toBeGreaterThan(0.2);
    expect(first.length / frames.length).toBeLessThan(0.3);
  });
});

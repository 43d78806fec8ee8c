import { describe, expect, it } from 'vitest';
import { binaryEntropy, cosineDistance, routeBatch as route, stableUniform, type RoutableFrame, type RoutingContext } from '../../policies/route.ts';
import { pacedThreshold, targetRate } from '../../policies/pacing.ts';
import { defaultSamplingPolicy, samplingPolicySchema } from '../../policies/sampling-policy.ts';

// Embeddings along distinct axes are a cosine distance of 1 apart; the same axis, 0.
const axis = (i: number): number[] => Array.from({ length: 8 }, (_, k) => (k === i % 8 ? 1 : 0));
// Many frames that are no near-duplicates of each other.
const scattered = (i: number) => Array.from({ length: 16 }, (_, k) => ((Math.sin((i + 1) * (k + 1) * 12.9898) * 43758.5453) % 1) - 0.5);
const frame = (frameId: string, scores: [string, number][], cameraId = 'cam-1', embedding = axis(Number(frameId.replace(/\D/g, '') || 0))): RoutableFrame => ({
  frameId,
  cameraId,
  embedding,
  detections: scores.map(([className, score], rank) => ({ rank, className, score })),
});

const ctx = (overrides: Partial<RoutingContext> = {}): RoutingContext => ({
  policy: samplingPolicySchema.parse({ randomRate: 0, selection: 'band' }),
  budgetRemaining: null,
  isBoosted: () => false,
  distances: new Map(),
  ...overrides,
});
const routeBatch = (...args: Parameters<typeof route>) => route(...args).tasks;

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

  it('skips near-duplicates of queued frames (and of frames routed earlier in the batch) and widens the band for boosted cameras', () => {
    const frames = [frame('dup', [['vehicle', 0.5]]), frame('f2', [['vehicle', 0.65]], 'cam-boosted')];
    const distances = new Map([['dup', { queued: 0.0001, reference: 0.5 }]]);
    const plain = routeBatch(frames, ctx({ distances }), 1);
    expect(plain).toEqual([]);
    const boosted = routeBatch(frames, ctx({ distances, isBoosted: (c) => c === 'cam-boosted' }), 1);
    expect(boosted.map((t) => [t.frameId, t.reason])).toEqual([['f2', 'drift_boost']]);
    // Two frames with the same embedding in one batch: the second is a near-duplicate of the first.
    const twins = routeBatch([frame('a1', [['vehicle', 0.5]], 'c', axis(1)), frame('b1', [['vehicle', 0.5]], 'c', axis(1))], ctx(), 1);
    expect(twins.map((t) => t.frameId)).toEqual(['a1']);
  });

  it('samples whole frames at the random rate, the same way on every retry', () => {
    const policy = samplingPolicySchema.parse({ randomRate: 0.25, band: { low: 0.98, high: 0.99 } });
    const frames = Array.from({ length: 2000 }, (_, i) => frame(`frame-${i}`, [['vehicle', 0.9]], 'c', scattered(i)));
    const first = routeBatch(frames, ctx({ policy }), 3);
    const again = routeBatch(frames, ctx({ policy }), 3);
    expect(first).toEqual(again);
    expect(first.every((t) => t.reason === 'random' && t.rank === null)).toBe(true);
    expect(first.length / frames.length).toBeGreaterThan(0.2);
    expect(first.length / frames.length).toBeLessThan(0.3);
  });
});

describe('ranked selection', () => {
  const ranked = samplingPolicySchema.parse({ randomRate: 0 });

  it('is the default, and scores a frame by the entropy of its in-band detections times its novelty', () => {
    expect(defaultSamplingPolicy.selection).toBe('ranked');
    const f = frame('f1', [
      ['vehicle', 0.5],
      ['sign', 0.4],
      ['pedestrian', 0.95],
    ]);
    const { selections } = route([f], ctx({ policy: ranked, distances: new Map([['f1', { queued: 0.3, reference: 0.1 }]]) }), 1);
    const s = selections.get('f1')!;
    expect(s.uncertainty).toBeCloseTo(binaryEntropy(0.5) + binaryEntropy(0.4), 12);
    expect(s.novelty).toBe(0.1);
    expect(s.value).toBeCloseTo(s.uncertainty * 0.1, 12);
  });

  it('routes the uncertain frames whose value reaches the paced threshold, and records why', () => {
    const frames = [
      frame('f1', [['vehicle', 0.5]]), // novel and uncertain
      frame('f2', [['vehicle', 0.58]]), // uncertain but close to what the model knows
      frame('f3', [['vehicle', 0.95]]), // sure, and not far enough to be a new look
    ];
    const distances = new Map([
      ['f1', { queued: null, reference: 0.4 }],
      ['f2', { queued: null, reference: 0.01 }],
      ['f3', { queued: null, reference: 0.03 }],
    ]);
    const { tasks, selections } = route(frames, ctx({ policy: ranked, distances, pacing: { threshold: 0.1, targetRate: 0.05 } }), 1);
    expect(tasks.map((t) => t.frameId)).toEqual(['f1']);
    expect(tasks[0].selection).toEqual({ uncertainty: 1, novelty: 0.4, value: 0.4, threshold: 0.1, targetRate: 0.05 });
    expect(selections.get('f2')!.value).toBeLessThan(0.1);
    expect(selections.get('f3')!.value).toBe(0);
    // The band selection sends both uncertain frames, whatever their novelty.
    const band = route(frames, ctx({ policy: { ...ranked, selection: 'band' }, distances, pacing: { threshold: 0.1, targetRate: 0.05 } }), 1);
    expect(band.tasks.map((t) => t.frameId)).toEqual(['f1', 'f2']);
  });

  it('sends a frame with no uncertain detection but far from all the model knows as a whole frame, if its novelty makes the bar', () => {
    const frames = [
      frame('n1', []), // nothing detected, far from the references: a look the model may be blind to
      frame('n2', [['vehicle', 0.95]]), // sure, and close to the references
      frame('n3', []), // nothing detected, but close to the references
    ];
    const distances = new Map([
      ['n1', { queued: null, reference: 0.4 }],
      ['n2', { queued: null, reference: 0.01 }],
      ['n3', { queued: null, reference: 0.03 }],
    ]);
    // Its uncertainty is a per-frame draw of up to one bit, the same on every retry.
    const drawn = stableUniform('n1', 'novel:1');
    const pacing = { threshold: (drawn * 0.4) / 2, targetRate: 0.05 };
    const { tasks, selections } = route(frames, ctx({ policy: ranked, distances, pacing }), 1);
    expect(tasks.map((t) => [t.frameId, t.reason, t.rank])).toEqual([['n1', 'novel', null]]);
    expect(tasks[0].selection).toMatchObject({ uncertainty: drawn, novelty: 0.4, value: drawn * 0.4 });
    expect(selections.get('n3')!.value).toBe(0);
    // Night frames queued already do not make the next one less of a blind spot, even when the
    // model's embedding puts them within the near-duplicate distance.
    const queuedNight = new Map([['n1', { queued: 0.0001, reference: 0.4 }]]);
    expect(route([frames[0]], ctx({ policy: ranked, distances: queuedNight, pacing }), 1).tasks.map((t) => t.reason)).toEqual(['novel']);
    // Below the bar, or under the band selection, or with the setting off: not sent.
    expect(route(frames, ctx({ policy: ranked, distances, pacing: { threshold: drawn * 0.4 + 1e-9, targetRate: 0.05 } }), 1).tasks).toEqual([]);
    expect(route(frames, ctx({ policy: { ...ranked, selection: 'band' }, distances, pacing }), 1).tasks).toEqual([]);
    expect(route(frames, ctx({ policy: { ...ranked, novelFrameDistance: 0 }, distances, pacing }), 1).tasks).toEqual([]);
  });

  it('spreads novel picks over the scenes a blind model cannot tell apart, as random sampling would', () => {
    // 100 dark scenes of 4 frames: each scene a hair farther from the references than the last
    // (as a day model sees night), its frames closer still. The bar lets a quarter of the values
    // through. With one bit each, the bar would take the 25 farthest scenes whole.
    const frames = Array.from({ length: 400 }, (_, i) => frame(`s${Math.floor(i / 4)}-${i % 4}`, [], 'c', scattered(i)));
    const distances = new Map(frames.map((f, i) => [f.frameId, { queued: null, reference: 0.33 + Math.floor(i / 4) * 0.0005 + (i % 4) * 0.00001 }]));
    const values = [...route(frames, ctx({ policy: ranked, distances }), 1).selections.values()].map((s) => s.value).sort((a, b) => b - a);
    const pacing = { threshold: values[99], targetRate: 0.25 };
    const run = () => route(frames, ctx({ policy: ranked, distances, pacing }), 1).tasks;
    const picks = run();
    const scenes = new Set(picks.map((t) => t.frameId.split('-')[0]));
    expect(picks).toHaveLength(100);
    // Drawing 100 of 400 frames at random touches ~68 of 100 scenes.
    expect(scenes.size).toBeGreaterThan(55);
    // The nearer half of the scenes still gets a fair share of the picks.
    expect(picks.filter((t) => Number(t.frameId.slice(1).split('-')[0]) < 50).length).toBeGreaterThan(30);
    expect(run()).toEqual(picks);
  });

  it('measures novelty against what the model learned from, not against frames queued today', () => {
    // A new camera: its frames are close to each other and far from the references. A frame of it
    // queued earlier does not make the next one look familiar; a clear frame stays familiar.
    const frames = [frame('cam2', [['vehicle', 0.5]]), frame('clear', [['vehicle', 0.5]])];
    const distances = new Map([
      ['cam2', { queued: 0.004, reference: 0.05 }],
      ['clear', { queued: 0.3, reference: 0.01 }],
    ]);
    const { tasks, selections } = route(frames, ctx({ policy: ranked, distances, pacing: { threshold: 0.03, targetRate: 0.05 } }), 1);
    expect(selections.get('cam2')!.novelty).toBe(0.05);
    expect(selections.get('clear')!.novelty).toBe(0.01);
    expect(tasks.map((t) => t.frameId)).toEqual(['cam2']);
    // A near-duplicate of a queued frame is still skipped, and with no references the frame is
    // compared with what was queued.
    const copy = new Map([['cam2', { queued: 0.0005, reference: 0.05 }]]);
    const copied = route([frames[0]], ctx({ policy: ranked, distances: copy, pacing: { threshold: 0.03, targetRate: 0.05 } }), 1);
    expect(copied.tasks).toEqual([]);
    // It is flagged, so its value is left out of the values the bar is paced on.
    expect(copied.nearDuplicates).toEqual(new Set(['cam2']));
    expect(route(frames, ctx({ policy: ranked, distances, pacing: { threshold: 0.03, targetRate: 0.05 } }), 1).nearDuplicates).toEqual(new Set());
    const noRefs = new Map([['cam2', { queued: 0.3, reference: null }]]);
    expect(route([frames[0]], ctx({ policy: ranked, distances: noRefs }), 1).selections.get('cam2')!.novelty).toBe(0.3);
  });

  it('keeps random samples to their share of the paced budget', () => {
    const frames = Array.from({ length: 20_000 }, (_, i) => frame(`f${i}`, [], 'c', scattered(i)));
    const policy = samplingPolicySchema.parse({ randomRate: 0.01, randomBudgetShare: 0.1 });
    const random = (budgetRemaining: number | null, pacing?: { threshold: number | null; targetRate: number }) =>
      route(frames, ctx({ policy, budgetRemaining, pacing }), 3).tasks.filter((t) => t.reason === 'random').length / frames.length;
    // The budget allows 2% of frames: random samples get 10% of that, 0.2% of frames.
    expect(random(400, { threshold: 1, targetRate: 0.02 })).toBeGreaterThan(0.0013);
    expect(random(400, { threshold: 1, targetRate: 0.02 })).toBeLessThan(0.0027);
    // A budget that allows every frame leaves the random rate as set; so do no budget and the
    // band selection.
    expect(random(1e6, { threshold: 1, targetRate: 1 })).toBeGreaterThan(0.008);
    expect(random(null, { threshold: 1, targetRate: 1 })).toBeGreaterThan(0.008);
    expect(random(400)).toBeGreaterThan(0.008);
    // With no budget nothing caps it, even at a random rate of 1.
    expect(route(frames.slice(0, 50), ctx({ policy: { ...policy, randomRate: 1 }, pacing: { threshold: 1, targetRate: 1 } }), 3).tasks).toHaveLength(50);
  });

  it('samples uncertain frames at the target rate while it learns the stream, the same way on every retry', () => {
    const frames = Array.from({ length: 4000 }, (_, i) => frame(`f${i}`, [['vehicle', 0.45]], 'c', scattered(i)));
    const run = () => route(frames, ctx({ policy: ranked, pacing: { threshold: null, targetRate: 0.1 } }), 2).tasks;
    const first = run();
    expect(run()).toEqual(first);
    expect(first.length / frames.length).toBeGreaterThan(0.08);
    expect(first.length / frames.length).toBeLessThan(0.12);
  });
});

describe('budget pacing', () => {
  it('spends a daily budget across the day when the bar is paced on candidates only, near-duplicates left out', () => {
    // A day of 2,000 frames with a budget of 40 (2%). Every tenth frame is a copy of one scene the
    // model is unsure of, valued above everything else; once one is queued the rest are
    // near-duplicates. The others are uncertain frames of varied value.
    const policy = samplingPolicySchema.parse({ randomRate: 0, dailyBudget: 40 });
    const copy = Array.from({ length: 16 }, (_, k) => (k === 0 ? 1 : 0));
    const unit = (i: number, k: number) => Math.abs((Math.sin((i + 1) * k * 12.9898) * 43758.5453) % 1);
    const frames = Array.from({ length: 2000 }, (_, i) =>
      i % 10 === 0 ? frame(`f${i}`, [['vehicle', 0.45]], 'c', copy) : frame(`f${i}`, [['vehicle', 0.3 + 0.3 * unit(i, 1)]], 'c', scattered(i)),
    );
    const reference = (i: number) => (i % 10 === 0 ? 0.5 : 0.01 + 0.04 * unit(i, 2));
    const day = (paceOnNearDuplicates: boolean) => {
      const picked: number[] = [];
      const queued: number[][] = [];
      const history: number[] = [];
      for (let i = 0; i < frames.length; i += 16) {
        const batch = frames.slice(i, i + 16);
        const distances = new Map(
          batch.map((f, k) => [
            f.frameId,
            { queued: queued.length ? Math.min(...queued.map((e) => cosineDistance(e, f.embedding))) : null, reference: reference(i + k) },
          ]),
        );
        const rate = targetRate(40 - picked.length, frames.length - i);
        const pacing = { threshold: pacedThreshold(history.slice(-policy.pacingWindow), rate, policy.pacingWarmup), targetRate: rate };
        const { tasks, selections, nearDuplicates } = route(batch, ctx({ policy, budgetRemaining: 40 - picked.length, distances, pacing }), 1);
        for (const t of tasks) {
          picked.push(Number(t.frameId.slice(1)));
          queued.push(batch.find((f) => f.frameId === t.frameId)!.embedding as number[]);
        }
        for (const [id, s] of selections) if (paceOnNearDuplicates || !nearDuplicates.has(id)) history.push(s.value);
      }
      return picked;
    };
    // As the scoring activity stores values: near-duplicates are no part of the bar.
    const candidates = day(false);
    expect(candidates).toHaveLength(40);
    // Paced on every frame, the bar sits among the copies' values, which nothing but the first
    // copy can pass, and the budget waits for the end of the day.
    const every = day(true);
    const beforeEvening = (picks: number[]) => picks.filter((i) => i < 1600).length;
    expect(beforeEvening(candidates)).toBeGreaterThan(16);
    expect(beforeEvening(candidates)).toBeGreaterThan(2 * beforeEvening(every));
  });

  it('spreads the budget left over the frames still expected today', () => {
    expect(targetRate(null, 1000)).toBe(1);
    expect(targetRate(50, 1000)).toBe(0.05);
    expect(targetRate(50, 10)).toBe(1);
    expect(targetRate(0, 1000)).toBe(0);
  });

  it('sets the threshold at the quantile of recent values the rate allows, once it has seen enough', () => {
    const values = Array.from({ length: 1000 }, (_, i) => i / 1000);
    expect(pacedThreshold(values.slice(0, 10), 0.1, 100)).toBeNull();
    expect(pacedThreshold(values, 0.1, 100)).toBeCloseTo(0.8991, 4);
    expect(pacedThreshold(values, 1, 100)).toBe(0);
    // With the threshold at the 90th percentile, about 10% of frames like these pass it.
    const t = pacedThreshold(values, 0.1, 100)!;
    expect(values.filter((v) => v >= t).length).toBe(100);
  });
});

// Merging several reviewers' boxes, on cases worked out by hand.
import { describe, expect, it } from 'vitest';
import { mergeAnswers } from '../../policies/consensus.ts';

const box = (className: string, x1: number, y1: number, x2: number, y2: number) => ({ className, x1, y1, x2, y2 });
const settings = { minIou: 0.5, quorum: 0.5 };
/** The same box to 12 decimals (a mean of equal numbers need not be bit-equal to them). */
const near = (b: ReturnType<typeof box>) => ({
  className: b.className,
  x1: expect.closeTo(b.x1, 12),
  y1: expect.closeTo(b.y1, 12),
  x2: expect.closeTo(b.x2, 12),
  y2: expect.closeTo(b.y2, 12),
});

describe('mergeAnswers', () => {
  const car = box('vehicle', 0.1, 0.1, 0.3, 0.3);
  const sign = box('sign', 0.6, 0.2, 0.7, 0.4);

  it('keeps what most reviewers drew, each box the mean of theirs', () => {
    const a = [car, sign];
    const b = [box('vehicle', 0.12, 0.1, 0.32, 0.3), sign];
    const c = [box('vehicle', 0.11, 0.1, 0.31, 0.3)]; // missed the sign
    const r = mergeAnswers([a, b, c], settings);
    expect(r.merged).toHaveLength(2);
    const merged = r.merged.find((m) => m.className === 'vehicle')!;
    expect(merged.x1).toBeCloseTo(0.11, 12);
    expect(merged.x2).toBeCloseTo(0.31, 12);
    expect(r.merged.find((m) => m.className === 'sign')).toEqual(sign);
    // Pairwise F1: a-b 1, a-c 2/3, b-c 2/3.
    expect(r.agreement).toBeCloseTo((1 + 2 / 3 + 2 / 3) / 3, 12);
    expect(r.byClass.vehicle).toBe(1);
    // sign: a-b agree (1), a-c and b-c: only one drew it (0).
    expect(r.byClass.sign).toBeCloseTo(1 / 3, 12);
    expect(r.byAnswer).toEqual([1, 1, 2 / 3]);
  });

  it('drops an object only one of three drew, and takes the class most of them gave', () => {
    const stray = box('vehicle', 0.8, 0.8, 0.9, 0.9);
    const r = mergeAnswers([[car, stray], [car], [{ ...car, className: 'person' }]], settings);
    expect(r.merged).toEqual([near(car)]);
    expect(r.byClass.person).toBe(0);
  });

  it('does not merge boxes under the IoU, nor two boxes of one reviewer', () => {
    const shifted = box('vehicle', 0.2, 0.1, 0.4, 0.3); // IoU 1/3 with car
    const r = mergeAnswers([[car], [shifted]], { minIou: 0.5, quorum: 1 });
    expect(r.merged).toEqual([]);
    expect(r.agreement).toBe(0);
    const twice = mergeAnswers([[car, box('vehicle', 0.1, 0.1, 0.3, 0.29)], [car]], { minIou: 0.5, quorum: 1 });
    expect(twice.merged).toEqual([near(car)]);
  });

  it('agrees fully on a frame everyone left empty', () => {
    expect(mergeAnswers([[], [], []], settings)).toEqual({ merged: [], agreement: 1, byClass: {}, byAnswer: [1, 1, 1] });
  });
});

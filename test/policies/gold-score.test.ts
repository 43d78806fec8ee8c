// Scoring an answer against gold, on cases worked out by hand.
import { describe, expect, it } from 'vitest';
import { iou, scoreAgainstGold } from '../../policies/gold-score.ts';

const box = (className: string, x1: number, y1: number, x2: number, y2: number) => ({ className, x1, y1, x2, y2 });

describe('scoreAgainstGold', () => {
  const car = box('vehicle', 0.1, 0.1, 0.3, 0.3);
  const person = box('person', 0.6, 0.6, 0.7, 0.8);

  it('gives IoU as intersection over union', () => {
    // Shifted by half its width: intersection 0.1 x 0.2 = 0.02, union 0.04 + 0.04 - 0.02 = 0.06.
    expect(iou(car, box('vehicle', 0.2, 0.1, 0.4, 0.3))).toBeCloseTo(1 / 3, 12);
    expect(iou(car, person)).toBe(0);
  });

  it('scores a perfect answer 1 and an empty answer to an empty gold 1', () => {
    expect(scoreAgainstGold([car, person], [person, car])).toEqual({ precision: 1, recall: 1, classAccuracy: 1, score: 1 });
    expect(scoreAgainstGold([], [])).toEqual({ precision: null, recall: null, classAccuracy: null, score: 1 });
  });

  it('counts a missed object against recall and an extra one against precision', () => {
    expect(scoreAgainstGold([car], [car, person])).toEqual({ precision: 1, recall: 0.5, classAccuracy: 1, score: 2 / 3 });
    expect(scoreAgainstGold([car, person], [car])).toEqual({ precision: 0.5, recall: 1, classAccuracy: 1, score: 2 / 3 });
    expect(scoreAgainstGold([], [car])).toEqual({ precision: null, recall: 0, classAccuracy: null, score: 0 });
  });

  it('takes a box under IoU 0.5 as a miss, and a well-placed box of the wrong class as a class error', () => {
    const third = box('vehicle', 0.2, 0.1, 0.4, 0.3); // IoU 1/3 with car
    expect(scoreAgainstGold([third], [car])).toMatchObject({ precision: 0, recall: 0, classAccuracy: null, score: 0 });
    expect(scoreAgainstGold([{ ...car, className: 'person' }], [car])).toEqual({ precision: 0, recall: 0, classAccuracy: 0, score: 0 });
  });

  it('matches one to one: two answers on one gold object count once', () => {
    const nearly = box('vehicle', 0.11, 0.1, 0.3, 0.3);
    expect(scoreAgainstGold([car, nearly], [car])).toEqual({ precision: 0.5, recall: 1, classAccuracy: 1, score: 2 / 3 });
  });
});

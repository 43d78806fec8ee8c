// The promotion gate at its edges: the overall mAP margin, the per-class margin (a candidate
// better on average can still be refused for one class), a class production knew that the
// candidate lost, the first model with nothing to compare with, and the INT8 variant's own margin.
import { describe, expect, it } from 'vitest';
import { defaultGate, int8Gate, promotionGate } from '../../workflows/promotion-gate.ts';
import type { DetectorMetrics } from '../../workflows/trainer-contract.ts';

const metrics = (map50: number, perClass: Record<string, number>): DetectorMetrics => ({
  map50,
  map50_95: map50 / 2,
  per_class_ap50: perClass,
  precision: 0.8,
  recall: 0.8,
  num_images: 100,
});
const production = metrics(0.8, { vehicle: 0.9, pedestrian: 0.7 });

describe('promotion gate', () => {
  it('passes a candidate at least as good overall and per class', () => {
    expect(promotionGate(metrics(0.8, { vehicle: 0.9, pedestrian: 0.7 }), production, defaultGate)).toEqual({ pass: true, reasons: [] });
    expect(promotionGate(metrics(0.85, { vehicle: 0.92, pedestrian: 0.66 }), production, defaultGate).pass).toBe(true); // 0.04 < 0.05 per class
  });

  it('refuses a candidate below production by more than maxMapDrop, and allows the margin when set', () => {
    const worse = metrics(0.79, { vehicle: 0.9, pedestrian: 0.7 });
    const refused = promotionGate(worse, production, defaultGate);
    expect(refused.pass).toBe(false);
    expect(refused.reasons).toEqual(["mAP@0.5 0.790 is below production's 0.800 by more than 0"]);
    expect(promotionGate(worse, production, { ...defaultGate, maxMapDrop: 0.02 }).pass).toBe(true);
  });

  it('refuses a candidate better on average when one class drops more than maxClassDrop', () => {
    const verdict = promotionGate(metrics(0.9, { vehicle: 0.99, pedestrian: 0.6 }), production, defaultGate);
    expect(verdict).toEqual({ pass: false, reasons: ['class pedestrian AP@0.5 fell from 0.700 to 0.600 (allowed 0.05)'] });
    expect(promotionGate(metrics(0.9, { vehicle: 0.99, pedestrian: 0.6 }), production, { ...defaultGate, maxMapDrop: 0, maxClassDrop: 0.1 }).pass).toBe(true);
  });

  it('counts a class the candidate no longer detects as AP 0', () => {
    const verdict = promotionGate(metrics(0.95, { vehicle: 0.95 }), production, defaultGate);
    expect(verdict.pass).toBe(false);
    expect(verdict.reasons).toEqual(['class pedestrian AP@0.5 fell from 0.700 to 0.000 (allowed 0.05)']);
  });

  it('passes the first model, with nothing in production to compare with', () => {
    expect(promotionGate(metrics(0.1, {}), null, defaultGate)).toEqual({ pass: true, reasons: ['no production model to compare with'] });
  });

  it("keeps the INT8 variant only within maxInt8MapDrop of the candidate's own float mAP", () => {
    const candidate = metrics(0.8, {});
    expect(int8Gate(candidate, metrics(0.79, {}), defaultGate)).toEqual({ keep: true, reason: 'INT8 mAP@0.5 0.790 against 0.800 in float: kept' });
    expect(int8Gate(candidate, metrics(0.785, {}), defaultGate)).toEqual({
      keep: false,
      reason: 'INT8 mAP@0.5 0.785 against 0.800 in float: dropped (falls by more than 0.01)',
    });
    expect(int8Gate(candidate, metrics(0.785, {}), { ...defaultGate, maxInt8MapDrop: 0.02 }).keep).toBe(true);
    // Better than float (calibration can help a little) is kept too.
    expect(int8Gate(candidate, metrics(0.81, {}), defaultGate).keep).toBe(true);
  });
});

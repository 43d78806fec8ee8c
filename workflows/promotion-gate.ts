// The promotion gate: whether a candidate detector may replace production, judged on the same
// held-out split. Pure, so the retraining workflow decides deterministically and tests call it
// directly.
import type { DetectorMetrics } from './trainer-contract.ts';

export interface PromotionGate {
  /** The candidate's mAP@0.5 may be at most this much below production's. */
  maxMapDrop: number;
  /** No class's AP@0.5 may fall by more than this. */
  maxClassDrop: number;
  /** The candidate's INT8 variant is kept only if its mAP@0.5 is at most this much below the
   * candidate's own (float) mAP@0.5 on the same split. */
  maxInt8MapDrop: number;
}

export const defaultGate: PromotionGate = { maxMapDrop: 0, maxClassDrop: 0.05, maxInt8MapDrop: 0.01 };

// mAP figures are floats (0.8 - 0.79 is 0.010000000000000009): a drop of exactly the allowed
// margin passes.
const EPSILON = 1e-9;

export function promotionGate(candidate: DetectorMetrics, production: DetectorMetrics | null, gate: PromotionGate): { pass: boolean; reasons: string[] } {
  if (!production) return { pass: true, reasons: ['no production model to compare with'] };
  const reasons: string[] = [];
  if (production.map50 - candidate.map50 > gate.maxMapDrop + EPSILON) {
    reasons.push(`mAP@0.5 ${candidate.map50.toFixed(3)} is below production's ${production.map50.toFixed(3)} by more than ${gate.maxMapDrop}`);
  }
  for (const [cls, ap] of Object.entries(production.per_class_ap50)) {
    const c = candidate.per_class_ap50[cls] ?? 0;
    if (ap - c > gate.maxClassDrop + EPSILON) reasons.push(`class ${cls} AP@0.5 fell from ${ap.toFixed(3)} to ${c.toFixed(3)} (allowed ${gate.maxClassDrop})`);
  }
  return { pass: reasons.length === 0, reasons };
}

/** Whether the candidate's INT8 variant may stand in for it: judged against the candidate itself,
 * not production, since loops would otherwise run the float candidate. */
export function int8Gate(candidate: DetectorMetrics, int8: DetectorMetrics, gate: PromotionGate): { keep: boolean; reason: string } {
  const drop = candidate.map50 - int8.map50;
  const figures = `INT8 mAP@0.5 ${int8.map50.toFixed(3)} against ${candidate.map50.toFixed(3)} in float`;
  return drop <= gate.maxInt8MapDrop + EPSILON
    ? { keep: true, reason: `${figures}: kept` }
    : { keep: false, reason: `${figures}: dropped (falls by more than ${gate.maxInt8MapDrop})` };
}

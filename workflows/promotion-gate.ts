// The promotion gate: whether a candidate detector may replace production, judged on the same
// held-out split. Pure, so the retraining workflow decides deterministically and tests call it
// directly.
import type { DetectorMetrics } from './trainer-contract.ts';

export interface PromotionGate {
  /** The candidate's mAP@0.5 may be at most this much below production's. */
  maxMapDrop: number;
  /** No class's AP@0.5 may fall by more than this. */
  maxClassDrop: number;
}

export const defaultGate: PromotionGate = { maxMapDrop: 0, maxClassDrop: 0.05 };

export function promotionGate(candidate: DetectorMetrics, production: DetectorMetrics | null, gate: PromotionGate): { pass: boolean; reasons: string[] } {
  if (!production) return { pass: true, reasons: ['no production model to compare with'] };
  const reasons: string[] = [];
  if (candidate.map50 < production.map50 - gate.maxMapDrop) {
    reasons.push(`mAP@0.5 ${candidate.map50.toFixed(3)} is below production's ${production.map50.toFixed(3)} by more than ${gate.maxMapDrop}`);
  }
  for (const [cls, ap] of Object.entries(production.per_class_ap50)) {
    const c = candidate.per_class_ap50[cls] ?? 0;
    if (c < ap - gate.maxClassDrop) reasons.push(`class ${cls} AP@0.5 fell from ${ap.toFixed(3)} to ${c.toFixed(3)} (allowed ${gate.maxClassDrop})`);
  }
  return { pass: reasons.length === 0, reasons };
}

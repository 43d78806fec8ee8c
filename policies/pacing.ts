// Budget pacing for the ranked selection: the share of frames the budget allows from now to the
// end of the day, and the value a frame must reach to be among that share of recent frames. A
// budget is then spent across the day on the most useful frames, not on the first uncertain
// frames after midnight, and a stream that gets busier raises its own bar.
import { quantile } from 'simple-statistics';

/** Share of the frames still expected today that the budget left can cover (0..1; 1 = no limit). */
export function targetRate(budgetRemaining: number | null, framesExpected: number): number {
  if (budgetRemaining === null) return 1;
  return Math.min(1, Math.max(0, budgetRemaining / Math.max(1, framesExpected)));
}

/**
 * The value at the (1 - rate) quantile of recent frames' values: frames at or above it are as
 * rare as the budget allows. Null until `minHistory` values are known (the caller then samples
 * uncertain frames at the target rate). Uses simple-statistics' quantile (the R-7 definition).
 */
export function pacedThreshold(recentValues: number[], rate: number, minHistory: number): number | null {
  if (recentValues.length < Math.max(1, minHistory)) return null;
  if (rate >= 1) return 0;
  return quantile(recentValues, 1 - rate);
}

/**
 * The ranked selection's pacing for a batch whose newest frame arrived at `anchor`: the share of
 * the frames still expected today (at the last hour's rate) that the budget left covers, and the
 * bar at that share of the stream's recent values.
 */
export function batchPacing(anchor: Date, framesLastHour: number, budgetRemaining: number | null, recentValues: number[], warmup: number) {
  const endOfDay = Date.UTC(anchor.getUTCFullYear(), anchor.getUTCMonth(), anchor.getUTCDate() + 1);
  const rate = targetRate(budgetRemaining, (framesLastHour * (endOfDay - anchor.getTime())) / 3600_000);
  return { threshold: pacedThreshold(recentValues, rate, warmup), targetRate: rate };
}

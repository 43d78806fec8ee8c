// A drift report: PCA fitted on the reference and current embeddings together, a KS test per
// component between the two windows, corrected for testing many components, plus KS tests on
// the confidence scores and detections per frame. A component counts as drifted only when it is
// significant after correction AND its KS statistic reaches the minimum effect size: with large
// windows every tiny shift becomes significant, and an alert nobody can act on is noise.
import { correct, type Correction } from './corrections.ts';
import { ks2samp } from './ks.ts';
import { fitPca, projectPca } from './pca.ts';

export interface DriftSettings {
  alpha: number;
  components: number;
  correction: Correction;
  /** Smallest KS statistic (largest CDF gap) that counts as drift. */
  minEffect: number;
}

const defaultDriftSettings: DriftSettings = { alpha: 0.05, components: 8, correction: 'bonferroni', minEffect: 0.1 };

interface ComponentResult {
  component: number;
  explainedVarianceRatio: number;
  statistic: number;
  pvalue: number;
  adjustedP: number;
  significant: boolean;
  drifted: boolean;
}

interface SignalResult {
  statistic: number;
  pvalue: number;
  drifted: boolean;
  referenceMean: number;
  currentMean: number;
}

export interface DriftReport {
  drift: boolean;
  summary: string;
  settings: DriftSettings;
  referenceSize: number;
  windowSize: number;
  components: ComponentResult[];
  maxStatistic: number;
  minAdjustedP: number;
  confidence: SignalResult | null;
  detectionsPerFrame: SignalResult | null;
}

export interface DriftInput {
  reference: ArrayLike<number>[];
  current: ArrayLike<number>[];
  referenceScores?: number[];
  currentScores?: number[];
  referenceDetections?: number[];
  currentDetections?: number[];
}

const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;

function signal(ref: number[] | undefined, cur: number[] | undefined, s: DriftSettings): SignalResult | null {
  if (!ref?.length || !cur?.length) return null;
  const r = ks2samp(ref, cur);
  return {
    statistic: r.statistic,
    pvalue: r.pvalue,
    drifted: r.pvalue < s.alpha && r.statistic >= s.minEffect,
    referenceMean: mean(ref),
    currentMean: mean(cur),
  };
}

export function driftReport(input: DriftInput, settings: DriftSettings = defaultDriftSettings): DriftReport {
  if (input.reference.length < 3) throw new Error('the reference window needs at least 3 embeddings');
  if (input.current.length < 3) throw new Error('the current window needs at least 3 embeddings');
  // Fitted on both windows: fitted on the reference alone, the top components follow that
  // sample's own noise, and any other sample of the same distribution looks narrower along them
  // (on synthetic 128-d embeddings, 58% false alarms at 300 vs 120 frames; 7% fitted on both).
  // Pooling treats the two windows alike, so under no drift the KS tests keep their level.
  const pca = fitPca([...input.reference, ...input.current], { components: settings.components });
  const ref = projectPca(pca, input.reference);
  const cur = projectPca(pca, input.current);
  const tests = ref.map((r, k) => ks2samp(r, cur[k]));
  const adjusted = correct(
    tests.map((t) => t.pvalue),
    settings.correction,
  );
  const components = tests.map((t, k) => {
    const significant = adjusted[k] < settings.alpha;
    return {
      component: k + 1,
      explainedVarianceRatio: pca.explainedVarianceRatio[k],
      statistic: t.statistic,
      pvalue: t.pvalue,
      adjustedP: adjusted[k],
      significant,
      drifted: significant && t.statistic >= settings.minEffect,
    };
  });
  const drifted = components.filter((c) => c.drifted);
  const significantOnly = components.filter((c) => c.significant && !c.drifted);
  const maxStatistic = Math.max(...components.map((c) => c.statistic));
  const minAdjustedP = Math.min(...components.map((c) => c.adjustedP));
  const summary = drifted.length
    ? `drift: ${drifted.length} of ${components.length} components shifted (largest CDF gap ${maxStatistic.toFixed(3)}, corrected p ${minAdjustedP.toExponential(2)})`
    : significantOnly.length
      ? `no drift: ${significantOnly.length} components differ significantly but by less than the minimum effect ${settings.minEffect} (largest gap ${maxStatistic.toFixed(3)})`
      : `no drift: largest CDF gap ${maxStatistic.toFixed(3)}, smallest corrected p ${minAdjustedP.toFixed(3)}`;
  return {
    drift: drifted.length > 0,
    summary,
    settings,
    referenceSize: input.reference.length,
    windowSize: input.current.length,
    components,
    maxStatistic,
    minAdjustedP,
    confidence: signal(input.referenceScores, input.currentScores, settings),
    detectionsPerFrame: signal(input.referenceDetections, input.currentDetections, settings),
  };
}

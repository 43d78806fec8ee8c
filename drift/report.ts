// A drift report: four families of tests on the embeddings under one error budget (alpha split
// among them, weighted Bonferroni), plus KS tests on the confidence scores and detections per
// frame.
//   KS on PCA   PCA fitted on the reference and current embeddings together, a KS test per
//               component between the two windows, corrected for testing many components;
//   classifier  a classifier two-sample test on the whole embedding (drift/classifier-test.ts),
//               for what the top components miss (a shift along a low-variance direction, a
//               change of spread);
//   novelty     more frames unlike every reference frame than chance allows
//               (drift/novelty-test.ts): a new kind of scene in a few percent of the window,
//               too few frames to move a distribution;
//   spread      a change of variance along a pooled principal axis or in the plane of two
//               (drift/spread-test.ts): a low-variance direction that widens, two dimensions
//               that start to move together.
// A finding counts as drift only when it is significant after correction AND reaches its minimum
// effect size (a KS statistic, an AUC, a share of novel frames, a variance ratio): with large
// windows every tiny shift becomes significant, and an alert nobody can act on is noise.
import { classifierTest, type ClassifierFeature } from './classifier-test.ts';
import { correct, type Correction } from './corrections.ts';
import { ks2samp } from './ks.ts';
import { noveltyTest } from './novelty-test.ts';
import { fitPca, projectPca } from './pca.ts';
import { rowMatrix } from './row-matrix.ts';
import { spreadTest, type SpreadBlock } from './spread-test.ts';

export interface DriftSettings {
  alpha: number;
  components: number;
  correction: Correction;
  /** Smallest KS statistic (largest CDF gap) that counts as drift. */
  minEffect: number;
  /** Smallest held-out AUC of the classifier test that counts as drift (0.5: no difference). */
  classifierMinAuc: number;
  /** Smallest share of novel frames, beyond the share chance gives, that counts as drift. */
  noveltyMinShare: number;
  /** Smallest change of variance that counts as drift, along the most changed direction of a
   * pooled axis or a plane of two (1.3: 30% more, or a quarter less). */
  spreadMinRatio: number;
}

const defaultDriftSettings: DriftSettings = {
  alpha: 0.05,
  components: 8,
  correction: 'bonferroni',
  minEffect: 0.1,
  classifierMinAuc: 0.55,
  noveltyMinShare: 0.02,
  spreadMinRatio: 1.3,
};

/**
 * Each family's share of alpha (weighted Bonferroni: the shares sum to 1, so false alarms stay at
 * alpha or below whatever the families' dependence). The novelty test keeps the third it had
 * before the spread test came: it counts frames, so its p-value moves in steps, and a new 5%
 * cluster at window 200 sits near its threshold (a quarter instead of a third cost it 0.3 of its
 * power in 20 trials). The spread test, the newest and narrowest, takes the smallest share.
 */
const SHARE = { ks: 1 / 4, classifier: 1 / 4, novelty: 1 / 3, spread: 1 / 6 } as const;
const corrected = (p: number, family: keyof typeof SHARE) => Math.min(1, p / SHARE[family]);

interface NoveltyResult {
  /** Current frames farther from the reference's first half than all but 1% of its second half's frames are. */
  novel: number;
  /** Their share of the window beyond what chance gives. */
  excessShare: number;
  pvalue: number;
  /** Corrected for the families. */
  adjustedP: number;
  significant: boolean;
  drifted: boolean;
  /** Positions in the current window of the novel frames, farthest first (at most 20). */
  novelIndices: number[];
}

interface ClassifierResult {
  auc: number;
  pvalue: number;
  /** Corrected for the families. */
  adjustedP: number;
  significant: boolean;
  drifted: boolean;
  /** What the classifier leaned on: dimensions of the embedding and whether mean or spread. */
  topFeatures: ClassifierFeature[];
}

interface SpreadResult {
  /** Pooled principal axes tested (all but the numerically empty ones). */
  tested: number;
  pvalue: number;
  /** Corrected for the families. */
  adjustedP: number;
  significant: boolean;
  drifted: boolean;
  /** The axes or pairs of axes whose spread changed most (p-values adjusted for every block tested). */
  blocks: SpreadBlock[];
}

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
  classifier: ClassifierResult;
  novelty: NoveltyResult;
  spread: SpreadResult;
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

export async function driftReport(input: DriftInput, settings: DriftSettings = defaultDriftSettings): Promise<DriftReport> {
  if (input.reference.length < 3) throw new Error('the reference window needs at least 3 embeddings');
  if (input.current.length < 3) throw new Error('the current window needs at least 3 embeddings');
  // Fitted on both windows: fitted on the reference alone, the top components follow that
  // sample's own noise, and any other sample of the same distribution looks narrower along them
  // (on synthetic 128-d embeddings, 58% false alarms at 300 vs 120 frames; 7% fitted on both).
  // Pooling treats the two windows alike, so under no drift the KS tests keep their level.
  const pooled = rowMatrix([...input.reference, ...input.current]);
  // A NaN would make every PCA score NaN, and the tests' answers meaningless (KS on NaN never ends).
  const bad = pooled.data.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) {
    const row = Math.floor(bad / pooled.cols);
    const [window, index] = row < input.reference.length ? ['reference', row] : ['current', row - input.reference.length];
    throw new Error(`the ${window} window's embedding ${index} holds a non-finite value (${pooled.data[bad]}) at dimension ${bad % pooled.cols}`);
  }
  // Every axis: KS tests the top ones, the spread test all of them.
  const pca = await fitPca(pooled);
  const nRef = input.reference.length;
  const scores = await projectPca(pca, pooled);
  const ref = scores.map((column) => column.subarray(0, nRef));
  const cur = scores.map((column) => column.subarray(nRef));
  const tests = ref.slice(0, settings.components).map((r, k) => ks2samp(r, cur[k]));
  const adjusted = correct(
    tests.map((t) => t.pvalue),
    settings.correction,
  ).map((p) => corrected(p, 'ks'));
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
  const c2st = classifierTest(input.reference, input.current);
  const classifierAdjustedP = corrected(c2st.pvalue, 'classifier');
  const classifier: ClassifierResult = {
    ...c2st,
    adjustedP: classifierAdjustedP,
    significant: classifierAdjustedP < settings.alpha,
    drifted: classifierAdjustedP < settings.alpha && c2st.auc >= settings.classifierMinAuc,
  };
  const novel = noveltyTest(input.reference, input.current);
  const noveltyAdjustedP = corrected(novel.pvalue, 'novelty');
  const novelty: NoveltyResult = {
    novel: novel.novel,
    excessShare: novel.excessShare,
    pvalue: novel.pvalue,
    adjustedP: noveltyAdjustedP,
    significant: noveltyAdjustedP < settings.alpha,
    drifted: noveltyAdjustedP < settings.alpha && novel.excessShare >= settings.noveltyMinShare,
    novelIndices: novel.novelIndices.slice(0, 20),
  };
  const spreadRaw = await spreadTest(ref, cur, pca.explainedVariance);
  const spreadAdjustedP = corrected(spreadRaw.pvalue, 'spread');
  const bigEnough = (a: SpreadBlock) => Math.max(a.varianceRatio, 1 / a.varianceRatio) >= settings.spreadMinRatio;
  const spreadBlocks = spreadRaw.blocks.map((a) => ({ ...a, adjustedP: corrected(a.adjustedP, 'spread') }));
  const spreadDrifted = spreadBlocks.filter((a) => a.adjustedP < settings.alpha && bigEnough(a));
  const spread: SpreadResult = {
    tested: spreadRaw.tested,
    pvalue: spreadRaw.pvalue,
    adjustedP: spreadAdjustedP,
    significant: spreadAdjustedP < settings.alpha,
    drifted: spreadDrifted.length > 0,
    blocks: spreadBlocks,
  };
  const drifted = components.filter((c) => c.drifted);
  const significantOnly = components.filter((c) => c.significant && !c.drifted);
  const maxStatistic = Math.max(...components.map((c) => c.statistic));
  const minAdjustedP = Math.min(...components.map((c) => c.adjustedP), classifierAdjustedP, noveltyAdjustedP, spreadAdjustedP);
  const leanedOn = classifier.topFeatures.map((f) => `dim ${f.dimension} ${f.kind}`).join(', ');
  const share = (x: number) => `${(100 * x).toFixed(1)}%`;
  const findings = [
    drifted.length ? `${drifted.length} of ${components.length} components shifted (largest CDF gap ${maxStatistic.toFixed(3)})` : '',
    classifier.drifted ? `a classifier tells the windows apart (held-out AUC ${classifier.auc.toFixed(3)}), leaning on ${leanedOn}` : '',
    novelty.drifted
      ? `${novelty.novel} of ${input.current.length} frames are unlike every reference frame (${share(novelty.excessShare)} of the window more than chance)`
      : '',
    spread.drifted
      ? `the spread changed along ${spreadDrifted
          .slice(0, 3)
          .map(
            (a) =>
              `${a.components.length > 1 ? 'a direction in the plane of pooled axes' : 'pooled axis'} ${a.components.join(' and ')} (variance x${a.varianceRatio.toPrecision(2)})`,
          )
          .join(', ')}`
      : '',
  ].filter(Boolean);
  const largestSpread = spread.blocks.length ? spread.blocks[0].varianceRatio : 1;
  const measures = `largest CDF gap ${maxStatistic.toFixed(3)}, classifier AUC ${classifier.auc.toFixed(3)}, novel frames ${share(Math.max(0, novelty.excessShare))} over chance, variance x${largestSpread.toPrecision(2)} along the most changed direction`;
  const summary = findings.length
    ? `drift: ${findings.join('; ')}; corrected p ${minAdjustedP.toExponential(2)}`
    : significantOnly.length || classifier.significant || novelty.significant || spread.significant
      ? `no drift: differences are significant but below the minimum effects (${measures}; minimums ${settings.minEffect}, ${settings.classifierMinAuc}, ${share(settings.noveltyMinShare)}, x${settings.spreadMinRatio})`
      : `no drift: ${measures}, smallest corrected p ${minAdjustedP.toFixed(3)}`;
  return {
    drift: findings.length > 0,
    summary,
    settings,
    referenceSize: input.reference.length,
    windowSize: input.current.length,
    components,
    classifier,
    novelty,
    spread,
    maxStatistic,
    minAdjustedP,
    confidence: signal(input.referenceScores, input.currentScores, settings),
    detectionsPerFrame: signal(input.referenceDetections, input.currentDetections, settings),
  };
}

// The sampling policy an ML lead sets per stream (README, "Sampling policy"). It is validated
// at the API edge with this schema, stored versioned in `sampling_policies`, and read back by
// the routing step with the same schema, so both sides agree on defaults.
import { z } from 'zod';

const probability = z.number().min(0).max(1);

const confidenceBand = z
  .object({ low: probability, high: probability })
  .refine((b) => b.low < b.high, { message: 'band.low must be below band.high', path: ['high'] });

export const samplingPolicySchema = z
  .object({
    /** Detections with low <= confidence < high go to review. */
    band: confidenceBand.default({ low: 0.3, high: 0.6 }),
    /** Per-class bands replace `band` for that class. */
    classBands: z
      .record(z.string().min(1).max(100), confidenceBand)
      .refine((r) => Object.keys(r).length <= 200, { message: 'at most 200 classes may have their own band' })
      .default({}),
    /** Which uncertain frames a person sees: `ranked` (the most uncertain and novel, paced so the
     * daily budget lasts the day) or `band` (every one, in arrival order, until the budget is spent). */
    selection: z.enum(['ranked', 'band']).default('ranked'),
    /** ranked: the threshold is the quantile of this many recent frames' values that the budget allows
     * (near-duplicates of queued frames are no candidates and are left out). */
    pacingWindow: z.number().int().min(50).max(100_000).default(2000),
    /** ranked: until this many frames have values, uncertain frames are sampled at the budget's rate. */
    pacingWarmup: z.number().int().min(1).max(100_000).default(100),
    /** ranked: a frame without an uncertain detection at least this far (cosine) from the model's
     * reference frames is a candidate as a whole frame (a look the model
     * may be blind to); 0 turns it off. With the seed detector, frames of unseen cameras of the
     * training look lie ~0.007 from its references (p90 0.01), a new camera's ~0.07, night's ~0.33. */
    novelFrameDistance: z.number().min(0).max(2).default(0.05),
    /** Tasks routed per stream per UTC day; null means no limit. */
    dailyBudget: z.number().int().min(0).max(10_000_000).nullable().default(500),
    /** At most this many tasks from one frame (those nearest the middle of their band first). */
    maxTasksPerFrame: z.number().int().min(1).max(100).default(3),
    /** Share of scored frames sent to review regardless of confidence, for unbiased evaluation. */
    randomRate: probability.default(0.01),
    /** ranked: random samples take at most this share of the daily budget (the random rate is
     * lowered to fit), so they do not crowd out the frames the selection picks. */
    randomBudgetShare: probability.default(0.05),
    /** Skip a frame whose embedding is within this cosine distance of a frame already queued or
     * labeled in the same stream; 0 turns the diversity filter off. The scale depends on the
     * detector's embedding: with the seed model, consecutive frames of one scene are ~0.0006
     * apart, new scenes of one camera ~0.002, other cameras ~0.008, night vs day ~0.4. */
    diversityMinDistance: z.number().min(0).max(2).default(0.001),
    /** Base priority of tasks from this stream; higher is claimed first. */
    priority: z.number().int().min(-1000).max(1000).default(0),
    /** While a drift boost is active the band widens by `bandWiden` on each side and the random
     * rate is multiplied by `randomRateFactor`. */
    driftBoost: z
      .object({ bandWiden: z.number().min(0).max(0.5).default(0.1), randomRateFactor: z.number().min(1).max(100).default(5) })
      .default({ bandWiden: 0.1, randomRateFactor: 5 }),
    /** Consensus: this share of routed frames goes to `reviewers` different people; boxes that
     * overlap by `minIou` are one object, kept when at least `quorum` of them drew it; a frame whose
     * agreement (mean pairwise F1) is below `adjudicateBelow` goes to a lead instead of becoming a label. */
    consensus: z
      .object({
        share: probability.default(0),
        reviewers: z.number().int().min(2).max(10).default(3),
        quorum: z.number().gt(0, 'quorum must be above 0').max(1).default(0.5),
        minIou: z.number().gt(0, 'minIou must be above 0').max(1).default(0.5),
        adjudicateBelow: probability.default(0.6),
      })
      .strict()
      .default({ share: 0, reviewers: 3, quorum: 0.5, minIou: 0.5, adjudicateBelow: 0.6 }),
  })
  .strict();

export type SamplingPolicy = z.infer<typeof samplingPolicySchema>;

export const defaultSamplingPolicy: SamplingPolicy = samplingPolicySchema.parse({});

/** The band that applies to one detection class, without drift boost. */
export function bandFor(policy: SamplingPolicy, className: string): { low: number; high: number } {
  return policy.classBands[className] ?? policy.band;
}

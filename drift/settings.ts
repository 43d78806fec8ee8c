// Per-stream drift monitor settings, validated like sampling policies: a bad value is refused
// with the field named.
import { z } from 'zod';

const MAX_WINDOW_ROWS = 200_000;

export const driftSettingsSchema = z
  .object({
    /** Significance level after correction. */
    alpha: z.number().gt(0).lt(1).default(0.05),
    /** Principal components tested. */
    components: z.number().int().min(1).max(64).default(8),
    correction: z.enum(['bonferroni', 'bh']).default('bonferroni'),
    /** Smallest KS statistic (largest gap between the two CDFs) that counts as drift. */
    minEffect: z.number().min(0).max(1).default(0.1),
    /** Smallest held-out AUC of the classifier test (whole embedding) that counts as drift. */
    classifierMinAuc: z.number().min(0.5).max(1).default(0.55),
    /** Smallest share of the window, beyond chance, of frames unlike every reference frame that counts as drift. */
    noveltyMinShare: z.number().min(0).max(1).default(0.02),
    /** Smallest change of variance that counts as drift, along the most changed direction of a
     * principal axis of both windows or a plane of two (1.3: 30% more, or a quarter less). */
    spreadMinRatio: z.number().min(1).max(100).default(1.3),
    /** Frames in the current window (the latest scored). */
    windowSize: z.number().int().min(20).max(20_000).default(200),
    /** Take every n-th of the latest frames: consecutive frames of a camera are nearly the same
     * picture, and KS assumes independent samples; 16 spaces them about one scene apart. */
    windowStride: z.number().int().min(1).max(1000).default(16),
    /** Cameras of a stream tested one by one per check (the busiest); the stream test covers all. */
    maxCameras: z.number().int().min(0).max(256).default(32),
    /** Seconds between checks. */
    intervalSeconds: z
      .number()
      .int()
      .min(5)
      .max(7 * 24 * 3600)
      .default(300),
    /** How long a drift boost raises sampling for the drifted stream or camera. */
    boostMinutes: z
      .number()
      .int()
      .min(1)
      .max(7 * 24 * 60)
      .default(60),
    /** A drift-started retraining run first waits until this many frames of the stream have
     * been reviewed since the drift: retraining at once would learn nothing about the shift. */
    retrainMinLabels: z.number().int().min(1).max(1_000_000).default(200),
    /** ...and gives up if they have not been reviewed within this many hours. */
    retrainMaxWaitHours: z
      .number()
      .min(0.01)
      .max(30 * 24)
      .default(7 * 24),
    /** Confirmation: a segment is acted on (boost, retraining) only once at least this many of
     * its last `confirmChecks` checks found drift; until then its report says "pending". */
    confirmDrifted: z.number().int().min(1).max(50).default(1),
    confirmChecks: z.number().int().min(1).max(50).default(1),
    /** After a retraining run that drift on this stream started deploys its model, the stream's
     * reference is its frames scored by that model in this many minutes after the deploy (the
     * model learnt the shift, and its held-out frames are mostly the old world; a recovered
     * stream then goes quiet); 0 keeps the model's reference. */
    referenceAfterRetrainMinutes: z
      .number()
      .int()
      .min(0)
      .max(7 * 24 * 60)
      .default(60),
    /** Instead of the production model's reference: frames of this stream scored in this period. */
    pinnedReference: z
      .object({ from: z.coerce.date(), to: z.coerce.date() })
      .refine((r) => r.from < r.to, { message: 'from must be before to', path: ['to'] })
      .nullable()
      .default(null),
  })
  .strict()
  // A check reads windowSize x windowStride of the latest frames; past a few hundred thousand
  // rows a check would hold the database and the worker's memory for minutes.
  .refine((s) => s.confirmDrifted <= s.confirmChecks, {
    message: 'confirmDrifted must be at most confirmChecks (k drifted checks out of the last n)',
    path: ['confirmDrifted'],
  })
  .refine((s) => s.windowSize * s.windowStride <= MAX_WINDOW_ROWS, {
    message: `windowSize x windowStride must be at most ${MAX_WINDOW_ROWS} (the frames one check reads)`,
    path: ['windowStride'],
  });

export type DriftMonitorSettings = z.infer<typeof driftSettingsSchema>;
export const defaultDriftMonitorSettings: DriftMonitorSettings = driftSettingsSchema.parse({});

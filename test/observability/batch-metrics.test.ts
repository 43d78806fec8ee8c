// Metric series labelled with a model version stay bounded: a process keeps those of the versions
// it scored with most recently and removes an older version's, so deployments do not pile up
// series in /metrics.
import { describe, expect, it } from 'vitest';
import type { BatchReport } from '../../activities/scoring.ts';
import { recordBatch } from '../../observability/batch-metrics.ts';
import { framesScored, predictionConfidence, predictionsTotal } from '../../observability/metrics.ts';

const report = (modelVersion: string, streamId = 'series'): BatchReport => ({
  streamId,
  modelVersion,
  policyVersion: 1,
  framesScored: 1,
  predictions: 2,
  tasksRouted: 0,
  timings: {},
  frames: [
    {
      detections: [
        { className: 'car', score: 0.4 },
        { className: 'sign', score: 0.7 },
      ],
    },
  ] as unknown as BatchReport['frames'],
  tasks: [],
  failures: [],
});

async function versionsIn(): Promise<Record<string, string[]>> {
  const of = async (metric: { get(): Promise<{ values: { labels: Record<string, string | number | undefined> }[] }> }) =>
    [...new Set((await metric.get()).values.map((v) => String(v.labels.model_version)).filter((v) => v.startsWith('mv-')))].sort();
  return { scored: await of(framesScored), predictions: await of(predictionsTotal), confidence: await of(predictionConfidence) };
}

describe('series per model version', () => {
  it('keeps the three versions scored with most recently and removes the older ones', async () => {
    for (const v of ['mv-1', 'mv-2', 'mv-3']) recordBatch(report(v));
    const three = ['mv-1', 'mv-2', 'mv-3'];
    expect(await versionsIn()).toEqual({ scored: three, predictions: three, confidence: three });
    // A fourth version: the first goes, from every metric that names versions.
    recordBatch(report('mv-4', 'other-stream'));
    const after = ['mv-2', 'mv-3', 'mv-4'];
    expect(await versionsIn()).toEqual({ scored: after, predictions: after, confidence: after });
    // Scoring with mv-2 again makes it recent: the next new version removes mv-3 instead.
    recordBatch(report('mv-2'));
    recordBatch(report('mv-5'));
    const last = ['mv-2', 'mv-4', 'mv-5'];
    expect(await versionsIn()).toEqual({ scored: last, predictions: last, confidence: last });
  });
});

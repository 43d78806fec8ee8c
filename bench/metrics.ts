// /metrics with 50 streams' worth of label sets: scrape time and size.
import { recordBatch } from '../observability/batch-metrics.ts';
import { registry } from '../observability/metrics.ts';
import { summarize, table } from './stats.ts';

export async function benchMetrics() {
  for (let s = 0; s < 50; s++) {
    recordBatch({
      framesScored: 16,
      predictions: 64,
      tasksRouted: 2,
      streamId: `stream-${s}`,
      modelVersion: 'v1',
      policyVersion: 1,
      timings: { read: 1, decode: 1, preprocess: 1, inference: 1, postprocess: 1, route: 1, persist: 1 },
      frames: Array.from({ length: 16 }, (_, i) => ({
        frameId: `f${i}`,
        cameraId: 'c',
        capturedAt: new Date(0),
        embedding: [],
        detections: ['vehicle', 'pedestrian', 'cyclist', 'sign'].map((className, r) => ({
          rank: r,
          className,
          score: 0.5,
          x1: 0,
          y1: 0,
          x2: 1,
          y2: 1,
          embedding: [],
        })),
      })),
      tasks: [
        { frameId: 'f0', reason: 'band', className: 'vehicle' },
        { frameId: 'f1', reason: 'random', className: null },
      ],
      failures: [],
    });
  }
  const times: number[] = [];
  let size = 0;
  for (let i = 0; i < 50; i++) {
    const t = performance.now();
    size = (await registry.metrics()).length;
    times.push(performance.now() - t);
  }
  const s = summarize(times.slice(5));
  table(
    '/metrics with 50 streams',
    ['measure', 'value'],
    [
      ['scrape p50 (ms)', s.p50],
      ['scrape p99 (ms)', s.p99],
      ['size (KiB)', size / 1024],
    ],
  );
}

// The Temporal SDK's own worker metrics (task slots, schedule-to-start latency, poll results),
// served by the SDK in Prometheus format on an internal port and appended to our /metrics, so
// one scrape per process shows both.
import { DefaultLogger, Runtime, type LogLevel } from '@temporalio/worker';
import { registry } from './metrics.ts';

let sdkMetricsUrl: string | null = null;

/** Installs the SDK runtime once per process, before any worker or native connection. */
export function installTemporalRuntime(opts: { sdkMetricsPort: number; logLevel: LogLevel }): void {
  Runtime.install({
    logger: new DefaultLogger(opts.logLevel),
    telemetryOptions: {
      metrics: { prometheus: { bindAddress: `127.0.0.1:${opts.sdkMetricsPort}`, useSecondsForDurations: true, countersTotalSuffix: true, unitSuffix: true } },
    },
  });
  sdkMetricsUrl = `http://127.0.0.1:${opts.sdkMetricsPort}/metrics`;
}

/** Our registry's text plus the SDK's, for one /metrics endpoint. */
export async function allMetricsText(): Promise<string> {
  const own = await registry.metrics();
  if (!sdkMetricsUrl) return own;
  try {
    const res = await fetch(sdkMetricsUrl, { signal: AbortSignal.timeout(2000) });
    return `${own}\n${await res.text()}`;
  } catch {
    return own; // the SDK exporter not answering must not break the scrape of our metrics
  }
}

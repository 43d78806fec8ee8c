// Grafana dashboards as code (@grafana/grafana-foundation-sdk). `npx tsx dashboards/build.ts`
// writes dashboards/grafana/*.json, which are committed; test/observability checks that every
// panel's query parses and returns data from a real Prometheus scraping the platform.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DashboardBuilder, RowBuilder } from '@grafana/grafana-foundation-sdk/dashboard';
import { DataqueryBuilder } from '@grafana/grafana-foundation-sdk/prometheus';
import { PanelBuilder as StatPanel } from '@grafana/grafana-foundation-sdk/stat';
import { PanelBuilder as TimeseriesPanel } from '@grafana/grafana-foundation-sdk/timeseries';

const here = path.dirname(fileURLToPath(import.meta.url));
const q = (expr: string, legend = '') => new DataqueryBuilder().expr(expr).legendFormat(legend);
const ts = (title: string, unit: string, ...targets: DataqueryBuilder[]) => {
  const p = new TimeseriesPanel().title(title).unit(unit).height(8).span(12);
  for (const t of targets) p.withTarget(t);
  return p;
};
const stat = (title: string, unit: string, target: DataqueryBuilder) => new StatPanel().title(title).unit(unit).height(4).span(6).withTarget(target);

function dashboard(uid: string, title: string) {
  return new DashboardBuilder(title).uid(uid).tags(['dataengine']).refresh('30s').time({ from: 'now-6h', to: 'now' }).timezone('browser');
}

export const dashboards = {
  'loop-overview': dashboard('dataengine-loop', 'dataengine / Loop overview')
    .withRow(new RowBuilder('Throughput'))
    .withPanel(stat('Frames scored / s', 'ops', q('sum(rate(dataengine_frames_scored_total[5m]))')))
    .withPanel(stat('Frames waiting', 'short', q('sum(dataengine_frames_waiting)')))
    .withPanel(stat('Frames ingested / s', 'ops', q('sum(rate(dataengine_frames_ingested_total[5m]))')))
    .withPanel(stat('Frames refused / s', 'ops', q('sum(rate(dataengine_frames_rejected_total[5m]))')))
    .withPanel(ts('Frames scored per stream', 'ops', q('sum by (stream) (rate(dataengine_frames_scored_total[5m]))', '{{stream}}')))
    .withPanel(ts('Ingested bytes per camera', 'Bps', q('sum by (stream, camera) (rate(dataengine_frame_bytes_ingested_total[5m]))', '{{stream}}/{{camera}}')))
    .withPanel(
      ts(
        'Frames set aside by the loop (per hour)',
        'short',
        q('sum by (stream, reason) (increase(dataengine_frames_quarantined_total[1h]))', '{{stream}} {{reason}}'),
      ),
    )
    .withRow(new RowBuilder('Where a batch spends its time'))
    .withPanel(ts('Batch stage p95', 's', q('histogram_quantile(0.95, sum by (le, stage) (rate(dataengine_batch_stage_seconds_bucket[5m])))', '{{stage}}')))
    .withPanel(ts('Frames per batch (mean)', 'short', q('sum(rate(dataengine_batch_frames_sum[5m])) / sum(rate(dataengine_batch_frames_count[5m]))', 'frames')))
    .withRow(new RowBuilder('Temporal workers'))
    .withPanel(
      ts(
        'Activity schedule-to-start p95',
        's',
        q('histogram_quantile(0.95, sum by (le, task_queue) (rate(temporal_activity_schedule_to_start_latency_seconds_bucket[5m])))', '{{task_queue}}'),
      ),
    )
    .withPanel(
      ts('Free activity slots', 'short', q('sum by (task_queue) (temporal_worker_task_slots_available{worker_type="ActivityWorker"})', '{{task_queue}}')),
    ),

  'review-operations': dashboard('dataengine-review', 'dataengine / Review operations')
    .withPanel(stat('Open tasks', 'short', q('sum(dataengine_queue_open_tasks)')))
    .withPanel(stat('Oldest open task', 's', q('max(dataengine_queue_oldest_task_age_seconds)')))
    .withPanel(stat('Decisions / min', 'short', q('sum(rate(dataengine_review_decisions_total[5m])) * 60')))
    .withPanel(stat('Box assist p99', 's', q('histogram_quantile(0.99, sum by (le) (rate(dataengine_box_assist_seconds_bucket[5m])))')))
    .withPanel(ts('Open tasks per stream and class', 'short', q('sum by (stream, class) (dataengine_queue_open_tasks)', '{{stream}} {{class}}')))
    .withPanel(ts('Tasks routed by reason', 'ops', q('sum by (reason) (rate(dataengine_tasks_routed_total[5m]))', '{{reason}}')))
    .withPanel(
      ts(
        'Claims, decisions and lease expiries',
        'ops',
        q('sum(rate(dataengine_review_claims_total[5m]))', 'claims'),
        q('sum by (decision) (rate(dataengine_review_decisions_total[5m]))', '{{decision}}'),
        q('sum(rate(dataengine_review_lease_expiries_total[5m]))', 'lease expiries'),
      ),
    )
    .withPanel(
      ts(
        'Box assist latency',
        's',
        q('histogram_quantile(0.5, sum by (le) (rate(dataengine_box_assist_seconds_bucket[5m])))', 'p50'),
        q('histogram_quantile(0.99, sum by (le) (rate(dataengine_box_assist_seconds_bucket[5m])))', 'p99'),
      ),
    )
    .withPanel(stat('Reviewers paused', 'short', q('sum(dataengine_reviewer_paused)')))
    .withPanel(ts('Reviewer accuracy on gold tasks', 'percentunit', q('max by (reviewer) (dataengine_reviewer_gold_accuracy)', '{{reviewer}}')))
    .withPanel(
      ts(
        'Bytes decoded per box assist (mean)',
        'bytes',
        q('sum(rate(dataengine_box_assist_decoded_bytes_sum[5m])) / sum(rate(dataengine_box_assist_decoded_bytes_count[5m]))', 'bytes'),
      ),
    ),

  'model-quality-drift': dashboard('dataengine-quality', 'dataengine / Model quality and drift')
    .withPanel(stat('Detector in production', 'short', q('max by (version) (dataengine_model_production_info{kind="detection"})', '{{version}}')))
    .withPanel(stat('Last eval mAP@0.5 (candidate)', 'percentunit', q('max(dataengine_model_eval_map50{kind="detection",role="candidate"})')))
    .withPanel(
      ts(
        'Confidence p50 by class',
        'percentunit',
        q('histogram_quantile(0.5, sum by (le, class) (rate(dataengine_prediction_confidence_bucket[15m])))', '{{class}}'),
      ),
    )
    .withPanel(
      ts(
        'Detections per frame (mean)',
        'short',
        q(
          'sum by (stream) (rate(dataengine_detections_per_frame_sum[15m])) / sum by (stream) (rate(dataengine_detections_per_frame_count[15m]))',
          '{{stream}}',
        ),
      ),
    )
    .withPanel(ts('Predictions by class', 'ops', q('sum by (class) (rate(dataengine_predictions_total[5m]))', '{{class}}')))
    .withPanel(ts('Drift: largest KS statistic per segment', 'short', q('max by (segment) (dataengine_drift_statistic)', '{{segment}}')))
    .withPanel(ts('Drift: smallest corrected p-value per segment', 'short', q('min by (segment) (dataengine_drift_min_adjusted_p)', '{{segment}}')))
    .withPanel(
      ts('Drift decisions', 'short', q('sum by (segment_type, decision) (increase(dataengine_drift_checks_total[1h]))', '{{segment_type}} {{decision}}')),
    ),

  retraining: dashboard('dataengine-retraining', 'dataengine / Retraining')
    .withPanel(stat('Runs deployed (7d)', 'short', q('sum(increase(dataengine_retrain_runs_total{outcome="deployed"}[7d]))')))
    .withPanel(stat('Runs refused by the gate (7d)', 'short', q('sum(increase(dataengine_retrain_runs_total{outcome="refused"}[7d]))')))
    .withPanel(ts('Run outcomes', 'short', q('sum by (outcome) (increase(dataengine_retrain_runs_total[1d]))', '{{outcome}}')))
    .withPanel(ts('Step duration p95', 's', q('histogram_quantile(0.95, sum by (le, step) (rate(dataengine_retrain_step_seconds_bucket[1d])))', '{{step}}')))
    .withPanel(ts('Evaluation mAP@0.5: candidate vs production', 'percentunit', q('max by (role) (dataengine_model_eval_map50{kind="detection"})', '{{role}}')))
    .withPanel(ts('Model versions in production', 'short', q('max by (kind, version) (dataengine_model_production_info)', '{{kind}} {{version}}'))),
};

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const [name, builder] of Object.entries(dashboards)) {
    fs.writeFileSync(path.join(here, 'grafana', `${name}.json`), `${JSON.stringify(builder.build(), null, 2)}\n`);
  }
  console.log(`wrote ${Object.keys(dashboards).length} dashboards to dashboards/grafana/`);
}

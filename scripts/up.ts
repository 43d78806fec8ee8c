// `make up`: the whole data engine on one laptop. Starts (or connects to) Temporal, opens the
// database (PGlite unless DATABASE_URL is set), bootstraps the demo (users, seed models, a demo
// stream, and a generated dashcam video sent to a stream of its own), then runs the TypeScript workers, the API, the Python training worker and a
// synthetic camera. Ctrl-C stops everything in reverse order; everything durable lives in
// data/, so the next `make up` resumes where this one stopped.
import fs from 'node:fs';
import path from 'node:path';
import { config, repoRoot } from '../config.ts';
import { logger } from '../observability/logger.ts';
import { bootstrapDemo } from './bootstrap.ts';
import { ingestDemoVideo } from './demo-video.ts';
import { stopSupervising, superviseChild, type Child } from './processes.ts';
import { startTemporalDevServer } from './temporal-dev.ts';
import { requireTool, trainerPython } from './tools.ts';
import { startEngine } from '../workers/engine.ts';

const DEMO_STREAM = 'demo';
const VIDEO_STREAM = 'dashcam';

const onPath = (bin: string) => (process.env.PATH ?? '').split(path.delimiter).some((d) => fs.existsSync(path.join(d, bin)));
const dataDir = path.join(repoRoot, 'data');

async function main() {
  fs.mkdirSync(dataDir, { recursive: true });
  const stops: { name: string; stop: () => Promise<unknown> }[] = [];
  let stopping = false;
  const stopAll = async (code: number) => {
    if (stopping) return;
    stopping = true;
    stopSupervising();
    console.log('\nstopping...');
    for (const s of stops.reverse()) {
      try {
        await s.stop();
      } catch (err) {
        console.error(`stopping ${s.name} failed:`, err);
      }
    }
    process.exit(code);
  };
  process.on('SIGINT', () => void stopAll(0));
  process.on('SIGTERM', () => void stopAll(0));

  // 1. Temporal: the user's cluster, or a dev server whose history survives restarts.
  let temporalAddress = process.env.TEMPORAL_ADDRESS;
  let temporalUi = config.TEMPORAL_UI_URL;
  if (!temporalAddress) {
    const server = await startTemporalDevServer({ dbFile: path.join(dataDir, 'temporal', 'temporal.db'), port: 7233, uiPort: 8233 });
    stops.push({ name: 'temporal', stop: () => server.stop() });
    temporalAddress = '127.0.0.1:7233';
    temporalUi = 'http://127.0.0.1:8233';
  }

  const engine = await startEngine({ temporalAddress, worker: true, api: true });
  stops.push({ name: 'engine', stop: () => engine.stop() });

  const demo = await bootstrapDemo(engine, { streamId: DEMO_STREAM, tokensFile: path.join(dataDir, 'tokens.json') });
  const demoVideo = await ingestDemoVideo(engine, { streamId: VIDEO_STREAM, file: path.join(dataDir, 'demo-video.mp4') });

  // 2. The Python training worker on queue `training`, and a synthetic camera posting frames.
  //    Four cameras, the ones the seed model was trained on: its drift reference mixes them, and
  //    a stream of fewer cameras is a different distribution, which the drift monitor flags.
  const childEnv = { TEMPORAL_ADDRESS: temporalAddress, TEMPORAL_NAMESPACE: config.TEMPORAL_NAMESPACE, STORE_DIR: config.STORE_DIR };
  const python = requireTool(trainerPython);
  const trainer = superviseChild('trainer', python, ['-m', 'dataengine_trainer', 'worker'], { env: childEnv });
  stops.push({ name: 'trainer', stop: () => trainer.stop() });
  const camera: Child = superviseChild(
    'camera',
    python,
    [
      '-m',
      'dataengine_trainer',
      'camera',
      '--api',
      engine.apiUrl!,
      '--stream',
      DEMO_STREAM,
      '--cameras',
      '4',
      '--fps',
      '1',
      '--start-index',
      String(demo.framesPerCamera),
    ],
    { env: { ...childEnv, DATAENGINE_TOKEN: demo.tokens.camera }, quiet: true },
  );
  stops.push({ name: 'camera', stop: () => camera.stop() });

  // 3. Prometheus with the project's scrape config and alert rules, when it is installed.
  let prometheusUrl = 'not installed (apt-get install prometheus)';
  if (onPath('prometheus')) {
    // The config and rules are copied beside the lead token the reviewer-metrics job reads
    // (credentials_file is relative to the config), so no token is written into the project.
    const promConfig = path.join(dataDir, 'prometheus-config');
    fs.cpSync(path.join(repoRoot, 'dashboards', 'prometheus'), promConfig, { recursive: true });
    fs.writeFileSync(path.join(promConfig, 'reviewer-metrics.token'), demo.tokens.lead, { mode: 0o600 });
    const prom = superviseChild(
      'prometheus',
      'prometheus',
      [
        `--config.file=${path.join(promConfig, 'prometheus.yml')}`,
        `--storage.tsdb.path=${path.join(dataDir, 'prometheus')}`,
        '--web.listen-address=127.0.0.1:9090',
        '--log.level=error',
      ],
      { quiet: true },
    );
    stops.push({ name: 'prometheus', stop: () => prom.stop() });
    prometheusUrl = 'http://127.0.0.1:9090 (dashboards to import: dashboards/grafana/*.json)';
  }

  console.log(`
data engine is up
  review app     ${engine.apiUrl}/            (reviewer token: ${demo.tokens.reviewer})
  lead pages     ${engine.apiUrl}/app/lead    (lead token: ${demo.tokens.lead})
  API + OpenAPI  ${engine.apiUrl}/v1/openapi.json (interactive docs: ${engine.apiUrl}/app/api)
  metrics        ${engine.apiUrl}/metrics (API and workers: one process)
  Temporal UI    ${temporalUi}/namespaces/${config.TEMPORAL_NAMESPACE}/workflows
  video ingest   ${temporalUi}/namespaces/${config.TEMPORAL_NAMESPACE}/workflows/video-${demoVideo.video.id} (data/demo-video.mp4 into stream ${VIDEO_STREAM}${demoVideo.created ? '' : ', sent before'}; your own: npm run dataengine -- ingest-video FILE --stream ${VIDEO_STREAM})
  Prometheus     ${prometheusUrl}
  tokens         ${path.relative(process.cwd(), path.join(dataDir, 'tokens.json'))}
Ctrl-C stops everything; \`make up\` again resumes.
`);
}

main().catch((err) => {
  logger.error({ err }, 'make up failed');
  process.exit(1);
});

// `npm run api`: the HTTP API process. Run several behind a load balancer against Postgres.
import { logger } from '../observability/logger.ts';
import { startEngine } from '../workers/engine.ts';

const engine = await startEngine({ worker: false, api: true });
logger.info({ url: engine.apiUrl }, 'api listening');
const shutdown = async () => {
  await engine.stop();
  process.exit(0);
};
process.once('SIGINT', shutdown);
process.once('SIGTERM', shutdown);

// `npm run worker`: a TypeScript Temporal worker process (scoring and control queues).
// Run several against Postgres and a Temporal cluster to scale out.
import { logger } from './observability/logger.ts';
import { startEngine } from './workers/engine.ts';

const engine = await startEngine({ worker: true, api: false });
logger.info('worker running');
const shutdown = async () => {
  logger.info('worker stopping');
  await engine.stop();
  process.exit(0);
};
process.once('SIGINT', shutdown);
process.once('SIGTERM', shutdown);

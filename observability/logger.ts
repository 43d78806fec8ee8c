// Structured JSON logs. Context (stream, workflow, activity ids) goes in child loggers; image
// bytes and tokens never go into a log line (the redact paths are a second guard).
import pino from 'pino';
import { config } from '../config.ts';

export const logger = pino({
  level: config.LOG_LEVEL,
  base: { service: 'dataengine' },
  redact: { paths: ['token', 'authorization', '*.authorization', 'headers.authorization', 'bytes', 'image'], censor: '[redacted]' },
});

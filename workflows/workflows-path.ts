import { fileURLToPath } from 'node:url';

/** Root of the workflow bundle, for Worker.create and bundleWorkflowCode. */
export const workflowsPath = fileURLToPath(new URL('./index.ts', import.meta.url));

const noop = () => undefined;
/** For bundleWorkflowCode: webpack's progress stays quiet, its warnings and errors do not. */
export const quietBundlerLogger = { trace: noop, debug: noop, info: noop, warn: console.warn, error: console.error, log: noop };

import { fileURLToPath } from 'node:url';

/** Root of the workflow bundle, for Worker.create and bundleWorkflowCode. */
export const workflowsPath = fileURLToPath(new URL('./index.ts', import.meta.url));

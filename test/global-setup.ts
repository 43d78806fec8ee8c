// One Temporal server and one workflow bundle for the whole run (TEMPORAL.md section 7):
// parallel createLocal() calls per file race, and bundling takes seconds.
// With TEMPORAL_ADDRESS set, the suite uses that cluster instead of starting a dev server.
import type {} from 'vitest';
import type { TestProject } from 'vitest/node';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode } from '@temporalio/worker';
import { searchAttributes } from '../workflows/shared.ts';
import { requireTool, temporalCli } from '../scripts/tools.ts';
import { workflowsPath } from '../workflows/workflows-path.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    workflowBundleCode: string;
  }
}

let env: TestWorkflowEnvironment | undefined;

export async function setup(project: TestProject) {
  let address = process.env.TEMPORAL_ADDRESS;
  if (!address) {
    env = await TestWorkflowEnvironment.createLocal({
      server: {
        executable: { type: 'existing-path', path: requireTool(temporalCli) },
        searchAttributes,
        // Continue-as-new is suggested far earlier than in production, so tests see it happen.
        extraArgs: ['--dynamic-config-value', 'limit.historyCount.suggestContinueAsNew=400', '--log-level', 'error'],
      },
    });
    address = env.address;
  }
  const { code } = await bundleWorkflowCode({ workflowsPath, logger: quietLogger });
  project.provide('temporalAddress', address);
  project.provide('workflowBundleCode', code);
}

export async function teardown() {
  await env?.teardown();
}

const noop = () => undefined;
const quietLogger = { trace: noop, debug: noop, info: noop, warn: console.warn, error: console.error, log: noop };

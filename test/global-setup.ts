// One Temporal server and one workflow bundle for the whole run (docs/architecture.md, "Testing"):
// parallel createLocal() calls per file race, and bundling takes seconds.
// With TEMPORAL_ADDRESS set, the suite uses that cluster instead of starting a dev server.
import type {} from 'vitest';
import type { TestProject } from 'vitest/node';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode } from '@temporalio/worker';
import { searchAttributes } from '../workflows/shared.ts';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { requireTool, temporalCli, trainerPython } from '../scripts/tools.ts';
import { quietBundlerLogger, workflowsPath } from '../workflows/workflows-path.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    workflowBundleCode: string;
    /** detection.onnx and box.onnx trained for seconds by the trainer: tests never use the seed models. */
    tinyModelsDir: string;
    /** Generated scene frames (PNG) plus their COCO JSON, for tests that need real images. */
    sampleFramesDir: string;
  }
}

let env: TestWorkflowEnvironment | undefined;
let scratch: string | undefined;

/** Runs the trainer CLI, once per test run, for fixtures made the same way users make them. */
async function trainer(...args: string[]): Promise<void> {
  await promisify(execFile)(requireTool(trainerPython), ['-m', 'dataengine_trainer', ...args], { maxBuffer: 16 * 1024 * 1024 });
}

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
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'dataengine-test-'));
  const tinyModelsDir = path.join(scratch, 'models');
  const sampleFramesDir = path.join(scratch, 'frames');
  const [{ code }] = await Promise.all([
    bundleWorkflowCode({ workflowsPath, logger: quietBundlerLogger }),
    trainer('tiny-models', '--out', tinyModelsDir),
    trainer('generate', '--out', sampleFramesDir, '--count', '24', '--cameras', '2', '--seed', '7'),
  ]);
  project.provide('temporalAddress', address);
  project.provide('workflowBundleCode', code);
  project.provide('tinyModelsDir', tinyModelsDir);
  project.provide('sampleFramesDir', sampleFramesDir);
}

export async function teardown() {
  await env?.teardown();
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
}

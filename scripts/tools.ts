// Paths of the project-local tools the Makefile installs (git-ignored `.tools/`).
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../config.ts';

export const toolsDir = path.join(repoRoot, '.tools');
export const temporalCli = path.join(toolsDir, 'venv', 'bin', 'temporal');
export const temporalTestServer = path.join(toolsDir, 'venv', 'bin', 'temporal-test-server');
export const trainerPython = path.join(repoRoot, 'trainer', '.venv', 'bin', 'python');

export function requireTool(file: string, hint = 'run `make install`'): string {
  if (!fs.existsSync(file)) throw new Error(`Missing ${path.relative(repoRoot, file)}: ${hint}`);
  return file;
}

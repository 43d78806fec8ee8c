// `npm run dataengine -- <command> [...]`: the trainer's command line (generate, train-detector,
// train-box, evaluate, seed-models, shift-benchmark, camera, worker, ...), run with the
// trainer's virtual environment so users need not know where it lives.
import { spawn } from 'node:child_process';
import { requireTool, trainerPython } from './tools.ts';

const args = process.argv.slice(2);
const child = spawn(requireTool(trainerPython), ['-m', 'dataengine_trainer', ...(args.length ? args : ['--help'])], { stdio: 'inherit' });
child.on('exit', (code, signal) => process.exit(signal ? 1 : (code ?? 1)));
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => child.kill(sig));

// `npm run dataengine -- <command> [...]`: `ingest-video` sends a video to the running API with a
// progress bar (scripts/ingest-video.ts), `import-coco` imports a COCO dataset into a stream
// (scripts/import-coco.ts); every other command is the trainer's command line
// (generate, train-detector, train-box, evaluate, seed-models, shift-benchmark, camera, worker,
// ...), run with the trainer's virtual environment so users need not know where it lives.
import { spawn } from 'node:child_process';
import { importCocoCommand } from './import-coco.ts';
import { ingestVideoCommand } from './ingest-video.ts';
import { requireTool, trainerPython } from './tools.ts';

const args = process.argv.slice(2);
if (args[0] === 'ingest-video') {
  process.exit(await ingestVideoCommand(args.slice(1)));
} else if (args[0] === 'import-coco') {
  process.exit(await importCocoCommand(args.slice(1)));
} else {
  const child = spawn(requireTool(trainerPython), ['-m', 'dataengine_trainer', ...(args.length ? args : ['--help'])], { stdio: 'inherit' });
  child.on('exit', (code, signal) => process.exit(signal ? 1 : (code ?? 1)));
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => child.kill(sig));
}

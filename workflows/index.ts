// Every workflow the TypeScript worker hosts. This file is the root of the workflow bundle,
// so it may import only deterministic code (no Node built-ins, no I/O).
export { streamLoop } from './stream-loop.ts';
export * from './drift-monitor.ts';
export * from './retrain.ts';
export { videoIngest } from './video-ingest.ts';

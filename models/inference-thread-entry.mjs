// The file piscina starts in an inference thread. Threads do not inherit the TypeScript loader a
// test runner installs, so the worker module is loaded through tsx's API, as `npm run` loads
// every entry point of the project (there is no build step).
import { tsImport } from 'tsx/esm/api';

const worker = await tsImport('./inference-thread-worker.ts', import.meta.url);

export default worker.default;

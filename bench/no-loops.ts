// Loop control for benchmarks of the API alone: no Temporal, every call a no-op.
import type { LoopControl } from '../control/loop-control.ts';

export const noLoops: LoopControl = {
  ensureLoop: async () => undefined,
  pause: async () => undefined,
  resume: async () => undefined,
  wake: async () => undefined,
  setPolicy: async () => undefined,
  deployModel: async () => ({ modelVersion: null, deploymentId: null }),
  status: async () => null,
  runningStreams: async () => [],
  describe: async () => null,
  ensureDriftMonitor: async () => undefined,
  checkDriftNow: async () => undefined,
};

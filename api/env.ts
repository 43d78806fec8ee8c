// What every route module receives: the process's shared dependencies, and the Hono context
// variables the auth middleware sets.
import type { Client } from '@temporalio/client';
import type { Config } from '../config.ts';
import type { LoopControl } from '../control/loop-control.ts';
import type { Db } from '../db/client.ts';
import type { User } from '../db/users.ts';
import type { ModelCache } from '../models/model-cache.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import type { VectorIndex } from '../storage/vector-index.ts';

export interface ApiDeps {
  db: Db;
  store: BlobStore;
  config: Config;
  loopControl: LoopControl;
  models: ModelCache;
  vectorIndex: VectorIndex;
  temporal?: Client;
  /** The queue video ingest workflows go to (tests isolate theirs); default `ingest`. */
  ingestQueue?: string;
  /** Set by the app: drops this process's token cache after a token or user change. */
  forgetTokens?: () => void;
}

export interface AppEnv {
  Variables: { user: User };
}

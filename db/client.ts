// One drizzle database over either an embedded PGlite (the default, no server needed) or a
// Postgres server (when DATABASE_URL is set). The rest of the code sees only `Db`.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { migrate as migratePg } from 'drizzle-orm/node-postgres/migrator';
import pg from 'pg';
import lockfile from 'proper-lockfile';
import { logger } from '../observability/logger.ts';
import * as schema from './schema.ts';

type Schema = typeof schema;
export type Db = PgDatabase<PgQueryResultHKT, Schema>;
/** What a function inside `db.transaction(async (tx) => ...)` receives. */
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];
export type DbOrTx = Db | Tx;

export interface DbHandle {
  db: Db;
  kind: 'pglite' | 'postgres';
  close(): Promise<void>;
}

const migrationsFolder = path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations');

// Any constant works; it only has to be the same in every process that migrates.
const MIGRATION_LOCK_KEY = 7_204_511;

export interface OpenDbOptions {
  /** Postgres connection string; without it an embedded PGlite is used. */
  databaseUrl?: string;
  /** Data folder of the embedded PGlite; omit for an in-memory database (tests). */
  pgliteDir?: string;
  /** Apply pending migrations before returning (default true). */
  migrate?: boolean;
  poolSize?: number;
}

export async function openDb(opts: OpenDbOptions): Promise<DbHandle> {
  if (opts.databaseUrl) {
    const pool = new pg.Pool({ connectionString: opts.databaseUrl, max: opts.poolSize ?? 10 });
    // An idle connection that the server drops (a restart, a failover) emits 'error' on the pool;
    // without a listener Node treats it as uncaught and the process dies. The pool discards the
    // broken connection by itself and opens a new one for the next query.
    pool.on('error', (err) => logger.warn({ err: err.message }, 'a Postgres connection was lost; the pool will reconnect'));
    if (opts.migrate ?? true) await migratePostgres(pool);
    const db = drizzlePg({ client: pool, schema }) as unknown as Db;
    return { db, kind: 'postgres', close: () => pool.end() };
  }
  const handle = await openPglite(opts.pgliteDir);
  if (opts.migrate ?? true) await migratePglite(handle.db as never, { migrationsFolder });
  return handle;
}

class DatabaseInUseError extends Error {
  constructor(dir: string) {
    super(
      `the embedded database in ${dir} is open in another process (PGlite is one in-process database; two processes on one folder would corrupt it). ` +
        'Stop the other process (a running `make up`?), or set DATABASE_URL to a Postgres server to run several processes.',
    );
    this.name = 'DatabaseInUseError';
  }
}

async function openPglite(dir: string | undefined): Promise<DbHandle> {
  let unlock = async () => {};
  if (dir) {
    fs.mkdirSync(dir, { recursive: true });
    try {
      // A lock the holder refreshes every 5 s: a process that died without releasing it frees
      // the folder after 15 s, so a crash never needs a hand-deleted lock file.
      unlock = await lockfile.lock(dir, { lockfilePath: path.join(dir, '.dataengine.lock'), stale: 15_000, update: 5_000, retries: 0 });
    } catch (err) {
      if ((err as { code?: string }).code === 'ELOCKED') throw new DatabaseInUseError(dir);
      throw err;
    }
  }
  try {
    const client = await PGlite.create({ dataDir: dir, extensions: { vector } });
    const db = drizzlePglite({ client, schema }) as unknown as Db;
    return {
      db,
      kind: 'pglite',
      close: async () => {
        await client.close();
        await unlock();
      },
    };
  } catch (err) {
    await unlock();
    throw err;
  }
}

/**
 * Migrations apply once: drizzle records applied files in `drizzle.__drizzle_migrations`; on
 * Postgres several processes may start together, so an advisory lock makes the second wait and
 * then find nothing left to apply.
 */
async function migratePostgres(pool: pg.Pool): Promise<void> {
  // The advisory lock is held by one session, so lock, migrate and unlock share one connection.
  const conn = await pool.connect();
  try {
    await conn.query(`select pg_advisory_lock(${MIGRATION_LOCK_KEY})`);
    try {
      await migratePg(drizzlePg({ client: conn, schema }) as never, { migrationsFolder });
    } finally {
      await conn.query(`select pg_advisory_unlock(${MIGRATION_LOCK_KEY})`);
    }
  } finally {
    conn.release();
  }
}

/** One round trip: the health check's proof that the database answers. */
export async function ping(db: Db): Promise<void> {
  await db.execute('select 1');
}

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
import * as schema from './schema.ts';

export type Schema = typeof schema;
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
    if (opts.migrate ?? true) await migratePostgres(pool);
    const db = drizzlePg({ client: pool, schema }) as unknown as Db;
    return { db, kind: 'postgres', close: () => pool.end() };
  }
  const handle = await openPglite(opts.pgliteDir);
  if (opts.migrate ?? true) await migratePglite(handle.db as never, { migrationsFolder });
  return handle;
}

async function openPglite(dir: string | undefined): Promise<DbHandle> {
  if (dir) fs.mkdirSync(dir, { recursive: true });
  const client = await PGlite.create({ dataDir: dir, extensions: { vector } });
  const db = drizzlePglite({ client, schema }) as unknown as Db;
  return { db, kind: 'pglite', close: () => client.close() };
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

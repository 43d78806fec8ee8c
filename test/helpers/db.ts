// A fresh, migrated database per caller: in-memory PGlite by default, or a new database on the
// server named by DATABASE_URL (CI runs the suite both ways), dropped again on close.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openDb, type DbHandle } from '../../db/client.ts';

/** A test database; `url` names it for other processes (null for in-memory PGlite). */
export type TestDb = DbHandle & { url: string | null };

export async function createTestDb(serverUrl = process.env.DATABASE_URL): Promise<TestDb> {
  const url = serverUrl;
  if (!url) return { ...(await openDb({})), url: null };
  const name = `test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const dbUrl = new URL(url);
  dbUrl.pathname = `/${name}`;
  const handle = await openDb({ databaseUrl: dbUrl.toString() });
  return {
    ...handle,
    url: dbUrl.toString(),
    async close() {
      await handle.close();
      const cleanup = new pg.Client({ connectionString: url });
      await cleanup.connect();
      await cleanup.query(`drop database if exists ${name} with (force)`);
      await cleanup.end();
    },
  };
}

/** A frame row to insert (the bytes need not exist): frame `i` of a stream, one second apart. */
export function testFrame(streamId: string, i: number, cameraId = 'c') {
  return {
    streamId,
    cameraId,
    capturedAt: new Date(Date.UTC(2026, 0, 1, 0, 0, i)),
    contentHash: `${streamId}-hash-${i}`,
    storageKey: `frames/${streamId}-${i}.png`,
    mediaType: 'image/png',
    sizeBytes: 1,
    width: 320,
    height: 240,
  };
}

// Users and their bearer tokens. A token is 32 random bytes shown once at creation; only its
// sha256 is stored, so a leaked database does not leak working tokens. A token can expire, be
// revoked or rotated, and a user can be disabled; a camera's token is bound to its streams.
import { randomBytes } from 'node:crypto';
import { asc, eq } from 'drizzle-orm';
import { sha256Hex } from '../storage/blob-store.ts';
import type { DbOrTx } from './client.ts';
import { users } from './schema.ts';

export type Role = (typeof users.$inferSelect)['role'];
export const ROLES: readonly Role[] = ['reviewer', 'lead', 'admin', 'camera'];

/** What a request knows about its caller. */
export interface User {
  id: string;
  name: string;
  role: Role;
  /** Camera tokens: the streams (and camera ids, when set) they may send frames to. */
  streams: string[] | null;
  cameraIds: string[] | null;
}

/** A user as admins see them: never the token or its hash. */
export interface UserView extends User {
  tokenExpiresAt: Date | null;
  disabledAt: Date | null;
  /** Paused from the review queue for low accuracy on gold tasks (db/gold.ts), and why. */
  queuePausedAt: Date | null;
  queuePausedReason: string | null;
  createdAt: Date;
}

const hashToken = (token: string) => sha256Hex(Buffer.from(token, 'utf8'));
const newToken = () => randomBytes(32).toString('base64url');

const userColumns = { id: users.id, name: users.name, role: users.role, streams: users.streams, cameraIds: users.cameraIds };
const viewColumns = {
  ...userColumns,
  tokenExpiresAt: users.tokenExpiresAt,
  disabledAt: users.disabledAt,
  queuePausedAt: users.queuePausedAt,
  queuePausedReason: users.queuePausedReason,
  createdAt: users.createdAt,
};

export interface NewUser {
  name: string;
  role: Role;
  streams?: string[] | null;
  cameraIds?: string[] | null;
  tokenExpiresAt?: Date | null;
}

export async function createUser(db: DbOrTx, input: NewUser): Promise<{ user: UserView; token: string }> {
  const token = newToken();
  const [row] = await db
    .insert(users)
    .values({
      name: input.name,
      role: input.role,
      streams: input.streams ?? null,
      cameraIds: input.cameraIds ?? null,
      tokenExpiresAt: input.tokenExpiresAt ?? null,
      tokenHash: hashToken(token),
    })
    .returning(viewColumns);
  return { user: row, token };
}

/** Replaces a user's token (the old one stops working at once); the expiry is set anew. */
export async function rotateToken(db: DbOrTx, name: string, tokenExpiresAt: Date | null = null): Promise<string | null> {
  const token = newToken();
  const rows = await db
    .update(users)
    .set({ tokenHash: hashToken(token), tokenExpiresAt })
    .where(eq(users.name, name))
    .returning({ id: users.id });
  return rows.length ? token : null;
}

/**
 * Revokes a user's token without issuing a new one. The stored hash becomes the hash of a random
 * value nobody was ever given, so no token matches it (the column stays unique and not null).
 */
export async function revokeToken(db: DbOrTx, name: string): Promise<boolean> {
  const rows = await db
    .update(users)
    .set({ tokenHash: hashToken(`revoked:${newToken()}`) })
    .where(eq(users.name, name))
    .returning({ id: users.id });
  return rows.length > 0;
}

/** Sets the streams (and camera ids) a camera token may send to. */
export async function bindCamera(db: DbOrTx, name: string, scope: { streams: string[]; cameraIds: string[] | null }): Promise<boolean> {
  const rows = await db.update(users).set({ streams: scope.streams, cameraIds: scope.cameraIds }).where(eq(users.name, name)).returning({ id: users.id });
  return rows.length > 0;
}

export async function setDisabled(db: DbOrTx, name: string, disabled: boolean, now = new Date()): Promise<UserView | null> {
  const [row] = await db
    .update(users)
    .set({ disabledAt: disabled ? now : null })
    .where(eq(users.name, name))
    .returning(viewColumns);
  return row ?? null;
}

export type AuthOutcome = { user: User } | { refused: 'unknown' | 'expired' | 'disabled' };

export async function authenticate(db: DbOrTx, token: string, now = new Date()): Promise<AuthOutcome> {
  if (!token) return { refused: 'unknown' };
  const [row] = await db
    .select({ ...userColumns, tokenExpiresAt: users.tokenExpiresAt, disabledAt: users.disabledAt })
    .from(users)
    .where(eq(users.tokenHash, hashToken(token)));
  if (!row) return { refused: 'unknown' };
  if (row.disabledAt) return { refused: 'disabled' };
  if (row.tokenExpiresAt && row.tokenExpiresAt <= now) return { refused: 'expired' };
  return { user: { id: row.id, name: row.name, role: row.role, streams: row.streams, cameraIds: row.cameraIds } };
}

export async function findUser(db: DbOrTx, name: string): Promise<UserView | null> {
  const [row] = await db.select(viewColumns).from(users).where(eq(users.name, name));
  return row ?? null;
}

export async function listUsers(db: DbOrTx): Promise<UserView[]> {
  return db.select(viewColumns).from(users).orderBy(asc(users.name));
}

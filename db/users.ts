// Users and their bearer tokens. A token is 32 random bytes shown once at creation; only its
// sha256 is stored, so a leaked database does not leak working tokens.
import { randomBytes } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { sha256Hex } from '../storage/blob-store.ts';
import type { DbOrTx } from './client.ts';
import { users } from './schema.ts';

export type Role = (typeof users.$inferSelect)['role'];
export type User = Pick<typeof users.$inferSelect, 'id' | 'name' | 'role'>;
export const ROLES: readonly Role[] = ['reviewer', 'lead', 'admin', 'camera'];

const hashToken = (token: string) => sha256Hex(Buffer.from(token, 'utf8'));

export async function createUser(db: DbOrTx, input: { name: string; role: Role }): Promise<{ user: User; token: string }> {
  const token = randomBytes(32).toString('base64url');
  const [row] = await db
    .insert(users)
    .values({ name: input.name, role: input.role, tokenHash: hashToken(token) })
    .returning({ id: users.id, name: users.name, role: users.role });
  return { user: row, token };
}

/** Replaces a user's token (the old one stops working at once). */
export async function rotateToken(db: DbOrTx, name: string): Promise<string | null> {
  const token = randomBytes(32).toString('base64url');
  const rows = await db.update(users).set({ tokenHash: hashToken(token) }).where(eq(users.name, name)).returning({ id: users.id });
  return rows.length ? token : null;
}

export async function authenticate(db: DbOrTx, token: string): Promise<User | null> {
  if (!token) return null;
  const [row] = await db.select({ id: users.id, name: users.name, role: users.role }).from(users).where(eq(users.tokenHash, hashToken(token)));
  return row ?? null;
}

export async function findUser(db: DbOrTx, name: string): Promise<User | null> {
  const [row] = await db.select({ id: users.id, name: users.name, role: users.role }).from(users).where(eq(users.name, name));
  return row ?? null;
}

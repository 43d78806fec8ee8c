// The audit log of control actions: who did what to which target.
import type { DbOrTx } from './client.ts';
import { auditLog } from './schema.ts';

export async function audit(db: DbOrTx, actor: string, action: string, target: string, details: Record<string, unknown> = {}): Promise<void> {
  await db.insert(auditLog).values({ actor, action, target, details });
}

// Statements of the model registry: model rows, the production pointer, and deployments (every
// move of the pointer, whose ids loops use to keep the newest). The rules (validation,
// registration, what a rollback goes back to) are in models/registry.ts.
import { and, desc, eq, sql } from 'drizzle-orm';
import type { DbOrTx } from './client.ts';
import { deployments, models, type ModelPrecision, type ModelVariant } from './schema.ts';

export type ModelRow = typeof models.$inferSelect;
type Kind = ModelRow['kind'];

export async function getModel(db: DbOrTx, kind: Kind, version: string): Promise<ModelRow | undefined> {
  const [row] = await db
    .select()
    .from(models)
    .where(and(eq(models.kind, kind), eq(models.version, version)));
  return row;
}

export async function listModels(db: DbOrTx, kind?: Kind): Promise<ModelRow[]> {
  const q = db.select().from(models);
  return (kind ? q.where(eq(models.kind, kind)) : q).orderBy(desc(models.createdAt));
}

export async function productionModel(db: DbOrTx, kind: Kind): Promise<ModelRow | undefined> {
  const [row] = await db
    .select()
    .from(models)
    .where(and(eq(models.kind, kind), eq(models.status, 'production')));
  return row;
}

/** Inserts a model row; returns it, or null if that kind and version exist already. */
export async function insertModel(db: DbOrTx, row: typeof models.$inferInsert): Promise<ModelRow | null> {
  const [inserted] = await db.insert(models).values(row).onConflictDoNothing().returning();
  return inserted ?? null;
}

/** Adds a variant to a model row, unless the row has one of that precision already; returns the
 * row as it stands after the statement (null if the model is not registered). */
export async function addVariant(db: DbOrTx, id: string, precision: ModelPrecision, variant: ModelVariant): Promise<ModelRow | null> {
  await db
    .update(models)
    .set({ variants: sql`${models.variants} || jsonb_build_object(${precision}::text, ${JSON.stringify(variant)}::jsonb)` })
    .where(and(eq(models.id, id), sql`NOT ${models.variants} ? ${precision}`));
  const [row] = await db.select().from(models).where(eq(models.id, id));
  return row ?? null;
}

/** Retires the current production row (if any) and makes `targetId` production. */
export async function movePointer(db: DbOrTx, retireId: string | null, targetId: string): Promise<void> {
  if (retireId) await db.update(models).set({ status: 'retired' }).where(eq(models.id, retireId));
  await db.update(models).set({ status: 'production' }).where(eq(models.id, targetId));
}

export async function insertDeployment(db: DbOrTx, row: typeof deployments.$inferInsert): Promise<number> {
  const [inserted] = await db.insert(deployments).values(row).returning({ id: deployments.id });
  return inserted.id;
}

/** The newest deployment of a kind: what every loop of that kind must end up serving. */
export async function latestDeployment(db: DbOrTx, kind: Kind): Promise<{ id: number; version: string } | undefined> {
  const [row] = await db
    .select({ id: deployments.id, version: deployments.version })
    .from(deployments)
    .where(eq(deployments.kind, kind))
    .orderBy(desc(deployments.id))
    .limit(1);
  return row;
}

export async function getDeployment(db: DbOrTx, id: number) {
  const [row] = await db.select().from(deployments).where(eq(deployments.id, id));
  return row;
}

export async function deploymentHistory(db: DbOrTx, kind?: Kind) {
  const q = db.select().from(deployments);
  return (kind ? q.where(eq(deployments.kind, kind)) : q).orderBy(desc(deployments.id));
}

/** The version in production of each kind (for the gauges). */
export async function productionVersions(db: DbOrTx): Promise<{ kind: Kind; version: string }[]> {
  return db.select({ kind: models.kind, version: models.version }).from(models).where(eq(models.status, 'production'));
}

// Versioned sampling policies. Every change inserts a new version; running loops pick it up at
// their next batch boundary, and each routed task records the version that routed it.
import { and, desc, eq, sql } from 'drizzle-orm';
import { defaultSamplingPolicy, samplingPolicySchema, type SamplingPolicy } from '../policies/sampling-policy.ts';
import type { DbOrTx } from './client.ts';
import { samplingPolicies } from './schema.ts';

export interface StoredPolicy {
  streamId: string;
  version: number;
  policy: SamplingPolicy;
  createdBy: string;
  createdAt: Date;
}

/**
 * The policy of one version. Version 1 of a stream nobody has configured is the default policy,
 * so a new stream routes with the documented defaults without a row.
 */
export async function getPolicy(db: DbOrTx, streamId: string, version: number): Promise<SamplingPolicy> {
  const [row] = await db
    .select({ policy: samplingPolicies.policy })
    .from(samplingPolicies)
    .where(and(eq(samplingPolicies.streamId, streamId), eq(samplingPolicies.version, version)));
  return policyOrDefault(streamId, version, row?.policy);
}

/** A stored policy row's value (or none) as the policy of that version. */
export function policyOrDefault(streamId: string, version: number, stored: unknown): SamplingPolicy {
  if (stored === undefined || stored === null) {
    if (version === 1) return defaultSamplingPolicy;
    throw new Error(`Stream "${streamId}" has no sampling policy version ${version}`);
  }
  // Stored policies were validated on the way in; parsing again fills defaults added since.
  return samplingPolicySchema.parse(stored);
}

/** The newest stored version, or the implicit default (version 1) when none is stored. */
export async function currentPolicy(db: DbOrTx, streamId: string): Promise<StoredPolicy | null> {
  const [row] = await db.select().from(samplingPolicies).where(eq(samplingPolicies.streamId, streamId)).orderBy(desc(samplingPolicies.version)).limit(1);
  if (!row) return null;
  return { ...row, policy: samplingPolicySchema.parse(row.policy) };
}

export async function listPolicyVersions(db: DbOrTx, streamId: string): Promise<StoredPolicy[]> {
  const rows = await db.select().from(samplingPolicies).where(eq(samplingPolicies.streamId, streamId)).orderBy(desc(samplingPolicies.version));
  return rows.map((row) => ({ ...row, policy: samplingPolicySchema.parse(row.policy) }));
}

/**
 * Stores `policy` (already validated) as the stream's next version and returns it. The unique
 * (stream, version) index makes two concurrent writers collide instead of sharing a version.
 */
export async function savePolicy(db: DbOrTx, streamId: string, policy: SamplingPolicy, createdBy: string): Promise<StoredPolicy> {
  const [row] = await db
    .insert(samplingPolicies)
    .values({
      streamId,
      policy,
      createdBy,
      version: sql`(select coalesce(max(${samplingPolicies.version}), 0) + 1 from ${samplingPolicies} where ${samplingPolicies.streamId} = ${streamId})`,
    })
    .returning();
  return { ...row, policy };
}

// The stream loop's state and the rules its message handlers apply to it, as a small object
// the way Temporal's entity-workflow samples keep theirs: pure (no Temporal import), so the
// rules are unit-tested directly, and everything the loop must carry across continue-as-new is
// in `carry()`.
import type { DeployModelRequest, SetPolicyRequest, StreamLoopState, StreamStatus } from './shared.ts';

/** Update ids remembered for de-duplication (more than can be in flight across a continue-as-new). */
const MAX_SEEN_UPDATE_IDS = 64;

export interface BatchOutcome {
  /** Batches the call scored (absent from results of calls that scored one batch each). */
  batches?: number;
  framesScored: number;
  predictions: number;
  tasksRouted: number;
  policyVersion?: number;
  deployment?: { id: number; version: string };
}

function initialLoopState(): StreamLoopState {
  return {
    paused: false,
    modelVersion: null,
    deploymentId: null,
    policyVersion: null,
    totals: { batches: 0, framesScored: 0, predictions: 0, tasksRouted: 0 },
    runs: 1,
    lastBatchAt: null,
    seenUpdateIds: [],
  };
}

/** Validators run synchronously and must not change state; a throw rejects the update unrecorded. */
export function validatePolicyRequest(req: SetPolicyRequest): void {
  if (!Number.isInteger(req?.policyVersion) || req.policyVersion < 1) throw new Error('policyVersion must be a positive integer');
}

export function validateDeployRequest(req: DeployModelRequest): void {
  if (typeof req?.modelVersion !== 'string' || req.modelVersion.length === 0) throw new Error('modelVersion must be a non-empty string');
  if (!Number.isInteger(req.deploymentId) || req.deploymentId < 1) throw new Error('deploymentId must be a positive integer');
}

export class LoopState {
  constructor(private readonly s: StreamLoopState = initialLoopState()) {}

  get paused() {
    return this.s.paused;
  }
  get modelVersion() {
    return this.s.modelVersion;
  }
  get deploymentId() {
    return this.s.deploymentId;
  }
  get policyVersion() {
    return this.s.policyVersion;
  }
  get ready() {
    return !this.s.paused && this.s.modelVersion !== null;
  }

  name(): StreamStatus['state'] {
    return this.s.paused ? 'PAUSED' : this.s.modelVersion === null ? 'WAITING_FOR_MODEL' : 'RUNNING';
  }

  /**
   * Whether an update is new. Updates can be delivered again after continue-as-new
   * (temporalio/temporal#6375), so the ids applied are remembered and carried into the next run.
   */
  firstTime(updateId: string | undefined): boolean {
    if (!updateId) return true;
    if (this.s.seenUpdateIds.includes(updateId)) return false;
    this.s.seenUpdateIds = [...this.s.seenUpdateIds, updateId].slice(-MAX_SEEN_UPDATE_IDS);
    return true;
  }

  pause() {
    this.s.paused = true;
  }
  resume() {
    this.s.paused = false;
  }

  /** A policy update (taken at the next batch). */
  setPolicy(updateId: string | undefined, req: SetPolicyRequest): { policyVersion: number } {
    if (this.firstTime(updateId)) this.s.policyVersion = req.policyVersion;
    return { policyVersion: this.s.policyVersion ?? req.policyVersion };
  }

  /** A deploy or rollback, by update: the newest deployment wins (see adoptDeployment). */
  deploy(updateId: string | undefined, req: DeployModelRequest) {
    if (this.firstTime(updateId)) this.adoptDeployment(req.deploymentId, req.modelVersion);
    return { modelVersion: this.s.modelVersion, deploymentId: this.s.deploymentId };
  }

  /**
   * The newest deployment wins, whichever way it arrives (an update, or the batch reading the
   * registry): an older or repeated one changes nothing, and going back to a version served
   * before is a newer deployment, so it applies.
   */
  adoptDeployment(deploymentId: number, modelVersion: string) {
    if (deploymentId <= (this.s.deploymentId ?? 0)) return;
    this.s.deploymentId = deploymentId;
    this.s.modelVersion = modelVersion;
  }

  /** The loop's first run: what the registry says, unless the state carried it already. */
  resolve(resolved: { modelVersion: string | null; deployment: { id: number; version: string } | null; policyVersion: number }) {
    if (resolved.deployment) this.adoptDeployment(resolved.deployment.id, resolved.deployment.version);
    else this.s.modelVersion ??= resolved.modelVersion;
    this.s.policyVersion ??= resolved.policyVersion;
  }

  /** A finished batch: what the database said is newest applies from the next batch. */
  recordBatch(result: BatchOutcome, at: Date) {
    if (result.policyVersion !== undefined && result.policyVersion > (this.s.policyVersion ?? 0)) this.s.policyVersion = result.policyVersion;
    if (result.deployment) this.adoptDeployment(result.deployment.id, result.deployment.version);
    if (result.framesScored > 0) {
      this.s.totals.batches += result.batches ?? 1;
      this.s.totals.framesScored += result.framesScored;
      this.s.totals.predictions += result.predictions;
      this.s.totals.tasksRouted += result.tasksRouted;
      this.s.lastBatchAt = at.toISOString();
    }
  }

  status(streamId: string, extra: { batchInFlight: boolean; historyLength: number }): StreamStatus {
    return { ...this.s, streamId, state: this.name(), ...extra };
  }

  /** The markdown the Web UI shows as the loop's current details. */
  details(streamId: string): string {
    const s = this.s;
    return [
      `**Stream** \`${streamId}\` — **${this.name()}**`,
      `| model | policy | batches | frames scored | predictions | tasks routed | last batch |`,
      `|---|---|---|---|---|---|---|`,
      `| ${s.modelVersion ?? '—'} | v${s.policyVersion ?? '—'} | ${s.totals.batches} | ${s.totals.framesScored} | ${s.totals.predictions} | ${s.totals.tasksRouted} | ${s.lastBatchAt ?? '—'} |`,
      `Run ${s.runs} of this loop (continues-as-new to keep history short).`,
    ].join('\n');
  }

  /** The state the next run starts from. */
  carry(): StreamLoopState {
    return { ...this.s, runs: this.s.runs + 1 };
  }
}

// The stream loop's rules, unit-tested on its state object (no Temporal): update de-duplication
// across continue-as-new, the newest deployment winning whichever way it arrives, and what the
// validators refuse.
import { describe, expect, it } from 'vitest';
import { LoopState, validateDeployRequest, validatePolicyRequest } from '../../workflows/loop-state.ts';

describe('the loop state', () => {
  it('applies an update id once, also after continue-as-new, and forgets only the oldest ids', () => {
    const loop = new LoopState();
    expect(loop.setPolicy('p2', { policyVersion: 2 })).toEqual({ policyVersion: 2 });
    // The same update delivered again (as the server may after continue-as-new) changes nothing,
    // even if a newer policy was set in between.
    expect(loop.setPolicy('p3', { policyVersion: 3 })).toEqual({ policyVersion: 3 });
    expect(loop.setPolicy('p2', { policyVersion: 2 })).toEqual({ policyVersion: 3 });
    const next = new LoopState(loop.carry());
    expect(next.setPolicy('p2', { policyVersion: 2 })).toEqual({ policyVersion: 3 });
    expect(next.status('s', { batchInFlight: false, historyLength: 0 }).runs).toBe(2);
    // The memory is bounded: after 64 newer ids the first is forgotten.
    for (let i = 0; i < 64; i++) next.firstTime(`u${i}`);
    expect(next.firstTime('p2')).toBe(true);
    expect(next.firstTime('u63')).toBe(false);
    // A request without an id (a local call) always applies.
    expect(next.firstTime(undefined)).toBe(true);
  });

  it('keeps the newest deployment: a late older one loses, a rollback to a version seen before wins', () => {
    const loop = new LoopState();
    loop.resolve({ modelVersion: 'A', deployment: { id: 1, version: 'A' }, policyVersion: 1 });
    expect(loop.deploy('deploy-2', { modelVersion: 'B', deploymentId: 2 })).toEqual({ modelVersion: 'B', deploymentId: 2 });
    // The registry, read by a batch, still says deployment 1 (a stale read): no change.
    loop.recordBatch({ framesScored: 0, predictions: 0, tasksRouted: 0, deployment: { id: 1, version: 'A' } }, new Date());
    expect(loop.modelVersion).toBe('B');
    // Rolling back to A is deployment 3: it applies although the loop served A before.
    expect(loop.deploy('deploy-3', { modelVersion: 'A', deploymentId: 3 })).toEqual({ modelVersion: 'A', deploymentId: 3 });
    // Deployment 2 delivered late under a new update id still loses.
    expect(loop.deploy('deploy-2-again', { modelVersion: 'B', deploymentId: 2 })).toEqual({ modelVersion: 'A', deploymentId: 3 });
    // A deployment the loop missed, seen by a batch, applies from the next batch.
    loop.recordBatch(
      { framesScored: 4, predictions: 9, tasksRouted: 1, policyVersion: 1, deployment: { id: 4, version: 'C' } },
      new Date('2026-11-30T00:00:00Z'),
    );
    expect(loop.status('s', { batchInFlight: false, historyLength: 0 })).toMatchObject({
      modelVersion: 'C',
      deploymentId: 4,
      totals: { batches: 1, framesScored: 4, predictions: 9, tasksRouted: 1 },
      lastBatchAt: '2026-11-30T00:00:00.000Z',
    });
  });

  it('waits for a model, pauses, and never moves the policy backwards from a batch result', () => {
    const loop = new LoopState();
    expect(loop.name()).toBe('WAITING_FOR_MODEL');
    loop.resolve({ modelVersion: null, deployment: null, policyVersion: 4 });
    expect(loop.ready).toBe(false);
    loop.deploy(undefined, { modelVersion: 'A', deploymentId: 1 });
    expect(loop.name()).toBe('RUNNING');
    loop.pause();
    expect([loop.name(), loop.ready]).toEqual(['PAUSED', false]);
    loop.resume();
    loop.recordBatch({ framesScored: 0, predictions: 0, tasksRouted: 0, policyVersion: 2 }, new Date());
    expect(loop.policyVersion).toBe(4);
    loop.recordBatch({ framesScored: 0, predictions: 0, tasksRouted: 0, policyVersion: 5 }, new Date());
    expect(loop.policyVersion).toBe(5);
  });

  it('refuses malformed updates in the validators', () => {
    expect(() => validatePolicyRequest({ policyVersion: 0 })).toThrow('policyVersion must be a positive integer');
    expect(() => validatePolicyRequest({ policyVersion: 1.5 })).toThrow('policyVersion must be a positive integer');
    expect(() => validatePolicyRequest({ policyVersion: 3 })).not.toThrow();
    expect(() => validateDeployRequest({ modelVersion: '', deploymentId: 1 })).toThrow('modelVersion must be a non-empty string');
    expect(() => validateDeployRequest({ modelVersion: 'A', deploymentId: -1 })).toThrow('deploymentId must be a positive integer');
    expect(() => validateDeployRequest({ modelVersion: 'A', deploymentId: 7 })).not.toThrow();
  });
});

// The tracker: objects moving across frames keep their track, a dim detection continues a track
// but never starts one, a track ends after the gap, and tracking is deterministic.
import { describe, expect, it } from 'vitest';
import { assignTracks, trackFrames, type TrackableDetection } from '../../models/tracker.ts';

const emb = (k: number) => Array.from({ length: 8 }, (_, i) => (i === k ? 1 : 0.05));
const det = (id: string, x: number, score: number, k = 0, className = 'vehicle'): TrackableDetection => ({
  id,
  score,
  className,
  embedding: emb(k),
  x1: x,
  y1: 0.2,
  x2: x + 0.2,
  y2: 0.5,
});

describe('tracker', () => {
  it('keeps two objects moving side by side on their own tracks, frame after frame', () => {
    const frames = Array.from({ length: 6 }, (_, t) => ({
      capturedAt: t * 200,
      detections: [det(`a${t}`, 0.1 + 0.02 * t, 0.9, 0), det(`b${t}`, 0.6 - 0.02 * t, 0.8, 1)],
    }));
    const tracks = trackFrames([], frames, 1000);
    expect(new Set(frames.map((f) => tracks.get(f.detections[0].id)))).toEqual(new Set(['a0']));
    expect(new Set(frames.map((f) => tracks.get(f.detections[1].id)))).toEqual(new Set(['b0']));
    // The same frames again: the same ids (a retried batch links the same way).
    expect(trackFrames([], frames, 1000)).toEqual(tracks);
  });

  it('lets a dim detection continue a track but not start one, and never crosses classes', () => {
    const head = { trackId: 't1', className: 'vehicle', embedding: emb(0), x1: 0.1, y1: 0.2, x2: 0.3, y2: 0.5, seenAt: 0 };
    const tracks = assignTracks([head], [det('dim', 0.11, 0.2), det('dim-new', 0.7, 0.2), det('other-class', 0.1, 0.9, 0, 'sign')]);
    expect(tracks.get('dim')).toBe('t1');
    expect(tracks.get('dim-new')).toBeNull();
    expect(tracks.get('other-class')).toBe('other-class');
  });

  it('does not link a confident detection that overlaps but looks like another object', () => {
    const head = { trackId: 't1', className: 'vehicle', embedding: emb(0), x1: 0.1, y1: 0.2, x2: 0.3, y2: 0.5, seenAt: 0 };
    expect(assignTracks([head], [det('lookalike-not', 0.1, 0.9, 3)]).get('lookalike-not')).toBe('lookalike-not');
  });

  it('ends a track not seen for longer than the gap', () => {
    const frames = [
      { capturedAt: 0, detections: [det('a0', 0.1, 0.9)] },
      { capturedAt: 5000, detections: [det('a1', 0.1, 0.9)] },
    ];
    const tracks = trackFrames([], frames, 2000);
    expect(tracks.get('a1')).toBe('a1');
    expect(trackFrames([], frames, 10_000).get('a1')).toBe('a0');
  });
});

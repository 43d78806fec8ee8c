// Links detections on consecutive frames of one camera into tracks, ByteTrack-style (Zhang et
// al. 2022): confident detections are matched first, by box overlap and object-embedding
// similarity; the less confident ones may then only continue a track left unmatched, by overlap
// alone (a dim frame of a known object); an unmatched confident detection starts a track.
//
// Written here rather than taken from a library: the npm trackers (SORT ports) carry a Kalman
// filter and IoU only, and none uses our embeddings; frames here come seconds apart in batches,
// and the state a track needs (its last box and embedding) lives in the database between batches.
// Matching is greedy by descending score, as CenterTrack does: with a few objects per frame it
// gives the assignment the Hungarian method would, without a dependency.
import { cosineDistance } from '../policies/route.ts';

export interface TrackerSettings {
  /** Detections at or above this score may start tracks and are matched first. */
  highScore: number;
  /** Detections below this score are never tracked. */
  lowScore: number;
  /** A pair needs at least this box overlap (IoU) to be matched. */
  minIou: number;
  /** ... and an object-embedding distance of at most this (confident detections only). */
  maxEmbeddingDistance: number;
  /** Weight of box overlap against embedding similarity in the match score. */
  iouWeight: number;
}

const defaultTrackerSettings: TrackerSettings = { highScore: 0.5, lowScore: 0.1, minIou: 0.2, maxEmbeddingDistance: 0.3, iouWeight: 0.5 };

export interface Box {
  x1: number;
  y1: number;
  x2: number;
  y2: number;
}

/** The newest detection of a live track: what the next frame's detections are matched to. */
export interface TrackHead extends Box {
  trackId: string;
  className: string;
  embedding: number[];
  /** When the track was last seen (its frame's capture time, ms). */
  seenAt: number;
}

export interface TrackableDetection extends Box {
  id: string;
  score: number;
  className: string;
  embedding: number[];
}

export function iou(a: Box, b: Box): number {
  const w = Math.max(0, Math.min(a.x2, b.x2) - Math.max(a.x1, b.x1));
  const h = Math.max(0, Math.min(a.y2, b.y2) - Math.max(a.y1, b.y1));
  const inter = w * h;
  const union = (a.x2 - a.x1) * (a.y2 - a.y1) + (b.x2 - b.x1) * (b.y2 - b.y1) - inter;
  return union > 0 ? inter / union : 0;
}

/**
 * Assigns each detection of one frame a track id (null: too unsure to track). A new track is
 * named after its first detection, so the same frame tracked again gets the same ids.
 */
export function assignTracks(heads: TrackHead[], detections: TrackableDetection[], s: TrackerSettings = defaultTrackerSettings): Map<string, string | null> {
  const out = new Map<string, string | null>(detections.map((d) => [d.id, null]));
  const freeHeads = new Set(heads.map((_, i) => i));
  const matchStage = (candidates: TrackableDetection[], useEmbedding: boolean) => {
    const pairs: { d: TrackableDetection; h: number; score: number }[] = [];
    for (const d of candidates) {
      for (const h of freeHeads) {
        const head = heads[h];
        if (head.className !== d.className) continue;
        const overlap = iou(head, d);
        if (overlap < s.minIou) continue;
        if (!useEmbedding) {
          pairs.push({ d, h, score: overlap });
          continue;
        }
        const distance = cosineDistance(head.embedding, d.embedding);
        if (distance > s.maxEmbeddingDistance) continue;
        pairs.push({ d, h, score: s.iouWeight * overlap + (1 - s.iouWeight) * (1 - distance) });
      }
    }
    pairs.sort((a, b) => b.score - a.score || a.d.id.localeCompare(b.d.id));
    const taken = new Set<string>();
    for (const p of pairs) {
      if (taken.has(p.d.id) || !freeHeads.has(p.h)) continue;
      taken.add(p.d.id);
      freeHeads.delete(p.h);
      out.set(p.d.id, heads[p.h].trackId);
    }
    return taken;
  };
  const high = detections.filter((d) => d.score >= s.highScore);
  const low = detections.filter((d) => d.score >= s.lowScore && d.score < s.highScore);
  const matched = matchStage(high, true);
  matchStage(low, false);
  for (const d of high) if (!matched.has(d.id)) out.set(d.id, d.id);
  return out;
}

/** The heads after a frame seen at `seenAt`: its tracked detections replace their tracks' heads. */
function advanceHeads(heads: TrackHead[], detections: TrackableDetection[], tracks: Map<string, string | null>, seenAt: number): TrackHead[] {
  const next = new Map(heads.map((h) => [h.trackId, h]));
  for (const d of detections) {
    const trackId = tracks.get(d.id);
    if (trackId) next.set(trackId, { trackId, className: d.className, embedding: d.embedding, x1: d.x1, y1: d.y1, x2: d.x2, y2: d.y2, seenAt });
  }
  return [...next.values()];
}

/**
 * Tracks the frames of one camera in capture order, from the heads live before the first; a
 * track not seen for more than `maxGapMs` ends. Returns each detection's track id.
 */
export function trackFrames(
  heads: TrackHead[],
  frames: { capturedAt: number; detections: TrackableDetection[] }[],
  maxGapMs: number,
  s: TrackerSettings = defaultTrackerSettings,
): Map<string, string | null> {
  const all = new Map<string, string | null>();
  let live = heads;
  for (const f of [...frames].sort((a, b) => a.capturedAt - b.capturedAt)) {
    live = live.filter((h) => f.capturedAt - h.seenAt <= maxGapMs);
    const tracks = assignTracks(live, f.detections, s);
    for (const [id, t] of tracks) all.set(id, t);
    live = advanceHeads(live, f.detections, tracks, f.capturedAt);
  }
  return all;
}

// Objects: (1) similar-object search at 100,000 objects, HNSW beside exact search in the same run
// (latency and recall@10, unfiltered and with selective filters); (2) label propagation against
// the generator's ground truth: precision of proposals by distance, and a simulated reviewer
// working through the HTTP API (human decisions per labelled object).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { sql } from 'drizzle-orm';
import * as ort from 'onnxruntime-node';
import { createApp } from '../api/app.ts';
import { loadConfig, repoRoot } from '../config.ts';
import type { DbHandle } from '../db/client.ts';
import { PgvectorIndex } from '../db/pgvector-index.ts';
import { farFromExamples } from '../storage/object-search.ts';
import { frames, objectVectors, predictions, streams } from '../db/schema.ts';
import { persistScoredBatch, predictionId, type ScoredFrameRow } from '../db/scoring.ts';
import { createUser } from '../db/users.ts';
import { ModelCache } from '../models/model-cache.ts';
import { DetectorSession, type Detection } from '../models/sessions.ts';
import { iou } from '../models/tracker.ts';
import { linkTracks } from '../db/tracks.ts';
import { cosineDistance } from '../policies/route.ts';
import { requireTool, trainerPython } from '../scripts/tools.ts';
import { LocalBlobStore } from '../storage/blob-store.ts';
import type { ObjectFilter } from '../storage/vector-index.ts';
import { mulberry32, gaussian } from '../test/helpers/random.ts';
import { noLoops } from './no-loops.ts';
import { summarize, table } from './stats.ts';

interface Coco {
  images: { id: number; file_name: string; camera_id: string; width: number; height: number }[];
  annotations: { image_id: number; category_id: number; bbox: [number, number, number, number]; track_id: string }[];
  categories: { id: number; name: string }[];
}

const seedDetector = () => DetectorSession.load(fs.readFileSync(path.join(repoRoot, 'models/seed/detection.onnx')), { intraOpThreads: 2, minScore: 0.1 });

function generate(out: string, count: number, seed: number): Coco {
  execFileSync(
    requireTool(trainerPython),
    ['-m', 'dataengine_trainer', 'generate', '--out', out, '--count', String(count), '--cameras', '4', '--seed', String(seed)],
    {
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  return JSON.parse(fs.readFileSync(path.join(out, 'dataset.json'), 'utf8')) as Coco;
}

const unit = (v: number[]) => {
  const n = Math.hypot(...v) || 1;
  return v.map((x) => x / n);
};

// ---------------------------------------------------------------------------------------------
// (0) What the object embeddings cost the detector

/**
 * Batch-16 inference of the seed detector beside the same graph with the object-embedding output
 * cut away (onnx's extract_model drops the nodes only that output needs), in one run.
 */
export async function benchObjectHeadCost() {
  const full = path.join(repoRoot, 'models/seed/detection.onnx');
  const stripped = path.join(os.tmpdir(), `detector-without-objects-${process.pid}.onnx`);
  execFileSync(requireTool(trainerPython), [
    '-c',
    'import sys; from onnx.utils import extract_model; extract_model(sys.argv[1], sys.argv[2], ["images"], ["boxes", "scores", "class_ids", "embedding"])',
    full,
    stripped,
  ]);
  const options = { intraOpNumThreads: 2, interOpNumThreads: 1, graphOptimizationLevel: 'all' as const };
  const sessions = { with: await ort.InferenceSession.create(full, options), without: await ort.InferenceSession.create(stripped, options) };
  const rand = mulberry32(1);
  const input = new ort.Tensor(
    'float32',
    Float32Array.from({ length: 16 * 3 * 256 * 256 }, () => rand()),
    [16, 3, 256, 256],
  );
  const times: Record<'with' | 'without', number[]> = { with: [], without: [] };
  for (let i = 0; i < 63; i++) {
    for (const k of ['with', 'without'] as const) {
      const t = performance.now();
      await sessions[k].run({ images: input });
      if (i >= 3) times[k].push(performance.now() - t);
    }
  }
  const withP50 = summarize(times.with).p50;
  const withoutP50 = summarize(times.without).p50;
  table(
    'Object embeddings: cost to the detector (batch 16, 2 threads, 60 runs each, interleaved)',
    ['graph', 'p50 ms', 'relative'],
    [
      ['without object embeddings (baseline)', withoutP50, 1],
      ['with object embeddings', withP50, withP50 / withoutP50],
    ],
  );
  await Promise.all([sessions.with.release(), sessions.without.release()]);
  fs.rmSync(stripped, { force: true });
  return { withMs: withP50, withoutMs: withoutP50, relative: withP50 / withoutP50 };
}

// ---------------------------------------------------------------------------------------------
// (1) Search at scale

/**
 * Vectors for the scale test: the seed detector's real object embeddings of generated frames,
 * each the centre of a cloud of noisy copies (the same object seen again, slightly changed),
 * so the index holds the cluster structure of real objects at 100,000 rows without scoring
 * 25,000 frames first.
 */
async function scaleVectors(frameBytes: Buffer[], total: number, seed: number) {
  const detector = await seedDetector();
  const real: { vector: number[]; className: string }[] = [];
  for (let i = 0; i < frameBytes.length; i += 16) {
    const { frames: out } = await detector.detect(frameBytes.slice(i, i + 16));
    for (const f of out) for (const d of f.detections) if (d.score >= 0.3) real.push({ vector: d.embedding, className: d.className });
  }
  await detector.release();
  const rand = mulberry32(seed);
  const normal = gaussian(rand);
  const sigma = 0.02;
  const rows = Array.from({ length: total }, (_, i) => {
    const base = real[i % real.length];
    return { vector: unit(base.vector.map((x) => x + sigma * normal())), className: base.className };
  });
  // How spread the copies are against how far apart real objects are.
  const toParent = rows.slice(0, 500).map((r, i) => cosineDistance(r.vector, real[i % real.length].vector));
  const realNearest = real.slice(0, 200).map((r, i) => Math.min(...real.filter((_, j) => j !== i).map((o) => cosineDistance(o.vector, r.vector))));
  return { rows, realCount: real.length, copyToParent: summarize(toParent).p50, realNearest: summarize(realNearest).p50 };
}

const CAMERAS = 20;

async function loadObjects(handle: DbHandle, rows: { vector: number[]; className: string }[]) {
  const db = handle.db;
  await db.insert(streams).values({ id: 'objects-bench', name: 'objects-bench' }).onConflictDoNothing();
  const perFrame = 4;
  const t0 = performance.now();
  // A bulk load builds the HNSW index once at the end (what an operator does for a backfill):
  // keeping it during 100,000 inserts is several times slower.
  await db.execute(sql`drop index if exists object_vectors_embedding_hnsw`);
  for (let start = 0; start < rows.length; start += 2000) {
    const chunk = rows.slice(start, start + 2000);
    const frameRows = await db
      .insert(frames)
      .values(
        Array.from({ length: chunk.length / perFrame }, (_, k) => {
          const i = start / perFrame + k;
          return {
            streamId: 'objects-bench',
            cameraId: `cam-${i % CAMERAS}`,
            capturedAt: new Date(Date.UTC(2026, 0, 1) + i * 1000),
            contentHash: `objects-bench-${i}`,
            storageKey: `bench/${i}.png`,
            mediaType: 'image/png',
            sizeBytes: 1,
            width: 320,
            height: 240,
          };
        }),
      )
      .returning({ id: frames.id, cameraId: frames.cameraId, capturedAt: frames.capturedAt });
    const objs = chunk.map((r, j) => {
      const f = frameRows[Math.floor(j / perFrame)];
      return { ...r, id: predictionId(f.id, 'bench', j % perFrame), frame: f, rank: j % perFrame };
    });
    await db.insert(predictions).values(
      objs.map((o) => ({
        id: o.id,
        frameId: o.frame.id,
        modelVersion: 'bench',
        rank: o.rank,
        className: o.className,
        score: 0.5,
        x1: 0,
        y1: 0,
        x2: 1,
        y2: 1,
      })),
    );
    await db.insert(objectVectors).values(
      objs.map((o) => ({
        predictionId: o.id,
        frameId: o.frame.id,
        streamId: 'objects-bench',
        cameraId: o.frame.cameraId,
        modelVersion: 'bench',
        className: o.className,
        score: 0.5,
        capturedAt: o.frame.capturedAt,
        embedding: o.vector,
      })),
    );
  }
  const loadMs = performance.now() - t0;
  const t1 = performance.now();
  await db.execute(sql`create index object_vectors_embedding_hnsw on object_vectors using hnsw (embedding vector_cosine_ops)`);
  return { loadMs, indexMs: performance.now() - t1 };
}

/** Exact top k: the same statement with index scans off, i.e. a scan of every row. */
async function exactSearch(handle: DbHandle, vector: number[], k: number, where: ReturnType<typeof sql>) {
  return handle.db.transaction(async (tx) => {
    await tx.execute(sql`set local enable_indexscan = off`);
    const v = `[${vector.join(',')}]`;
    const result = await tx.execute(
      sql`select prediction_id as id from object_vectors where model_version = 'bench' and ${where} order by embedding <=> ${v}::vector limit ${k}`,
    );
    return (result as { rows: { id: string }[] }).rows.map((r) => r.id);
  });
}

export async function benchObjectSearch(handle: DbHandle, label: string, frameBytes: Buffer[], total: number) {
  const { rows, realCount, copyToParent, realNearest } = await scaleVectors(frameBytes, total, 5);
  const { loadMs, indexMs } = await loadObjects(handle, rows);
  const rand = mulberry32(9);
  const probesOf = (pool: typeof rows) => Array.from({ length: 200 }, () => pool[Math.floor(rand() * pool.length)]);
  const probes = probesOf(rows);
  const cyclistProbes = probesOf(rows.filter((r) => r.className === 'cyclist'));
  const base: ObjectFilter = { modelVersion: 'bench', streamIds: ['objects-bench'] };
  const cases = [
    { name: 'no filter', filter: base, where: sql`true`, probes },
    { name: `one camera of ${CAMERAS} (5%)`, filter: { ...base, cameraIds: ['cam-3'] }, where: sql`camera_id = 'cam-3'`, probes },
    // A lead looking for cyclists like this one; then the same filter with examples of any class,
    // whose matches lie far away (the graph walk gives up and the exact fallback answers).
    { name: 'class cyclist, cyclist examples', filter: { ...base, classNames: ['cyclist'] }, where: sql`class_name = 'cyclist'`, probes: cyclistProbes },
    { name: 'class cyclist, any example', filter: { ...base, classNames: ['cyclist'] }, where: sql`class_name = 'cyclist'`, probes },
  ];
  const results: Record<string, unknown> = {};
  const tableRows: (string | number)[][] = [];
  // ef_search 40 is pgvector's default; 100 is this platform's (HNSW_EF_SEARCH).
  for (const efSearch of [40, 100])
    for (const c of cases) {
      const index = new PgvectorIndex(handle.db, { efSearch, maxScanTuples: 20_000 });
      const hnswMs: number[] = [];
      const exactMs: number[] = [];
      let hits = 0;
      let want = 0;
      for (const probe of c.probes) {
        const v = probe.vector;
        let t = performance.now();
        // As a search by example asks: a class filter its example is not of goes to the exact scan.
        const got = await index.query({ vector: v, k: 10, filter: c.filter, farFromQuery: farFromExamples(c.filter, [probe.className]) });
        hnswMs.push(performance.now() - t);
        t = performance.now();
        const exact = await exactSearch(handle, v, 10, c.where);
        exactMs.push(performance.now() - t);
        const truth = new Set(exact);
        hits += got.filter((n) => truth.has(n.id)).length;
        want += exact.length;
      }
      const h = summarize(hnswMs);
      const e = summarize(exactMs);
      const recall = hits / want;
      results[`${c.name}, ef_search ${efSearch}`] = { efSearch, hnsw: h, exact: e, recallAt10: recall };
      tableRows.push([c.name, efSearch, h.p50, h.p99, e.p50, e.p99, recall]);
    }
  table(
    `Similar-object search, ${label}: ${total.toLocaleString('en')} objects, 200 queries, k=10`,
    ['filter', 'ef_search', 'HNSW p50 ms', 'HNSW p99 ms', 'exact p50 ms', 'exact p99 ms', 'recall@10'],
    tableRows,
  );
  console.log(
    `\n(${realCount} real object embeddings of the seed detector, each the centre of noisy copies: median distance of a copy to its object ${copyToParent.toFixed(4)}, of a real object to its nearest other ${realNearest.toFixed(4)}; load ${(loadMs / 1000).toFixed(0)} s, HNSW build ${(indexMs / 1000).toFixed(0)} s)`,
  );
  return { label, total, loadSeconds: loadMs / 1000, indexSeconds: indexMs / 1000, copyToParent, realNearest, cases: results };
}

// ---------------------------------------------------------------------------------------------
// (2) Propagation against ground truth

interface Truth {
  className: string | null; // null: a detection of nothing (background)
  trackId: string | null;
}

/** Each detection's true class (and track): the ground-truth box it overlaps at IoU 0.5 or more. */
function matchTruth(detections: Detection[], coco: Coco, imageId: number, width: number, height: number): Truth[] {
  const names = new Map(coco.categories.map((c) => [c.id, c.name]));
  const gts = coco.annotations
    .filter((a) => a.image_id === imageId)
    .map((a) => ({
      className: names.get(a.category_id)!,
      trackId: a.track_id,
      x1: a.bbox[0] / width,
      y1: a.bbox[1] / height,
      x2: (a.bbox[0] + a.bbox[2]) / width,
      y2: (a.bbox[1] + a.bbox[3]) / height,
    }));
  const used = new Set<number>();
  return detections.map((d) => {
    let best = -1;
    let bestIou = 0.5;
    gts.forEach((g, j) => {
      const o = iou(d, g);
      if (!used.has(j) && o >= bestIou) {
        best = j;
        bestIou = o;
      }
    });
    if (best < 0) return { className: null, trackId: null };
    used.add(best);
    return { className: gts[best].className, trackId: gts[best].trackId };
  });
}

export interface PropagationOptions {
  frames: number;
  /** Human decisions the simulated reviewer spends. */
  decisions: number;
  maxDistance: number;
}

export async function benchPropagation(handle: DbHandle, opts: PropagationOptions) {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-propagation-'));
  const coco = generate(work, opts.frames, 77);
  const detector = await seedDetector();
  const db = handle.db;
  await db.insert(streams).values({ id: 'propagation', name: 'propagation' }).onConflictDoNothing();
  const frameRows = await db
    .insert(frames)
    .values(
      coco.images.map((im, i) => ({
        streamId: 'propagation',
        cameraId: im.camera_id,
        capturedAt: new Date(Date.UTC(2026, 0, 1) + i * 250),
        contentHash: `propagation-${im.id}`,
        storageKey: im.file_name,
        mediaType: 'image/png',
        sizeBytes: 1,
        width: im.width,
        height: im.height,
      })),
    )
    .returning();
  const config = loadConfig({ ...process.env, STORE_DIR: work, PROPAGATION_MAX_DISTANCE: String(opts.maxDistance) });
  const store = new LocalBlobStore(work);
  const index = new PgvectorIndex(db, { efSearch: 100, maxScanTuples: 20_000 });
  const truth = new Map<string, Truth>();
  const vectors = new Map<string, number[]>();
  const trackOf = new Map<string, string | null>();
  const scoreOf = new Map<string, number>();
  const capturedAt = new Map<string, number>();
  let seq = 0;
  for (let i = 0; i < coco.images.length; i += 16) {
    const ims = coco.images.slice(i, i + 16);
    const rows = frameRows.slice(i, i + 16);
    const { frames: out } = await detector.detect(ims.map((im) => fs.readFileSync(path.join(work, im.file_name))));
    const batch: ScoredFrameRow[] = rows.map((f, k) => ({
      frameId: f.id,
      cameraId: f.cameraId,
      capturedAt: f.capturedAt,
      embedding: Array.from(out[k].embedding),
      detections: out[k].detections.map((d, rank) => ({ rank, ...d })),
    }));
    rows.forEach((f, k) => {
      const t = matchTruth(out[k].detections, coco, ims[k].id, f.width, f.height);
      out[k].detections.forEach((d, rank) => {
        truth.set(predictionId(f.id, 'seed', rank), t[rank]);
        capturedAt.set(predictionId(f.id, 'seed', rank), f.capturedAt.getTime());
        vectors.set(predictionId(f.id, 'seed', rank), d.embedding);
        scoreOf.set(predictionId(f.id, 'seed', rank), d.score);
      });
    });
    await linkTracks(db, index, { streamId: 'propagation', modelVersion: 'seed', frames: batch, maxGapMs: config.TRACK_MAX_GAP_SECONDS * 1000 });
    for (const f of batch) for (const d of f.detections) trackOf.set(predictionId(f.frameId, 'seed', d.rank), d.trackId ?? null);
    const toSeq = Math.max(...rows.map((r) => r.seq));
    await persistScoredBatch(db, {
      streamId: 'propagation',
      modelVersion: 'seed',
      policyVersion: 1,
      fromSeq: seq,
      toSeq,
      frames: batch,
      tasks: [],
      vectorIndex: index,
    });
    seq = toSeq;
  }
  await detector.release();

  const tracking = trackQuality(truth, trackOf, capturedAt);
  table(
    `Tracks (${config.TRACK_MAX_GAP_SECONDS} s gap; ground truth: the generator's object ids)`,
    ['true objects tracked', 'purity', 'ID switches', 'true tracks', 'predicted tracks'],
    [[tracking.coverage, tracking.purity, tracking.idSwitches, tracking.trueTracks, tracking.predictedTracks]],
  );

  // Precision by radius, exact: every true object as a seed, its unlabelled neighbours within d.
  const ids = [...truth.keys()];
  const objects = ids.filter((id) => truth.get(id)!.className !== null);
  const radii = [0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3];
  const rand = mulberry32(3);
  const seeds = Array.from({ length: 300 }, () => objects[Math.floor(rand() * objects.length)]);
  const minScore = config.PROPAGATION_MIN_SCORE;
  const byRadius = radii.map((r) => ({ r, right: 0, all: 0, rightConfident: 0, allConfident: 0 }));
  for (const s of seeds) {
    const cls = truth.get(s)!.className;
    for (const id of ids) {
      if (id === s) continue;
      const d = cosineDistance(vectors.get(id)!, vectors.get(s)!);
      const right = truth.get(id)!.className === cls ? 1 : 0;
      const confident = scoreOf.get(id)! >= minScore;
      for (const b of byRadius)
        if (d <= b.r) {
          b.all++;
          b.right += right;
          if (confident) {
            b.allConfident++;
            b.rightConfident += right;
          }
        }
    }
  }
  const ratio = (a: number, b: number) => (b ? a / b : 1);
  table(
    `Propagation precision by radius (${ids.length} stored detections of ${coco.images.length} generated frames, ${objects.length} of them true objects; 300 seeds)`,
    ['max distance', 'proposals per seed', 'precision', `proposals per seed, score >= ${minScore}`, `precision, score >= ${minScore}`],
    byRadius.map((b) => [b.r, b.all / seeds.length, ratio(b.right, b.all), b.allConfident / seeds.length, ratio(b.rightConfident, b.allConfident)]),
  );

  // A reviewer at the default radius, through the HTTP API: marks an unlabelled object with its
  // true class (1 decision), confirms the right proposals with one key (1 decision) and rejects
  // each wrong one (1 decision each).
  const models = new ModelCache(store, { intraOpThreads: 1, minScore: 0.1 });
  const app = createApp({ db, store, config, loopControl: noLoops, models, vectorIndex: index });
  const { token } = await createUser(db, { name: `propagation-${Date.now()}`, role: 'reviewer' });
  const headers = { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' };
  const labelled = new Set<string>();
  let decisions = 0;
  let proposed = 0;
  let proposedRight = 0;
  let marks = 0;
  // The reviewer meets objects in a random order (Fisher-Yates with the seeded generator).
  const order = [...objects];
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  for (const seed of order) {
    if (decisions >= opts.decisions) break;
    if (labelled.has(seed)) continue;
    const cls = truth.get(seed)!.className!;
    const res = await app.request('/v1/objects/labels', {
      method: 'POST',
      headers,
      body: JSON.stringify({ objectIds: [seed], className: cls, polarity: 'positive' }),
    });
    if (res.status !== 200) throw new Error(`mark failed: ${res.status} ${await res.text()}`);
    decisions++;
    marks++;
    labelled.add(seed);
    const { proposals } = (await res.json()) as { proposals: { id: string }[] };
    const right = proposals.filter((p) => truth.get(p.id)?.className === cls).map((p) => p.id);
    const wrong = proposals.filter((p) => truth.get(p.id)?.className !== cls).map((p) => p.id);
    proposed += proposals.length;
    proposedRight += right.length;
    if (right.length + wrong.length === 0) continue;
    const decided = await app.request('/v1/objects/proposals/decisions', {
      method: 'POST',
      headers,
      body: JSON.stringify({ className: cls, confirm: right, reject: wrong }),
    });
    if (decided.status !== 200) throw new Error(`decision failed: ${decided.status} ${await decided.text()}`);
    decisions += (right.length ? 1 : 0) + wrong.length;
    for (const id of right) labelled.add(id);
  }
  await models.close();
  const perObject = decisions / labelled.size;
  table(
    `A reviewer with label propagation at max distance ${opts.maxDistance} (through the HTTP API), beside labelling one object per decision`,
    ['', 'human decisions', 'objects labelled', 'decisions per labelled object', 'proposal precision'],
    [
      ['with propagation', decisions, labelled.size, perObject, proposed ? proposedRight / proposed : 1],
      ['one object per decision', labelled.size, labelled.size, 1, '-'],
    ],
  );
  fs.rmSync(work, { recursive: true, force: true });
  return {
    frames: coco.images.length,
    detections: ids.length,
    trueObjects: objects.length,
    tracking,
    precisionByRadius: byRadius.map((b) => ({
      maxDistance: b.r,
      proposalsPerSeed: b.all / seeds.length,
      precision: ratio(b.right, b.all),
      minScore,
      proposalsPerSeedAboveMinScore: b.allConfident / seeds.length,
      precisionAboveMinScore: ratio(b.rightConfident, b.allConfident),
    })),
    reviewer: {
      maxDistance: opts.maxDistance,
      decisions,
      labelled: labelled.size,
      marks,
      decisionsPerLabelledObject: perObject,
      proposals: proposed,
      precision: proposed ? proposedRight / proposed : 1,
    },
  };
}

/**
 * Tracking against the generator's object ids: the share of true detections given a track, the
 * purity of predicted tracks (the share of each track's detections that belong to its majority
 * object; a detection of nothing counts against it), and ID switches (times a true object's
 * track id changes from one of its tracked detections to the next).
 */
function trackQuality(truth: Map<string, Truth>, trackOf: Map<string, string | null>, time: Map<string, number>) {
  const members = new Map<string, string[]>();
  for (const [id, t] of trackOf) if (t) members.set(t, [...(members.get(t) ?? []), id]);
  let majority = 0;
  let tracked = 0;
  for (const ids of members.values()) {
    const counts = new Map<string, number>();
    for (const id of ids) {
      const gt = truth.get(id)?.trackId ?? `none:${id}`;
      counts.set(gt, (counts.get(gt) ?? 0) + 1);
    }
    majority += Math.max(...counts.values());
    tracked += ids.length;
  }
  const byTruth = new Map<string, string[]>();
  for (const [id, t] of truth) if (t.trackId) byTruth.set(t.trackId, [...(byTruth.get(t.trackId) ?? []), id]);
  let switches = 0;
  let covered = 0;
  let trueDetections = 0;
  for (const ids of byTruth.values()) {
    const seq = ids.sort((a, b) => time.get(a)! - time.get(b)!).map((id) => trackOf.get(id) ?? null);
    trueDetections += seq.length;
    const withTrack = seq.filter((t): t is string => t !== null);
    covered += withTrack.length;
    for (let i = 1; i < withTrack.length; i++) if (withTrack[i] !== withTrack[i - 1]) switches++;
  }
  return {
    coverage: covered / trueDetections,
    purity: tracked ? majority / tracked : 1,
    idSwitches: switches,
    trueTracks: byTruth.size,
    predictedTracks: members.size,
  };
}

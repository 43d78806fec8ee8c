// First-run setup of `make up`, idempotent so every later run finds what it needs: demo users
// with tokens (kept in data/tokens.json), the committed seed models registered and in
// production (the detector with its INT8 variant, when the same gate as retraining keeps it), and
// a demo stream with its loop running.
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../config.ts';
import { createStream } from '../db/streams.ts';
import { maxFramesPerCamera } from '../db/frames.ts';
import { authenticate, bindCamera, createUser, findUser, rotateToken, type Role } from '../db/users.ts';
import type { ModelKind } from '../models/contract.ts';
import { registerModel, registerVariant, setProduction } from '../models/registry.ts';
import { defaultGate, int8Gate } from '../workflows/promotion-gate.ts';
import type { DetectorMetrics } from '../workflows/trainer-contract.ts';
import { getModel, productionModel } from '../db/models.ts';
import { sha256Hex } from '../storage/blob-store.ts';
import type { Engine } from '../workers/engine.ts';

const DEMO_USERS: Record<string, Role> = { admin: 'admin', lead: 'lead', reviewer: 'reviewer', camera: 'camera' };
export type DemoTokens = Record<keyof typeof DEMO_USERS, string>;

async function ensureTokens(engine: Engine, tokensFile: string, streamId: string): Promise<DemoTokens> {
  const db = engine.deps.db;
  const saved: Partial<DemoTokens> = fs.existsSync(tokensFile) ? JSON.parse(fs.readFileSync(tokensFile, 'utf8')) : {};
  const tokens: Partial<DemoTokens> = {};
  for (const [name, role] of Object.entries(DEMO_USERS)) {
    const known = saved[name];
    const outcome = known ? await authenticate(db, known) : null;
    if (known && outcome && 'user' in outcome && outcome.user.name === name) {
      tokens[name] = known;
    } else if (await findUser(db, name)) {
      tokens[name] = (await rotateToken(db, name))!;
    } else {
      tokens[name] = (await createUser(db, { name, role })).token;
    }
  }
  // The camera token sends into the demo stream only (and a data folder from before camera tokens
  // were bound to streams gets its binding here).
  await bindCamera(db, 'camera', { streams: [streamId], cameraIds: null });
  fs.mkdirSync(path.dirname(tokensFile), { recursive: true });
  fs.writeFileSync(tokensFile, JSON.stringify(tokens, null, 2), { mode: 0o600 });
  return tokens as DemoTokens;
}

/** Registers models/seed/detection.int8.onnx as the INT8 variant of the committed seed detector
 * (if that version is registered) when the gate retraining applies keeps it: its clear-scene
 * mAP@0.5 against the float model's, both measured on the same held-out frames by `seed-models`
 * (metrics.json). */
async function ensureSeedInt8(engine: Engine): Promise<void> {
  const file = path.join(repoRoot, 'models', 'seed', 'detection.int8.onnx');
  const metricsFile = path.join(repoRoot, 'models', 'seed', 'metrics.json');
  if (!fs.existsSync(file) || !fs.existsSync(metricsFile)) return;
  const version = seedVersion(fs.readFileSync(path.join(repoRoot, 'models', 'seed', 'detection.onnx')));
  if (!(await getModel(engine.deps.db, 'detection', version))) return;
  const metrics = JSON.parse(fs.readFileSync(metricsFile, 'utf8'));
  const float = metrics.detector?.clear as DetectorMetrics | undefined;
  const int8 = metrics.detector_int8?.evaluation?.clear as DetectorMetrics | undefined;
  if (!float || !int8 || !int8Gate(float, int8, defaultGate).keep) return;
  await registerVariant(engine.deps.db, engine.deps.store, {
    kind: 'detection',
    version,
    precision: 'int8',
    bytes: fs.readFileSync(file),
    metrics: { ...metrics.detector_int8.evaluation, floatMap50: float.map50 },
  });
}

const seedVersion = (bytes: Uint8Array) => `seed-${sha256Hex(bytes).slice(0, 8)}`;

async function ensureSeedModel(engine: Engine, kind: ModelKind): Promise<string> {
  const { db, store } = engine.deps;
  const current = await productionModel(db, kind);
  if (current) return current.version;
  const file = path.join(repoRoot, 'models', 'seed', `${kind}.onnx`);
  if (!fs.existsSync(file)) throw new Error(`${path.relative(process.cwd(), file)} is missing; run \`make models\` to train the seed models`);
  const bytes = fs.readFileSync(file);
  const metricsFile = path.join(repoRoot, 'models', 'seed', 'metrics.json');
  const metrics = fs.existsSync(metricsFile) ? JSON.parse(fs.readFileSync(metricsFile, 'utf8')) : {};
  const version = seedVersion(bytes);
  const referenceFile = path.join(repoRoot, 'models', 'seed', 'reference.json');
  const reference = kind === 'detection' && fs.existsSync(referenceFile) ? JSON.parse(fs.readFileSync(referenceFile, 'utf8')) : undefined;
  await registerModel(db, store, { kind, bytes, version, reference, metrics: kind === 'detection' ? (metrics.detector ?? {}) : (metrics.box_model ?? {}) });
  await setProduction(db, kind, version, { triggeredBy: 'bootstrap', reason: 'seed model' });
  return version;
}

export async function bootstrapDemo(engine: Engine, opts: { streamId: string; tokensFile: string }) {
  const tokens = await ensureTokens(engine, opts.tokensFile, opts.streamId);
  const detector = await ensureSeedModel(engine, 'detection');
  await ensureSeedInt8(engine);
  const box = await ensureSeedModel(engine, 'box');
  await createStream(engine.deps.db, { id: opts.streamId, name: 'Demo road cameras', createdBy: 'bootstrap' });
  await engine.deps.loopControl.ensureLoop(opts.streamId);
  await engine.deps.loopControl.ensureDriftMonitor(null);
  // The synthetic camera resumes after the frames it already sent (its frames are a pure
  // function of the index, so resending would only hit the duplicate check).
  const framesPerCamera = await maxFramesPerCamera(engine.deps.db, opts.streamId);
  return { tokens, detector, box, framesPerCamera };
}

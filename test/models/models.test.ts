// The TypeScript model layer against the trainer's own code and models: the same image gives
// the same tensor in both languages, the wrapper returns contract-shaped results, a version
// swap under load never mixes versions, the registry refuses what does not fit, and a version's
// INT8 variant is registered beside it and served when asked for.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { count } from 'drizzle-orm';
import { inject } from 'vitest';
import type { DbHandle } from '../../db/client.ts';
import { deployments, models } from '../../db/schema.ts';
import { readOnnxMetadata } from '../../models/onnx-metadata.ts';
import { ModelCache } from '../../models/model-cache.ts';
import { decodeRgb, letterboxInto, roiFromEncoded, roiFromImage } from '../../models/preprocess.ts';
import { registeredArtifacts, registerModel, registerVariant, rollback, RegistryError, setProduction } from '../../models/registry.ts';
import { deploymentHistory, getModel, productionModel } from '../../db/models.ts';
import { BoxModelSession, DetectorSession, UndecodableFramesError } from '../../models/sessions.ts';
import { ModelContractError } from '../../models/contract.ts';
import { trainerPython } from '../../scripts/tools.ts';
import { LocalBlobStore, sha256Hex } from '../../storage/blob-store.ts';
import { createTestDb } from '../helpers/db.ts';
import { withMetadata } from '../helpers/onnx.ts';
import { sampleFrames } from '../helpers/platform.ts';

const tiny = (name: string) => fs.readFileSync(path.join(inject('tinyModelsDir'), name));
let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'models-test-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function pythonTensor(args: string[]): Float32Array {
  const out = path.join(tmp, `${Math.random()}.bin`);
  execFileSync(trainerPython, ['-m', 'dataengine_trainer', ...args, '--out', out]);
  const buf = fs.readFileSync(out);
  return new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
}

const maxAbsDiff = (a: Float32Array, b: Float32Array) => {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

describe('preprocessing parity with the trainer', () => {
  it('letterboxes PNG and JPEG frames of any shape to the same tensor as PyTorch', async () => {
    const png = sampleFrames()[0].file; // 320x240: letterboxing really resizes
    const tall = path.join(tmp, 'tall.jpg');
    await sharp(png).resize(150, 311, { fit: 'fill' }).jpeg({ quality: 90 }).toFile(tall);
    for (const file of [png, tall]) {
      const img = await decodeRgb(fs.readFileSync(file));
      const ts = new Float32Array(3 * 256 * 256);
      letterboxInto(img, 256, ts);
      expect(maxAbsDiff(ts, pythonTensor(['preprocess', '--image', file, '--size', '256']))).toBeLessThan(1e-5);
    }
  });

  it('crops box-model regions (inside, at the edge, and beyond the frame) like the trainer', async () => {
    const png = sampleFrames()[1].file;
    for (const r of [
      [100, 80, 160, 120],
      [0, 0, 30, 50],
      [300, 200, 340, 260],
    ]) {
      const region = { x1: r[0], y1: r[1], x2: r[2], y2: r[3] };
      const roi = await roiFromEncoded(fs.readFileSync(png), region, 64);
      expect(maxAbsDiff(roi.tensor, pythonTensor(['roi', '--image', png, '--region', r.join(',')]))).toBeLessThan(1e-4);
      expect(roi.bytesDecoded).toBeLessThan(roi.frameWidth * roi.frameHeight * 3);
      // From the frame decoded whole (box assist keeps small frames so): the same tensor exactly.
      const fromImage = roiFromImage(await decodeRgb(fs.readFileSync(png)), region, 64);
      expect(maxAbsDiff(fromImage.tensor, roi.tensor)).toBe(0);
      expect(fromImage.geometry).toEqual(roi.geometry);
      const jpeg = await sharp(fs.readFileSync(png)).jpeg({ quality: 80 }).toBuffer();
      expect(maxAbsDiff(roiFromImage(await decodeRgb(jpeg), region, 64).tensor, (await roiFromEncoded(jpeg, region, 64)).tensor)).toBe(0);
    }
  });
});

describe('detector session', () => {
  it('reads the contract metadata and returns frame-normalized detections and embeddings', async () => {
    const meta = readOnnxMetadata(tiny('detection.onnx'));
    expect(meta.kind).toBe('detection');
    const session = await DetectorSession.load(tiny('detection.onnx'), { intraOpThreads: 1, minScore: 0 });
    const frames = sampleFrames()
      .slice(0, 3)
      .map((s) => fs.readFileSync(s.file));
    const { frames: results, timings } = await session.detect(frames);
    expect(results).toHaveLength(3);
    for (const r of results) {
      expect(r.embedding).toHaveLength(128);
      expect(r.detections).toHaveLength(100);
      for (const d of r.detections) {
        expect(d.x1).toBeGreaterThanOrEqual(0);
        expect(d.x2).toBeLessThanOrEqual(1);
        expect(['vehicle', 'pedestrian', 'cyclist', 'sign']).toContain(d.className);
      }
      const scores = r.detections.map((d) => d.score);
      expect([...scores].sort((a, b) => b - a)).toEqual(scores);
    }
    expect(Object.keys(timings).sort()).toEqual(['decode', 'inference', 'postprocess', 'preprocess']);
    await session.release();
  });
});

describe('box model session', () => {
  /** The number of regions of each run of the model from now on. */
  const recordRuns = (box: BoxModelSession) => {
    const runs: number[] = [];
    const runRaw = box.runRaw.bind(box);
    box.runRaw = (input, n) => {
      runs.push(n);
      return runRaw(input, n);
    };
    return runs;
  };

  it('runs regions asked together as one batch, each answered as if asked alone', async () => {
    const box = await BoxModelSession.load(tiny('box.onnx'), { intraOpThreads: 1, maxBatch: 8 });
    const frame = fs.readFileSync(sampleFrames()[0].file);
    const regions = Array.from({ length: 20 }, (_, i) => ({ x1: 10 + 7 * i, y1: 20 + 3 * i, x2: 60 + 7 * i, y2: 70 + 5 * i }));
    const alone: Awaited<ReturnType<BoxModelSession['refine']>>[] = [];
    for (const r of regions) alone.push(await box.refine(frame, r));
    const runs = recordRuns(box);
    const together = await Promise.all(regions.map((r) => box.refine(frame, r)));
    // Regions cropped while a run was in flight went into the next one, never more than maxBatch.
    expect(runs.reduce((a, n) => a + n, 0)).toBe(20);
    expect(runs.length).toBeLessThan(20);
    expect(Math.max(...runs)).toBeLessThanOrEqual(8);
    together.forEach((t, i) => {
      expect(t.score).toBeCloseTo(alone[i].score, 5);
      for (const k of ['x1', 'y1', 'x2', 'y2'] as const) expect(t.box[k]).toBeCloseTo(alone[i].box[k], 3);
    });
    await box.release();
    // BOX_ASSIST_MAX_BATCH=1: every region its own run.
    const single = await BoxModelSession.load(tiny('box.onnx'), { intraOpThreads: 1, maxBatch: 1 });
    const singleRuns = recordRuns(single);
    const each = await Promise.all(regions.map((r) => single.refine(frame, r)));
    expect(singleRuns).toEqual(regions.map(() => 1));
    each.forEach((t, i) => expect(t.score).toBeCloseTo(alone[i].score, 5));
    await single.release();
  });

  it('refuses a box model whose graph takes one region only', async () => {
    const fixed = path.join(tmp, 'box-fixed.onnx');
    const source = path.join(tmp, 'box-source.onnx');
    fs.writeFileSync(source, tiny('box.onnx'));
    execFileSync(trainerPython, [
      '-c',
      `import onnx, sys
m = onnx.load(sys.argv[1])
for v in list(m.graph.input) + list(m.graph.output):
    v.type.tensor_type.shape.dim[0].dim_value = 1
onnx.save(m, sys.argv[2])`,
      source,
      fixed,
    ]);
    await expect(BoxModelSession.load(fs.readFileSync(fixed), { intraOpThreads: 1 })).rejects.toThrow(/for any N/);
  });
});

describe('model cache', () => {
  it('answers every request wholly from one version while versions are swapped under load', async () => {
    const store = new LocalBlobStore(path.join(tmp, 'store-swap'));
    // Two genuinely different versions: the tiny model, and the seed-style model the trainer's
    // tiny-models command trained with another seed.
    const other = path.join(tmp, 'tiny2');
    execFileSync(trainerPython, ['-m', 'dataengine_trainer', 'tiny-models', '--out', other, '--frames', '16', '--seed', '9']);
    await store.put('models/detection/a/model.onnx', tiny('detection.onnx'));
    await store.put('models/detection/b/model.onnx', fs.readFileSync(path.join(other, 'detection.onnx')));
    const cache = new ModelCache(store, { intraOpThreads: 1, minScore: 0, maxVersions: 1 });
    const frame = [fs.readFileSync(sampleFrames()[2].file)];
    const reference = {
      a: (await cache.detect('a', frame)).frames[0].embedding,
      b: (await cache.detect('b', frame)).frames[0].embedding,
    };
    expect(maxAbsDiff(reference.a, reference.b)).toBeGreaterThan(1e-3);
    // maxVersions 1: every switch evicts the other version while its requests may be running.
    const requests: ('a' | 'b')[] = Array.from({ length: 24 }, (_, i) => (i % 3 === 0 ? 'b' : 'a'));
    const results = await Promise.all(requests.map(async (v) => ({ v, emb: (await cache.detect(v, frame)).frames[0].embedding })));
    for (const { v, emb } of results) expect(maxAbsDiff(emb, reference[v])).toBeLessThan(1e-5);
    await cache.close();
  });

  it('runs detectors in inference threads with the answers of a session on this thread, its errors included', async () => {
    const store = new LocalBlobStore(path.join(tmp, 'store-threads'));
    await store.put('models/detection/t/model.onnx', tiny('detection.onnx'));
    // Two threads: a batch can land on the one that has not loaded the version, which then gets it.
    const cache = new ModelCache(store, { intraOpThreads: 1, minScore: 0, inferenceThreads: 2 });
    const here = await DetectorSession.load(tiny('detection.onnx'), { intraOpThreads: 1, minScore: 0 });
    const frames = sampleFrames()
      .slice(0, 4)
      .map((s) => fs.readFileSync(s.file));
    const expected = (await here.detect(frames)).frames;
    const answers = await Promise.all(Array.from({ length: 6 }, () => cache.detect('t', frames)));
    for (const { frames: got } of answers) {
      expect(got).toHaveLength(4);
      got.forEach((f, i) => {
        expect(maxAbsDiff(f.embedding, expected[i].embedding)).toBeLessThan(1e-5);
        expect(f.detections.map((d) => d.className)).toEqual(expected[i].detections.map((d) => d.className));
      });
    }
    // A frame that does not decode comes back as the error the scoring step sets frames aside on.
    const failure = await cache.detect('t', [frames[0], Buffer.from('not an image')]).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(UndecodableFramesError);
    expect((failure as UndecodableFramesError).failures.map((f) => f.index)).toEqual([1]);
    // A file that breaks the contract is refused as such.
    await store.put('models/detection/box/model.onnx', tiny('box.onnx'));
    await expect(cache.detect('box', frames)).rejects.toBeInstanceOf(ModelContractError);
    await here.release();
    await cache.close();
  });

  it('refuses to load a stored model whose bytes differ from the sha256 it was registered with', async () => {
    const store = new LocalBlobStore(path.join(tmp, 'store-tampered'));
    const bytes = tiny('detection.onnx');
    await store.put('models/detection/t/model.onnx', bytes);
    const registered = { t: sha256Hex(bytes) };
    const cache = new ModelCache(store, {
      intraOpThreads: 1,
      minScore: 0,
      registeredArtifact: async (_kind, v) => ({ key: 'models/detection/t/model.onnx', sha256: registered[v as 't'] }),
    });
    const frame = [fs.readFileSync(sampleFrames()[0].file)];
    expect((await cache.detect('t', frame)).frames).toHaveLength(1);
    await cache.close();
    // Someone with write access to the store swaps the file.
    await store.put('models/detection/t/model.onnx', tiny('box.onnx'));
    const fresh = new ModelCache(store, {
      intraOpThreads: 1,
      minScore: 0,
      registeredArtifact: async (_kind, v) => ({ key: 'models/detection/t/model.onnx', sha256: registered[v as 't'] }),
    });
    await expect(fresh.detect('t', frame)).rejects.toThrow(/does not match the sha256 it was registered with/);
    await fresh.close();
  });
});

describe('registry', () => {
  let handle: DbHandle;
  let store: LocalBlobStore;
  beforeAll(async () => {
    handle = await createTestDb();
    store = new LocalBlobStore(path.join(tmp, 'store-registry'));
  });
  afterAll(async () => handle.close());

  const storedFiles = () => (fs.existsSync(store.root) ? fs.readdirSync(store.root, { recursive: true }).length : 0);
  const rowCount = async () => (await handle.db.select({ n: count() }).from(models))[0].n;

  it('refuses files that do not meet the contract and leaves registry and store unchanged', async () => {
    const good = tiny('detection.onnx');
    const renamed = Buffer.from(good);
    // Rename the graph input `images` to `imagez` in place: same length, wrong signature.
    const at = renamed.indexOf(Buffer.from('images'));
    renamed.write('imagez', at);
    const cases: [string, Uint8Array, 'detection' | 'box', RegExp][] = [
      ['truncated', good.subarray(0, good.length / 2), 'detection', /model refused/],
      ['random bytes', Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 251)), 'detection', /model refused/],
      ['wrong kind', tiny('box.onnx'), 'detection', /box model, not a detection model/],
      ['wrong input name', renamed, 'detection', /model refused/],
    ];
    for (const [name, bytes, kind, message] of cases) {
      await expect(registerModel(handle.db, store, { kind, bytes, version: `bad-${name.replace(/ /g, '-')}` }), name).rejects.toThrow(message);
    }
    expect(await rowCount()).toBe(0);
    expect(storedFiles()).toBe(0);
  });

  it('registers once, refuses different bytes under a used version, and moves production with history', async () => {
    const det = tiny('detection.onnx');
    const v1 = await registerModel(handle.db, store, { kind: 'detection', bytes: det, version: 'v1' });
    expect((await registerModel(handle.db, store, { kind: 'detection', bytes: det, version: 'v1' })).id).toBe(v1.id);
    // A valid model with other bytes (one more metadata entry) under the same version.
    await expect(registerModel(handle.db, store, { kind: 'detection', bytes: withMetadata(det, 'note', 'retrained'), version: 'v1' })).rejects.toThrow(
      /detection model v1 is already registered with different contents/,
    );
    await registerModel(handle.db, store, { kind: 'detection', bytes: det, version: 'v2' });
    await setProduction(handle.db, 'detection', 'v1', { triggeredBy: 'test' });
    await setProduction(handle.db, 'detection', 'v2', { triggeredBy: 'test', reason: 'better' });
    expect((await productionModel(handle.db, 'detection'))?.version).toBe('v2');
    const back = await rollback(handle.db, 'detection', { triggeredBy: 'lead' });
    expect(back).toEqual({ version: 'v1', previousVersion: 'v2', deploymentId: expect.any(Number) });
    // Each move of the pointer is a new deployment with a larger id, also when it goes back.
    expect(back.deploymentId).toBeGreaterThan((await deploymentHistory(handle.db, 'detection'))[1].id);
    expect((await productionModel(handle.db, 'detection'))?.version).toBe('v1');
    const history = await deploymentHistory(handle.db, 'detection');
    expect(history.map((d) => [d.action, d.version, d.previousVersion])).toEqual([
      ['rollback', 'v1', 'v2'],
      ['deploy', 'v2', 'v1'],
      ['deploy', 'v1', null],
    ]);
    await expect(setProduction(handle.db, 'detection', 'nope', { triggeredBy: 'test' })).rejects.toBeInstanceOf(RegistryError);
    expect((await handle.db.select({ n: count() }).from(deployments))[0].n).toBe(3);
  });

  it('registers an INT8 variant beside its version, refuses one that does not stand in for it, and serves the precision asked for', async () => {
    const det = tiny('detection.onnx');
    const int8 = tiny('detection.int8.onnx');
    await registerModel(handle.db, store, { kind: 'detection', bytes: det, version: 'q1' });
    const before = storedFiles();
    const refusals: [string, Partial<Parameters<typeof registerVariant>[2]>, RegExp][] = [
      ['a float file', { bytes: det }, /int8 variant refused: its metadata says precision fp32, not int8/],
      [
        'other classes',
        { bytes: withMetadata(int8, 'class_names', '["car","person","bike","sign"]') },
        /its class names differ from the version it stands in for/,
      ],
      ['an unregistered version', { version: 'nope' }, /detection model nope is not registered/],
      ['a box model', { kind: 'box', bytes: tiny('box.onnx'), version: 'q1' }, /box model q1 is not registered/],
    ];
    for (const [name, change, message] of refusals) {
      await expect(registerVariant(handle.db, store, { kind: 'detection', version: 'q1', precision: 'int8', bytes: int8, ...change }), name).rejects.toThrow(
        message,
      );
    }
    expect(storedFiles()).toBe(before);
    expect((await getModel(handle.db, 'detection', 'q1'))?.variants).toEqual({});

    const row = await registerVariant(handle.db, store, { kind: 'detection', version: 'q1', precision: 'int8', bytes: int8, metrics: { map50: 0.5 } });
    expect(row.variants.int8).toEqual({
      artifactKey: 'models/detection/q1/model.int8.onnx',
      sha256: sha256Hex(int8),
      metrics: { map50: 0.5 },
      registeredAt: expect.any(String),
    });
    expect(sha256Hex(await store.get('models/detection/q1/model.int8.onnx'))).toBe(sha256Hex(int8));
    // The same file again is a no-op; another file under the same version and precision is refused.
    expect((await registerVariant(handle.db, store, { kind: 'detection', version: 'q1', precision: 'int8', bytes: int8 })).variants).toEqual(row.variants);
    await expect(
      registerVariant(handle.db, store, { kind: 'detection', version: 'q1', precision: 'int8', bytes: withMetadata(int8, 'note', 'x') }),
    ).rejects.toThrow(/already has an int8 variant with different contents/);

    // Loops asking for INT8 get the variant; asking for float, or for a version without one, the model.
    expect(await registeredArtifacts(handle.db, 'int8')('detection', 'q1')).toEqual({
      key: 'models/detection/q1/model.int8.onnx',
      sha256: sha256Hex(int8),
      precision: 'int8',
    });
    expect(await registeredArtifacts(handle.db, 'fp32')('detection', 'q1')).toEqual({
      key: 'models/detection/q1/model.onnx',
      sha256: sha256Hex(det),
      precision: 'fp32',
    });
    await registerModel(handle.db, store, { kind: 'detection', bytes: det, version: 'q2' });
    expect((await registeredArtifacts(handle.db, 'int8')('detection', 'q2'))?.precision).toBe('fp32');

    // What runs is the variant: the cache's answers are the INT8 model's, not the float model's.
    const frames = sampleFrames()
      .slice(0, 4)
      .map((f) => fs.readFileSync(f.file));
    const direct = async (bytes: Uint8Array) => {
      const session = await DetectorSession.load(bytes, { intraOpThreads: 1, minScore: 0 });
      const out = await session.detect(frames);
      await session.release();
      return out.frames.map((f) => f.detections.map((d) => d.score));
    };
    const served = async (precision: 'int8' | 'fp32') => {
      const cache = new ModelCache(store, { intraOpThreads: 1, minScore: 0, registeredArtifact: registeredArtifacts(handle.db, precision) });
      const out = await cache.detect('q1', frames);
      await cache.close();
      return out.frames.map((f) => f.detections.map((d) => d.score));
    };
    const [int8Scores, floatScores] = [await direct(int8), await direct(det)];
    expect(int8Scores).not.toEqual(floatScores);
    expect(await served('int8')).toEqual(int8Scores);
    expect(await served('fp32')).toEqual(floatScores);
  });
});

// Labels in and out as a lead uses them: a COCO import with a dry run that stores nothing, every
// refused entry with its reason while the rest imports, a second import that adds nothing, files
// written by other tools (CVAT's COCO 1.0, a pycocotools results list), and the round trip:
// COCO export -> import elsewhere -> the same labels, and a YOLO export with the same boxes.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { serve } from '@hono/node-server';
import { count, eq } from 'drizzle-orm';
import { unzipSync } from 'fflate';
import { load } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { repoRoot } from '../../config.ts';
import type { DbHandle } from '../../db/client.ts';
import { frames, labels } from '../../db/schema.ts';
import { createTestDb } from '../helpers/db.ts';
import { auth, createStreamOverApi, createTestPlatform, stopStream, type TestPlatform } from '../helpers/platform.ts';

let handle: DbHandle;
let p: TestPlatform;
const suffix = Math.random().toString(36).slice(2, 8);
const STREAMS = { main: `coco-${suffix}`, copy: `copy-${suffix}`, bad: `bad-${suffix}`, other: `other-${suffix}`, cli: `cli-${suffix}` };

interface CocoFile {
  categories: { id: number; name: string }[];
  images: { id: number; file_name: string; width: number; height: number; frame_id?: string; [k: string]: unknown }[];
  annotations: { id: number; image_id: number; category_id: number; bbox: number[]; [k: string]: unknown }[];
}
const samplesDir = () => inject('sampleFramesDir');
const generated = (): CocoFile => JSON.parse(fs.readFileSync(path.join(samplesDir(), 'dataset.json'), 'utf8'));
const image = (fileName: string) => fs.readFileSync(path.join(samplesDir(), fileName));

beforeAll(async () => {
  handle = await createTestDb();
  p = await createTestPlatform(handle);
  for (const id of Object.values(STREAMS)) await createStreamOverApi(p, id);
});
afterAll(async () => {
  for (const id of Object.values(STREAMS)) await stopStream(p, id);
  await p.close();
  await handle.close();
});

function form(annotations: unknown, files: Record<string, Uint8Array | string>, dataset?: unknown): FormData {
  const f = new FormData();
  f.append('annotations', new Blob([JSON.stringify(annotations)], { type: 'application/json' }), 'annotations.json');
  if (dataset !== undefined) f.append('dataset', new Blob([JSON.stringify(dataset)], { type: 'application/json' }), 'dataset.json');
  for (const [name, bytes] of Object.entries(files)) f.append('images', new Blob([bytes as BlobPart]), name);
  return f;
}
async function importCoco(stream: string, body: FormData, query = '') {
  const res = await p.app.request(`/v1/streams/${stream}/imports/coco${query}`, { method: 'POST', headers: auth(p.tokens.lead), body });
  return { status: res.status, body: await res.json() };
}
const allFiles = (coco: CocoFile) => Object.fromEntries(coco.images.map((im) => [im.file_name, image(im.file_name)]));
const rowsOf = async (stream: string) => ({
  frames: (await handle.db.select({ n: count() }).from(frames).where(eq(frames.streamId, stream)))[0].n,
  labels: (await handle.db.select({ n: count() }).from(labels).where(eq(labels.streamId, stream)))[0].n,
});
async function exportCoco(stream: string): Promise<CocoFile> {
  const res = await p.app.request(`/v1/labels/export?streamId=${stream}`, { headers: auth(p.tokens.lead) });
  expect(res.status).toBe(200);
  return res.json();
}
type Box = [string, number, number, number, number];
/** Boxes per frame content (storage keys are content addresses): class and pixels, sorted. */
function boxesByContent(coco: CocoFile): Map<string, Box[]> {
  const names = new Map(coco.categories.map((c) => [c.id, c.name]));
  const out = new Map<string, Box[]>(coco.images.map((im) => [im.file_name, []]));
  const byId = new Map(coco.images.map((im) => [im.id, im.file_name]));
  for (const a of coco.annotations) out.get(byId.get(a.image_id)!)!.push([names.get(a.category_id)!, a.bbox[0], a.bbox[1], a.bbox[2], a.bbox[3]]);
  for (const list of out.values()) sortBoxes(list);
  return out;
}
const sortBoxes = (boxes: Box[]) => boxes.sort((a, b) => a[0].localeCompare(b[0]) || a[1] - b[1] || a[2] - b[2]);
/** The same boxes to a hundredth of a pixel (the formats round differently). */
function expectSameBoxes(actual: Box[], expected: Box[]) {
  expect(actual.map((b) => b[0])).toEqual(expected.map((b) => b[0]));
  actual.forEach((b, i) => b.slice(1).forEach((v, k) => expect(v).toBeCloseTo(expected[i][k + 1] as number, 2)));
}

describe('COCO import', () => {
  it('lists in a dry run what would be created, and stores nothing', async () => {
    const coco = generated();
    const { status, body } = await importCoco(STREAMS.main, form(coco, allFiles(coco)), '?dryRun=true');
    expect(status).toBe(200);
    expect(body.totals).toEqual({ images: 24, newFrames: 24, newLabels: 24, boxes: coco.annotations.length, refused: 0, belowMinScore: 0 });
    expect(body.images[0]).toMatchObject({ fileName: coco.images[0].file_name, frameId: null, frame: 'new', label: 'new' });
    expect(await rowsOf(STREAMS.main)).toEqual({ frames: 0, labels: 0 });
    expect(fs.existsSync(path.join(p.storeDir, 'frames'))).toBe(false);
  });

  it('imports frames and boxes as labels; the same file again adds nothing', async () => {
    const coco = generated();
    const first = await importCoco(STREAMS.main, form(coco, allFiles(coco)));
    expect(first.status).toBe(201);
    expect(first.body.totals).toMatchObject({ images: 24, newFrames: 24, newLabels: 24, refused: 0 });
    expect(await rowsOf(STREAMS.main)).toEqual({ frames: 24, labels: 24 });
    // The boxes are the file's, normalised to the image; the camera is the file's camera_id.
    const im = coco.images[0];
    const [x, y, w, h] = coco.annotations.find((a) => a.image_id === im.id)!.bbox;
    const [stored] = await handle.db
      .select({ label: labels, frame: frames })
      .from(labels)
      .innerJoin(frames, eq(frames.id, labels.frameId))
      .where(eq(labels.frameId, first.body.images[0].frameId));
    expect(stored.label).toMatchObject({ source: 'import', decision: 'correct', streamId: STREAMS.main });
    expect(stored.frame.cameraId).toBe(im.camera_id);
    expect(stored.label.boxes).toContainEqual({
      className: 'vehicle',
      x1: expect.closeTo(x / 320, 6),
      y1: expect.closeTo(y / 240, 6),
      x2: expect.closeTo((x + w) / 320, 6),
      y2: expect.closeTo((y + h) / 240, 6),
    });

    const again = await importCoco(STREAMS.main, form(coco, allFiles(coco)));
    expect(again.status).toBe(200);
    expect(again.body.totals).toMatchObject({ images: 24, newFrames: 0, newLabels: 0 });
    expect(again.body.images.every((i: { frame: string; label: string }) => i.frame === 'stored' && i.label === 'stored')).toBe(true);
    const dry = await importCoco(STREAMS.main, form(coco, allFiles(coco)), '?dryRun=true');
    expect(dry.body.totals).toMatchObject({ newFrames: 0, newLabels: 0 });
    expect(await rowsOf(STREAMS.main)).toEqual({ frames: 24, labels: 24 });
  });

  it('refuses each bad entry with its reason, imports the rest, and keeps what was stored before', async () => {
    const coco = generated();
    const [a, b, c, d, e, f, g, h] = coco.images;
    const good = [a, b];
    const anns = (im: CocoFile['images'][number]) => coco.annotations.filter((x) => x.image_id === im.id);
    const file: CocoFile = {
      categories: [...coco.categories, { id: 9, name: 'unicorn' }],
      images: [
        ...good,
        { ...a, id: 98, file_name: 'twin.png' }, // a's pixels under another name
        c, // no file attached
        d, // a text file named .png
        { ...e, width: 640, height: 480 }, // says 640x480, the file is 320x240
        f, // one box outside the image
        g, // a box of a class the detector does not know
        h, // a crowd region
        { id: 99, file_name: 'x.png', height: 240 } as CocoFile['images'][number], // no width
      ],
      annotations: [
        ...anns(a),
        ...anns(b),
        ...anns(e),
        { id: 1001, image_id: f.id, category_id: 1, bbox: [300, 10, 50, 20] },
        ...anns(f),
        { id: 1002, image_id: g.id, category_id: 9, bbox: [10, 10, 20, 20] },
        { id: 1003, image_id: h.id, category_id: 1, bbox: [10, 10, 20, 20], iscrowd: 1 },
        { id: 1004, image_id: 777, category_id: 1, bbox: [10, 10, 20, 20] },
        { id: 1005, image_id: 98, category_id: 1, bbox: [12, 12, 20, 20] },
      ],
    };
    const files = {
      ...allFiles({ ...file, images: [a, b, e, f, g, h] }),
      [d.file_name]: 'just text',
      'stray.png': image(a.file_name),
      'twin.png': image(a.file_name),
    };
    const first = await importCoco(STREAMS.bad, form({ ...coco, images: [a], annotations: anns(a) }, { [a.file_name]: image(a.file_name) }));
    const before = await rowsOf(STREAMS.bad);
    // a's stored frame named by frame_id, with other boxes: still a's frame, so a second label of it.
    file.images.push({ ...a, id: 97, file_name: 'by-id.png', frame_id: first.body.images[0].frameId });
    file.annotations.push(...anns(a).map((x, i) => ({ ...x, id: 2001 + i, image_id: 97, bbox: [x.bbox[0] + 2, x.bbox[1], x.bbox[2], x.bbox[3]] })));

    const { status, body } = await importCoco(STREAMS.bad, form(file, files));
    expect(status).toBe(201);
    expect(body.images.map((i: { imageId: number }) => i.imageId)).toEqual([a.id, b.id]);
    const reasons = (entry: string, id: unknown) =>
      body.refused
        .filter((r: { entry: string; id: unknown }) => r.entry === entry && r.id === id)
        .map((r: { reason: string }) => r.reason)
        .join(' | ');
    expect(reasons('category', 9)).toMatch(/"unicorn" is not a class of the production detector/);
    expect(reasons('image', c.id)).toMatch(/no file named .* is attached/);
    expect(reasons('image', d.id)).toMatch(/not a PNG or JPEG image/);
    expect(reasons('image', e.id)).toMatch(/the file is 320x240, the annotations say 640x480/);
    expect(reasons('annotation', 1001)).toMatch(/lies outside the 320x240 image/);
    expect(reasons('image', f.id)).toMatch(/annotation 1001 was refused/);
    expect(reasons('annotation', 1002)).toMatch(/category_id 9/);
    expect(reasons('image', g.id)).toMatch(/annotation 1002/);
    expect(reasons('annotation', 1003)).toMatch(/crowd region/);
    expect(reasons('annotation', 1004)).toMatch(/image_id 777 is not an image of the file/);
    expect(reasons('image', 99)).toMatch(/width/);
    expect(reasons('image', 98)).toMatch(new RegExp(`the same image as ${a.file_name}, earlier in this import`));
    expect(reasons('image', 97)).toMatch(new RegExp(`the same image as ${a.file_name}, earlier in this import`));
    expect(reasons('file', 'stray.png')).toMatch(/no image of the annotations names this file/);
    // Only the two good images are stored (one of them was there already).
    expect(await rowsOf(STREAMS.bad)).toEqual({ frames: before.frames + 1, labels: before.labels + 1 });
  });

  it('refuses an unusable request with a 4xx naming the part, storing nothing', async () => {
    const coco = generated();
    const notMultipart = await p.app.request(`/v1/streams/${STREAMS.other}/imports/coco`, {
      method: 'POST',
      headers: auth(p.tokens.lead, { 'Content-Type': 'application/json' }),
      body: JSON.stringify(coco),
    });
    expect(notMultipart.status).toBe(415);
    const noAnnotations = new FormData();
    noAnnotations.append('images', new Blob([image(coco.images[0].file_name)]), coco.images[0].file_name);
    const missing = await importCoco(STREAMS.other, noAnnotations);
    expect(missing.status).toBe(400);
    expect(missing.body.errors).toEqual([expect.objectContaining({ field: 'annotations' })]);
    const broken = new FormData();
    broken.append('annotations', new Blob(['{"images": [']), 'a.json');
    expect((await importCoco(STREAMS.other, broken)).body.errors[0]).toMatchObject({ field: 'annotations', message: expect.stringMatching(/not JSON/) });
    const notCoco = await importCoco(STREAMS.other, form({ hello: 1 }, {}));
    expect(notCoco.status).toBe(400);
    expect(notCoco.body.detail).toMatch(/not a COCO dataset/);
    const resultsAlone = await importCoco(STREAMS.other, form([{ image_id: 1, category_id: 1, bbox: [1, 1, 5, 5], score: 0.9 }], {}));
    expect(resultsAlone.body.errors).toEqual([expect.objectContaining({ field: 'dataset' })]);
    const reviewer = await p.app.request(`/v1/streams/${STREAMS.other}/imports/coco`, {
      method: 'POST',
      headers: auth(p.tokens.reviewer),
      body: form(coco, {}),
    });
    expect(reviewer.status).toBe(403);
    expect(await rowsOf(STREAMS.other)).toEqual({ frames: 0, labels: 0 });
  });

  it("imports CVAT's COCO 1.0 export and a pycocotools results list", async () => {
    const cvat: CocoFile = JSON.parse(fs.readFileSync(path.join(import.meta.dirname, '../fixtures/cvat-coco-1.0.json'), 'utf8'));
    // CVAT names images without folders; the files are attached by the same bare names.
    const cvatFiles = Object.fromEntries(cvat.images.map((im) => [im.file_name, image(`images/${im.file_name}`)]));
    const imported = await importCoco(STREAMS.other, form(cvat, cvatFiles));
    expect(imported.status).toBe(201);
    expect(imported.body.totals).toMatchObject({ images: 2, newLabels: 2, boxes: cvat.annotations.length, refused: 0 });

    // A detector's output in pycocotools' results format, with the dataset it refers to: the
    // detections under minScore are left out and counted.
    const coco = generated();
    const dataset = { ...coco, images: coco.images.slice(2, 5), annotations: [] };
    const results = coco.annotations
      .filter((a) => dataset.images.some((im) => im.id === a.image_id))
      .flatMap((a) => [
        { image_id: a.image_id, category_id: a.category_id, bbox: a.bbox, score: 0.9 },
        { image_id: a.image_id, category_id: a.category_id, bbox: [1, 1, 4, 4], score: 0.2 },
      ]);
    const fromResults = await importCoco(STREAMS.other, form(results, allFiles(dataset), dataset), '?minScore=0.5');
    expect(fromResults.status).toBe(201);
    expect(fromResults.body).toMatchObject({
      format: 'results',
      totals: { images: 3, boxes: results.length / 2, belowMinScore: results.length / 2, refused: 0 },
    });
  });
});

describe('round trip', () => {
  it('exports COCO, imports it into another stream with the same labels, and again without files by frame_id', async () => {
    const exported = await exportCoco(STREAMS.main);
    expect(exported.images).toHaveLength(24);
    const files: Record<string, Uint8Array> = {};
    for (const im of exported.images) {
      const res = await p.app.request(`/v1/frames/${im.frame_id}/image`, { headers: auth(p.tokens.lead) });
      files[im.file_name] = new Uint8Array(await res.arrayBuffer());
    }
    const copied = await importCoco(STREAMS.copy, form(exported, files));
    expect(copied.body.totals).toMatchObject({ images: 24, newFrames: 24, newLabels: 24, refused: 0 });
    const copy = boxesByContent(await exportCoco(STREAMS.copy));
    const original = boxesByContent(exported);
    expect([...copy.keys()].sort()).toEqual([...original.keys()].sort());
    for (const [key, boxes] of original) expectSameBoxes(copy.get(key)!, boxes);

    // The export names each frame: imported back without files, it finds them and adds nothing.
    const back = await importCoco(STREAMS.main, form(exported, {}));
    expect(back.body.totals).toMatchObject({ images: 24, newFrames: 0, newLabels: 0, refused: 0 });
  });

  it('exports YOLO: a label file per image with the same boxes, the images, and data.yaml', async () => {
    const coco = await exportCoco(STREAMS.main);
    const res = await p.app.request(`/v1/labels/export/yolo?streamId=${STREAMS.main}`, { headers: auth(p.tokens.lead) });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/zip');
    const zip = unzipSync(new Uint8Array(await res.arrayBuffer()));
    const data = load(new TextDecoder().decode(zip['data.yaml'])) as { train: string; val: string; names: string[]; nc: number };
    expect(data).toMatchObject({ train: 'images/train', val: 'images/val' });
    expect(data.names).toEqual(coco.categories.map((c) => c.name));
    expect(data.nc).toBe(data.names.length);
    const labelFiles = Object.keys(zip).filter((n) => n.startsWith('labels/'));
    expect(labelFiles).toHaveLength(24);
    expect(Object.keys(zip).filter((n) => n.startsWith('images/'))).toHaveLength(24);
    // Every YOLO line converts back to the COCO export's box, in pixels, beside the frame's image.
    const original = boxesByContent(coco);
    for (const im of coco.images) {
      const name = labelFiles.find((n) => n.endsWith(`/${im.frame_id}.txt`))!;
      const split = name.split('/')[1];
      const stored = await p.app.request(`/v1/frames/${im.frame_id}/image`, { headers: auth(p.tokens.lead) });
      expect(zip[`images/${split}/${im.frame_id}.png`]).toEqual(new Uint8Array(await stored.arrayBuffer()));
      const yolo = new TextDecoder()
        .decode(zip[name])
        .split('\n')
        .filter(Boolean)
        .map((line): Box => {
          const [cls, cx, cy, w, h] = line.split(' ').map(Number);
          return [data.names[cls], (cx - w / 2) * im.width, (cy - h / 2) * im.height, w * im.width, h * im.height];
        });
      expectSameBoxes(sortBoxes(yolo), original.get(im.file_name)!);
    }
  });
});

describe('command line', () => {
  it('imports a dataset in batches with a dry run first, through the running API', async () => {
    const server = serve({ fetch: p.app.fetch, hostname: '127.0.0.1', port: 0 });
    await new Promise((r) => server.once('listening', r));
    const api = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    const run = (...args: string[]) =>
      promisify(execFile)(
        process.execPath,
        [
          '--import',
          'tsx',
          path.join(repoRoot, 'scripts', 'cli.ts'),
          'import-coco',
          path.join(samplesDir(), 'dataset.json'),
          '--stream',
          STREAMS.cli,
          '--batch',
          '10',
          '--api',
          api,
          ...args,
        ],
        { env: { ...process.env, DATAENGINE_TOKEN: p.tokens.lead } },
      );
    try {
      const dry = await run('--dry-run');
      expect(dry.stdout).toMatch(/dry run: would import 24 images \(24 new frames, 24 new labels, \d+ boxes\); 0 refused/);
      expect(await rowsOf(STREAMS.cli)).toEqual({ frames: 0, labels: 0 });
      const real = await run();
      expect(real.stdout).toMatch(/imported 24 images \(24 new frames, 24 new labels/);
      expect(await rowsOf(STREAMS.cli)).toEqual({ frames: 24, labels: 24 });
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});

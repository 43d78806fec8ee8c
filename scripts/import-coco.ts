// `npm run dataengine -- import-coco FILE --stream S [--images DIR] [--dry-run] [...]`: imports a
// COCO dataset (or, with --dataset, a pycocotools results list) into a stream through the running
// API. The dataset goes in requests of at most --batch images and --batch-mb of files, each
// carrying its images' annotations and every category, so any size fits the API's limits; the
// import is idempotent, so a run stopped part-way is finished by running it again.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { config } from '../config.ts';

const usage = `usage: npm run dataengine -- import-coco FILE --stream STREAM [--images DIR] [--dry-run]
       [--dataset FILE] (FILE is a results list; DATASET the COCO file it refers to) [--min-score X]
       [--camera ID] [--batch N] [--batch-mb MB]
       [--api URL] (default http://${config.API_HOST}:${config.API_PORT}; the token comes from DATAENGINE_TOKEN)
  Images are read from DIR/<file_name> (default: FILE's folder); an image without a file must name a frame of the stream by frame_id.`;

interface Result {
  totals: { images: number; newFrames: number; newLabels: number; boxes: number; refused: number; belowMinScore: number };
  refused: { entry: string; id: string | number | null; reason: string }[];
}
type Json = Record<string, unknown>;

export async function importCocoCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      stream: { type: 'string' },
      images: { type: 'string' },
      dataset: { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
      'min-score': { type: 'string' },
      camera: { type: 'string' },
      batch: { type: 'string', default: '200' },
      'batch-mb': { type: 'string', default: '64' },
      api: { type: 'string', default: `http://${config.API_HOST}:${config.API_PORT}` },
    },
  });
  const file = positionals[0];
  const token = process.env.DATAENGINE_TOKEN;
  if (!file || !values.stream) return fail(usage);
  if (!token) return fail('set DATAENGINE_TOKEN to a lead token (make up writes them to data/tokens.json)');
  const annotations = readJson(file);
  const dataset = values.dataset ? (readJson(values.dataset) as Json) : undefined;
  if (annotations === undefined || (values.dataset && dataset === undefined)) return 1;
  const results = Array.isArray(annotations);
  if (results && !dataset) return fail(`${file} is a results list: pass the dataset it refers to with --dataset`);
  const source = (results ? dataset : annotations) as Json;
  if (!Array.isArray(source.images)) return fail(`${results ? values.dataset : file}: not a COCO dataset (no images list)`);
  const imagesDir = values.images ?? path.dirname(file);
  const maxImages = Number(values.batch);
  const maxBytes = Number(values['batch-mb']) * 1024 * 1024;
  if (!(maxImages >= 1) || !(maxBytes > 0)) return fail('--batch and --batch-mb must be positive numbers');

  const query = new URLSearchParams({ dryRun: String(values['dry-run']) });
  if (values['min-score']) query.set('minScore', values['min-score']);
  if (values.camera) query.set('cameraId', values.camera);
  const url = `${values.api}/v1/streams/${encodeURIComponent(values.stream)}/imports/coco?${query}`;

  const total: Result = { totals: { images: 0, newFrames: 0, newLabels: 0, boxes: 0, refused: 0, belowMinScore: 0 }, refused: [] };
  const byImage = new Map<unknown, unknown[]>();
  for (const a of (results ? annotations : (source.annotations ?? [])) as Json[]) {
    const list = byImage.get(a?.image_id) ?? [];
    list.push(a);
    byImage.set(a?.image_id, list);
  }
  for (const batch of batches(source.images as Json[], imagesDir, maxImages, maxBytes)) {
    const ids = new Set(batch.map((im) => im.id));
    const anns = [...ids].flatMap((id) => byImage.get(id) ?? []);
    const part = { ...source, images: batch, annotations: results ? [] : anns };
    const form = new FormData();
    form.append('annotations', new Blob([JSON.stringify(results ? anns : part)], { type: 'application/json' }), 'annotations.json');
    if (results) form.append('dataset', new Blob([JSON.stringify(part)], { type: 'application/json' }), 'dataset.json');
    for (const im of batch) {
      const name = typeof im?.file_name === 'string' ? im.file_name : '';
      const local = path.join(imagesDir, name);
      if (name && fs.existsSync(local)) form.append('images', new Blob([fs.readFileSync(local)]), name);
    }
    const res = await fetch(url, { method: 'POST', headers: { Authorization: `Bearer ${token}` }, body: form });
    const body = (await res.json()) as Result & { detail?: string };
    if (!res.ok) return fail(`refused (${res.status}): ${body.detail ?? JSON.stringify(body)}`);
    for (const k of Object.keys(total.totals) as (keyof Result['totals'])[]) total.totals[k] += body.totals[k];
    total.refused.push(...body.refused);
    process.stdout.write(`\r${values['dry-run'] ? 'checked' : 'imported'} ${total.totals.images} images, ${total.totals.refused} refused`);
  }
  process.stdout.write('\n');
  for (const r of total.refused) console.log(`refused ${r.entry} ${r.id ?? ''}: ${r.reason}`);
  const t = total.totals;
  console.log(
    `${values['dry-run'] ? 'dry run: would import' : 'imported'} ${t.images} images (${t.newFrames} new frames, ${t.newLabels} new labels, ${t.boxes} boxes); ` +
      `${t.refused} refused${t.belowMinScore ? `; ${t.belowMinScore} detections under the minimum score left out` : ''}`,
  );
  return t.refused > 0 ? 1 : 0;
}

/** The images in groups under both limits (an image over the byte limit goes alone). */
function* batches(images: Json[], dir: string, maxImages: number, maxBytes: number): Generator<Json[]> {
  let batch: Json[] = [];
  let bytes = 0;
  for (const im of images) {
    const local = path.join(dir, typeof im?.file_name === 'string' ? im.file_name : '');
    const size = fs.existsSync(local) ? fs.statSync(local).size : 0;
    if (batch.length > 0 && (batch.length >= maxImages || bytes + size > maxBytes)) {
      yield batch;
      batch = [];
      bytes = 0;
    }
    batch.push(im);
    bytes += size;
  }
  if (batch.length > 0) yield batch;
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    fail(`${file}: ${(err as Error).message}`);
    return undefined;
  }
}

function fail(message: string): number {
  console.error(message);
  return 1;
}

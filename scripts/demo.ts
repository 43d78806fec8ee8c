// `make demo`: the closed loop on one machine, start to finish. A stream runs in-distribution,
// then its cameras switch to night; the drift monitor flags it; uncertain and sampled frames go
// to review, where a simulated reviewer (the generator's ground truth, with an error rate)
// labels them; retraining fine-tunes on those labels; the new model deploys to the loop; and
// accuracy on night frames recovers. Prints a timeline and writes data/demo/report.html.
//
// Everything is real: the Temporal dev server, the workflows, the Python trainer worker,
// pycocotools. It runs its own base model (trained here in a minute) so it never touches the
// seed models or the `make up` data.
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { asc, countDistinct, eq, gte, inArray, like, or } from 'drizzle-orm';
import { createRetrainActivities } from '../activities/retrain.ts';
import { config, goldSettings, repoRoot } from '../config.ts';
import { openVectorIndex } from '../storage/open-vector-index.ts';
import { TemporalLoopControl } from '../control/loop-control.ts';
import { openDb } from '../db/client.ts';
import { fromCocoBbox, toCocoBbox } from '../db/coco.ts';
import { saveDriftSettings } from '../db/drift.ts';
import { savePolicy } from '../db/policies.ts';
import { claimNext, submitDecision, type LabelBox } from '../db/queue.ts';
import { driftReports, frames, labels, predictions, retrainRuns } from '../db/schema.ts';
import { createStream } from '../db/streams.ts';
import { createUser } from '../db/users.ts';
import { driftSettingsSchema } from '../drift/settings.ts';
import { ingestFrame } from '../ingest/ingest-frame.ts';
import { ModelCache } from '../models/model-cache.ts';
import { registerModel, setProduction } from '../models/registry.ts';
import { productionModel } from '../db/models.ts';
import { samplingPolicySchema } from '../policies/sampling-policy.ts';
import { LocalBlobStore, sha256Hex } from '../storage/blob-store.ts';
import { startWorkers } from '../workers/start-workers.ts';
import { driftWorkflowId, searchAttributes, streamWorkflowId } from '../workflows/shared.ts';
import { requireTool, temporalCli, trainerPython } from './tools.ts';

const ERROR_RATE = Number(process.env.DEMO_REVIEWER_ERROR_RATE ?? 0.05);
const CAMERA_FPS = 8;
const LABELS_TO_RETRAIN = 150;
/** Frames per point of the live mAP curve. */
const LIVE_WINDOW = 120;
// The generator's classes, read from the datasets it writes (COCO categories, ids from 1).
let CLASSES: string[] = [];
const outDir = path.join(repoRoot, 'data', 'demo');
const t0 = Date.now();
const timeline: { at: number; event: string; tag?: string }[] = [];
/** Something that happened at `when`, on the demo's clock; a tag puts it on the charts. */
const markAt = (when: Date, event: string, tag?: string) => {
  const at = (when.getTime() - t0) / 1000;
  timeline.push({ at, event, tag });
  timeline.sort((a, b) => a.at - b.at);
  console.log(`[${at.toFixed(1).padStart(6)} s] ${event}`);
};
const mark = (event: string, tag?: string) => markAt(new Date(), event, tag);
// Asynchronous, so the workers in this process keep running their workflow tasks meanwhile.
const py = async (...args: string[]) =>
  (await promisify(execFile)(requireTool(trainerPython), ['-m', 'dataengine_trainer', ...args], { maxBuffer: 64 * 1024 * 1024 })).stdout;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface LivePoint {
  /** When the window's last frame was sent (seconds since the demo started). */
  t: number;
  map50: number;
  night: boolean;
  models: string[];
}

interface Coco {
  categories: { id: number; name: string }[];
  images: { id: number; file_name: string; width: number; height: number; camera_id: string }[];
  annotations: { image_id: number; category_id: number; bbox: number[] }[];
}

async function main() {
  fs.rmSync(outDir, { recursive: true, force: true });
  fs.mkdirSync(outDir, { recursive: true });
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'demo-'));
  const storeDir = path.join(work, 'store');
  const store = new LocalBlobStore(storeDir);
  Runtime.install({ logger: new DefaultLogger('WARN') });

  // 1. A base model trained on clear frames, with its checkpoint in the store (so retraining
  //    fine-tunes it) and a drift reference of independent held-out scenes.
  mark('training the base detector and box model on 800 clear frames');
  await py('generate', '--out', path.join(work, 'base'), '--scenario', 'clear', '--count', '800', '--cameras', '4', '--seed', '0');
  const baseDir = path.join(storeDir, 'models', 'detection', 'base');
  await py('train-detector', '--dataset', path.join(work, 'base', 'dataset.json'), '--out', baseDir, '--version', 'base', '--epochs', '4');
  await py(
    'train-box',
    '--dataset',
    path.join(work, 'base', 'dataset.json'),
    '--out',
    path.join(storeDir, 'models', 'box', 'base'),
    '--version',
    'base',
    '--epochs',
    '1',
  );
  await py(
    'generate',
    '--out',
    path.join(work, 'ref'),
    '--scenario',
    'clear',
    '--count',
    '160',
    '--cameras',
    '4',
    '--seed',
    '0',
    '--start-index',
    '1000',
    '--stride',
    '16',
  );
  await py(
    'reference',
    '--model',
    path.join(baseDir, 'model.onnx'),
    '--dataset',
    path.join(work, 'ref', 'dataset.json'),
    '--out',
    path.join(baseDir, 'reference.json'),
  );

  const handle = await openDb({});
  const db = handle.db;
  for (const kind of ['detection', 'box'] as const) {
    const dir = path.join(storeDir, 'models', kind, 'base');
    const reference = kind === 'detection' ? JSON.parse(fs.readFileSync(path.join(dir, 'reference.json'), 'utf8')) : undefined;
    await registerModel(db, store, { kind, version: 'base', bytes: fs.readFileSync(path.join(dir, 'model.onnx')), reference });
    await setProduction(db, kind, 'base', { triggeredBy: 'demo' });
  }

  // 2. Temporal, the workers, and the Python training worker.
  let env: TestWorkflowEnvironment | undefined;
  let address = process.env.TEMPORAL_ADDRESS;
  if (!address) {
    env = await TestWorkflowEnvironment.createLocal({
      server: { executable: { type: 'existing-path', path: requireTool(temporalCli) }, searchAttributes, extraArgs: ['--log-level', 'error'] },
    });
    address = env.address;
  }
  const connection = await Connection.connect({ address });
  const client = new Client({ connection });
  const suffix = Date.now().toString(36);
  const scoringQueue = `demo-scoring-${suffix}`;
  const controlQueue = `demo-control-${suffix}`;
  const trainingQueue = `demo-training-${suffix}`;
  const loops = new TemporalLoopControl(client, { batchSize: 16, maxWaitMs: 500, taskQueue: scoringQueue, controlQueue });
  const models = new ModelCache(store, { intraOpThreads: 2, minScore: 0.1 });
  const native = await NativeConnection.connect({ address });
  const workers = await startWorkers({
    connection: native,
    namespace: 'default',
    db,
    store,
    detectors: models,
    vectorIndex: openVectorIndex(db, config),
    scoringQueue,
    controlQueue,
    idleWaitMs: 1000,
    controlActivities: createRetrainActivities({ db, store, loopControl: loops, warm: (k, v) => models.warm(k, v) }),
  });
  const trainer = spawn(requireTool(trainerPython), ['-m', 'dataengine_trainer', 'worker', '--task-queue', trainingQueue, '--address', address], {
    env: { ...process.env, STORE_DIR: storeDir },
    stdio: ['ignore', 'ignore', 'inherit'],
  });

  // 3. The stream: band routing plus a generous random sample, a fast drift monitor.
  await createStream(db, { id: 'demo', name: 'demo', createdBy: 'demo' });
  await savePolicy(db, 'demo', samplingPolicySchema.parse({ randomRate: 0.3, diversityMinDistance: 0, dailyBudget: null }), 'demo');
  // The camera sends two frames per 16-frame scene sequence, so a window thinned by 2 per camera
  // holds independent scenes, as the KS test assumes. A check every 5 s instead of 5 minutes, of
  // the stream and each of its four cameras, calls for a smaller alpha to keep false alarms rare
  // (night moves p below 1e-9 within seconds). A drift-started run waits for
  // LABELS_TO_RETRAIN frames reviewed after the drift before it snapshots.
  await saveDriftSettings(
    db,
    'demo',
    // Consecutive 40-frame windows of one scene sequence are not independent samples: a check
    // now and then tells two of them apart on a stream that has not changed. Acting on 2 drifted
    // checks of the last 3 keeps those single flags from boosting or retraining.
    driftSettingsSchema.parse({
      windowSize: 40,
      windowStride: 2,
      intervalSeconds: 5,
      alpha: 0.001,
      retrainMinLabels: LABELS_TO_RETRAIN,
      confirmDrifted: 2,
      confirmChecks: 3,
    }),
    'demo',
  );
  await loops.ensureLoop('demo');
  // The monitor starts retraining by itself; the demo only sizes the runs it starts.
  const retrainSettings = { trainingQueue, epochs: 6, boxEpochs: 1, gate: { maxMapDrop: 0, maxClassDrop: 0.5 } };
  await client.workflow.start('driftMonitor', {
    taskQueue: controlQueue,
    workflowId: driftWorkflowId('demo'),
    args: [{ streamId: 'demo', autoRetrain: true, retrain: retrainSettings }],
    workflowIdConflictPolicy: 'TERMINATE_EXISTING',
  });

  // Ground truth of every frame the camera sends, for the simulated reviewer.
  const truth = new Map<string, LabelBox[]>();
  const load = (dir: string) => {
    const coco = JSON.parse(fs.readFileSync(path.join(dir, 'dataset.json'), 'utf8')) as Coco;
    CLASSES = [...coco.categories].sort((a, b) => a.id - b.id).map((c) => c.name);
    return coco.images.map((im) => {
      const bytes = fs.readFileSync(path.join(dir, im.file_name));
      const annotations = coco.annotations.filter((a) => a.image_id === im.id);
      truth.set(
        sha256Hex(bytes),
        annotations.map((a) => fromCocoBbox(CLASSES[a.category_id - 1], a.bbox, im.width, im.height)),
      );
      return { bytes, camera: im.camera_id, file: path.join(dir, im.file_name), width: im.width, height: im.height, annotations };
    });
  };
  await py(
    'generate',
    '--out',
    path.join(work, 'clear'),
    '--scenario',
    'clear',
    '--count',
    '240',
    '--cameras',
    '4',
    '--seed',
    '0',
    '--start-index',
    '2000',
    '--stride',
    '8',
  );
  await py(
    'generate',
    '--out',
    path.join(work, 'night'),
    '--scenario',
    'night',
    '--count',
    '2400',
    '--cameras',
    '4',
    '--seed',
    '0',
    '--start-index',
    '3000',
    '--stride',
    '8',
  );
  // Held-out frames of both looks, later in each camera's sequence than anything above.
  for (const scenario of ['night', 'clear']) {
    await py(
      'generate',
      '--out',
      path.join(work, `eval-${scenario}`),
      '--scenario',
      scenario,
      '--count',
      '160',
      '--cameras',
      '4',
      '--seed',
      '0',
      '--start-index',
      '9000',
      '--stride',
      '16',
    );
  }
  const camera = [...load(path.join(work, 'clear')), ...load(path.join(work, 'night'))];
  const shiftAt = 240;

  const evaluate = async (modelKey: string, set: string) =>
    JSON.parse(await py('evaluate', '--model', path.join(storeDir, modelKey), '--dataset', path.join(work, set, 'dataset.json'))).map50 as number;
  // mAP@0.5 of what the loop actually served: the stored predictions of each window of frames
  // the camera sent, scored against the generator's ground truth by pycocotools.
  const liveAccuracy = async (sentFrames: { frameId: string; at: number; index: number }[]) => {
    const windows: LivePoint[] = [];
    for (let w = 0; w < sentFrames.length; w += LIVE_WINDOW) {
      const chunk = sentFrames.slice(w, w + LIVE_WINDOW);
      if (chunk.length < LIVE_WINDOW / 2) break;
      const images = chunk.map((f, i) => ({ id: i + 1, file_name: camera[f.index].file, width: camera[f.index].width, height: camera[f.index].height }));
      const annotations = chunk
        .flatMap((f, i) =>
          camera[f.index].annotations.map((a) => ({ image_id: i + 1, category_id: a.category_id, bbox: a.bbox, area: a.bbox[2] * a.bbox[3], iscrowd: 0 })),
        )
        .map((a, k) => ({ id: k + 1, ...a }));
      const imageOf = new Map(chunk.map((f, i) => [f.frameId, i + 1]));
      const rows = await db
        .select()
        .from(predictions)
        .where(
          inArray(
            predictions.frameId,
            chunk.map((f) => f.frameId),
          ),
        );
      const versions = [...new Set(rows.map((r) => r.modelVersion))];
      const detections = rows.map((r) => {
        const image = imageOf.get(r.frameId)!;
        const { width, height } = camera[chunk[image - 1].index];
        return { image_id: image, category_id: CLASSES.indexOf(r.className) + 1, bbox: toCocoBbox(r, width, height), score: r.score };
      });
      const gtFile = path.join(work, `live-${w}.json`);
      const dtFile = path.join(work, `live-${w}-detections.json`);
      fs.writeFileSync(gtFile, JSON.stringify({ images, annotations, categories: CLASSES.map((name, i) => ({ id: i + 1, name })) }));
      fs.writeFileSync(dtFile, JSON.stringify(detections));
      const map50 = JSON.parse(await py('evaluate', '--dataset', gtFile, '--detections', dtFile)).map50 as number;
      windows.push({ t: chunk.at(-1)!.at, map50, night: chunk[0].index >= shiftAt, models: versions });
    }
    return windows;
  };
  const before = {
    night: await evaluate('models/detection/base/model.onnx', 'eval-night'),
    clear: await evaluate('models/detection/base/model.onnx', 'eval-clear'),
  };
  mark(`base model: mAP@0.5 clear ${before.clear.toFixed(3)}, night ${before.night.toFixed(3)}`);

  // 4. The simulated reviewer: labels every routed task with the ground truth, sometimes wrong.
  const { user: oracle } = await createUser(db, { name: 'oracle', role: 'reviewer' });
  let reviewing = true;
  let seed = 7;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const reviewer = (async () => {
    while (reviewing) {
      const claim = await claimNext(db, { userId: oracle.id, leaseSeconds: 60 });
      if (!claim) {
        await sleep(200);
        continue;
      }
      const [frame] = await db.select().from(frames).where(eq(frames.id, claim.task.frameId));
      const boxes = (truth.get(frame.contentHash) ?? []).filter(() => rand() >= ERROR_RATE);
      await submitDecision(db, { taskId: claim.task.id, userId: oracle.id, decision: 'correct', boxes }, goldSettings(config));
    }
  })();

  // 5. The camera, in the background at CAMERA_FPS: clear frames, then night until the demo ends.
  let streaming = true;
  let shiftTime: Date | null = null;
  const sent: { frameId: string; at: number; index: number }[] = [];
  const cameraDone = (async () => {
    for (const [i, f] of camera.entries()) {
      if (!streaming) break;
      if (i === shiftAt) {
        shiftTime = new Date();
        mark('the cameras switch to night', 'night');
      }
      const started = Date.now();
      const { frameId, created } = await ingestFrame(
        { db, store, maxFrameBytes: 1e7, maxFramePixels: 4e7 },
        { streamId: 'demo', cameraId: f.camera, capturedAt: new Date(), contentType: 'image/png', bytes: f.bytes, source: 'http' },
      );
      // A frame identical to an earlier one (an empty night street, say) is stored, and scored, once.
      if (created) sent.push({ frameId, at: (Date.now() - t0) / 1000, index: i });
      await sleep(Math.max(0, 1000 / CAMERA_FPS - (Date.now() - started)));
    }
  })();
  mark(`camera streaming clear frames at ${CAMERA_FPS} frames/s`, 'camera');
  const waitFor = async <T>(what: string, check: () => Promise<T | undefined | null | false>, ms: number): Promise<T> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = await check();
      if (v) return v;
      if (Date.now() > deadline) throw new Error(`demo: timed out waiting for ${what}`);
      await sleep(250);
    }
  };

  // 6. The drift monitor flags the shift and starts a retraining run, which waits for reviews of
  //    the shifted frames, then trains, evaluates, passes the gate and deploys. Times come from
  //    the records themselves; frames are counted from the shift to each moment.
  const shiftedAt = await waitFor('the shift', async () => shiftTime, 600_000);
  const framesAfterShift = (at: Date) => sent.filter((f) => f.index >= shiftAt && t0 + f.at * 1000 <= at.getTime()).length;
  // The stream's reports and its cameras' ('demo/cam-0'...): either can start a retraining run.
  const reports = () =>
    db
      .select()
      .from(driftReports)
      .where(or(eq(driftReports.segmentKey, 'demo'), like(driftReports.segmentKey, 'demo/%')))
      .orderBy(asc(driftReports.createdAt));
  const flagged = await waitFor('drift', async () => (await reports()).find((x) => x.drift && x.createdAt >= shiftedAt), 600_000);
  const falseAlarms = (await reports()).filter((x) => x.drift && x.createdAt < shiftedAt).length;
  markAt(
    flagged.createdAt,
    `drift flagged on ${flagged.segmentKey}, ${framesAfterShift(flagged.createdAt)} frames after the shift (${(flagged.report as { summary: string }).summary}); ${falseAlarms} false alarms before it`,
    'drift',
  );
  const started = await waitFor(
    'the drift-started retraining run',
    async () => (await db.select().from(retrainRuns).where(eq(retrainRuns.trigger, 'drift')).orderBy(asc(retrainRuns.createdAt)))[0],
    120_000,
  );
  const runId = started.id;
  markAt(
    started.createdAt,
    `drift monitor started retraining ${runId}${started.createdAt < shiftedAt ? ' (on a false alarm before the shift)' : ''}, ${framesAfterShift(started.createdAt)} frames after the shift; it waits for ${LABELS_TO_RETRAIN} frames reviewed since the drift`,
    'run',
  );
  const snapshotAt = await waitFor(
    'reviews',
    async () => {
      const [r] = await db.select().from(retrainRuns).where(eq(retrainRuns.id, runId));
      const snap = (r.steps as { name: string; at: string }[]).find((s) => s.name === 'snapshot');
      return snap && new Date(snap.at);
    },
    600_000,
  );
  const decided = (
    await db
      .select({ n: countDistinct(labels.frameId) })
      .from(labels)
      .where(gte(labels.createdAt, started.createdAt))
  )[0].n;
  markAt(
    snapshotAt,
    `retraining snapshots the labels and trains, ${framesAfterShift(snapshotAt)} frames after the shift (${decided} frames reviewed since the run started, reviewer error rate ${ERROR_RATE})`,
    'train',
  );
  const result = (await client.workflow.getHandle(runId).result()) as { status: string; detail: string };
  const [run] = await db.select().from(retrainRuns).where(eq(retrainRuns.id, runId));
  mark(`retraining finished: ${result.status} (${result.detail})`);
  let after = before;
  let servingAt: Date | null = null;
  if (result.status === 'deployed') {
    await waitFor('the loop to switch models', async () => (await loops.status('demo'))?.modelVersion === runId, 60_000);
    servingAt = new Date();
    markAt(servingAt, `new model ${runId} serving in the loop, ${framesAfterShift(servingAt)} frames after the shift`, 'new model');
    // Two more windows of live accuracy, served by the new model only.
    const more = sent.length + 2 * LIVE_WINDOW + (LIVE_WINDOW - (sent.length % LIVE_WINDOW));
    await waitFor('frames served by the new model', async () => sent.length >= Math.min(more, camera.length), 120_000);
    after = {
      night: await evaluate(`models/detection/${runId}/model.onnx`, 'eval-night'),
      clear: await evaluate(`models/detection/${runId}/model.onnx`, 'eval-clear'),
    };
  }
  streaming = false;
  await cameraDone;
  await waitFor('the loop to score every frame sent', async () => ((await loops.status('demo'))?.totals.framesScored ?? 0) >= sent.length, 120_000);
  if (servingAt) {
    // A stream whose model has learnt the shift goes quiet: once a drift-started run deployed,
    // the stream is judged against its own frames under the new model.
    const since = servingAt;
    const checksAfter = async () => (await reports()).filter((x) => x.createdAt > since);
    await waitFor('drift checks after the deploy', async () => (await checksAfter()).length >= 6, 180_000);
    const checks = await checksAfter();
    const flaggedAfter = checks.filter((x) => x.drift).length;
    const confirmedAfter = checks.filter((x) => (x.report as { confirmation?: { status: string } }).confirmation?.status === 'confirmed').length;
    mark(
      `after the deploy: ${flaggedAfter} of ${checks.length} drift checks flagged drift, ${confirmedAfter} confirmed and acted on (the reference is now the stream's own frames under the new model); last check: ${(checks[checks.length - 1].report as { summary: string }).summary}`,
    );
  }
  const live = await liveAccuracy(sent);
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
  const liveBy = (model: string) => mean(live.filter((p) => p.night && p.models.length === 1 && p.models[0] === model).map((p) => p.map50));
  mark(
    `live mAP@0.5 of night frames as served: ${liveBy('base').toFixed(3)} by the base model${result.status === 'deployed' ? `, ${liveBy(runId).toFixed(3)} by the retrained one` : ' (the retrained model was not deployed)'}`,
  );
  mark(
    `mAP@0.5 on held-out scenes: night ${before.night.toFixed(3)} -> ${after.night.toFixed(3)}; clear ${before.clear.toFixed(3)} -> ${after.clear.toFixed(3)}`,
  );

  // 7. The report: timeline, mAP before/after, and the drift p-value over time.
  const points = (await reports())
    .filter((r) => r.segmentKey === 'demo')
    .map((r) => ({ t: (r.createdAt.getTime() - t0) / 1000, p: Math.max(r.minAdjustedP, 1e-12), drift: r.drift }));
  fs.writeFileSync(
    path.join(outDir, 'report.html'),
    renderReport({ timeline, points, live, before, after, run: run ?? null, production: (await productionModel(db, 'detection'))?.version ?? '' }),
  );
  console.log(`\nreport: ${path.relative(process.cwd(), path.join(outDir, 'report.html'))}`);

  reviewing = false;
  await reviewer;
  // Workers first, so no activity finishes against a terminated workflow.
  trainer.kill('SIGTERM');
  await workers.shutdown();
  for (const id of [streamWorkflowId('demo'), driftWorkflowId('demo')])
    await client.workflow
      .getHandle(id)
      .terminate('demo over')
      .catch(() => undefined);
  await native.close();
  await connection.close();
  await models.close();
  await handle.close();
  await env?.teardown();
  fs.rmSync(work, { recursive: true, force: true });
}

function renderReport(r: {
  timeline: { at: number; event: string; tag?: string }[];
  points: { t: number; p: number; drift: boolean }[];
  live: LivePoint[];
  before: { night: number; clear: number };
  after: { night: number; clear: number };
  run: unknown;
  production: string;
}): string {
  const W = 720;
  const H = 220;
  // The charts start when the camera does; the timeline below keeps the whole demo.
  const tagged = r.timeline.filter((e) => e.tag);
  const minT = tagged.find((e) => e.tag === 'camera')?.at ?? 0;
  const maxT = Math.max(minT + 1, ...r.points.map((p) => p.t), ...tagged.map((e) => e.at), ...r.live.map((p) => p.t));
  const x = (t: number) => 40 + ((t - minT) / (maxT - minT)) * (W - 60);
  const events = tagged
    .map(
      (e, i) =>
        `<line x1="${x(e.at)}" x2="${x(e.at)}" y1="15" y2="${H - 30}" stroke="#bbb" stroke-dasharray="3 3"><title>${e.event.replace(/</g, '&lt;')}</title></line><text x="${x(e.at) + 2}" y="${12 + (i % 2) * 11}" font-size="10" fill="#666">${e.tag}</text>`,
    )
    .join('');
  const step = Math.max(10, Math.ceil((maxT - minT) / 8 / 10) * 10);
  const xTicks = Array.from(
    { length: Math.floor((maxT - minT) / step) + 1 },
    (_, i) => `<text x="${x(minT + i * step) - 6}" y="${H - 16}" font-size="10">${i * step}</text>`,
  ).join('');
  const axes = `<line x1="40" y1="${H - 30}" x2="${W - 20}" y2="${H - 30}" stroke="#333"/><line x1="40" y1="15" x2="40" y2="${H - 30}" stroke="#333"/>${xTicks}<text x="${W / 2 - 60}" y="${H - 2}" font-size="12">seconds since the camera started</text>`;
  const path = (pts: { x: number; y: number }[]) => pts.map((p, i) => `${i ? 'L' : 'M'}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ');

  // Live mAP@0.5 of the served predictions: grey while the base model served, blue after.
  const ym = (m: number) => H - 30 - m * (H - 50);
  const live = r.live.map((p) => ({
    x: x(p.t),
    y: ym(p.map50),
    colour: p.models.length === 1 && p.models[0] === 'base' ? '#888' : p.models.includes('base') ? '#a6c' : '#4a90d9',
    p,
  }));
  const liveDots = live
    .map(
      (d) =>
        `<circle cx="${d.x.toFixed(1)}" cy="${d.y.toFixed(1)}" r="4" fill="${d.colour}"><title>${d.p.night ? 'night' : 'clear'}: ${d.p.map50.toFixed(3)} (${d.p.models.join(', ')})</title></circle>`,
    )
    .join('');
  const ticks = [0, 0.5, 1].map((m) => `<text x="8" y="${ym(m) + 4}" font-size="11">${m}</text>`).join('');

  const yp = (p: number) => 20 + (-Math.log10(p) / 12) * (H - 50);
  const pDots = r.points.map((p) => `<circle cx="${x(p.t).toFixed(1)}" cy="${yp(p.p).toFixed(1)}" r="3" fill="${p.drift ? '#d33' : '#3a3'}"/>`).join('');
  const bars = (['clear', 'night'] as const)
    .map(
      (k, i) =>
        `<rect x="${60 + i * 160}" y="${200 - r.before[k] * 150}" width="50" height="${r.before[k] * 150}" fill="#999"/><rect x="${115 + i * 160}" y="${200 - r.after[k] * 150}" width="50" height="${r.after[k] * 150}" fill="#4a90d9"/><text x="${85 + i * 160}" y="220">${k}</text><text x="${60 + i * 160}" y="${195 - r.before[k] * 150}" font-size="11">${r.before[k].toFixed(2)}</text><text x="${115 + i * 160}" y="${195 - r.after[k] * 150}" font-size="11">${r.after[k].toFixed(2)}</text>`,
    )
    .join('');
  return `<!doctype html><meta charset="utf-8"><title>dataengine closed-loop demo</title>
<style>body{font:14px system-ui;margin:24px;max-width:800px} td{padding:2px 8px}</style>
<h1>Closed-loop demo</h1>
<h2>Live mAP@0.5 of what the loop served, per ${LIVE_WINDOW} frames (grey: base model, blue: retrained, purple: both)</h2>
<svg width="${W}" height="${H}">${axes}${ticks}${events}<path d="${path(live)}" fill="none" stroke="#555"/>${liveDots}</svg>
<h2>Drift: smallest corrected p-value per check (log scale; red = drift)</h2>
<svg width="${W}" height="${H}">${axes}
<line x1="40" x2="${W - 20}" y1="${yp(0.05)}" y2="${yp(0.05)}" stroke="#d33" stroke-dasharray="4 2"/><text x="${W - 90}" y="${yp(0.05) - 4}" font-size="11">alpha 0.05</text>
${events}<path d="${path(r.points.map((p) => ({ x: x(p.t), y: yp(p.p) })))}" fill="none" stroke="#555"/>${pDots}</svg>
<h2>mAP@0.5 on held-out scenes before (grey) and after (blue) retraining</h2>
<svg width="400" height="230">${bars}</svg>
<h2>Timeline</h2><table>${r.timeline.map((e) => `<tr><td>${e.at.toFixed(1)} s</td><td>${e.event.replace(/</g, '&lt;')}</td></tr>`).join('')}</table>
<h2>Live mAP@0.5</h2><table><tr><th>sent by</th><th>frames</th><th>mAP@0.5</th><th>served by</th></tr>${r.live.map((p) => `<tr><td>${p.t.toFixed(1)} s</td><td>${p.night ? 'night' : 'clear'}</td><td>${p.map50.toFixed(3)}</td><td>${p.models.join(', ')}</td></tr>`).join('')}</table>
<p>Production detector at the end: ${r.production}</p>`;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

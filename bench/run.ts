// `npm run bench`: every figure the issues ask for, measured in one run on this machine, each
// beside a baseline measured in the same run. Uses TEMPORAL_ADDRESS if set, else starts the
// Temporal CLI dev server; PGlite in memory (and Postgres too when DATABASE_URL is set).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { openDb } from '../db/client.ts';
import { requireTool, temporalCli, trainerPython } from '../scripts/tools.ts';
import { searchAttributes } from '../workflows/shared.ts';
import { benchBoxAssist } from './box-assist.ts';
import { benchDrift } from './drift.ts';
import { benchIngestMemory } from './ingest-memory.ts';
import { benchLabelEfficiency, defaultLabelEfficiency, quickLabelEfficiency, summariseSaved } from './label-efficiency.ts';
import { benchLabelNoise, defaultLabelNoise } from './label-noise.ts';
import { benchLoop } from './loop.ts';
import { benchMetrics } from './metrics.ts';
import { benchObjectHeadCost, benchObjectSearch, benchPropagation } from './objects.ts';
import { createTestDb } from '../test/helpers/db.ts';
import { config } from '../config.ts';
import { benchInt8 } from './int8.ts';
import { benchUpMemory } from './up-memory.ts';
import { benchModels } from './models.ts';
import { benchClaimDepth, benchQueue } from './queue.ts';
import { benchRetrain } from './retrain.ts';
import { benchScale } from './scale.ts';
import { benchVideo } from './video.ts';

Runtime.install({ logger: new DefaultLogger('WARN') });
// Names of benchmarks to run (all when none); `scenarios=night`, `seeds=1,2`, `budgets=50,100` and
// `policies=ranked,random` narrow the label benchmark.
const args = process.argv.slice(2);
const only = args.filter((a) => !a.includes('='));
const listArg = (name: string) =>
  args
    .find((a) => a.startsWith(`${name}=`))
    ?.slice(name.length + 1)
    .split(',');
const want = (name: string) => only.length === 0 || only.includes(name);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-'));
execFileSync(requireTool(trainerPython), ['-m', 'dataengine_trainer', 'generate', '--out', tmp, '--count', '480', '--cameras', '4', '--seed', '42']);
const coco = JSON.parse(fs.readFileSync(path.join(tmp, 'dataset.json'), 'utf8')) as { images: { file_name: string }[] };
const frames = coco.images.map((im) => fs.readFileSync(path.join(tmp, im.file_name)));
console.log(`# dataengine benchmarks (${new Date().toISOString()}, ${os.cpus().length} cores)`);

const m = await benchModels(frames);
if (want('int8')) await benchInt8(frames);
let env: TestWorkflowEnvironment | undefined;
let address = process.env.TEMPORAL_ADDRESS;
if (!address && (want('loop') || want('retrain') || want('video') || want('scale'))) {
  env = await TestWorkflowEnvironment.createLocal({
    server: { executable: { type: 'existing-path', path: requireTool(temporalCli) }, searchAttributes, extraArgs: ['--log-level', 'error'] },
  });
  address = env.address;
}
if (want('loop')) {
  // Decoding plus bare inference at batch 16 is the loop's baseline.
  const pglite = await openDb({});
  await benchLoop(pglite, 'PGlite', address!, frames, m.detector);
  await pglite.close();
  if (process.env.DATABASE_URL) {
    const pg = await openDb({ databaseUrl: process.env.DATABASE_URL });
    await benchLoop(pg, 'Postgres', address!, frames, m.detector);
    await pg.close();
  }
}
if (want('queue')) {
  const pglite = await openDb({});
  for (const clients of [32, 64]) await benchQueue(pglite, 'PGlite', clients);
  await benchClaimDepth(pglite, 'PGlite');
  await pglite.close();
  if (process.env.DATABASE_URL) {
    const pg = await openDb({ databaseUrl: process.env.DATABASE_URL, poolSize: 40 });
    for (const clients of [32, 64]) await benchQueue(pg, 'Postgres', clients);
    await benchClaimDepth(pg, 'Postgres');
    await pg.close();
  }
}
if (want('box')) {
  const db = await openDb({});
  await benchBoxAssist(db, frames[0], m.boxBareP50);
  await db.close();
}
if (want('drift')) await benchDrift();
if (want('ingest')) await benchIngestMemory();
if (want('metrics')) await benchMetrics();
// The two slow ones (tens of minutes each): they train models.
const resultsDir = path.join(path.dirname(new URL(import.meta.url).pathname), 'results');
fs.mkdirSync(resultsDir, { recursive: true });
// `labels quick`: one shift, one seed, two budgets (minutes); its results go to their own file.
// `labels summarise`: the tables of the saved full run (one stopped part-way too), without running.
if (want('labels') && only.includes('summarise')) {
  console.log(summariseSaved(path.join(resultsDir, 'label-efficiency.json')));
} else if (want('labels')) {
  const quick = only.includes('quick');
  const opts = quick ? quickLabelEfficiency : defaultLabelEfficiency;
  const narrowed = {
    ...opts,
    scenarios: listArg('scenarios') ?? opts.scenarios,
    seeds: listArg('seeds')?.map(Number) ?? opts.seeds,
    budgets: listArg('budgets')?.map(Number) ?? opts.budgets,
    policies: (listArg('policies') as typeof opts.policies | undefined) ?? opts.policies,
    minFramePasses: Number(listArg('passes')?.[0] ?? opts.minFramePasses),
  };
  if (!(narrowed.minFramePasses > 0)) throw new Error(`passes= must be a positive number of frame passes, got ${listArg('passes')?.[0]}`);
  await benchLabelEfficiency(narrowed, resultsDir, quick ? 'label-efficiency-quick.json' : 'label-efficiency.json');
}
// `noise`: noisy reviewers against consensus and the gold filter (`noise quick`: one seed).
if (want('noise')) {
  const quick = only.includes('quick');
  await benchLabelNoise(
    { ...defaultLabelNoise, seeds: listArg('seeds')?.map(Number) ?? (quick ? [1] : defaultLabelNoise.seeds) },
    resultsDir,
    'label-noise.json',
  );
}
// `objects size=20000` searches fewer objects than the 100,000 the issue names (minutes instead).
if (want('objects')) {
  const size = Number(listArg('size')?.[0] ?? 100_000);
  const headCost = await benchObjectHeadCost();
  const search = [];
  const pglite = await openDb({});
  search.push(await benchObjectSearch(pglite, 'PGlite', frames, size));
  await pglite.close();
  if (process.env.DATABASE_URL) {
    const pg = await createTestDb(process.env.DATABASE_URL);
    search.push(await benchObjectSearch(pg, 'Postgres', frames, size));
    await pg.close();
  }
  const db = await openDb({});
  const propagation = await benchPropagation(db, { frames: 600, decisions: 150, maxDistance: config.PROPAGATION_MAX_DISTANCE });
  await db.close();
  fs.writeFileSync(
    path.join(resultsDir, 'objects.json'),
    JSON.stringify({ at: new Date().toISOString(), cores: os.cpus().length, headCost, search, propagation }, null, 2) + '\n',
  );
}
if (want('video')) await benchVideo(address!);
if (want('scale')) await benchScale(frames, address!);
// `up minutes=60`: an hour of make up, only when named (it takes the hour and make up's ports).
if (only.includes('up')) {
  await benchUpMemory({ minutes: Number(listArg('minutes')?.[0] ?? 60), sampleSeconds: 15, warmupMinutes: 5 });
}
if (want('retrain')) {
  const db = await openDb({});
  await benchRetrain(db, address!);
  await db.close();
}
await env?.teardown();
fs.rmSync(tmp, { recursive: true, force: true });

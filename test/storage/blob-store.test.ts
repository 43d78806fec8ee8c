// The blob store's contract, held by the folder store and by the S3 store against a real
// S3-compatible server (SeaweedFS), and a whole platform on a bucket: frames posted to the API
// and frames cut from an uploaded video land in the bucket, and the loop scores them from there.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { count, eq, inArray } from 'drizzle-orm';
import { NativeConnection } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../config.ts';
import { openDb } from '../../db/client.ts';
import { frames, frameScores } from '../../db/schema.ts';
import { LocalBlobStore, type BlobStore } from '../../storage/blob-store.ts';
import { openBlobStore } from '../../storage/open-blob-store.ts';
import { parseS3Url, S3BlobStore } from '../../storage/s3-blob-store.ts';
import { auth, createStreamOverApi, createTestPlatform, sampleFrames, startPlatformWorkers, stopStream } from '../helpers/platform.ts';
import { startS3Server, type S3Server } from '../helpers/s3-server.ts';
import { eventually, quietRuntime } from '../helpers/temporal.ts';
import { makeVideo } from '../helpers/videos.ts';

let s3: S3Server;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'blob-store-'));

beforeAll(async () => {
  s3 = await startS3Server();
}, 90_000);

afterAll(async () => {
  await s3?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const s3Store = (prefix: string, env: Record<string, string> = {}) =>
  openBlobStore(loadConfig({ ...process.env, ...s3.env, STORE_URL: `s3://${s3.bucket}/${prefix}`, ...env }));

const stores: [string, () => BlobStore][] = [
  ['a folder', () => new LocalBlobStore(fs.mkdtempSync(path.join(tmp, 'folder-')))],
  ['an S3 bucket', () => s3Store(`contract-${Math.random().toString(36).slice(2, 8)}`)],
];

describe.each(stores)('the blob store in %s', (_name, open) => {
  it('keeps bytes by key, replaces them on rewrite, and says what it does not hold', async () => {
    const store = open();
    await store.put('frames/ab/one.png', Buffer.from('first'));
    expect((await store.get('frames/ab/one.png')).toString()).toBe('first');
    expect(await store.exists('frames/ab/one.png')).toBe(true);
    await store.put('frames/ab/one.png', Buffer.from('second'));
    expect((await store.get('frames/ab/one.png')).toString()).toBe('second');
    expect(await store.exists('frames/ab/two.png')).toBe(false);
    // A missing blob fails as a missing file does, so callers can tell it from an outage.
    await expect(store.get('frames/ab/two.png')).rejects.toMatchObject({ code: 'ENOENT' });
    for (const bad of ['../outside', '/etc/passwd', '.']) await expect(store.put(bad, Buffer.from('x'))).rejects.toThrow(/Invalid blob key/);
  });

  it('stores a file and lends it back as a local file', async () => {
    const store = open();
    const file = path.join(tmp, `big-${Math.random()}.bin`);
    const bytes = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
    fs.writeFileSync(file, bytes);
    await store.putFile('videos/aa/v.mp4', file);
    let lent = '';
    const size = await store.withLocalFile('videos/aa/v.mp4', async (f) => {
      lent = f;
      expect(fs.readFileSync(f).equals(bytes)).toBe(true);
      return fs.statSync(f).size;
    });
    expect(size).toBe(bytes.length);
    // A folder store lends its own file; a bucket's copy is gone once the caller is done.
    expect(fs.existsSync(lent)).toBe(store instanceof LocalBlobStore);
  });
});

describe('the S3 store', () => {
  it('keeps prefixes apart, refuses wrong keys, and reads STORE_URL strictly', async () => {
    const a = s3Store('tenant-a');
    const b = s3Store('tenant-b');
    await a.put('models/detection/v1/model.onnx', Buffer.from('onnx'));
    expect(await b.exists('models/detection/v1/model.onnx')).toBe(false);
    expect(a.location).toBe(`s3://${s3.bucket}/tenant-a`);
    // Authentication is on: a wrong secret is refused by the server.
    const wrong = s3Store('tenant-a', { AWS_SECRET_ACCESS_KEY: 'not-the-secret' });
    await expect(wrong.get('models/detection/v1/model.onnx')).rejects.toThrow(/signature|access denied|credentials/i);
    expect(() => parseS3Url('s3://Bad_Bucket/x')).toThrow(/STORE_URL/);
    expect(parseS3Url('s3://frames-bucket/a/b/')).toEqual({ bucket: 'frames-bucket', prefix: 'a/b' });
    expect(() => loadConfig({ STORE_URL: 'http://x' })).toThrow(/STORE_URL/);
    for (const s of [a, b, wrong]) (s as S3BlobStore).destroy();
  });
});

describe('a platform whose blob store is an S3 bucket', () => {
  it('stores posted frames and an uploaded video in the bucket, and the loop scores them from there', async () => {
    const db = await openDb({});
    const streamId = 'cam-s3';
    const p = await createTestPlatform(db, { cameraStreams: [streamId], env: { ...s3.env, STORE_URL: `s3://${s3.bucket}/platform` } });
    quietRuntime();
    const connection = await NativeConnection.connect({ address: inject('temporalAddress') });
    const workers = await startPlatformWorkers(p, connection);
    try {
      expect(p.deps.store.location).toBe(`s3://${s3.bucket}/platform`);
      await createStreamOverApi(p, streamId);
      for (const sample of sampleFrames().slice(0, 3)) {
        const res = await p.app.request(`/v1/streams/${streamId}/frames?cameraId=${sample.cameraId}`, {
          method: 'POST',
          headers: auth(p.tokens.camera, { 'Content-Type': 'image/png' }),
          body: new Uint8Array(fs.readFileSync(sample.file)),
        });
        expect(res.status).toBe(201);
      }
      // A 4 s video at one frame a second: split and decoded from copies of the bucket's objects.
      const video = makeVideo(path.join(tmp, 'clip.mp4'), { seconds: 4, fps: 10, gop: 10 });
      const upload = await p.app.request(`/v1/streams/${streamId}/videos?cameraId=dashcam&startedAt=2026-11-30T08:00:00.000Z&sample=fps&rate=1`, {
        method: 'POST',
        headers: auth(p.tokens.lead, { 'Content-Type': 'video/mp4' }),
        body: new Uint8Array(fs.readFileSync(video)),
      });
      expect(upload.status).toBe(202);
      const { id: videoId } = (await upload.json()) as { id: string };
      await eventually(
        async () => {
          const v = (await (await p.app.request(`/v1/videos/${videoId}`, { headers: auth(p.tokens.lead) })).json()) as { status: string };
          return v.status === 'done';
        },
        60_000,
        'the video ingested',
      );
      const rows = await db.db.select({ id: frames.id, key: frames.storageKey }).from(frames).where(eq(frames.streamId, streamId));
      expect(rows).toHaveLength(3 + 4);
      await eventually(
        async () =>
          (
            await db.db
              .select({ n: count() })
              .from(frameScores)
              .where(
                inArray(
                  frameScores.frameId,
                  rows.map((r) => r.id),
                ),
              )
          )[0].n === rows.length,
        60_000,
        'every frame scored',
      );
      // Every frame is an object in the bucket; the folder the platform would otherwise use is empty.
      const bucket = s3Store('platform');
      for (const r of rows) expect(await bucket.exists(r.key)).toBe(true);
      expect(fs.readdirSync(p.storeDir)).toEqual([]);
    } finally {
      await stopStream(p, streamId);
      await workers.shutdown();
      await connection.close();
      await p.close();
      await db.close();
    }
  });
});

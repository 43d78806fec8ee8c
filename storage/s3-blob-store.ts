// The blob store in an S3-compatible bucket (AWS S3, SeaweedFS, MinIO, Ceph RGW, R2), through the
// official client with path-style addressing, so that API, worker and trainer processes on
// different machines share frames, videos, models and snapshots. Keys are the same as in a
// folder store, under an optional prefix.
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { checkedKey, type BlobStore } from './blob-store.ts';

export interface S3Location {
  bucket: string;
  /** Key prefix inside the bucket, without a trailing slash ('' for the bucket's root). */
  prefix: string;
}

/** Parses `s3://bucket/optional/prefix`. */
export function parseS3Url(url: string): S3Location {
  const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(url);
  if (!m) throw new Error(`STORE_URL "${url}" is not s3://bucket[/prefix] (bucket: 3-63 lower-case letters, digits, dots, hyphens)`);
  return { bucket: m[1], prefix: (m[2] ?? '').replace(/\/+$/, '') };
}

export interface S3StoreOptions extends S3Location {
  /** Endpoint of an S3-compatible server (http://host:port); unset for AWS itself. */
  endpoint?: string;
  region: string;
  /** Access keys; absent, the SDK's usual chain finds them (a profile, a pod's web identity). */
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

export class S3BlobStore implements BlobStore {
  private readonly client: S3Client;
  readonly location: string;

  constructor(private readonly opts: S3StoreOptions) {
    this.client = new S3Client({ region: opts.region, endpoint: opts.endpoint, forcePathStyle: true, credentials: opts.credentials });
    this.location = `s3://${opts.bucket}${opts.prefix ? `/${opts.prefix}` : ''}`;
  }

  private objectKey(key: string): string {
    const k = checkedKey(key);
    return this.opts.prefix ? `${this.opts.prefix}/${k}` : k;
  }

  // One PUT is atomic in S3: readers see the old object or the new one, never half of either.
  async put(key: string, bytes: Uint8Array): Promise<void> {
    await this.client.send(new PutObjectCommand({ Bucket: this.opts.bucket, Key: this.objectKey(key), Body: bytes }));
  }

  async putFile(key: string, file: string): Promise<void> {
    const { size } = await fs.stat(file);
    await this.client.send(new PutObjectCommand({ Bucket: this.opts.bucket, Key: this.objectKey(key), Body: createReadStream(file), ContentLength: size }));
  }

  /** The object's body; a missing key fails as reading a missing file does (ENOENT). */
  private async body(key: string) {
    const out = await this.client.send(new GetObjectCommand({ Bucket: this.opts.bucket, Key: this.objectKey(key) })).catch(notFoundAs(key));
    return out.Body!;
  }

  async get(key: string): Promise<Buffer> {
    return Buffer.from(await (await this.body(key)).transformToByteArray());
  }

  async exists(key: string): Promise<boolean> {
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.opts.bucket, Key: this.objectKey(key) }));
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  async withLocalFile<T>(key: string, use: (file: string) => Promise<T>): Promise<T> {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dataengine-s3-'));
    try {
      const file = path.join(dir, path.posix.basename(checkedKey(key)));
      // Streamed to disk: a video can be larger than the memory a process should hold.
      await pipeline((await this.body(key)) as Readable, createWriteStream(file));
      return await use(file);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  }

  destroy(): void {
    this.client.destroy();
  }
}

function isNotFound(err: unknown): boolean {
  return err instanceof S3ServiceException && (err.name === 'NotFound' || err.name === 'NoSuchKey' || err.$metadata.httpStatusCode === 404);
}

/** A missing key fails as reading a missing file does (ENOENT), whichever store holds it. */
function notFoundAs(key: string) {
  return (err: unknown): never => {
    if (isNotFound(err)) throw Object.assign(new Error(`blob "${key}" does not exist`), { code: 'ENOENT', cause: err });
    throw err;
  };
}

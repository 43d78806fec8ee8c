// Blob storage for frames, models and dataset snapshots, addressed by POSIX keys relative to
// one root (docs/contracts.md "Blob store"): a local folder (this file) or an S3-compatible
// bucket (s3-blob-store.ts), chosen by STORE_URL (open-blob-store.ts).
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

export interface BlobStore {
  /** Where the blobs live, for logs: a folder or an s3:// URL. */
  readonly location: string;
  /** Writes bytes under `key` atomically: a reader never sees half a blob; rewriting a key replaces it. */
  put(key: string, bytes: Uint8Array): Promise<void>;
  /** Like `put`, from a file (a video can be larger than the memory a process should hold). */
  putFile(key: string, file: string): Promise<void>;
  get(key: string): Promise<Buffer>;
  exists(key: string): Promise<boolean>;
  /**
   * Runs `use` with a local file holding the blob, for programs that read files themselves
   * (ffmpeg): the blob's own file in a folder store, a downloaded copy removed afterwards in S3.
   */
  withLocalFile<T>(key: string, use: (file: string) => Promise<T>): Promise<T>;
}

/** A key as stored: a relative POSIX path that stays inside the store. */
export function checkedKey(key: string): string {
  const normalized = path.posix.normalize(key);
  if (normalized.startsWith('..') || path.posix.isAbsolute(normalized) || normalized === '.') {
    throw new Error(`Invalid blob key "${key}": keys are relative paths inside the store`);
  }
  return normalized;
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Content-addressed key of a frame: the same bytes always get the same key. */
export function frameKey(contentHash: string, ext: 'png' | 'jpg'): string {
  return `frames/${contentHash.slice(0, 2)}/${contentHash}.${ext}`;
}

/** Content-addressed key of a video file. */
export function videoKey(contentHash: string, ext: string): string {
  return `videos/${contentHash.slice(0, 2)}/${contentHash}.${ext}`;
}

export function modelKey(kind: 'detection' | 'box', version: string): string {
  return `models/${kind}/${version}/model.onnx`;
}

/** Where a variant of a version (model.int8.onnx) sits: beside the version's model.onnx. */
export function variantKey(kind: 'detection' | 'box', version: string, precision: string): string {
  return `models/${kind}/${version}/model.${precision}.onnx`;
}

export class LocalBlobStore implements BlobStore {
  constructor(readonly root: string) {}

  get location(): string {
    return this.root;
  }

  pathOf(key: string): string {
    return path.join(this.root, ...checkedKey(key).split('/'));
  }

  async withLocalFile<T>(key: string, use: (file: string) => Promise<T>): Promise<T> {
    return use(this.pathOf(key));
  }

  async put(key: string, bytes: Uint8Array): Promise<void> {
    await this.writeAtomically(key, (tmp) => fs.writeFile(tmp, bytes));
  }

  async putFile(key: string, file: string): Promise<void> {
    await this.writeAtomically(key, (tmp) => fs.copyFile(file, tmp));
  }

  /** Writes a temp file beside the key's path and renames it: a reader never sees half a blob. */
  private async writeAtomically(key: string, write: (tmp: string) => Promise<void>): Promise<void> {
    const target = this.pathOf(key);
    await fs.mkdir(path.dirname(target), { recursive: true });
    const tmp = `${target}.${randomUUID()}.tmp`;
    await write(tmp);
    await fs.rename(tmp, target);
  }

  async get(key: string): Promise<Buffer> {
    return fs.readFile(this.pathOf(key));
  }

  async exists(key: string): Promise<boolean> {
    try {
      await fs.access(this.pathOf(key));
      return true;
    } catch {
      return false;
    }
  }
}

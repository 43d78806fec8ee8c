// Blob storage for frames, models and dataset snapshots, addressed by POSIX keys relative to
// one root (docs/contracts.md "Blob store"). A local folder today; an S3-compatible store can
// implement the same interface later.
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

export interface BlobStore {
  readonly root: string;
  /** Writes bytes under `key` atomically (temp file + rename); rewriting a key replaces it. */
  put(key: string, bytes: Uint8Array): Promise<void>;
  /** Like `put`, from a file (a video can be larger than the memory a process should hold). */
  putFile(key: string, file: string): Promise<void>;
  get(key: string): Promise<Buffer>;
  exists(key: string): Promise<boolean>;
  /** Absolute path of a key, for libraries that read files themselves (onnxruntime, sharp). */
  pathOf(key: string): string;
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

export class LocalBlobStore implements BlobStore {
  constructor(readonly root: string) {}

  pathOf(key: string): string {
    const normalized = path.posix.normalize(key);
    if (normalized.startsWith('..') || path.posix.isAbsolute(normalized) || normalized === '.') {
      throw new Error(`Invalid blob key "${key}": keys are relative paths inside the store`);
    }
    return path.join(this.root, ...normalized.split('/'));
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

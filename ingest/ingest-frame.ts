// Ingestion of one frame, shared by the HTTP route and the directory source: check the type,
// size and that the bytes decode, store them content-addressed, and add a row. Every check runs
// before anything is written, so a refused frame leaves no trace; the same image twice is
// stored once (the stream + content hash is unique).
import sharp from 'sharp';
import { WorkflowNotFoundError } from '@temporalio/client';
import { DECODE_OPTIONS } from '../models/preprocess.ts';
import type { Db, Tx } from '../db/client.ts';
import { findFrameByHash, frameIdsByHash, insertFrame, insertFrames } from '../db/frames.ts';
import { clearLoopIdle, getStream } from '../db/streams.ts';
import { logger } from '../observability/logger.ts';
import { bytesIngested, cameraLabel, framesIngested, ingestRejected } from '../observability/metrics.ts';
import { frameKey, sha256Hex, type BlobStore } from '../storage/blob-store.ts';

export class IngestError extends Error {
  constructor(
    message: string,
    readonly status: 400 | 404 | 413 | 415,
    readonly reason: string,
  ) {
    super(message);
    this.name = 'IngestError';
  }
}

const MEDIA = {
  'image/png': { ext: 'png', format: 'png', magic: [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] },
  'image/jpeg': { ext: 'jpg', format: 'jpeg', magic: [0xff, 0xd8, 0xff] },
} as const;
type MediaType = keyof typeof MEDIA;
const SUPPORTED_MEDIA_TYPES = Object.keys(MEDIA) as MediaType[];

/** The image type its first bytes announce (PNG or JPEG), for files that come without a type. */
export function sniffImageType(bytes: Uint8Array): MediaType | null {
  return SUPPORTED_MEDIA_TYPES.find((t) => MEDIA[t].magic.every((b, i) => bytes[i] === b)) ?? null;
}

function mediaTypeOf(contentType: string | undefined | null): MediaType | null {
  const base = (contentType ?? '').split(';')[0].trim().toLowerCase();
  return base in MEDIA ? (base as MediaType) : null;
}

export interface IngestDeps {
  db: Db;
  store: BlobStore;
  maxFrameBytes: number;
  maxFramePixels: number;
  /**
   * Wakes the stream's loop when it sleeps for want of frames (LoopControl.wake). Without it a
   * sleeping loop finds the frame at its next poll (LOOP_IDLE_POLL_MS).
   */
  wakeLoop?: (streamId: string) => Promise<void>;
}

export interface IngestInput {
  streamId: string;
  cameraId: string;
  capturedAt: Date;
  contentType: string | undefined | null;
  bytes: Uint8Array;
  source: 'http' | 'directory' | 'video' | 'import';
}

export interface IngestResult {
  frameId: string;
  created: boolean;
  storageKey: string;
  width: number;
  height: number;
}

export const CAMERA_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$/;

/**
 * Statements that belong with the frame (an imported frame's label): run in the transaction that
 * stores its row, or in one of their own when the frame was stored before, and always before the
 * loop is woken, so the loop never reads the frame without them.
 */
export type WithFrame = (tx: Tx, frameId: string) => Promise<void>;

export async function ingestFrame(deps: IngestDeps, input: IngestInput, withFrame?: WithFrame): Promise<IngestResult> {
  try {
    return await ingest(deps, input, withFrame);
  } catch (err) {
    if (err instanceof IngestError) ingestRejected.inc({ reason: err.reason });
    throw err;
  }
}

/**
 * Every check ingestion makes before it writes (type, camera id, size, pixels, a full decode),
 * without writing: what a dry run asks. Returns the image's format and size.
 */
export async function inspectFrame(
  deps: Pick<IngestDeps, 'maxFrameBytes' | 'maxFramePixels'>,
  input: Omit<IngestInput, 'streamId' | 'source'>,
): Promise<{ media: MediaType; width: number; height: number }> {
  const media = mediaTypeOf(input.contentType);
  if (!media) {
    throw new IngestError(
      `Content-Type must be one of ${SUPPORTED_MEDIA_TYPES.join(', ')}, got ${JSON.stringify(input.contentType ?? '')}`,
      415,
      'content_type',
    );
  }
  if (!CAMERA_ID.test(input.cameraId)) {
    throw new IngestError('cameraId must be 1-100 characters of letters, digits, ".", "_", ":" or "-"', 400, 'camera_id');
  }
  if (Number.isNaN(input.capturedAt.getTime())) throw new IngestError('capturedAt must be an ISO 8601 time', 400, 'captured_at');
  if (input.bytes.length === 0) throw new IngestError('the body is empty; send the image bytes', 400, 'empty');
  if (input.bytes.length > deps.maxFrameBytes) {
    throw new IngestError(`the image is ${input.bytes.length} bytes; the limit is ${deps.maxFrameBytes}`, 413, 'too_large');
  }
  const spec = MEDIA[media];
  if (!spec.magic.every((b, i) => input.bytes[i] === b)) {
    throw new IngestError(`the body is not a ${spec.format.toUpperCase()} image (its first bytes do not match ${media})`, 400, 'type_mismatch');
  }
  // The header first: a small file can claim a huge image, and decoding it would take gigabytes.
  let header: Awaited<ReturnType<ReturnType<typeof sharp>['metadata']>>;
  try {
    header = await sharp(input.bytes, DECODE_OPTIONS).metadata();
  } catch (err) {
    throw new IngestError(`the image cannot be decoded: ${(err as Error).message}`, 400, 'corrupt');
  }
  const pixels = (header.width ?? 0) * (header.height ?? 0);
  if (pixels > deps.maxFramePixels) {
    throw new IngestError(
      `the image is ${header.width}x${header.height} (${pixels} pixels); the limit is ${deps.maxFramePixels} pixels`,
      413,
      'too_many_pixels',
    );
  }
  const width = header.width ?? 0;
  const height = header.height ?? 0;
  try {
    // A full decode, not just the header, with the options scoring uses: a truncated or corrupt
    // file must be refused here, not discovered by the scoring loop later. The decoder reads the
    // whole image in strips (sequential read, no shrink-on-load) into a 64-pixel-wide thumbnail
    // that is thrown away; decoding to a full buffer instead held every frame whole: 16 frames
    // of 40 MP arriving at once added 0.9 GB to the process (npm run bench -- ingest).
    await sharp(input.bytes, { ...DECODE_OPTIONS, limitInputPixels: deps.maxFramePixels, sequentialRead: true })
      .resize(64, null, { fastShrinkOnLoad: false, kernel: 'nearest' })
      .raw()
      .toBuffer();
  } catch (err) {
    throw new IngestError(`the image cannot be decoded: ${(err as Error).message}`, 400, 'corrupt');
  }
  return { media, width, height };
}

async function ingest(deps: IngestDeps, input: IngestInput, withFrame?: WithFrame): Promise<IngestResult> {
  const { media, width, height } = await inspectFrame(deps, input);
  const stream = await getStream(deps.db, input.streamId);
  if (!stream) throw new IngestError(`stream ${JSON.stringify(input.streamId)} does not exist`, 404, 'unknown_stream');

  const hash = sha256Hex(input.bytes);
  const existing = await findFrameByHash(deps.db, input.streamId, hash);
  if (existing) {
    if (withFrame) await deps.db.transaction((tx) => withFrame(tx, existing.id));
    return { frameId: existing.id, created: false, storageKey: existing.storageKey, width: existing.width, height: existing.height };
  }

  const key = frameKey(hash, MEDIA[media].ext);
  // Blob first, row second: a crash in between leaves an unreferenced blob that the next upload
  // of the same image reuses, never a row pointing at nothing.
  await deps.store.put(key, input.bytes);
  const row = {
    streamId: input.streamId,
    cameraId: input.cameraId,
    capturedAt: input.capturedAt,
    contentHash: hash,
    storageKey: key,
    mediaType: media,
    sizeBytes: input.bytes.length,
    width,
    height,
  };
  const frameId = withFrame
    ? await deps.db.transaction(async (tx) => {
        const id = await insertFrame(tx, row);
        if (id) await withFrame(tx, id);
        return id;
      })
    : await insertFrame(deps.db, row);
  if (!frameId) {
    const raced = await findFrameByHash(deps.db, input.streamId, hash);
    if (withFrame) await deps.db.transaction((tx) => withFrame(tx, raced.id));
    return { frameId: raced.id, created: false, storageKey: key, width, height };
  }
  const camera = cameraLabel(input.streamId, input.cameraId);
  framesIngested.inc({ stream: input.streamId, camera, source: input.source });
  bytesIngested.inc({ stream: input.streamId, camera }, input.bytes.length);
  await wakeIfIdle(deps, input.streamId);
  return { frameId, created: true, storageKey: key, width, height };
}

/**
 * After a new frame is stored: wakes the stream's loop if it sleeps. Only the ingest that
 * clears the idle mark signals, so a camera streaming into a busy loop costs one cheap update
 * per frame and no signal. A failed signal is not a failed ingest: the loop's poll finds the frame.
 */
async function wakeIfIdle(deps: IngestDeps, streamId: string): Promise<void> {
  if (!deps.wakeLoop || !(await clearLoopIdle(deps.db, streamId))) return;
  await deps.wakeLoop(streamId).catch((err: unknown) => {
    if (!(err instanceof WorkflowNotFoundError)) logger.warn({ err, streamId }, 'could not wake the stream loop; it finds the frames at its next poll');
  });
}

/**
 * Stores frames that ffmpeg extracted from a video, in one round of statements: one lookup of
 * their hashes, the new blobs written concurrently, one multi-row insert. Returns each frame's id,
 * in order. These are ffmpeg's own JPEGs of a video that was probed and packet-scanned at
 * upload, so the full decode ingestFrame makes of a file from outside is skipped: it was the
 * largest cost of the Node side of a video ingest (2.7 of 7.7 ms per 720p frame, with one
 * statement per lookup and insert the next), and it would check what ffmpeg has just encoded.
 * Each frame's size is the one ffmpeg reported for it (a video may change resolution mid-stream);
 * reading it from each file's header with sharp was 7% of the main thread's profile.
 */
export async function storeExtractedFrames(
  deps: IngestDeps,
  input: { streamId: string; cameraId: string; frames: { bytes: Uint8Array; capturedAt: Date; width: number; height: number }[] },
): Promise<string[]> {
  if (input.frames.length === 0) return [];
  const jpeg = MEDIA['image/jpeg'];
  const hashed = input.frames.map((f, i) => {
    if (sniffImageType(f.bytes) !== 'image/jpeg') throw new Error(`extracted frame ${i} is not a JPEG`);
    return { ...f, hash: sha256Hex(f.bytes) };
  });
  const known = await frameIdsByHash(
    deps.db,
    input.streamId,
    hashed.map((h) => h.hash),
  );
  // The first of frames with the same bytes stands for them (as a one-by-one ingest would keep it).
  const fresh = new Map<string, (typeof hashed)[number]>();
  for (const h of hashed) if (!known.has(h.hash) && !fresh.has(h.hash)) fresh.set(h.hash, h);
  // Blobs first, rows second, as for a single frame.
  await Promise.all([...fresh.values()].map((h) => deps.store.put(frameKey(h.hash, jpeg.ext), h.bytes)));
  const added = await insertFrames(
    deps.db,
    [...fresh.values()].map((h) => ({
      streamId: input.streamId,
      cameraId: input.cameraId,
      capturedAt: h.capturedAt,
      contentHash: h.hash,
      storageKey: frameKey(h.hash, jpeg.ext),
      mediaType: 'image/jpeg',
      sizeBytes: h.bytes.length,
      width: h.width,
      height: h.height,
    })),
  );
  for (const row of added) known.set(row.contentHash, row.id);
  // Rows another writer added between the lookup and the insert.
  const raced = [...fresh.keys()].filter((h) => !known.has(h));
  for (const [h, id] of await frameIdsByHash(deps.db, input.streamId, raced)) known.set(h, id);
  if (added.length) {
    const camera = cameraLabel(input.streamId, input.cameraId);
    framesIngested.inc({ stream: input.streamId, camera, source: 'video' }, added.length);
    bytesIngested.inc(
      { stream: input.streamId, camera },
      added.reduce((a, r) => a + fresh.get(r.contentHash)!.bytes.length, 0),
    );
    await wakeIfIdle(deps, input.streamId);
  }
  return hashed.map((h) => known.get(h.hash)!);
}

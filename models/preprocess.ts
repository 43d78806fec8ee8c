// The preprocessing contract (docs/contracts.md), TypeScript side: the same image gives the
// same tensor here as in the trainer's PyTorch code (test/models/preprocess-parity.test.ts).
//
// The resize is written by hand: sharp/libvips resampling kernels differ from PyTorch's
// bilinear interpolation (half-pixel centres, no antialiasing), and the contract needs the
// tensor the model was trained on, not merely a similar one.
import sharp from 'sharp';

const PAD_VALUE = 0.5;
const CONTEXT_MARGIN = 0.5;

export interface RgbImage {
  data: Uint8Array; // HxWx3, row-major
  width: number;
  height: number;
}

/**
 * How every frame is decoded, at ingest and at scoring alike: a frame that ingest accepted
 * decodes at scoring too (sharp's default, failOn 'warning', refuses some files that 'error'
 * lets through, and the loop would then retry such a frame for ever).
 */
export const DECODE_OPTIONS = { failOn: 'error' } as const;

export async function decodeRgb(bytes: Uint8Array): Promise<RgbImage> {
  const { data, info } = await sharp(bytes, DECODE_OPTIONS).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`expected 3 channels after decoding, got ${info.channels}`);
  return { data, width: info.width, height: info.height };
}

function letterboxGeometry(width: number, height: number, size: number) {
  const scale = Math.min(size / width, size / height);
  return { scale, nw: Math.round(width * scale), nh: Math.round(height * scale) };
}

/** Source coordinate and weights of torch's bilinear (align_corners=False) along one axis. */
function axisWeights(inSize: number, outSize: number) {
  const scale = inSize / outSize;
  const i0 = new Int32Array(outSize);
  const i1 = new Int32Array(outSize);
  const w1 = new Float64Array(outSize);
  for (let d = 0; d < outSize; d++) {
    const src = Math.max(0, scale * (d + 0.5) - 0.5);
    const lo = Math.min(Math.floor(src), inSize - 1);
    i0[d] = lo;
    i1[d] = Math.min(lo + 1, inSize - 1);
    w1[d] = src - lo;
  }
  return { i0, i1, w1 };
}

/**
 * Letterboxes one decoded image into `out` at `offset` (CHW float32, `size` x `size`):
 * values v / 255, resized bilinear to (nw, nh), top-left, padded with 0.5.
 */
export function letterboxInto(img: RgbImage, size: number, out: Float32Array, offset = 0): { scale: number } {
  const { scale, nw, nh } = letterboxGeometry(img.width, img.height, size);
  const plane = size * size;
  out.fill(PAD_VALUE, offset, offset + 3 * plane);
  const { data, width: W } = img;
  if (nw === img.width && nh === img.height) {
    for (let y = 0; y < nh; y++) {
      for (let x = 0; x < nw; x++) {
        const s = (y * W + x) * 3;
        const d = offset + y * size + x;
        out[d] = data[s] / 255;
        out[d + plane] = data[s + 1] / 255;
        out[d + 2 * plane] = data[s + 2] / 255;
      }
    }
    return { scale };
  }
  const xs = axisWeights(img.width, nw);
  const ys = axisWeights(img.height, nh);
  for (let y = 0; y < nh; y++) {
    const r0 = ys.i0[y] * W;
    const r1 = ys.i1[y] * W;
    const wy = ys.w1[y];
    for (let x = 0; x < nw; x++) {
      const wx = xs.w1[x];
      const a = (r0 + xs.i0[x]) * 3;
      const b = (r0 + xs.i1[x]) * 3;
      const c = (r1 + xs.i0[x]) * 3;
      const e = (r1 + xs.i1[x]) * 3;
      const d = offset + y * size + x;
      for (let ch = 0; ch < 3; ch++) {
        const top = data[a + ch] * (1 - wx) + data[b + ch] * wx;
        const bottom = data[c + ch] * (1 - wx) + data[e + ch] * wx;
        out[d + ch * plane] = (top * (1 - wy) + bottom * wy) / 255;
      }
    }
  }
  return { scale };
}

interface RoiGeometry {
  x0: number;
  y0: number;
  side: number;
}

/** Crop square around a rough region (frame pixels), with the contract's context margin. */
function roiGeometry(region: { x1: number; y1: number; x2: number; y2: number }, margin = CONTEXT_MARGIN): RoiGeometry {
  const side = Math.max(region.x2 - region.x1, region.y2 - region.y1, 4) * (1 + 2 * margin);
  const cx = (region.x1 + region.x2) / 2;
  const cy = (region.y1 + region.y2) / 2;
  return { x0: cx - side / 2, y0: cy - side / 2, side };
}

/** The frame pixels (inclusive bounds) bilinear sampling of the crop can touch, clipped to the frame; null if none. */
function roiSourceWindow(g: RoiGeometry, size: number, width: number, height: number) {
  const first = 0.5 * (g.side / size) - 0.5;
  const last = (size - 0.5) * (g.side / size) - 0.5;
  const left = Math.max(0, Math.floor(g.x0 + first));
  const top = Math.max(0, Math.floor(g.y0 + first));
  const right = Math.min(width - 1, Math.floor(g.x0 + last) + 1);
  const bottom = Math.min(height - 1, Math.floor(g.y0 + last) + 1);
  if (left > right || top > bottom) return null;
  return { left, top, width: right - left + 1, height: bottom - top + 1 };
}

/**
 * Samples the `size` x `size` crop (CHW float32) from `patch`, the part of the frame that starts
 * at (`left`, `top`); neighbours outside the frame count as 0.5.
 */
function sampleRoi(
  patch: RgbImage | null,
  left: number,
  top: number,
  frameWidth: number,
  frameHeight: number,
  g: RoiGeometry,
  size: number,
  out: Float32Array,
  offset = 0,
): void {
  const plane = size * size;
  const step = g.side / size;
  const px = (fx: number, fy: number, ch: number) => {
    if (!patch || fx < 0 || fy < 0 || fx >= frameWidth || fy >= frameHeight) return PAD_VALUE;
    return patch.data[((fy - top) * patch.width + (fx - left)) * 3 + ch] / 255;
  };
  for (let i = 0; i < size; i++) {
    const sy = g.y0 + (i + 0.5) * step - 0.5;
    const y0 = Math.floor(sy);
    const wy = sy - y0;
    for (let j = 0; j < size; j++) {
      const sx = g.x0 + (j + 0.5) * step - 0.5;
      const x0 = Math.floor(sx);
      const wx = sx - x0;
      for (let ch = 0; ch < 3; ch++) {
        const v = (px(x0, y0, ch) * (1 - wx) + px(x0 + 1, y0, ch) * wx) * (1 - wy) + (px(x0, y0 + 1, ch) * (1 - wx) + px(x0 + 1, y0 + 1, ch) * wx) * wy;
        out[offset + ch * plane + i * size + j] = v;
      }
    }
  }
}

export interface RoiTensor {
  tensor: Float32Array;
  geometry: RoiGeometry;
  frameWidth: number;
  frameHeight: number;
  /** Bytes of pixels (RGB) decoded for this crop, against width * height * 3 for the frame (0
   * when the frame was decoded before). */
  bytesDecoded: number;
}

/** Samples the crop from a frame decoded already (box assist keeps small frames decoded, since a
 * reviewer asks about the same frame several times): the same pixels as roiFromEncoded reads. */
export function roiFromImage(img: RgbImage, region: { x1: number; y1: number; x2: number; y2: number }, size: number): RoiTensor {
  const g = roiGeometry(region);
  const tensor = new Float32Array(3 * size * size);
  sampleRoi(img, 0, 0, img.width, img.height, g, size, tensor);
  return { tensor, geometry: g, frameWidth: img.width, frameHeight: img.height, bytesDecoded: 0 };
}

/** Reads only the part of an encoded frame the crop needs (sharp extract) and samples the crop. */
export async function roiFromEncoded(bytes: Uint8Array, region: { x1: number; y1: number; x2: number; y2: number }, size: number): Promise<RoiTensor> {
  const meta = await sharp(bytes, DECODE_OPTIONS).metadata();
  if (!meta.width || !meta.height) throw new Error('image has no dimensions');
  const g = roiGeometry(region);
  const win = roiSourceWindow(g, size, meta.width, meta.height);
  let patch: RgbImage | null = null;
  if (win) {
    const { data, info } = await sharp(bytes, DECODE_OPTIONS).extract(win).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    patch = { data, width: info.width, height: info.height };
  }
  const tensor = new Float32Array(3 * size * size);
  sampleRoi(patch, win?.left ?? 0, win?.top ?? 0, meta.width, meta.height, g, size, tensor);
  return { tensor, geometry: g, frameWidth: meta.width, frameHeight: meta.height, bytesDecoded: patch ? patch.width * patch.height * 3 : 0 };
}

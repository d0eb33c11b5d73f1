/**
 * Pictures for the page: files, URLs and video frames decoded with createImageBitmap and drawn onto
 * a canvas to read their RGBA pixels. Pictures are scaled down to at most MAX_SIDE pixels on the
 * longer side: the model sees 224×224 anyway, and the maps are upsampled and read back at this size.
 */
import type { RgbaImage } from '../image/image.ts';

export const MAX_SIDE = 768;

type Canvas2D = OffscreenCanvasRenderingContext2D | CanvasRenderingContext2D;

let reusable: Canvas2D | undefined;

/** A 2D context of this size; one canvas is reused (webcam frames come one after another). */
function context(width: number, height: number): Canvas2D {
  if (reusable && reusable.canvas.width === width && reusable.canvas.height === height) return reusable;
  reusable = create(width, height);
  return reusable;
}

function create(width: number, height: number): Canvas2D {
  if (typeof OffscreenCanvas !== 'undefined') {
    const ctx = new OffscreenCanvas(width, height).getContext('2d', { willReadFrequently: true });
    if (ctx) return ctx;
  }
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  if (!ctx) throw new Error('this browser gives no 2D canvas context');
  return ctx;
}

export function fitted(width: number, height: number, maxSide = MAX_SIDE): { width: number; height: number } {
  const s = Math.min(1, maxSide / Math.max(width, height));
  return { width: Math.max(1, Math.round(width * s)), height: Math.max(1, Math.round(height * s)) };
}

/** Draws `source` (scaled to fit MAX_SIDE) and reads its pixels. */
export function rasterize(source: CanvasImageSource, width: number, height: number): RgbaImage {
  const size = fitted(width, height);
  const ctx = context(size.width, size.height);
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(source, 0, 0, size.width, size.height);
  const { data } = ctx.getImageData(0, 0, size.width, size.height);
  return { width: size.width, height: size.height, data };
}

export async function decodeImage(blob: Blob): Promise<RgbaImage> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(blob, { imageOrientation: 'from-image' });
  } catch {
    throw new Error(`this file is not a picture the browser can decode (${blob.type || 'unknown type'})`);
  }
  try {
    return rasterize(bitmap, bitmap.width, bitmap.height);
  } finally {
    bitmap.close();
  }
}

export async function imageFromUrl(url: string): Promise<RgbaImage> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return decodeImage(await res.blob());
}

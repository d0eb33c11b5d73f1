/**
 * The view: the picture on one canvas, the Grad-CAM heat map (jet, opaque) on a second canvas
 * stacked above it, whose CSS opacity is the overlay slider, so moving the slider costs nothing.
 */
import type { GradcamMap } from '../gradcam/types.ts';
import type { RgbaImage } from '../image/image.ts';

function imageData(img: RgbaImage): ImageData {
  const data = img.data instanceof Uint8ClampedArray ? img.data : new Uint8ClampedArray(img.data.buffer, img.data.byteOffset, img.data.byteLength);
  return new ImageData(data as Uint8ClampedArray<ArrayBuffer>, img.width, img.height);
}

function ctx2d(canvas: HTMLCanvasElement): CanvasRenderingContext2D {
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  if (!ctx) throw new Error('no 2D canvas context');
  return ctx;
}

export function drawImage(canvas: HTMLCanvasElement, img: RgbaImage): void {
  if (canvas.width !== img.width) canvas.width = img.width;
  if (canvas.height !== img.height) canvas.height = img.height;
  ctx2d(canvas).putImageData(imageData(img), 0, 0);
}

export function clear(canvas: HTMLCanvasElement): void {
  ctx2d(canvas).clearRect(0, 0, canvas.width, canvas.height);
}

/** The picture with the heat map blended at `opacity` (for saving as PNG). */
export function composite(picture: HTMLCanvasElement, heat: HTMLCanvasElement, opacity: number): HTMLCanvasElement {
  const out = document.createElement('canvas');
  out.width = picture.width;
  out.height = picture.height;
  const ctx = ctx2d(out);
  ctx.drawImage(picture, 0, 0);
  ctx.globalAlpha = opacity;
  ctx.drawImage(heat, 0, 0, out.width, out.height);
  return out;
}

/**
 * The centre of the map's hottest cell, in picture pixels. A map of several planes (the guided
 * methods: [3, h, w], signed) counts Σ_c |raw_c| per cell, as its overlay shows.
 */
export function hotSpot(map: GradcamMap, width: number, height: number): { x: number; y: number } {
  const [h, w] = map.shape;
  const planes = Math.max(1, Math.round(map.raw.length / (h * w)));
  const value = (i: number) => {
    if (planes === 1) return map.raw[i];
    let s = 0;
    for (let c = 0; c < planes; c++) s += Math.abs(map.raw[c * h * w + i]);
    return s;
  };
  let best = 0;
  for (let i = 1; i < h * w; i++) if (value(i) > value(best)) best = i;
  return { x: ((best % w) + 0.5) * (width / w), y: (Math.floor(best / w) + 0.5) * (height / h) };
}

/** Test pictures: a flat grey ground with coloured rectangles, as PNG bytes. */
import sharp from 'sharp';

export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
  rgb: [number, number, number];
}

export async function picturePng(width: number, height: number, rects: Rect[], grey = 128): Promise<Buffer> {
  const px = Buffer.alloc(width * height * 4);
  for (let i = 0; i < width * height; i++) px.set([grey, grey, grey, 255], i * 4);
  for (const r of rects) {
    for (let y = r.y; y < r.y + r.h; y++) for (let x = r.x; x < r.x + r.w; x++) px.set([...r.rgb, 255], (y * width + x) * 4);
  }
  return sharp(px, { raw: { width, height, channels: 4 } }).png().toBuffer();
}

export function inside(p: { x: number; y: number }, r: Rect, margin = 0): boolean {
  return p.x >= r.x - margin && p.x <= r.x + r.w + margin && p.y >= r.y - margin && p.y <= r.y + r.h + margin;
}

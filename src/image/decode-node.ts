/**
 * Pictures in Node, through sharp (libvips): PNG, JPEG, WebP (and whatever else libvips reads)
 * to an RgbaImage, and an RgbaImage to a PNG file. The browser decodes with createImageBitmap instead.
 */
import sharp from 'sharp';
import { GradcamError } from '../errors.ts';
import { readFileOrFail, writeFileAtomic } from '../node/files.ts';
import type { RgbaImage } from './image.ts';
import { checkImage } from './image.ts';

/**
 * Decodes an image file to 8-bit RGBA, upright (EXIF orientation applied, as viewers show it).
 * Greyscale, palette and 16-bit pictures are converted to 8-bit sRGB; an opaque picture gets
 * alpha 255. Throws GradcamError("photo.png: no such file" / "...: not an image sharp can read").
 */
export async function decodeImageFile(path: string): Promise<RgbaImage> {
  const bytes = await readFileOrFail(path);
  try {
    const { data, info } = await sharp(bytes)
      .rotate()
      .toColourspace('srgb')
      .ensureAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 4) throw new Error(`decoded to ${info.channels} channels, expected 4`);
    const img = { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
    checkImage(img);
    return img;
  } catch (err) {
    const reason = (err as Error)?.message?.split('\n')[0] ?? String(err);
    throw new GradcamError(`${path}: not an image sharp can read (${reason})`, 'Give a PNG, JPEG or WebP picture, or a float32 .npy tensor.');
  }
}

/** Encodes RGBA pixels as PNG bytes. */
export async function encodePng(img: RgbaImage): Promise<Uint8Array> {
  checkImage(img);
  const buf = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 4 } }).png().toBuffer();
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** Writes a PNG through a temporary file and a rename: no half-written PNG ever exists at `path`. */
export async function encodePngAtomic(path: string, img: RgbaImage): Promise<void> {
  await writeFileAtomic(path, await encodePng(img));
}

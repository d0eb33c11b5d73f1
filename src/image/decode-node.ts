/**
 * Pictures in Node, through sharp (libvips): PNG, JPEG, WebP (and whatever else libvips reads)
 * to an RgbaImage, and an RgbaImage to a PNG file. The browser decodes with createImageBitmap instead.
 */
import sharp, { type Metadata } from 'sharp';
import { GradcamError } from '../errors.ts';
import { displayPath, type InputPath } from '../node/byte-paths.ts';
import { readFileOrFail, writeFileAtomic } from '../node/files.ts';
import type { RgbaImage } from './image.ts';
import { checkImage } from './image.ts';

/**
 * The most pixels a picture may have (width × height, before any resizing): sharp's own default
 * (16383 × 16383 ≈ 268 megapixels, 1 GiB of RGBA), so that a decompression bomb (a small file that
 * claims a huge picture) is refused from its header, before anything is decoded.
 */
export const DEFAULT_MAX_PIXELS = 16383 * 16383;

export interface DecodeOptions {
  /** The most pixels accepted (default DEFAULT_MAX_PIXELS). */
  maxPixels?: number;
  /** How the user raises the limit, for the message (default: the library option `maxPixels`). */
  raiseWith?: string;
}

const megapixels = (n: number) => `${+(n / 1e6).toFixed(1)} megapixels`;

/**
 * Decodes an image file to 8-bit RGBA, upright (EXIF orientation applied, as viewers show it).
 * Greyscale, palette and 16-bit pictures are converted to 8-bit sRGB; an opaque picture gets
 * alpha 255. Throws GradcamError("photo.png: no such file" / "...: not an image sharp can read" /
 * "...: 30000×30000 pixels (900 megapixels), more than the limit of ...").
 */
export async function decodeImageFile(file: InputPath, opts: DecodeOptions = {}): Promise<RgbaImage> {
  const bytes = await readFileOrFail(file);
  const path = displayPath(file);
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  const raise = opts.raiseWith ?? 'the maxPixels option';
  const tooBig = (what: string, needed?: number) => new GradcamError(
    `${path}: ${what}, more than the limit of ${maxPixels} pixels (${megapixels(maxPixels)})`,
    `Shrink the picture, or raise the limit with ${raise}${needed ? ` ${needed}` : ''} (decoding takes 4 bytes per pixel of memory).`);
  // The header's size, checked before decoding (sharp's own refusal would not say the numbers).
  let header: Metadata | undefined;
  try {
    header = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch { /* not an image: the decoder below says why */ }
  if (header?.width && header.height && header.width * header.height > maxPixels) {
    throw tooBig(`${header.width}×${header.height} pixels (${megapixels(header.width * header.height)})`, header.width * header.height);
  }
  try {
    const { data, info } = await sharp(bytes, { limitInputPixels: maxPixels })
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
    if (/exceeds pixel limit/i.test(reason)) throw tooBig('the picture has too many pixels');
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

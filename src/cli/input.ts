/** The CLI's model input: a picture (decoded with sharp) or a float32 NCHW .npy tensor. */
import { stat } from 'node:fs/promises';
import sharp from 'sharp';
import { GradcamError } from '../errors.ts';
import type { Graph } from '../graph/ir.ts';
import { decodeImageFile, DEFAULT_MAX_PIXELS } from '../image/decode-node.ts';
import type { RgbaImage } from '../image/image.ts';
import { describeShape, type NpyArray } from '../image/npy.ts';
import { displayPath, extensionOf, type InputPath } from '../node/byte-paths.ts';
import { readFileOrFail } from '../node/files.ts';
import { findNonFinite, indexIn } from '../runtime/engine.ts';
import { type Args, type Command, type Options, UsageError } from './command.ts';
import { readNpyFile } from './files.ts';

/** --max-pixels, for the commands that read a picture. */
export const PICTURE_OPTIONS: Options = { 'max-pixels': { type: 'string' } };
export const PICTURE_VALUES: Record<string, string> = { 'max-pixels': 'a number of pixels (width × height)' };
/** The help lines of PICTURE_OPTIONS (indented to the help's option column, 2 + `width`). */
export function pictureOptionsHelp(width: number): string {
  return `  ${'--max-pixels N'.padEnd(width)}the most pixels (width × height) a picture may have (default ${DEFAULT_MAX_PIXELS},
${' '.repeat(width + 2)}16383 × 16383): a bigger one is refused from its header, before decoding`;
}

/** --max-pixels N (an integer ≥ 1), or the default. */
export function maxPixelsOption(command: Command, args: Args): number {
  const v = args.values['max-pixels'];
  if (typeof v !== 'string') return DEFAULT_MAX_PIXELS;
  if (!/^\d+$/.test(v) || !(Number(v) >= 1) || !Number.isSafeInteger(Number(v))) {
    throw new UsageError(`--max-pixels takes ${PICTURE_VALUES['max-pixels']} ≥ 1, got '${v}'`, command);
  }
  return Number(v);
}

const isNpy = (path: InputPath) => extensionOf(path) === '.npy';

/**
 * A .npy tensor, checked against the model's input shape and for non-finite values (the error
 * names the file, also in a batch), or a decoded picture (at most `maxPixels`).
 */
export async function readInput(file: InputPath, graph: Graph, opts: { maxPixels?: number } = {}): Promise<{ tensor?: NpyArray; image?: RgbaImage }> {
  if (!isNpy(file)) return { image: await decodeImageFile(file, { maxPixels: opts.maxPixels, raiseWith: '--max-pixels' }) };
  const path = displayPath(file);
  const tensor = await readNpyFile(file);
  const want = graph.input.shape;
  if (tensor.shape.join() !== want.join()) {
    throw new GradcamError(`${path}: shape ${describeShape(tensor.shape)}, but the model's input '${graph.input.name}' is [${want}] (float32 NCHW)`,
      `Save an array of shape (${want.join(', ')}), e.g. np.save('x.npy', x.reshape(${want.join(', ')}).astype(np.float32)).`);
  }
  const bad = findNonFinite(tensor.data);
  if (bad) {
    throw new GradcamError(`${path}: non-finite values (${bad.kind}): ${bad.count} of ${tensor.data.length}, the first at ${indexIn(want, bad.first)}`,
      'The input tensor must hold finite float32 values; check how it was made.');
  }
  return { tensor };
}

/**
 * About how many bytes an input takes once read, from its header (before decoding): 4 per pixel
 * of a picture (RGBA), the file's size for a .npy tensor; 0 when that cannot be told (reading it
 * then says why). The many-inputs mode bounds a batch by this sum.
 */
export async function inputBytes(file: InputPath): Promise<number> {
  try {
    if (isNpy(file)) return (await stat(file)).size;
    const { width, height } = await sharp(await readFileOrFail(file), { limitInputPixels: false }).metadata();
    return width && height ? width * height * 4 : 0;
  } catch {
    return 0;
  }
}

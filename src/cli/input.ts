/** The CLI's model input: a picture (decoded with sharp) or a float32 NCHW .npy tensor. */
import { GradcamError } from '../errors.ts';
import type { Graph } from '../graph/ir.ts';
import { decodeImageFile, DEFAULT_MAX_PIXELS } from '../image/decode-node.ts';
import type { RgbaImage } from '../image/image.ts';
import { describeShape, type NpyArray } from '../image/npy.ts';
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

/** A .npy tensor, checked against the model's input shape, or a decoded picture (at most `maxPixels`). */
export async function readInput(path: string, graph: Graph, opts: { maxPixels?: number } = {}): Promise<{ tensor?: NpyArray; image?: RgbaImage }> {
  if (!/\.npy$/i.test(path)) return { image: await decodeImageFile(path, { maxPixels: opts.maxPixels, raiseWith: '--max-pixels' }) };
  const tensor = await readNpyFile(path);
  const want = graph.input.shape;
  if (tensor.shape.join() !== want.join()) {
    throw new GradcamError(`${path}: shape ${describeShape(tensor.shape)}, but the model's input '${graph.input.name}' is [${want}] (float32 NCHW)`,
      `Save an array of shape (${want.join(', ')}), e.g. np.save('x.npy', x.reshape(${want.join(', ')}).astype(np.float32)).`);
  }
  return { tensor };
}

/** The CLI's model input: a picture (decoded with sharp) or a float32 NCHW .npy tensor. */
import { GradcamError } from '../errors.ts';
import type { Graph } from '../graph/ir.ts';
import { decodeImageFile } from '../image/decode-node.ts';
import type { RgbaImage } from '../image/image.ts';
import type { NpyArray } from '../image/npy.ts';
import { readNpyFile } from './files.ts';

/** A .npy tensor, checked against the model's input shape, or a decoded picture. */
export async function readInput(path: string, graph: Graph): Promise<{ tensor?: NpyArray; image?: RgbaImage }> {
  if (!/\.npy$/i.test(path)) return { image: await decodeImageFile(path) };
  const tensor = await readNpyFile(path);
  const want = graph.input.shape;
  if (tensor.shape.join() !== want.join()) {
    throw new GradcamError(`${path}: shape [${tensor.shape}], but the model's input '${graph.input.name}' is [${want}] (float32 NCHW)`,
      `Save an array of shape (${want.join(', ')}), e.g. np.save('x.npy', x.reshape(${want.join(', ')}).astype(np.float32)).`);
  }
  return { tensor };
}


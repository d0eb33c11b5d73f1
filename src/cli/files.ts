/** Reading the CLI's tensor inputs, with errors prefixed by the path the user gave (models: src/models/resolve.ts). */
import { withContext } from '../errors.ts';
import { decodeNpy, type NpyArray } from '../image/npy.ts';
import { displayPath, type InputPath } from '../node/byte-paths.ts';
import { readFileOrFail } from '../node/files.ts';

export { writeFileAtomic } from '../node/files.ts';

/** Reads a float32 .npy tensor: "x.npy: dtype float64 ('<f8'); expected float32 ('<f4')". */
export async function readNpyFile(path: InputPath): Promise<NpyArray> {
  const bytes = await readFileOrFail(path);
  try {
    return decodeNpy(bytes);
  } catch (err) {
    throw withContext(displayPath(path), err);
  }
}

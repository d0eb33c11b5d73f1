/** Reading the CLI's inputs (models, tensors), with errors prefixed by the path the user gave. */
import { withContext } from '../errors.ts';
import { decodeNpy, type NpyArray } from '../image/npy.ts';
import { MAX_INPUT_BYTES, readFileOrFail } from '../node/files.ts';
import { decodeOnnx } from '../onnx/decode.ts';
import type { OnnxModel } from '../onnx/model.ts';

export { writeFileAtomic } from '../node/files.ts';

/**
 * Reads and decodes an ONNX file: "model.onnx: no such file", "model.onnx: not a readable ONNX model ...".
 * Only a regular file of at most 2 GiB (protobuf's limit; the engine has no external-data support).
 */
export async function readModelFile(path: string): Promise<OnnxModel> {
  const bytes = await readFileOrFail(path, { maxBytes: MAX_INPUT_BYTES, limitReason: 'an ONNX file is one protobuf message, which holds at most 2 GiB' });
  try {
    return decodeOnnx(bytes);
  } catch (err) {
    throw withContext(path, err);
  }
}

/** Reads a float32 .npy tensor: "x.npy: dtype float64 ('<f8'); expected float32 ('<f4')". */
export async function readNpyFile(path: string): Promise<NpyArray> {
  const bytes = await readFileOrFail(path);
  try {
    return decodeNpy(bytes);
  } catch (err) {
    throw withContext(path, err);
  }
}

/**
 * The models the project generates itself, by name, and their files under weights/generated/
 * (git-ignored: they are rebuilt from code and a seed, never committed or downloaded).
 *
 * This module is Node-only (it writes files); browser code imports the generator modules
 * (googlenet-zoo.ts, ...) directly and encodes the model in memory.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { GradcamError } from '../../src/errors.ts';
import { writeFileAtomic } from '../../src/node/files.ts';
import { isCheckout, modelCacheDir, repositoryRoot } from '../../src/node/paths.ts';
import type { OnnxModel } from '../../src/onnx/model.ts';
import { encodeOnnx } from '../../src/onnx/write.ts';
import { googlenetKnownAnswer } from './googlenet-known-answer.ts';
import { googlenetTorchvision } from './googlenet-torchvision.ts';
import { googlenetZoo } from './googlenet-zoo.ts';

export interface GeneratedModelSpec {
  /** One line for listings and logs. */
  description: string;
  /** Builds the model; deterministic (same bytes every time). */
  build: () => OnnxModel;
}

/** Every generated model. Adding one is adding an entry here. */
export const GENERATED_MODELS: Record<string, GeneratedModelSpec> = {
  'googlenet-zoo-seeded': {
    description: 'ONNX Model Zoo googlenet-12 topology and names (opset 12), seeded random weights',
    build: () => googlenetZoo(1),
  },
  'googlenet-torchvision-seeded': {
    description: 'torchvision GoogLeNet as torch.onnx.export writes it (opset 13, Conv+BatchNormalization), seeded random weights',
    build: () => googlenetTorchvision(2),
  },
  'googlenet-known-answer': {
    description: 'ONNX Model Zoo googlenet-12 topology and names, hand-set weights: classes 0, 1, 2 score red, green, blue (Grad-CAM known in advance)',
    build: googlenetKnownAnswer,
  },
};

function spec(name: string): GeneratedModelSpec {
  // Own entries only: a name like '__proto__' or 'constructor' is unknown, not Object's prototype.
  const s = Object.hasOwn(GENERATED_MODELS, name) ? GENERATED_MODELS[name] : undefined;
  if (!s) throw new GradcamError(`unknown generated model '${name}'`, `Known: ${Object.keys(GENERATED_MODELS).join(', ')}.`);
  return s;
}

/**
 * The absolute path of `weights/generated/<name>.onnx` in a checkout of the repository; for an
 * installed package, `generated/<name>.onnx` in the model cache (never inside node_modules).
 */
export function generatedModelPath(name: string): string {
  spec(name);
  const folder = isCheckout() ? join(repositoryRoot(), 'weights', 'generated') : join(modelCacheDir(), 'generated');
  return join(folder, `${name}.onnx`);
}

/** Builds a generated model and encodes it as ONNX bytes (no file involved). */
export function generateModelBytes(name: string): Uint8Array {
  return encodeOnnx(spec(name).build());
}

/**
 * Writes `weights/generated/<name>.onnx` unless it is there already (or `force`), and returns
 * its absolute path. The file is written to a temporary name in the same folder and renamed, so a
 * reader (or a concurrent test process) never sees half a file.
 */
export async function ensureGeneratedModel(
  name: string,
  opts: { force?: boolean; log?: (line: string) => void } = {},
): Promise<string> {
  const path = generatedModelPath(name);
  if (!opts.force && existsSync(path)) return path;
  opts.log?.(`generating ${name}: ${spec(name).description}`);
  const bytes = generateModelBytes(name);
  await mkdir(dirname(path), { recursive: true });
  await writeFileAtomic(path, bytes);
  opts.log?.(`wrote ${path} (${(bytes.length / 1e6).toFixed(1)} MB)`);
  return path;
}

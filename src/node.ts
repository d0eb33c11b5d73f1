/**
 * gradcam-webgpu for Node: everything in the main entry, plus WebGPU through Dawn (SwiftShader when
 * there is no GPU), model loading by file, manifest name or URL, and image files.
 */
import { type GpuContext } from './gpu/device.ts';
import { nodeGpu } from './gpu/node.ts';
import { Network, type NetworkOptions } from './gradcam/network.ts';
import { decodeImageFile, encodePngAtomic } from './image/decode-node.ts';
import type { RgbaImage } from './image/image.ts';
import type { RecipeOverrides } from './image/recipes.ts';
import { lowerOrFail, resolveModel } from './models/resolve.ts';
import { FilePlanStore } from './node/plan-files.ts';

export * from './index.ts';
export { nodeGpu } from './gpu/node.ts';
export { decodeNpy, encodeNpy } from './image/npy.ts';
export { FilePlanStore } from './node/plan-files.ts';

export interface LoadOptions extends NetworkOptions {
  /** A device to share; default: a new one from Dawn. */
  gpu?: GpuContext;
  /** Where one-line notices go (SwiftShader in use, demonstration model, download progress); default stderr. */
  log?: (line: string) => void;
  /**
   * The preprocessing, as `gradcam --recipe/--mean/--std/--size/--layout` set it: a recipe name and
   * fields on top of it. Default: the manifest's recipe, else the model's metadata_props, else a guess
   * (src/image/recipes.ts). `recipe` (a whole Recipe) replaces all of it.
   */
  preprocess?: RecipeOverrides;
  /** A labels file (one class name per line, as many as the model has classes), as `--labels FILE`. */
  labelsFile?: string;
}

/**
 * Loads a network from a model file, a manifest name ('googlenet-12', 'googlenet-known-answer', …)
 * or an http(s) URL; with no model, the default (googlenet-12 when downloaded, else the demonstration model).
 */
export async function loadNetwork(model?: string, options: LoadOptions = {}): Promise<Network> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const resolved = await resolveModel(model, log, { recipe: options.preprocess, labelsFile: options.labelsFile });
  lowerOrFail(resolved); // the labels' count checked, the model's ops too, before the GPU starts
  const gpu = options.gpu ?? (await nodeGpu(log));
  // Tuned plans are kept as files in the model cache unless a store is given (src/node/plan-files.ts).
  const tune = options.tune ? { ...(options.tune === true ? {} : options.tune), store: (options.tune !== true && options.tune.store) || new FilePlanStore() } : undefined;
  return Network.load(gpu, resolved.model, { recipe: resolved.recipe, labels: resolved.labels, ...options, tune });
}

/** Decodes a PNG, JPEG or WebP file to RGBA. */
export function readImage(path: string): Promise<RgbaImage> {
  return decodeImageFile(path);
}

/** Writes an RGBA image as PNG, atomically (no half-written file on failure). */
export function writePng(path: string, image: RgbaImage): Promise<void> {
  return encodePngAtomic(path, image);
}

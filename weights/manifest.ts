/** Typed access to weights/manifest.json: the models gradcam-webgpu knows by name. */
import manifest from './manifest.json' with { type: 'json' };

export interface ManifestModel {
  name: string;
  /** 'onnx-zoo': downloaded and checked against its SHA-256; 'generated': built by the project's code. */
  kind: 'onnx-zoo' | 'generated';
  description: string;
  /** Where the file is downloaded from (the primary source). */
  url?: string;
  /**
   * Other places that serve the same file (same size and SHA-256), tried in order after `url` when
   * it fails. The page tries `models/<name>.onnx` next to itself before either (scripts/model-files.ts).
   */
  mirrors?: string[];
  bytes?: number;
  sha256?: string;
  /** For generated models: the command that writes the file. */
  command?: string;
  opset: number;
  /**
   * The input as the zoo states it: its layout and shape (NCHW or NHWC). `name` only where it is
   * known for sure (the generated models, GoogLeNet's data_0); the engine reads the names from the file.
   */
  input: { name?: string; shape: number[]; layout?: 'NCHW' | 'NHWC' };
  /** The class scores; `name` and `logits` (the tensor before a final Softmax) only where known for sure. */
  output: { name?: string; shape: number[]; kind?: 'softmax' | 'logits'; logits?: string };
  /** A key of RECIPES (src/image/recipes.ts). */
  recipe: string;
  /** Where the recipe is an assumption (the zoo's Caffe conversions state none): says so, shown with the recipe. */
  recipeNote?: string;
  /**
   * The largest weight tensor in bytes (an architectural fact: AlexNet's and CaffeNet's fc6 9216 × 4096,
   * VGG's 25088 × 4096 float32), where it may exceed what a device binds in one buffer: the page
   * refuses such a model before downloading it (src/gradcam/limits.ts modelFitsDevice).
   */
  largestWeightBytes?: number;
  /** 'imagenet' or 'known-answer' (src/gradcam/labels.ts). */
  labels: string;
}

export const MODELS: readonly ManifestModel[] = manifest.models as ManifestModel[];

export function findModel(name: string): ManifestModel | undefined {
  return MODELS.find((m) => m.name === name);
}

/** The model every command uses when none is given and no real weights are cached. */
export const DEMO_MODEL = 'googlenet-known-answer';
/** The real model used by default once it is in the cache. */
export const DEFAULT_REAL_MODEL = 'googlenet-12';

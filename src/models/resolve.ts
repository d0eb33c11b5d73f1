/**
 * Model resolution (Node), shared by the library's loadNetwork and every CLI command: a model is a
 * path, a manifest name or an http(s) URL (`--model`); without it, the real GoogLeNet when it is in the cache, else the known-answer demonstration
 * model (said in one line, with how to get the real one).
 *
 * A downloadable manifest model that is not in the cache yet is fetched on first use (progress on
 * stderr, size and SHA-256 checked; weights/fetch.ts). A URL is downloaded into the cache once
 * (no checksum known: said in one line) and the cached file is used from then on.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { GradcamError, withContext } from '../errors.ts';
import type { Graph } from '../graph/ir.ts';
import { lower } from '../graph/lower.ts';
import { perImage } from '../graph/ir.ts';
import { checkLabelCount, chooseLabels, describeLabelSource, parseLabels } from '../gradcam/labels.ts';
import { chooseModelRecipe, type Recipe, type RecipeChoice, type RecipeOverrides } from '../image/recipes.ts';
import { MAX_INPUT_BYTES, readFileOrFail } from '../node/files.ts';
import { modelCacheDir } from '../node/paths.ts';
import { decodeOnnx } from '../onnx/decode.ts';
import type { OnnxModel } from '../onnx/model.ts';
import { ensureGeneratedModel } from '../../weights/generate/index.ts';
import { DEFAULT_REAL_MODEL, DEMO_MODEL, findModel, type ManifestModel } from '../../weights/manifest.ts';
import { fetchModel, type FetchOptions, isHttpUrl, redactUrl, targetForEntry, targetForUrl } from '../../weights/fetch.ts';
import { baseUrlFromEnv, fetchOptionsWithProgress, type ProgressStream } from './progress.ts';

export interface ResolvedModel {
  /** What the user asked for (or the default's name); a URL without its credentials. */
  name: string;
  path: string;
  model: OnnxModel;
  entry?: ManifestModel;
  /** How pictures become the input: the user's, the manifest's, the model's metadata_props or a guess (recipeChoice says which and why). */
  recipe: Recipe;
  recipeChoice: RecipeChoice;
  /** Class names, when stated (user, manifest, metadata); else ImageNet's for 1000 classes or 'class k' (labelOf). */
  labels?: readonly string[];
  /** Where `labels` came from, in words ('--labels names.txt', "the manifest's label set 'imagenet'", …); undefined when none was stated. */
  labelsFrom?: string;
}

export interface ResolveOptions {
  /** Where a download's progress display goes (default: process.stderr). */
  progress?: ProgressStream;
  /** Settings for the fetcher (cache folder, retries, timeouts, limits: --max-bytes, --max-time). */
  fetch?: FetchOptions;
  /** The user's recipe (--recipe, --mean, --std, --size, --layout): overrides the manifest's, the metadata's and the guess. */
  recipe?: RecipeOverrides;
  /** A labels file (--labels): one name per line, as many as the model has classes. */
  labelsFile?: string;
}

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

/** The cached file of a downloadable manifest model. */
export function cachedModelPath(name: string, cacheDir = modelCacheDir()): string {
  return join(cacheDir, `${name}.onnx`);
}

function fetchOptions(log: (line: string) => void, opts: ResolveOptions): FetchOptions {
  // A model used by a command gets the cheap check (size); `gradcam fetch` hashes it.
  return { verifyExisting: 'size', ...fetchOptionsWithProgress(log, opts.progress ?? process.stderr, opts.fetch) };
}

async function fromEntry(entry: ManifestModel, log: (line: string) => void, opts: ResolveOptions): Promise<ResolvedModel> {
  let path: string;
  if (entry.kind === 'generated') {
    path = await ensureGeneratedModel(entry.name, { log: (l) => log(`gradcam: ${l}`) });
  } else {
    path = (await fetchModel(targetForEntry(entry, { baseUrl: baseUrlFromEnv() }), fetchOptions(log, opts))).path;
  }
  return withChoices({ name: entry.name, path, model: await readModelFile(path), entry }, opts);
}

/** The recipe and labels of a model: the user's, else the manifest entry's, else the model's metadata_props, else guessed. */
async function withChoices(m: { name: string; path: string; model: OnnxModel; entry?: ManifestModel }, opts: ResolveOptions): Promise<ResolvedModel> {
  const { entry, model } = m;
  const recipeChoice = chooseModelRecipe(model, entry, opts.recipe);
  let user: { labels: readonly string[]; from: string } | undefined;
  if (opts.labelsFile !== undefined) {
    const bytes = await readFileOrFail(opts.labelsFile, { maxBytes: 64 * 2 ** 20, limitReason: 'a labels file holds one class name per line' });
    user = { labels: parseLabels(new TextDecoder().decode(bytes), opts.labelsFile), from: `--labels ${opts.labelsFile}` };
  }
  const { labels, from: labelsFrom } = chooseLabels({ user, manifestSet: entry?.labels, metadata: model.metadata });
  return { ...m, recipe: recipeChoice.recipe, recipeChoice, labels, labelsFrom };
}

/** Where a model's class names come from, in words, once its class count is known. */
export function describeLabels(m: ResolvedModel, classes: number): string {
  return describeLabelSource(m.labelsFrom, classes);
}

/** A model by URL: downloaded into the cache once, then the cached file. */
async function fromUrl(url: string, log: (line: string) => void, opts: ResolveOptions): Promise<ResolvedModel> {
  const shown = redactUrl(url);
  const result = await fetchModel(targetForUrl(url), fetchOptions(log, opts));
  if (result.status === 'cached') log(`gradcam: using ${result.path}, downloaded earlier from ${shown}`);
  let model: OnnxModel;
  try {
    model = await readModelFile(result.path);
  } catch (err) {
    const e = err instanceof GradcamError ? err : new GradcamError(String(err));
    throw new GradcamError(`${shown}: ${e.message}`, `Delete ${result.path} to download it again.`);
  }
  return withChoices({ name: shown, path: result.path, model }, opts);
}

export async function resolveModel(arg: string | undefined, log: (line: string) => void, opts: ResolveOptions = {}): Promise<ResolvedModel> {
  if (arg === undefined) {
    const real = findModel(DEFAULT_REAL_MODEL)!;
    if (existsSync(cachedModelPath(real.name, opts.fetch?.cacheDir))) return fromEntry(real, log, opts);
    log(`gradcam: using the demonstration model ${DEMO_MODEL} (hand-set weights: class 0 = red, 1 = green, 2 = blue); \`gradcam fetch ${real.name}\` gets the real GoogLeNet`);
    return fromEntry(findModel(DEMO_MODEL)!, log, opts);
  }
  if (isHttpUrl(arg)) return fromUrl(arg, log, opts);
  const entry = findModel(arg);
  if (entry && !existsSync(arg)) return fromEntry(entry, log, opts);
  return withChoices({ name: arg, path: arg, model: await readModelFile(arg) }, opts);
}

/**
 * Lowers the model now (tens of ms), so that a model the engine cannot run fails before the GPU
 * starts, at the recipe's size and layout; and checks the labels against its class count.
 */
export function lowerOrFail(m: ResolvedModel): Graph {
  let graph: Graph;
  try {
    graph = lower(m.model, { inputSize: m.recipe.size, layout: m.recipe.layout });
  } catch (err) {
    throw withContext(m.path, err);
  }
  if (m.labels && m.labelsFrom) checkLabelCount(m.labels, perImage(graph.tensors.get(graph.logits)!), m.labelsFrom.replace(/^--labels /, ''));
  return graph;
}

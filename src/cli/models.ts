/**
 * Model resolution shared by every command: `--model` takes a path or a manifest name; without it,
 * the real GoogLeNet when it is in the cache, else the known-answer demonstration model (said in
 * one line, with how to get the real one).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { GradcamError, withContext } from '../errors.ts';
import type { Graph } from '../graph/ir.ts';
import { lower } from '../graph/lower.ts';
import { labelSet } from '../gradcam/labels.ts';
import { RECIPES, type Recipe } from '../image/recipes.ts';
import { modelCacheDir } from '../node/paths.ts';
import type { OnnxModel } from '../onnx/model.ts';
import { ensureGeneratedModel } from '../../weights/generate/index.ts';
import { DEFAULT_REAL_MODEL, DEMO_MODEL, findModel, type ManifestModel } from '../../weights/manifest.ts';
import { readModelFile } from './files.ts';

export interface ResolvedModel {
  /** What the user asked for (or the default's name). */
  name: string;
  path: string;
  model: OnnxModel;
  entry?: ManifestModel;
  recipe?: Recipe;
  labels?: readonly string[];
}

/** The cached file of a downloadable manifest model. */
export function cachedModelPath(name: string): string {
  return join(modelCacheDir(), `${name}.onnx`);
}

async function fromEntry(entry: ManifestModel, log: (line: string) => void): Promise<ResolvedModel> {
  let path: string;
  if (entry.kind === 'generated') {
    path = await ensureGeneratedModel(entry.name, { log: (l) => log(`gradcam: ${l}`) });
  } else {
    path = cachedModelPath(entry.name);
    if (!existsSync(path)) {
      throw new GradcamError(`model '${entry.name}' is not downloaded yet (${(entry.bytes! / 2 ** 20).toFixed(1)} MiB)`, `Run \`gradcam fetch ${entry.name}\` first.`);
    }
  }
  return { name: entry.name, path, model: await readModelFile(path), entry, recipe: RECIPES[entry.recipe], labels: labelSet(entry.labels) };
}

export async function resolveModel(arg: string | undefined, log: (line: string) => void): Promise<ResolvedModel> {
  if (arg === undefined) {
    const real = findModel(DEFAULT_REAL_MODEL)!;
    if (existsSync(cachedModelPath(real.name))) return fromEntry(real, log);
    log(`gradcam: using the demonstration model ${DEMO_MODEL} (hand-set weights: class 0 = red, 1 = green, 2 = blue); \`gradcam fetch ${real.name}\` gets the real GoogLeNet`);
    return fromEntry(findModel(DEMO_MODEL)!, log);
  }
  const entry = findModel(arg);
  if (entry && !existsSync(arg)) return fromEntry(entry, log);
  return { name: arg, path: arg, model: await readModelFile(arg) };
}

/** Lowers the model now (tens of ms), so that a model the engine cannot run fails before the GPU starts. */
export function lowerOrFail(m: ResolvedModel): Graph {
  try {
    return lower(m.model);
  } catch (err) {
    throw withContext(m.path, err);
  }
}

/**
 * Where the page's model comes from: a manifest entry (downloaded and cached, or generated in the
 * page) or a local .onnx file. The result is a decoded OnnxModel plus what the page needs to show
 * and preprocess for it.
 */
import { decodeOnnx } from '../onnx/decode.ts';
import type { OnnxModel } from '../onnx/model.ts';
import { chooseLabels, type LabelChoice, parseLabels } from '../gradcam/labels.ts';
import { chooseModelRecipe, type RecipeChoice, type RecipeOverrides } from '../image/recipes.ts';
import { fetchModelFile, isCached, isOnServer, type DownloadProgress } from './download.ts';
import { generateModel } from './generated.ts';
import { DEFAULT_REAL_MODEL, DEMO_MODEL } from '../../weights/manifest.ts';
import type { Manifest, ManifestModel } from './manifest.ts';

/** The real model, used by default once it is in Cache Storage. */
export const REAL_MODEL = DEFAULT_REAL_MODEL;

/** A local .onnx file may come with a labels file (.txt, one class name per line) picked or dropped with it. */
export type ModelChoice = { kind: 'manifest'; entry: ManifestModel } | { kind: 'file'; file: File; labelsFile?: File };

/** What the user changed in the model card: recipe fields (as `--recipe`, `--mean` … do in the CLI) and a labels file. */
export interface ModelSettings {
  recipe?: RecipeOverrides;
  /** Class names from a labels file, and the file's name. */
  labels?: { names: string[]; file: string };
}

export interface LoadedModel {
  /** The manifest name or the file name. */
  name: string;
  model: OnnxModel;
  /** The manifest entry, for a manifest model. */
  entry?: ManifestModel;
  /** How pictures become the input, and where that came from (the user, the manifest, metadata_props, a guess) and why. */
  recipeChoice: RecipeChoice;
  /** Class names when stated (a labels file, the manifest's set, metadata_props) and where from; else the engine's default. */
  labels: LabelChoice;
  /** What the user set in the model card (kept when the model is reloaded with a change). */
  settings: ModelSettings;
  /** 'cache': the browser's Cache Storage; 'server': the page's own models/ folder (the CLI's cache under `npm start`). */
  source: 'cache' | 'server' | 'download' | 'generated' | 'file';
  /** The URL the file came from ('server' and 'download'). */
  url?: string;
  /** The known-answer demonstration model. */
  demo: boolean;
}

/**
 * The recipe and the class names of a model, chosen as the CLI chooses them (src/models/resolve.ts):
 * the user's, else the manifest entry's, else the model's metadata_props, else guessed / the default.
 */
export function withSettings(m: Omit<LoadedModel, 'recipeChoice' | 'labels' | 'settings'>, settings: ModelSettings): LoadedModel {
  const { entry, model } = m;
  const recipeChoice = chooseModelRecipe(model, entry, settings.recipe);
  const user = settings.labels && { labels: settings.labels.names, from: `${settings.labels.file} (a labels file)` };
  const labels = chooseLabels({ user, manifestSet: entry?.labels, metadata: model.metadata });
  return { ...m, recipeChoice, labels, settings };
}

export interface ModelProgress {
  text: string;
  /** 0–1 when known. */
  fraction?: number;
}

const MB = 1e6;

function describeDownload(p: DownloadProgress): ModelProgress {
  const pct = p.total ? Math.min(100, (100 * p.received) / p.total) : 0;
  const where = p.sameOrigin ? 'reading it from this server' : `downloading from ${new URL(p.url).host}`;
  return {
    text: `${where}… ${(p.received / MB).toFixed(1)} of ${(p.total / MB).toFixed(1)} MB (${pct.toFixed(0)} %), ${(p.rate / MB).toFixed(1)} MB/s`,
    fraction: p.total ? p.received / p.total : undefined,
  };
}

/** `?model=none`: start with no model, for someone about to open their own file (and the tests). */
export const NO_MODEL = 'none';

/**
 * The model to start with: none for `?model=none`; `?model=NAME` if given, else the real model when the browser has it
 * cached or the page's server has it in models/ (after `gradcam fetch`), else the demonstration model.
 */
export async function defaultModel(manifest: Manifest, requested: string | null): Promise<ManifestModel | undefined> {
  const find = (name: string) => manifest.models.find((m) => m.name === name);
  if (requested === NO_MODEL) return undefined;
  if (requested) {
    const e = find(requested);
    if (!e) throw new Error(`?model=${requested}: no such model in the manifest (${manifest.models.map((m) => m.name).join(', ')})`);
    return e;
  }
  const real = find(REAL_MODEL);
  if (real && ((await isCached(real).catch(() => false)) || (await isOnServer(real)))) return real;
  return find(DEMO_MODEL) ?? manifest.models.find((m) => m.kind === 'generated') ?? manifest.models[0];
}

export async function obtainModel(choice: ModelChoice, progress: (p: ModelProgress) => void): Promise<LoadedModel> {
  if (choice.kind === 'file') {
    progress({ text: `reading ${choice.file.name}…` });
    const bytes = new Uint8Array(await choice.file.arrayBuffer());
    const labels = choice.labelsFile ? { names: parseLabels(await choice.labelsFile.text(), choice.labelsFile.name), file: choice.labelsFile.name } : undefined;
    progress({ text: 'decoding the model…' });
    return withSettings({ name: choice.file.name, model: decodeOnnx(bytes), source: 'file', demo: false }, { labels });
  }
  const { entry } = choice;
  const common = { name: entry.name, entry, demo: entry.name === DEMO_MODEL };
  if (entry.kind === 'generated') {
    progress({ text: `building ${entry.name} in the page…` });
    // Let the progress line paint before the (synchronous, ~1 s) generator runs.
    await new Promise((r) => setTimeout(r, 0));
    return withSettings({ ...common, model: await generateModel(entry.name), source: 'generated' }, {});
  }
  progress({ text: `looking for ${entry.name} in the browser's cache and on this server…` });
  const file = await fetchModelFile(entry, (p) => progress(describeDownload(p)));
  progress({ text: 'decoding the model…' });
  await new Promise((r) => setTimeout(r, 0));
  return withSettings({ ...common, model: decodeOnnx(file.bytes), source: file.from, url: file.url }, {});
}

/**
 * Where the page's model comes from: a manifest entry (downloaded and cached, or generated in the
 * page) or a local .onnx file. The result is a decoded OnnxModel plus what the page needs to show
 * and preprocess for it.
 */
import { decodeOnnx } from '../onnx/decode.ts';
import type { OnnxModel } from '../onnx/model.ts';
import { parseLabels } from '../gradcam/labels.ts';
import { RECIPES, type Recipe } from '../image/recipes.ts';
import { fetchModelFile, isCached, isOnServer, type DownloadProgress } from './download.ts';
import { generateModel } from './generated.ts';
import { DEFAULT_REAL_MODEL, DEMO_MODEL } from '../../weights/manifest.ts';
import type { Manifest, ManifestModel } from './manifest.ts';

/** The real model, used by default once it is in Cache Storage. */
export const REAL_MODEL = DEFAULT_REAL_MODEL;

/** A local .onnx file may come with a labels file (.txt, one class name per line) picked or dropped with it. */
export type ModelChoice = { kind: 'manifest'; entry: ManifestModel } | { kind: 'file'; file: File; labelsFile?: File };

export interface LoadedModel {
  /** The manifest name or the file name. */
  name: string;
  model: OnnxModel;
  /** From the manifest; undefined = guessed by the engine from the model. */
  recipe?: Recipe;
  /** The manifest's label-set name ('imagenet', 'known-answer'). */
  labels?: string;
  /** Class names from a labels file next to a local .onnx (their count is checked when the model loads). */
  labelNames?: string[];
  /** 'cache': the browser's Cache Storage; 'server': the page's own models/ folder (the CLI's cache under `npm start`). */
  source: 'cache' | 'server' | 'download' | 'generated' | 'file';
  /** The URL the file came from ('server' and 'download'). */
  url?: string;
  /** The known-answer demonstration model. */
  demo: boolean;
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

/**
 * The model to start with: `?model=NAME` if given, else the real model when the browser has it
 * cached or the page's server has it in models/ (after `gradcam fetch`), else the demonstration model.
 */
export async function defaultModel(manifest: Manifest, requested: string | null): Promise<ManifestModel | undefined> {
  const find = (name: string) => manifest.models.find((m) => m.name === name);
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
    const labelNames = choice.labelsFile ? parseLabels(await choice.labelsFile.text(), choice.labelsFile.name) : undefined;
    progress({ text: 'decoding the model…' });
    return { name: choice.file.name, model: decodeOnnx(bytes), source: 'file', demo: false, labelNames };
  }
  const { entry } = choice;
  const recipe = entry.recipe ? RECIPES[entry.recipe] : undefined;
  const common = { name: entry.name, recipe, labels: entry.labels, demo: entry.name === DEMO_MODEL };
  if (entry.kind === 'generated') {
    progress({ text: `building ${entry.name} in the page…` });
    // Let the progress line paint before the (synchronous, ~1 s) generator runs.
    await new Promise((r) => setTimeout(r, 0));
    return { ...common, model: await generateModel(entry.name), source: 'generated' };
  }
  progress({ text: `looking for ${entry.name} in the browser's cache and on this server…` });
  const file = await fetchModelFile(entry, (p) => progress(describeDownload(p)));
  progress({ text: 'decoding the model…' });
  await new Promise((r) => setTimeout(r, 0));
  return { ...common, model: decodeOnnx(file.bytes), source: file.from, url: file.url };
}

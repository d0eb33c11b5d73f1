/**
 * The model manifest (weights/manifest.json, typed by weights/manifest.ts): bundled with the page,
 * or fetched from `?manifest=URL` (the end-to-end tests point an entry at a file their server serves).
 */
import { MODELS, type ManifestModel } from '../../weights/manifest.ts';

export type { ManifestModel };

export interface Manifest {
  models: readonly ManifestModel[];
}

function check(m: unknown, source: string): Manifest {
  const models = (m as { models?: unknown } | null)?.models;
  if (!Array.isArray(models)) throw new Error(`${source}: not a model manifest (no "models" list)`);
  for (const e of models as ManifestModel[]) {
    if (typeof e.name !== 'string' || (e.kind !== 'onnx-zoo' && e.kind !== 'generated')) {
      throw new Error(`${source}: an entry has no name or an unknown kind (${JSON.stringify(e).slice(0, 80)})`);
    }
    if (e.kind === 'onnx-zoo' && !(e.url && e.sha256 && e.bytes)) throw new Error(`${source}: '${e.name}' needs url, bytes and sha256`);
    if (e.mirrors !== undefined && !(Array.isArray(e.mirrors) && e.mirrors.every((u) => typeof u === 'string'))) {
      throw new Error(`${source}: '${e.name}': "mirrors" must be a list of URLs`);
    }
  }
  return { models: models as ManifestModel[] };
}

/** The bundled manifest, or the one at `url`. */
export async function loadManifest(url?: string | null): Promise<Manifest> {
  if (!url) return { models: MODELS };
  const res = await fetch(url, { cache: 'no-store' });
  if (!res.ok) throw new Error(`manifest ${url}: HTTP ${res.status}`);
  return check(await res.json(), url);
}

/** The zoo's families, by the start of the entry's name (the manifest states no family). */
const FAMILIES: [RegExp, string][] = [
  [/^(googlenet|inception)/, 'GoogLeNet and Inception'], [/^resnet/, 'ResNet'], [/^mobilenet/, 'MobileNet'],
  [/^squeezenet/, 'SqueezeNet'], [/^shufflenet/, 'ShuffleNet'], [/^densenet/, 'DenseNet'], [/^efficientnet/, 'EfficientNet'],
  [/^vgg/, 'VGG'], [/^(bvlcalexnet|caffenet)/, 'AlexNet and CaffeNet'],
];

/** The model picker's group of an entry: 'generated (built in this page)', or the zoo family ('ONNX Model Zoo: ResNet'). */
export function modelGroup(m: Pick<ManifestModel, 'kind'> & { name?: string }): string {
  if (m.kind === 'generated') return 'generated (built in this page)';
  return `ONNX Model Zoo: ${FAMILIES.find(([re]) => re.test(m.name ?? ''))?.[1] ?? 'other'}`;
}

/**
 * Results as JSON, the one layout the CLI's --json / --jsonl and the page's gallery download share:
 * a map as { layer, method, counterfactual, class, label, reduction, shape, raw, min, max, eigen?,
 * inspection? } with float32 values in their shortest decimal form, and a JSONL line's per-input
 * fields { predictions, maps, downscaled?, timings }. No Node and no DOM: the browser imports it too.
 */
import type { MapInspection } from './inspect.ts';
import type { GradcamMap, GradcamResult } from './types.ts';

/** The shortest decimal that reads back as the same float32 (1.2345600128173828 → 1.23456). */
export function f32(v: number): number {
  for (let p = 6; p < 9; p++) {
    const s = Number(v.toPrecision(p));
    if (Math.fround(s) === v) return s;
  }
  return Number(v.toPrecision(9));
}

/** A map as the JSON outputs hold it: raw at the layer's resolution, float32 values in their shortest form. */
export function mapJson(m: GradcamMap) {
  return {
    layer: m.layer, method: m.method, counterfactual: m.counterfactual, class: m.class, label: m.label, reduction: m.reduction,
    shape: m.channels ? [m.channels, ...m.shape] : m.shape, // the guided methods: [3, H, W]
    raw: Array.from(m.raw, f32), min: f32(m.min), max: f32(m.max), ...(m.eigen ? { eigen: m.eigen } : {}),
    ...(m.inspection ? { inspection: inspectionJson(m.inspection) } : {}),
  };
}

/** The inspector's report as JSON: float32 arrays as lists of shortest floats. */
export function inspectionJson(i: MapInspection) {
  const list = (a: ArrayLike<number> | undefined) => (a ? Array.from(a, f32) : undefined);
  const channel = (c: MapInspection['topChannels'][number]) => ({
    channel: c.channel, weight: c.weight === undefined ? undefined : f32(c.weight), contribution: c.contribution, branch: c.branch,
    activation: list(c.activation), gradient: list(c.gradient),
  });
  return {
    diagnosis: i.diagnosis, negativeShare: i.negativeShare, negativePositions: i.negativePositions, signed: list(i.signed),
    weights: list(i.weights), contributions: Array.from(i.contributions), topChannels: i.topChannels.map(channel),
    negativeChannels: i.negativeChannels.map(channel), branches: i.branches, camIdentity: i.camIdentity,
  };
}

/** The per-input fields of a JSONL line (besides `input`); `overlays`: each map's overlay file, when written. */
export function explainLine(result: GradcamResult, overlays?: string[]) {
  return {
    predictions: result.predictions.map((p) => ({ ...p, score: f32(p.score), probability: f32(p.probability) })),
    maps: result.maps.map((m, i) => ({ ...mapJson(m), ...(overlays ? { overlay: overlays[i] } : {}) })),
    ...(result.downscaled ? { downscaled: result.downscaled } : {}),
    timings: { forwardMs: result.timings.forwardMs, backwardMs: result.timings.backwardMs, camMs: result.timings.camMs, totalMs: result.timings.totalMs, source: result.timings.source },
  };
}

/**
 * A file-name stem for each input's outputs, from its base name without the extension: characters
 * other than letters, digits, '.', '_' and '-' replaced by '_'; a stem that an earlier input of the
 * list already has (compared without case) gets '-2', '-3', ... So the names depend only on the list.
 */
export function uniqueStems(baseNames: string[]): string[] {
  const used = new Set<string>();
  return baseNames.map((b) => {
    const base = b.replace(/[^A-Za-z0-9._-]/g, '_') || 'input';
    let stem = base;
    for (let i = 2; used.has(stem.toLowerCase()); i++) stem = `${base}-${i}`;
    used.add(stem.toLowerCase());
    return stem;
  });
}

/** A layer name as a file-name part: inception_4e/output_1 → inception_4e_output_1. */
export function layerPart(layer: string): string {
  return layer.replace(/^\/+/, '').replace(/[^A-Za-z0-9]+/g, '_').replace(/_+$/, '') || 'layer';
}

/** The overlay file of one map: <stem>.<layer>.class<C>.<method>.png (the CLI's --out-dir, the page's zip). */
export function overlayFileName(stem: string, map: { layer: string; class: number; method?: string; counterfactual?: boolean }): string {
  const method = `${map.method ?? 'gradcam'}${map.counterfactual ? '-counterfactual' : ''}`;
  return `${stem}.${layerPart(map.layer)}.class${map.class}.${method}.png`;
}

/**
 * Results as JSON, the one layout the CLI's --json / --jsonl and the page's gallery download share:
 * a map as { layer, method, counterfactual, class, label, reduction, shape, raw, min, max, eigen?,
 * smoothing?, passes?, completeness?, inspection? } with float32 values in their shortest decimal form, and a JSONL line's per-input
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
    ...(m.smoothing ? { smoothing: m.smoothing } : {}),
    ...(m.passes !== undefined ? { passes: m.passes } : {}),
    ...(m.completeness ? { completeness: m.completeness } : {}),
    ...(m.inspection ? { inspection: inspectionJson(m.inspection) } : {}),
  };
}

/**
 * integrated-gradients' completeness (GradcamMap.completeness) in one line: Σ attributions against
 * y(x) − y(x'), and the gap, also as a share of |y(x) − y(x')| (more steps shrink it).
 */
export function describeCompleteness(c: NonNullable<GradcamMap['completeness']>): string {
  const delta = c.score - c.baselineScore;
  const share = delta !== 0 ? ` (${((100 * Math.abs(c.gap)) / Math.abs(delta)).toPrecision(2)}% of |y(x) − y(x')|)` : '';
  return `completeness: Σ attributions ${c.sum.toPrecision(6)}, y(x) − y(x') = ${c.score.toPrecision(6)} − ${c.baselineScore.toPrecision(6)} = ${delta.toPrecision(6)}; gap ${c.gap.toExponential(2)}${share}`;
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

/**
 * The overlay file of one map: <stem>.<layer>.class<C>.<method>.png (the CLI's --out-dir, the page's
 * zip); a name longer than a file system allows (MAX_NAME_BYTES) is shortened (fitFileName).
 */
export function overlayFileName(stem: string, map: { layer: string; class: number; method?: string; counterfactual?: boolean }): string {
  const method = `${map.method ?? 'gradcam'}${map.counterfactual ? '-counterfactual' : ''}`;
  return fitFileName(`${stem}.${layerPart(map.layer)}`, `.class${map.class}.${method}.png`);
}

/** NAME_MAX of Linux, macOS and Windows file systems: the most bytes (UTF-8) of one file name. */
export const MAX_NAME_BYTES = 255;

const utf8Bytes = (s: string) => new TextEncoder().encode(s).length;

/**
 * `head + tail` as a file name, when it fits MAX_NAME_BYTES; else the start of `head`, '~', 12 hex
 * digits of a hash of the whole name and `tail` (the part that says what the file is), within
 * MAX_NAME_BYTES: still readable, and distinct names stay distinct.
 */
export function fitFileName(head: string, tail: string): string {
  const full = `${head}${tail}`;
  if (utf8Bytes(full) <= MAX_NAME_BYTES) return full;
  const mark = `~${nameHash(full)}`;
  const room = MAX_NAME_BYTES - utf8Bytes(mark + tail);
  let start = '';
  let bytes = 0;
  for (const ch of head) { // whole characters only
    bytes += utf8Bytes(ch);
    if (bytes > room) break;
    start += ch;
  }
  return `${start}${mark}${tail}`;
}

/** 12 hex digits (48 bits) of a hash of `s`: two FNV-1a hashes of its UTF-16 code units, with different offsets. */
function nameHash(s: string): string {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193) >>> 0;
    h2 = Math.imul(h2 ^ c, 0x01000193) >>> 0;
    h2 = (h2 ^ (h2 >>> 15)) >>> 0;
  }
  return (h1.toString(16).padStart(8, '0') + h2.toString(16).padStart(8, '0')).slice(0, 12);
}

/**
 * Whether `name` is one that overlayFileName gives for one of `stems` (some layer, class and
 * method, or the shortened form): an input with such a name in --out-dir could be overwritten.
 */
export function isOverlayFileOf(name: string, stems: ReadonlySet<string>): boolean {
  const m = /^(.*)\.class\d+\.[A-Za-z0-9+-]+\.png$/.exec(name);
  if (!m) return false;
  const full = /^(.*)\.[A-Za-z0-9_]+$/.exec(m[1]); // <stem>.<layer>: the layer part has no '.'
  if (full && stems.has(full[1])) return true;
  const short = /^(.*)~[0-9a-f]{12}$/.exec(m[1]);
  return !!short && [...stems].some((stem) => `${stem}.`.startsWith(short[1]) || short[1].startsWith(`${stem}.`));
}

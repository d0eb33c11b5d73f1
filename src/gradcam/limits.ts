/**
 * What a Grad-CAM request needs from the device, worked out before any GPU work: the buffers that
 * grow with the K classes per image (gradients, Winograd scratch, maps) against the largest
 * storage buffer the device binds, which gives the classes-per-request limit; and the display
 * (upsampled maps, overlays) against the buffer and read-back limits, scaled down when a picture
 * is too large for them.
 */
import { GradcamError } from '../errors.ts';
import { type DeviceLimits, formatBytes } from '../gpu/dispatch.ts';
import { type Op, perImage } from '../graph/ir.ts';
import { withSoftmaxScore } from '../graph/score.ts';
import { convBackwardScratch } from '../kernels/conv.ts';
import { matmulBackwardScratch } from '../ops/matmul.ts';
import { gradientBuffers, gradientPlan } from '../runtime/backward.ts';
import type { Engine } from '../runtime/engine.ts';
import { opShapes } from '../runtime/forward.ts';
import { methodSpec } from './methods.ts';
import type { PlannedRequest } from './request.ts';

/** What a program is made for: the layers, K classes per image, the reduction and the score tensor. */
export type ProgramShape = Pick<PlannedRequest, 'layers' | 'k' | 'reduction' | 'score'> & { methods?: PlannedRequest['methods'] };

/** What a display is wanted for: the upsampled maps, the overlays (either makes the display stage). */
export interface DisplayWant {
  upsampled: boolean;
  overlay: boolean;
}

export interface BufferNeed {
  label: string;
  bytes: number;
}

/** The largest storage buffer the device both allocates and binds, and which limit that is. */
export function storageLimit(limits: DeviceLimits): { bytes: number; name: string } {
  return limits.maxStorageBufferBindingSize <= limits.maxBufferSize
    ? { bytes: limits.maxStorageBufferBindingSize, name: 'maxStorageBufferBindingSize' }
    : { bytes: limits.maxBufferSize, name: 'maxBufferSize' };
}

/**
 * Whether a manifest model can run on a device, from what the manifest states, before downloading
 * it: its largest weight must fit one storage buffer (weights are bound one tensor per buffer).
 * Undefined when it fits (or nothing is stated); else why not, in words.
 */
export function modelFitsDevice(entry: { name: string; bytes?: number; largestWeightBytes?: number }, limits: DeviceLimits): string | undefined {
  const limit = storageLimit(limits);
  if (entry.largestWeightBytes !== undefined && entry.largestWeightBytes > limit.bytes) {
    return `${entry.name} is too big for this GPU: its largest weight tensor takes ${formatBytes(entry.largestWeightBytes)}, more than the ${formatBytes(limit.bytes)} this device binds in one buffer (${limit.name}); not downloaded`;
  }
  return undefined;
}

/**
 * The buffers of a Grad-CAM program that grow with K (an upper bound: every gradient buffer the
 * backward pass may make, its convolutions' scratch, α and the raw maps), in bytes.
 */
export function programBuffers(engine: Engine, req: ProgramShape): BufferNeed[] {
  const items = engine.graph.batch * req.k;
  // The score: the logits, the model's probabilities, or (softmax without one) probabilities the
  // program adds after the logits (graph/score.ts); the gradient reaches the graph through the logits then.
  const graph = !req.score && req.reduction === 'softmax' && !engine.graph.probabilities ? withSoftmaxScore(engine.graph).graph : engine.graph;
  const score = req.score ?? (req.reduction === 'softmax' ? graph.probabilities! : graph.logits);
  const plan = gradientPlan(graph, score, req.layers);
  // The scratch an op's data gradient makes: convolutions' (Winograd, split-K), MatMul's over the last axis (split-K).
  const backwardScratch = (op: Op) => op.kind === 'conv' ? convBackwardScratch(op, opShapes(graph, op), items, engine.env)
    : op.kind === 'matmul' ? matmulBackwardScratch(op, opShapes(graph, op), items, engine.env.variant) : [];
  const needs: BufferNeed[] = gradientBuffers(graph, { score, features: req.layers, classesPerImage: req.k }, plan)
    .map((b) => ({ label: b.label, bytes: b.floats * 4 }));
  // The data gradients of the cone's convolutions (those whose input carries a gradient) make scratch.
  for (const op of plan.cone) {
    if (!plan.needs(op.inputs[0])) continue;
    for (const b of backwardScratch(op)) needs.push({ label: b.label, bytes: b.floats * 4 });
  }
  needs.push({ label: 'classes', bytes: items * 4 });
  // The guided methods: a second backward pass's gradients, down to the input, and their maps (planes × H × W per item).
  const guided = (req.methods ?? []).filter((m) => methodSpec(m).kind === 'guided');
  if (guided.length) {
    const input = graph.input.name;
    const gplan = gradientPlan(graph, score, [input]);
    for (const b of gradientBuffers(graph, { score, features: [input], classesPerImage: req.k }, gplan)) needs.push({ label: `guided ${b.label}`, bytes: b.floats * 4 });
    for (const op of gplan.cone) {
      if (!gplan.needs(op.inputs[0])) continue;
      for (const b of backwardScratch(op)) needs.push({ label: `guided ${b.label}`, bytes: b.floats * 4 });
    }
    needs.push({ label: 'guided maps', bytes: items * perImage(graph.tensors.get(input)!) * 4 });
  }
  // The input attributions (attributions.ts): saliency and input-x-gradient's plain backward pass to the
  // input (as the guided one), and each input method's maps (C × H × W per item at most).
  const atInput = (req.methods ?? []).filter((m) => ['input', 'input-passes', 'occlusion'].includes(methodSpec(m).kind));
  if (atInput.some((m) => methodSpec(m).kind === 'input' || m === 'integrated-gradients')) {
    const input = graph.input.name;
    const iplan = gradientPlan(graph, score, [input]);
    for (const b of gradientBuffers(graph, { score, features: [input], classesPerImage: req.k }, iplan)) needs.push({ label: `input ${b.label}`, bytes: b.floats * 4 });
    for (const op of iplan.cone) {
      if (!iplan.needs(op.inputs[0])) continue;
      for (const b of backwardScratch(op)) needs.push({ label: `input ${b.label}`, bytes: b.floats * 4 });
    }
  }
  for (const m of atInput) needs.push({ label: `map ${m}`, bytes: items * perImage(graph.tensors.get(graph.input.name)!) * 4 });
  for (const l of req.layers) {
    const s = graph.tensors.get(l)!.shape;
    // Per method: weights (the weighted ones), the map and the signed map (Eigen-CAM's scratch is per image, not per K).
    for (const m of (req.methods ?? ['gradcam']).filter((x) => !['guided', 'input', 'input-passes', 'occlusion'].includes(methodSpec(x).kind))) {
      if (methodSpec(m).kind === 'weighted') needs.push({ label: `weights ${m} ${l}`, bytes: items * s[1] * 4 });
      needs.push({ label: `map ${m} ${l}`, bytes: items * (s[2] ?? 1) * (s[3] ?? 1) * 4 }, { label: `signed map ${m} ${l}`, bytes: items * (s[2] ?? 1) * (s[3] ?? 1) * 4 });
    }
  }
  return needs;
}

/**
 * Throws, before any GPU work, when a Grad-CAM program for `req` would need a buffer larger than
 * the device binds; the message names the limit, the buffer, and the most classes per request that
 * fit with these layers (the buffers grow with K).
 */
export function checkProgramFits(engine: Engine, req: ProgramShape, limits: DeviceLimits): void {
  const limit = storageLimit(limits);
  const over = (k: number) => programBuffers(engine, { ...req, k }).filter((b) => b.bytes > limit.bytes).sort((a, b) => b.bytes - a.bytes);
  const bad = over(req.k);
  if (!bad.length) return;
  let fits = 0, fails = req.k; // the largest K that fits lies in [fits, fails)
  while (fails - fits > 1) {
    const mid = Math.floor((fits + fails) / 2);
    if (over(mid).length) fails = mid;
    else fits = mid;
  }
  const layers = req.layers.length === 1 ? `layer '${req.layers[0]}'` : `${req.layers.length} layers`;
  const what = `${req.k} class${req.k === 1 ? '' : 'es'} per image at ${layers} need${req.k === 1 ? 's' : ''} ${formatBytes(bad[0].bytes)} for the buffer '${bad[0].label}', more than this GPU's ${limit.name} (${formatBytes(limit.bytes)})`;
  if (fits === 0) {
    throw new GradcamError(`${what}; not even one class fits at ${layers}`, 'Choose a later layer (earlier layers have larger gradients) or a smaller input.');
  }
  throw new GradcamError(`${what}: at most ${fits} classes per request fit with ${req.layers.length === 1 ? 'this layer' : 'these layers'}`,
    `Ask for at most ${fits} classes at once (split the request), or choose later layers.`);
}

/** The display read-back is kept within this many bytes whatever the device allows: JavaScript holds a copy. */
export const DISPLAY_READBACK_MAX = 2 ** 30;

export interface DisplayPlan {
  /** The size the maps are upsampled to and the overlays drawn at. */
  width: number;
  height: number;
  /** Set when that is smaller than the picture: the picture's size and why. */
  downscaled?: { pictureWidth: number; pictureHeight: number; reason: string };
}

/**
 * The display size for `maps` maps over a width × height picture: the picture's size when the
 * upsampled maps and overlays fit the device's buffer limits, the read-back limit and the dispatch
 * limit (8-pixel workgroups per dimension), else the largest size with the picture's aspect ratio
 * that does. `otherReadback`: the bytes of everything else read back with them.
 */
export function fitDisplay(width: number, height: number, maps: number, want: DisplayWant, otherReadback: number,
  limits: DeviceLimits): DisplayPlan {
  const storage = storageLimit(limits);
  const readback = { bytes: Math.min(limits.maxBufferSize, DISPLAY_READBACK_MAX), name: limits.maxBufferSize <= DISPLAY_READBACK_MAX ? 'maxBufferSize' : 'display read-back limit' };
  const groups = limits.maxComputeWorkgroupsPerDimension;
  const hint = 'Ask for fewer classes or layers at once, or for the raw maps only (upsample: false, no overlay).';
  if (maps > groups) {
    throw new GradcamError(`${maps} display maps exceed this GPU's maxComputeWorkgroupsPerDimension (${groups})`, hint);
  }
  // Per pixel of one map: 4 bytes in each display buffer (upsampled f32, overlay RGBA8); read back: those wanted.
  const perPixelRead = 4 * (want.upsampled ? 1 : 0) + 4 * (want.overlay ? 1 : 0);
  const byStorage = Math.floor(storage.bytes / (4 * maps));
  const byReadback = perPixelRead ? Math.floor((readback.bytes - otherReadback) / (maps * perPixelRead)) : Infinity;
  const pixels = Math.min(byStorage, byReadback);
  const maxSide = 8 * groups;
  if (width * height <= pixels && width <= maxSide && height <= maxSide) return { width, height };
  if (pixels < 1) {
    throw new GradcamError(`${maps} display maps do not fit this GPU's ${byStorage <= byReadback ? storage.name : readback.name} at any size`, hint);
  }
  const s = Math.min(Math.sqrt(pixels / (width * height)), maxSide / width, maxSide / height);
  let w = Math.max(1, Math.floor(width * s));
  let h = Math.max(1, Math.floor(height * s));
  while (w * h > pixels) {
    if (w >= h) w--;
    else h--;
  }
  const full = maps * width * height;
  const reason = width > maxSide || height > maxSide
    ? `a side above ${maxSide} pixels exceeds this GPU's maxComputeWorkgroupsPerDimension (${groups}) × 8`
    : byStorage <= byReadback
      ? `${maps} map${maps === 1 ? '' : 's'} at ${width}×${height} need ${formatBytes(full * 4)} per display buffer, more than this GPU's ${storage.name} (${formatBytes(storage.bytes)})`
      : `${maps} map${maps === 1 ? '' : 's'} at ${width}×${height} need ${formatBytes(otherReadback + full * perPixelRead)} of read-back, more than the ${readback.name} (${formatBytes(readback.bytes)})`;
  return { width: w, height: h, downscaled: { pictureWidth: width, pictureHeight: height, reason } };
}

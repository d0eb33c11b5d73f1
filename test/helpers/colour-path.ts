/**
 * The known-answer model's colour path along one axis, simulated exactly in float64 from the
 * model's own weights and node attributes (not from the generator's constants), for exhaustive
 * scans of square positions and sizes.
 *
 * Why one axis is enough: on a 224×224 picture a square over grey gives conv1 a colour response
 * that is the product of two interval indicators; every Conv on the path has a separable kernel
 * k⊗k (checked here), and a max over a rectangle of a non-negative product f(x)·g(y) is
 * max f · max g, so the response at inception_5b, and its bilinear upsampling, stay products
 * f(x)·g(y). The LRNs are skipped: on this model they divide by (1 + ≤1.4e-8)^0.75 (see the
 * generator), which changes nothing at the 1e-3 margins used here. For resized pictures the
 * antialiased square edges and conv1's threshold are not exactly separable at the corners; the
 * scan treats the other axis as fully covered, which the GPU tests check in 2-D.
 */
import type { OnnxModel, OnnxNode } from '../../src/onnx/model.ts';
import { KNOWN_ANSWER_PATH, KNOWN_ANSWER_THRESHOLD } from '../../weights/generate/googlenet-known-answer.ts';

type Step = (x: Float64Array) => Float64Array;

function ints(node: OnnxNode, name: string, fallback: number[]): number[] {
  const a = node.attributes[name];
  return a && a.type === 'ints' ? a.value : fallback;
}

/** A 1-D convolution (zero padding) or max-pool (−∞ padding) along the width axis. */
function window1d(x: Float64Array, taps: number, stride: number, padBegin: number, padEnd: number, f: 'sum' | 'max', kernel?: number[]): Float64Array {
  const n = Math.floor((x.length + padBegin + padEnd - taps) / stride) + 1;
  const out = new Float64Array(n);
  for (let q = 0; q < n; q++) {
    let acc = f === 'max' ? -Infinity : 0;
    for (let d = 0; d < taps; d++) {
      const i = q * stride - padBegin + d;
      if (i < 0 || i >= x.length) continue;
      acc = f === 'max' ? Math.max(acc, x[i]) : acc + kernel![d] * x[i];
    }
    out[q] = acc;
  }
  return out;
}

/** The 1-D factor k of a Conv's kernel W[o][i] = k⊗k; throws if it is not separable and non-negative. */
function separableKernel(model: OnnxModel, node: OnnxNode, o: number, i: number): number[] {
  const w = model.initializers.get(node.inputs[1]);
  if (!w) throw new Error(`${node.name}: no weights`);
  const [, cin, kh, kw] = w.dims;
  const data = w.data as Float32Array;
  const at = (y: number, x: number) => data[((o * cin + i) * kh + y) * kw + x];
  let total = 0;
  for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) total += at(y, x);
  if (!(total > 0)) throw new Error(`${node.name}: W[${o}][${i}] sums to ${total}`);
  const k = Array.from({ length: kh }, (_, y) => {
    let row = 0;
    for (let x = 0; x < kw; x++) row += at(y, x);
    return row / Math.sqrt(total);
  });
  for (let y = 0; y < kh; y++) {
    for (let x = 0; x < kw; x++) {
      if (at(y, x) < 0 || Math.abs(at(y, x) - k[y] * k[x]) > 1e-6 * total) throw new Error(`${node.name}: W[${o}][${i}] is not k⊗k with k ≥ 0`);
    }
  }
  return k;
}

/**
 * The path for colour 0 (red) as a function from conv1's thresholded response along one axis
 * (224 samples, ≥ 0) to the 7 values of inception_5b's red channel along that axis.
 */
export function colourPath1d(model: OnnxModel): Step {
  const path = new Map(KNOWN_ANSWER_PATH.map((p) => [p.layer, p]));
  const steps: Step[] = [];
  for (const node of model.nodes) {
    const pads = ints(node, 'pads', [0, 0, 0, 0]);
    const [stride] = ints(node, 'strides', [1, 1]);
    const [taps] = ints(node, 'kernel_shape', [1, 1]);
    if (node.name === 'conv1/7x7_s2') {
      // One tap per output, the same for all three input channels: a shifted sampling.
      const w = model.initializers.get(node.inputs[1])!;
      const [, cin, kh, kw] = w.dims;
      const used = new Set<string>();
      for (let i = 0; i < cin; i++) for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) if ((w.data as Float32Array)[((0 * cin + i) * kh + y) * kw + x] !== 0) used.add(`${y},${x}`);
      if (used.size !== 1) throw new Error(`conv1: red reads ${used.size} taps, expected 1`);
      const [, tx] = [...used][0].split(',').map(Number);
      const kernel = Array.from({ length: taps }, (_, d) => (d === tx ? 1 : 0));
      steps.push((x) => window1d(x, taps, stride, pads[1], pads[3], 'sum', kernel));
    } else if (node.opType === 'Conv' && path.has(node.name)) {
      const p = path.get(node.name)!;
      const kernel = separableKernel(model, node, p.to, p.from);
      const bias = model.initializers.get(node.inputs[2])!.data as Float32Array;
      if (bias[p.to] !== 0) throw new Error(`${node.name}: the colour channel has a bias`);
      steps.push((x) => window1d(x, taps, stride, pads[1], pads[3], 'sum', kernel));
    } else if (node.opType === 'MaxPool' && /^pool\d\//.test(node.name)) {
      steps.push((x) => window1d(x, taps, stride, pads[1], pads[3], 'max'));
    }
  }
  if (steps.length !== 1 + KNOWN_ANSWER_PATH.length + 4) throw new Error(`colour path: ${steps.length} steps`);
  return (x) => steps.reduce((v, step) => step(v), x);
}

/** The preprocessing's antialiased triangle resize along one axis (test/reference/preprocess.ts). */
export function resize1d(src: Float64Array, size: number): Float64Array {
  const scale = src.length / size;
  const support = Math.max(scale, 1);
  const out = new Float64Array(size);
  for (let X = 0; X < size; X++) {
    const c = (X + 0.5) * scale;
    let s = 0, t = 0;
    for (let i = Math.max(0, Math.floor(c - support)); i < Math.min(src.length, Math.ceil(c + support)); i++) {
      const w = Math.max(0, 1 - Math.abs(i + 0.5 - c) / support);
      s += w * src[i];
      t += w;
    }
    out[X] = s / t;
  }
  return out;
}

/** Bilinear upsampling along one axis, align_corners = false (as shaders/overlay.wgsl). */
export function upsample1d(c: ArrayLike<number>, size: number): Float64Array {
  const out = new Float64Array(size);
  const n = c.length;
  for (let X = 0; X < size; X++) {
    const s = Math.min(Math.max((X + 0.5) * (n / size) - 0.5, 0), n - 1);
    const i0 = Math.floor(s);
    const i1 = Math.min(i0 + 1, n - 1);
    out[X] = (1 - (s - i0)) * c[i0] + (s - i0) * c[i1];
  }
  return out;
}

/**
 * The upsampled response along one axis of a picture of `size` pixels to a square [a, a + s) whose
 * colour has the opponency `strength` (255 for pure red; X_c − (X_o1 + X_o2)/2 in 0–255 units).
 */
export function squareResponse1d(path: Step, size: number, a: number, s: number, strength = 255): Float64Array {
  let t: Float64Array = new Float64Array(size);
  t.fill(1, a, a + s);
  if (size !== 224) t = resize1d(t, 224);
  // conv1's threshold: a pixel that is a fraction t colour and 1 − t grey has opponency t·strength.
  const u = t.map((v) => Math.max(0, strength * v - KNOWN_ANSWER_THRESHOLD));
  return upsample1d(path(u), size);
}

/** Whether a pixel of an axis of `size` pixels lies in the band where bilinear upsampling of 7 cells replicates an edge cell: -1 (start), 1 (end), 0. */
export function borderBand(x: number, size: number, cells = 7): -1 | 0 | 1 {
  const s = (x + 0.5) * (cells / size) - 0.5;
  return s <= 0 ? -1 : s >= cells - 1 ? 1 : 0;
}

/**
 * "The maximum lies inside [a, a + s)", along one axis: every pixel within `tol` (relative) of the
 * maximum is inside, or in an edge band that the square reaches (all pixels of a band hold the
 * same value, so the square holds that maximum too).
 */
export function allowedAt(x: number, size: number, a: number, s: number): boolean {
  if (x >= a && x < a + s) return true;
  const band = borderBand(x, size);
  return band !== 0 && (borderBand(a, size) === band || borderBand(a + s - 1, size) === band);
}

export function maximumInside1d(u: ArrayLike<number>, a: number, s: number, tol: number): boolean {
  let max = 0;
  for (let i = 0; i < u.length; i++) max = Math.max(max, u[i]);
  if (!(max > 0)) return false;
  for (let x = 0; x < u.length; x++) if (u[x] >= max * (1 - tol) && !allowedAt(x, u.length, a, s)) return false;
  return true;
}

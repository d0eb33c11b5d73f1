/**
 * Deletion and insertion (Petsiuk et al. 2018, RISE, §4.1). The input's pixels are ranked by the
 * map (upsampled to the input's resolution; higher first, ties by row-major index). Deletion
 * replaces them with a baseline, most important first; insertion starts from the baseline and
 * puts them back in the same order. With `steps` = N, step i ∈ 0…N has the first
 * n_i = round(i · H·W / N) pixels changed (all channels of a pixel together), and the curve is the
 * class's probability at each step. Its area, on [0, 1] by the trapezoid rule:
 *
 *   AUC = (1/N) · (Σ_{i=0..N} p_i − (p_0 + p_N)/2)
 *
 * Deletion: lower is better (the probability falls fast when the map's pixels go); insertion:
 * higher is better. Baselines: 'zero' (the input value 0: after mean subtraction, the dataset's
 * mean colour) and 'blur' (each channel blurred with a Gaussian of σ = 5 px on an 11 × 11 window,
 * edges clamped). RISE's defaults, ours too: zero for deletion, blur for insertion, and 224 steps
 * (224 pixels per step at 224 × 224).
 */

export const BASELINES = ['zero', 'blur'] as const;
export type Baseline = (typeof BASELINES)[number];
export const DEFAULT_STEPS = 224;
export const BLUR_SIGMA = 5;
export const BLUR_RADIUS = 5;

export function isBaseline(s: unknown): s is Baseline {
  return BASELINES.includes(s as Baseline);
}

/** Pixel indices by decreasing map value, ties by increasing index. */
export function pixelOrder(map: ArrayLike<number>): Uint32Array {
  const order = Uint32Array.from({ length: map.length }, (_, i) => i);
  order.sort((a, b) => map[b] - map[a] || a - b);
  return order;
}

/** n_i: how many pixels are changed at step i of `steps` over `pixels`. */
export function changedAt(i: number, steps: number, pixels: number): number {
  return Math.round((i * pixels) / steps);
}

/** The baseline input for `x` (C planes of h × w, CHW). */
export function baselineInput(x: Float32Array, c: number, h: number, w: number, baseline: Baseline): Float32Array {
  if (baseline === 'zero') return new Float32Array(x.length);
  const k = Array.from({ length: 2 * BLUR_RADIUS + 1 }, (_, i) => Math.exp(-((i - BLUR_RADIUS) ** 2) / (2 * BLUR_SIGMA ** 2)));
  const sum = k.reduce((a, b) => a + b, 0);
  const kernel = k.map((v) => v / sum);
  const tmp = new Float64Array(h * w);
  const out = new Float32Array(x.length);
  const clamp = (v: number, n: number) => Math.min(n - 1, Math.max(0, v));
  for (let ch = 0; ch < c; ch++) {
    const plane = ch * h * w;
    for (let y = 0; y < h; y++) {
      for (let xx = 0; xx < w; xx++) {
        let s = 0;
        for (let t = -BLUR_RADIUS; t <= BLUR_RADIUS; t++) s += kernel[t + BLUR_RADIUS] * x[plane + y * w + clamp(xx + t, w)];
        tmp[y * w + xx] = s;
      }
    }
    for (let y = 0; y < h; y++) {
      for (let xx = 0; xx < w; xx++) {
        let s = 0;
        for (let t = -BLUR_RADIUS; t <= BLUR_RADIUS; t++) s += kernel[t + BLUR_RADIUS] * tmp[clamp(y + t, h) * w + xx];
        out[plane + y * w + xx] = s;
      }
    }
  }
  return out;
}

/**
 * The input at a step: deletion takes `x` with the first `n` pixels of `order` from `base`;
 * insertion takes `base` with the first `n` pixels from `x`.
 */
export function perturbedInput(kind: 'deletion' | 'insertion', x: Float32Array, base: Float32Array, order: Uint32Array, n: number): Float32Array {
  const hw = order.length;
  const planes = x.length / hw;
  const [from, into] = kind === 'deletion' ? [base, x] : [x, base];
  const out = Float32Array.from(into);
  for (let j = 0; j < n; j++) {
    const p = order[j];
    for (let c = 0; c < planes; c++) out[c * hw + p] = from[c * hw + p];
  }
  return out;
}

/** The area under a curve of N + 1 equally spaced points on [0, 1] (trapezoid rule). */
export function auc(curve: readonly number[]): number {
  const n = curve.length - 1;
  if (n < 1) return NaN;
  return (curve.reduce((a, b) => a + b, 0) - (curve[0] + curve[n]) / 2) / n;
}

/**
 * The input attributions in float64 (src/gradcam/attributions.ts computes them on the GPU), written
 * from the papers, sharing no code with src/:
 *   score y = logit_c, or softmax(logits)_c (seeded at the logits by the softmax's Jacobian row);
 *   gradient g = ∂y/∂x at the preprocessed input x [1, C, H, W];
 *   saliency (Simonyan et al. 2014)   max_c |g_c| per position, [H, W];
 *   input-x-gradient                   x ⊙ g, [C, H, W];
 *   smoothgrad (Smilkov et al. 2017)   (1/n) Σ_j g(x + σ·(max x − min x)·z_j), z_j standard normal
 *                                      noise of (seed, j, element) (the same counter-based noise the
 *                                      GPU draws: PCG hash → 12 uniforms → Irwin–Hall, exact in float32), [C, H, W];
 *   integrated gradients (Sundararajan et al. 2017), the trapezoid rule:
 *                                      (x − x') ⊙ (1/m) Σ_{j=0..m} w_j g(x' + j/m · (x − x')), w_j = ½ at
 *                                      j = 0 and j = m, else 1, [C, H, W],
 *                                      and the completeness gap Σ attributions − (y(x) − y(x'));
 *   occlusion (Zeiler & Fergus 2014; Captum's Occlusion): for each window (patch × patch at stride
 *                                      `step`, ⌈(H − patch)/step⌉ + 1 per column, clipped), the drop
 *                                      y(x) − y(x with the window set to `fill` in every channel);
 *                                      each position: the mean drop of the windows covering it, [H, W].
 */
import type { OnnxModel } from '../../src/onnx/model.ts';
import { backwardReference, forwardValues } from './graph.ts';
import { tensor, type Tensor } from './tensor.ts';

export type Reduction = 'logit' | 'softmax';

export interface ScoreSpec {
  /** The logits tensor (the score is computed from it). */
  logits: string;
  classIndex: number;
  reduction: Reduction;
}

function inputName(model: OnnxModel): string {
  return model.inputs.find((i) => !model.initializers.has(i.name))!.name;
}

function softmax(z: ArrayLike<number>): Float64Array {
  let m = -Infinity;
  for (let j = 0; j < z.length; j++) m = Math.max(m, z[j]);
  const e = Float64Array.from({ length: z.length }, (_, j) => Math.exp(z[j] - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

const maxAbs = (v: ArrayLike<number>) => Array.from(v).reduce((a, b) => Math.max(a, Math.abs(b)), 0);

/** The score y at `x` and ∂y/∂x ([C, H, W] flat), in float64; `logitScale`: max |logit| (tests' error bounds scale with it). */
export function scoreAndGradient(model: OnnxModel, x: Tensor, spec: ScoreSpec): { score: number; gradient: Float64Array; logitScale: number } {
  const values = forwardValues(model, { [inputName(model)]: x });
  const logits = values.get(spec.logits)!.data;
  const p = softmax(logits);
  const c = spec.classIndex;
  const seed = new Float64Array(logits.length);
  if (spec.reduction === 'logit') seed[c] = 1;
  else for (let j = 0; j < logits.length; j++) seed[j] = p[c] * ((j === c ? 1 : 0) - p[j]);
  const g = backwardReference(model, values, { score: spec.logits, seeds: [seed], wrt: [inputName(model)] })[inputName(model)][0];
  return { score: spec.reduction === 'logit' ? logits[c] : p[c], gradient: g.data, logitScale: maxAbs(logits) };
}

/** The score alone (a forward pass). */
export function scoreAt(model: OnnxModel, x: Tensor, spec: ScoreSpec): number {
  const logits = forwardValues(model, { [inputName(model)]: x }).get(spec.logits)!.data;
  return spec.reduction === 'logit' ? logits[spec.classIndex] : softmax(logits)[spec.classIndex];
}

export function saliencyReference(gradient: ArrayLike<number>, C: number, hw: number): Float64Array {
  const out = new Float64Array(hw);
  for (let i = 0; i < hw; i++) for (let c = 0; c < C; c++) out[i] = Math.max(out[i], Math.abs(gradient[c * hw + i]));
  return out;
}

// The noise: the PCG hash (Jarzynski & Olano 2020) on u32; z = Σ_{i<12} u_i − 6 (Irwin–Hall), u_i =
// (k + ½)/2¹⁹ from 19 bits of a hash: exact in float32, so the same values as the GPU's.
function pcg(v: number): number {
  const state = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> ((state >>> 28) + 4)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

/** The noise of (seed, pass j, element e). */
export function noiseReference(seed: number, j: number, e: number): number {
  const key = pcg((seed ^ pcg((j ^ pcg(e)) >>> 0)) >>> 0);
  let sum = 0;
  for (let i = 0; i < 12; i++) sum += ((pcg((key + i) >>> 0) >>> 13) + 0.5) / 524288;
  return sum - 6;
}

/**
 * SmoothGrad's noisy copy j of x as float32 computes it: x + (σ·R)·z, R = max x − min x, each product
 * and sum rounded to float32 (the GPU may fuse the last two: within 1 ulp of this).
 */
export function noisyInput(x: Tensor, sigma: number, seed: number, j: number): Tensor {
  let lo = Infinity, hi = -Infinity;
  for (const v of x.data) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  const sd = Math.fround(Math.fround(sigma) * Math.fround(hi - lo));
  return tensor(x.shape, x.data.map((v, e) => Math.fround(v + Math.fround(sd * noiseReference(seed, j, e)))));
}

export function smoothgradReference(model: OnnxModel, x: Tensor, spec: ScoreSpec, o: { samples: number; sigma: number; seed: number }): Float64Array {
  const mean = new Float64Array(x.data.length);
  for (let j = 0; j < o.samples; j++) {
    const { gradient } = scoreAndGradient(model, noisyInput(x, o.sigma, o.seed, j), spec);
    for (let e = 0; e < mean.length; e++) mean[e] += gradient[e] / o.samples;
  }
  return mean;
}

/** Point j of m along the path x' + (j/m)(x − x'), as float32 computes it (each operation rounded). */
export function pathPoint(x: Tensor, baseline: ArrayLike<number>, j: number, steps: number): Tensor {
  const a = Math.fround(j / steps);
  return tensor(x.shape, x.data.map((v, e) => Math.fround(baseline[e] + Math.fround(a * Math.fround(v - baseline[e])))));
}

export interface IntegratedGradients {
  attributions: Float64Array;
  scoreInput: number;
  scoreBaseline: number;
  /** max |logit| at the baseline (for error bounds). */
  baselineLogitScale: number;
  /** Σ attributions − (y(x) − y(x')). */
  gap: number;
}

/**
 * The path's last point is x itself (not x' + 1·(x − x') rounded): its score and gradient, `atX`, may
 * be given by a caller that has them; the first point is x' (exactly: 0·(x − x') adds 0), whose
 * score is y(x').
 */
export function integratedGradientsReference(model: OnnxModel, x: Tensor, baseline: ArrayLike<number>, spec: ScoreSpec, steps: number,
  atX: { score: number; gradient: ArrayLike<number> } = scoreAndGradient(model, x, spec)): IntegratedGradients {
  const sum = new Float64Array(x.data.length);
  let scoreBaseline = NaN, baselineLogitScale = NaN;
  for (let j = 0; j < steps; j++) {
    const { score, gradient, logitScale } = scoreAndGradient(model, pathPoint(x, baseline, j, steps), spec);
    if (j === 0) [scoreBaseline, baselineLogitScale] = [score, logitScale];
    for (let e = 0; e < sum.length; e++) sum[e] += (j === 0 ? 0.5 : 1) * gradient[e];
  }
  for (let e = 0; e < sum.length; e++) sum[e] += 0.5 * atX.gradient[e]; // j = m: x
  const attributions = sum.map((s, e) => (x.data[e] - baseline[e]) * s / steps);
  const scoreInput = atX.score;
  const gap = attributions.reduce((a, b) => a + b, 0) - (scoreInput - scoreBaseline);
  return { attributions, scoreInput, scoreBaseline, baselineLogitScale, gap };
}

/** Occlusion's windows of x: each window's occluded input (the window set to `fill` in every channel) and the positions it covers. */
export function occlusionWindows(x: Tensor, o: { patch: number; step: number; fill: number }): { input: Tensor; positions: number[] }[] {
  const [, C, H, W] = x.shape;
  const windows = (n: number) => Math.ceil((n - o.patch) / o.step) + 1;
  const out: { input: Tensor; positions: number[] }[] = [];
  for (let wy = 0; wy < windows(H); wy++) {
    for (let wx = 0; wx < windows(W); wx++) {
      const input = tensor(x.shape, x.data);
      const positions: number[] = [];
      for (let y = wy * o.step; y < Math.min(H, wy * o.step + o.patch); y++) {
        for (let xx = wx * o.step; xx < Math.min(W, wx * o.step + o.patch); xx++) positions.push(y * W + xx);
      }
      for (let c = 0; c < C; c++) for (const i of positions) input.data[c * H * W + i] = o.fill;
      out.push({ input, positions });
    }
  }
  return out;
}

/** The occlusion map from each window's drop y(x) − y(x_w): per position, the mean drop of the windows covering it (0 if none). */
export function occlusionMap(windows: readonly { positions: number[] }[], drops: ArrayLike<number>, hw: number): Float64Array {
  const sum = new Float64Array(hw);
  const count = new Float64Array(hw);
  windows.forEach((w, j) => { for (const i of w.positions) { sum[i] += drops[j]; count[i]++; } });
  return sum.map((s, i) => (count[i] ? s / count[i] : 0));
}

export function occlusionReference(model: OnnxModel, x: Tensor, spec: ScoreSpec, o: { patch: number; step: number; fill: number }): Float64Array {
  const clean = scoreAt(model, x, spec);
  const windows = occlusionWindows(x, o);
  return occlusionMap(windows, windows.map((w) => clean - scoreAt(model, w.input, spec)), x.shape[2] * x.shape[3]);
}

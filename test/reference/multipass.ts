/**
 * Score-CAM and Ablation-CAM in float64 (pytorch-grad-cam's ScoreCAM and AblationCAM, written from
 * their definitions; nothing from src/): the model run node by node (graph.ts forwardValues), once
 * per channel.
 *
 *   scorecam: M_k = A_k upsampled bilinearly with align_corners = true to the input's H × W (source
 *     y·(h − 1)/(H − 1)), (M_k − min) / (max − min + 1e-8); S_k = score(x ⊙ M_k) (every input channel
 *     times the same mask); w = softmax_k(S_k); map = ReLU(Σ_k w_k A_k).
 *   ablationcam: S_k = score with channel k of the layer set to 0 (the nodes after it run on the
 *     changed tensor); w_k = (S − S_k) / S; map = ReLU(Σ_k w_k A_k).
 * The score is the class's logit, or its softmax probability (`softmax`).
 */
import type { OnnxModel } from '../../src/onnx/model.ts';
import { forwardValues } from './graph.ts';
import { tensor, type Tensor } from './tensor.ts';

export interface MultiPassReference {
  /** Per channel: the score of the class in its pass. */
  passScores: Float64Array;
  /** The first pass's score of the class. */
  score: number;
  weights: Float64Array;
  /** ReLU(Σ_k w_k A_k), h × w. */
  map: Float64Array;
  /** The masked inputs (scorecam), per channel: for the error bounds. */
  inputs?: Tensor[];
}

/** Bilinear resize with align_corners = true (PyTorch's UpsamplingBilinear2d). */
export function upsampleAlignCorners(map: ArrayLike<number>, h: number, w: number, H: number, W: number): Float64Array {
  const out = new Float64Array(H * W);
  const at = (o: number, n: number, N: number): [number, number, number] => {
    const s = N > 1 ? (o * (n - 1)) / (N - 1) : 0;
    const i0 = Math.min(Math.floor(s), n - 1);
    return [i0, Math.min(i0 + 1, n - 1), s - i0];
  };
  for (let oy = 0; oy < H; oy++) {
    const [y0, y1, fy] = at(oy, h, H);
    for (let ox = 0; ox < W; ox++) {
      const [x0, x1, fx] = at(ox, w, W);
      const top = (1 - fx) * map[y0 * w + x0] + fx * map[y0 * w + x1];
      const bottom = (1 - fx) * map[y1 * w + x0] + fx * map[y1 * w + x1];
      out[oy * W + ox] = (1 - fy) * top + fy * bottom;
    }
  }
  return out;
}

function scoreOf(logits: Tensor, cls: number, softmax: boolean): number {
  if (!softmax) return logits.data[cls];
  const m = Math.max(...logits.data);
  let sum = 0;
  for (const v of logits.data) sum += Math.exp(v - m);
  return Math.exp(logits.data[cls] - m) / sum;
}

function weightedMap(A: ArrayLike<number>, weights: Float64Array, hw: number): Float64Array {
  const map = new Float64Array(hw);
  for (let k = 0; k < weights.length; k++) for (let i = 0; i < hw; i++) map[i] += weights[k] * A[k * hw + i];
  return map.map((v) => Math.max(v, 0));
}

export interface Where {
  /** The graph input's name and the logits' name. */
  input: string;
  logits: string;
  layer: string;
  cls: number;
  softmax?: boolean;
}

/**
 * Score-CAM's masked inputs x ⊙ M_k ([1, C, H, W] each), M_k = A_k upsampled (align_corners = true)
 * to x's H × W and min-max normalised, for every channel k of A [1, K, h, w].
 */
export function scoreCamInputs(A: Tensor, x: Tensor): Tensor[] {
  const [, C, h, w] = A.shape;
  const [, inC, H, W] = x.shape;
  return Array.from({ length: C }, (_, k) => {
    const up = upsampleAlignCorners(A.data.subarray(k * h * w, (k + 1) * h * w), h, w, H, W);
    let lo = Infinity, hi = -Infinity;
    for (const v of up) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    const masked = tensor(x.shape);
    for (let c = 0; c < inC; c++) for (let i = 0; i < H * W; i++) masked.data[c * H * W + i] = x.data[c * H * W + i] * ((up[i] - lo) / (hi - lo + 1e-8));
    return masked;
  });
}

/** Score-CAM's weights w = softmax_k(S_k) from the passes' scores, and its map ReLU(Σ_k w_k A_k). */
export function scoreCamMap(A: Tensor, passScores: Float64Array): { weights: Float64Array; map: Float64Array } {
  const [, , h, w] = A.shape;
  const m = Math.max(...passScores);
  const e = passScores.map((s) => Math.exp(s - m));
  const sum = e.reduce((a, b) => a + b, 0);
  const weights = e.map((v) => v / sum);
  return { weights, map: weightedMap(A.data, weights, h * w) };
}

/** Score-CAM of one image ([1, C, H, W]) at `layer` for class `cls`; `base`: the model's values at x, when the caller has them. */
export function scoreCamReference(model: OnnxModel, x: Tensor, at: Where, base = forwardValues(model, { [at.input]: x })): MultiPassReference {
  const A = base.get(at.layer)!;
  const inputs = scoreCamInputs(A, x);
  const passScores = new Float64Array(inputs.length);
  inputs.forEach((masked, k) => { passScores[k] = scoreOf(forwardValues(model, { [at.input]: masked }).get(at.logits)!, at.cls, !!at.softmax); });
  const { weights, map } = scoreCamMap(A, passScores);
  return { passScores, score: scoreOf(base.get(at.logits)!, at.cls, !!at.softmax), weights, map, inputs };
}

/** Ablation-CAM of one image at `layer` for class `cls` (channel k zeroed in pass k). */
export function ablationCamReference(model: OnnxModel, x: Tensor, at: Where): MultiPassReference {
  const base = forwardValues(model, { [at.input]: x });
  const A = base.get(at.layer)!;
  const [, C, h, w] = A.shape;
  const score = scoreOf(base.get(at.logits)!, at.cls, !!at.softmax);
  const passScores = new Float64Array(C);
  for (let k = 0; k < C; k++) {
    const values = forwardValues(model, { [at.input]: x }, (node, ins) => {
      if (!node.outputs.includes(at.layer)) return undefined;
      // The node that makes the layer: computed as usual (by the reference's own op), then channel k zeroed.
      const given = node.inputs.map((n, i) => [n, ins[i]] as const).filter(([n]) => n !== '');
      const outs = forwardValues({ ...model, nodes: [node], inputs: given.map(([n, t]) => ({ name: n, elemType: 'float', shape: [...t.shape] })) }, Object.fromEntries(given));
      return node.outputs.map((o) => {
        const t = outs.get(o)!;
        if (o !== at.layer) return t;
        const z = tensor(t.shape, t.data);
        z.data.fill(0, k * h * w, (k + 1) * h * w);
        return z;
      });
    });
    passScores[k] = scoreOf(values.get(at.logits)!, at.cls, !!at.softmax);
  }
  const weights = passScores.map((s) => (score - s) / score);
  return { passScores, score, weights, map: weightedMap(A.data, weights, h * w) };
}

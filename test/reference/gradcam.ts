/**
 * Grad-CAM in float64, by the house conventions (docs: DESIGN.md, "Map conventions"):
 *   y_c = logit_c, or softmax(logits)_c;  α_k = mean over (h,w) of ∂y_c/∂A_k;
 *   map = ReLU(Σ_k α_k·A_k) at the feature resolution; then bilinear upsampling and min-max.
 */
import type { OnnxModel } from '../../src/onnx/model.ts';
import { backwardReference, forwardValues } from './graph.ts';
import { tensor, type Tensor } from './tensor.ts';

export interface GradcamOptions {
  /** The feature tensor A, shaped [1, C, h, w]. */
  layer: string;
  classes: number[];
  reduction: 'logit' | 'softmax';
  /** The pre-softmax class scores, shaped [1, classes] (or any shape with one batch row). */
  logitsTensor: string;
}

export interface GradcamClass {
  classIndex: number;
  /** y_c: the logit, or the softmax probability. */
  score: number;
  /** α_k, one per channel of A. */
  alpha: Float64Array;
  /** Σ_k α_k·A_k, shaped [h, w] (before the ReLU: tests scale their errors by its size). */
  preRelu: Tensor;
  /** ReLU(preRelu), the raw map, shaped [h, w]. */
  map: Tensor;
}

export interface GradcamResult {
  logits: Float64Array;
  /** A itself, [1, C, h, w]. */
  activation: Tensor;
  classes: GradcamClass[];
}

export function gradcamReference(model: OnnxModel, input: Tensor, opts: GradcamOptions): GradcamResult {
  const inputName = model.inputs.find((i) => !model.initializers.has(i.name))!.name;
  return gradcamOfValues(model, forwardValues(model, { [inputName]: input }), opts);
}

/** gradcamReference on the values of an earlier forwardValues (one forward, several requests: both reductions). */
export function gradcamOfValues(model: OnnxModel, values: Map<string, Tensor>, opts: GradcamOptions): GradcamResult {
  const A = values.get(opts.layer);
  const logits = values.get(opts.logitsTensor)?.data;
  if (!A || !logits) throw new Error(`gradcam: no tensor named '${A ? opts.logitsTensor : opts.layer}'`);
  if (A.shape.length !== 4 || A.shape[0] !== 1) throw new Error(`gradcam: '${opts.layer}' is [${A.shape}], expected [1, C, h, w]`);
  const [, C, h, w] = A.shape;

  // The reduction is applied here, from the logits, so a model need not end in a Softmax.
  const probs = softmax(logits);
  const seeds = opts.classes.map((c) => {
    const seed = new Float64Array(logits.length);
    if (opts.reduction === 'logit') seed[c] = 1;
    // ∂p_c/∂z_j = p_c·(δ_cj − p_j): the softmax's Jacobian row, seeded at the logits.
    else for (let j = 0; j < logits.length; j++) seed[j] = probs[c] * ((j === c ? 1 : 0) - probs[j]);
    return seed;
  });
  const grads = backwardReference(model, values, { score: opts.logitsTensor, seeds, wrt: [opts.layer] })[opts.layer];

  const classes = opts.classes.map((c, k) => {
    const dA = grads[k].data;
    const alpha = new Float64Array(C);
    const preRelu = tensor([h, w]);
    for (let ch = 0; ch < C; ch++) {
      let sum = 0;
      for (let i = 0; i < h * w; i++) sum += dA[ch * h * w + i];
      alpha[ch] = sum / (h * w);
      for (let i = 0; i < h * w; i++) preRelu.data[i] += alpha[ch] * A.data[ch * h * w + i];
    }
    const map = tensor([h, w], preRelu.data.map((v) => Math.max(v, 0)));
    return { classIndex: c, score: opts.reduction === 'logit' ? logits[c] : probs[c], alpha, preRelu, map };
  });
  return { logits, activation: A, classes };
}

function softmax(z: Float64Array): Float64Array {
  const max = Math.max(...z);
  const e = z.map((v) => Math.exp(v - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

/**
 * Bilinear resize with align_corners=false (PyTorch's F.interpolate(mode='bilinear',
 * align_corners=False), OpenCV's INTER_LINEAR): output pixel centre (i + 0.5) maps to input
 * coordinate (i + 0.5)·in/out − 0.5, clamped to [0, in − 1], and interpolates its two neighbours.
 */
export function upsampleBilinear(map: ArrayLike<number>, h: number, w: number, H: number, W: number): Float64Array {
  const out = new Float64Array(H * W);
  for (let oy = 0; oy < H; oy++) {
    const [y0, y1, fy] = source(oy, h, H);
    for (let ox = 0; ox < W; ox++) {
      const [x0, x1, fx] = source(ox, w, W);
      const top = (1 - fx) * map[y0 * w + x0] + fx * map[y0 * w + x1];
      const bottom = (1 - fx) * map[y1 * w + x0] + fx * map[y1 * w + x1];
      out[oy * W + ox] = (1 - fy) * top + fy * bottom;
    }
  }
  return out;
}

/** The two input indices an output index reads and the weight of the second. */
function source(o: number, inSize: number, outSize: number): [number, number, number] {
  const s = Math.min(Math.max((o + 0.5) * (inSize / outSize) - 0.5, 0), inSize - 1);
  const i0 = Math.floor(s);
  return [i0, Math.min(i0 + 1, inSize - 1), s - i0];
}

/** (x − min) / (max − min) into [0, 1]; a constant map (nothing to show) becomes all zeros. */
export function normalizeMinMax(map: ArrayLike<number>): Float64Array {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < map.length; i++) { min = Math.min(min, map[i]); max = Math.max(max, map[i]); }
  const out = new Float64Array(map.length);
  if (max > min) for (let i = 0; i < map.length; i++) out[i] = (map[i] - min) / (max - min);
  return out;
}

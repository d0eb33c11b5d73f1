/**
 * The float64 reference of the GPU preprocessing (shaders/preprocess.wgsl): resize an RGBA picture
 * to the model's input size with the antialiased triangle filter documented there, then apply a
 * recipe. Written from that header's formulas, naively (every source pixel is visited; the filter
 * weight is zero outside the support), sharing no code with src/.
 *
 * One axis, S source pixels to D output pixels, scale = S / D, support = max(scale, 1):
 *   c = (X + 0.5) · scale,  w_i = max(0, 1 − |i + 0.5 − c| / support),  out(X) = Σ w_i src(i) / Σ w_i
 * applied to rows first, then columns (the filter is separable, so in exact arithmetic the order
 * does not matter); then (value · valueScale − mean[c]) / std[c], channels in the model's order.
 */

export interface ReferenceRecipe {
  valueScale: number;
  /** R, G, B. */
  mean: [number, number, number];
  std: [number, number, number];
  bgr: boolean;
}

/** The ONNX Model Zoo GoogLeNet (Caffe): 0–255, minus the RGB means, BGR (as its README states). */
export const ZOO_CAFFE: ReferenceRecipe = { valueScale: 1, mean: [123.68, 116.779, 103.939], std: [1, 1, 1], bgr: true };

/** torchvision: 0–1, ImageNet mean and std, RGB. */
export const TORCHVISION: ReferenceRecipe = { valueScale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], bgr: false };

/** Weights of one output pixel X over all S source pixels (zeros outside the support), unnormalised. */
function axisWeights(X: number, S: number, D: number): Float64Array {
  const scale = S / D;
  const support = Math.max(scale, 1);
  const c = (X + 0.5) * scale;
  const w = new Float64Array(S);
  for (let i = 0; i < S; i++) w[i] = Math.max(0, 1 - Math.abs(i + 0.5 - c) / support);
  return w;
}

/** RGBA (8-bit, row-major) → [3, outH, outW] float64 NCHW input of one image. */
export function preprocessReference(
  rgba: ArrayLike<number>, width: number, height: number, outW: number, outH: number, recipe: ReferenceRecipe,
): Float64Array {
  // Rows: tmp[ch][y][X].
  const tmp = new Float64Array(3 * height * outW);
  for (let X = 0; X < outW; X++) {
    const w = axisWeights(X, width, outW);
    const total = w.reduce((a, b) => a + b, 0);
    for (let y = 0; y < height; y++) {
      for (let ch = 0; ch < 3; ch++) {
        let s = 0;
        for (let i = 0; i < width; i++) if (w[i] !== 0) s += w[i] * rgba[(y * width + i) * 4 + ch];
        tmp[(ch * height + y) * outW + X] = s / total;
      }
    }
  }
  // Columns, then the recipe.
  const out = new Float64Array(3 * outH * outW);
  for (let Y = 0; Y < outH; Y++) {
    const w = axisWeights(Y, height, outH);
    const total = w.reduce((a, b) => a + b, 0);
    for (let X = 0; X < outW; X++) {
      for (let ch = 0; ch < 3; ch++) {
        let s = 0;
        for (let i = 0; i < height; i++) if (w[i] !== 0) s += w[i] * tmp[(ch * height + i) * outW + X];
        const v = ((s / total) * recipe.valueScale - recipe.mean[ch]) / recipe.std[ch];
        const dst = recipe.bgr ? 2 - ch : ch;
        out[(dst * outH + Y) * outW + X] = v;
      }
    }
  }
  return out;
}

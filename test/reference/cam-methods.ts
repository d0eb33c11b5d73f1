/**
 * The CAM family in float64, from a layer's activations A [C, h, w] and gradients G = ∂y/∂A
 * [C, h, w] (one class). Definitions follow pytorch-grad-cam (its eps values included):
 *   gradcam              w_k = mean_hw G_k;                         map = ReLU(Σ_k w_k A_k)
 *   hirescam             map = ReLU(Σ_k G_k ⊙ A_k)
 *   gradcam-elementwise  map = ReLU(Σ_k ReLU(G_k ⊙ A_k))
 *   gradcam++            a = G² / (2G² + S_k G³ + 1e-6), S_k = Σ_hw A_k, a = 0 where G = 0;
 *                        w_k = Σ_hw ReLU(G_k) ⊙ a_k;                map = ReLU(Σ_k w_k A_k)
 *   xgradcam             w_k = Σ_hw G_k A_k / (Σ_hw A_k + 1e-7);    map = ReLU(Σ_k w_k A_k)
 *   layercam             map = ReLU(Σ_k ReLU(G_k) ⊙ A_k)
 *   eigencam             A as [h·w, C], centred over positions, projected on its first principal
 *                        component (power iteration in float64 to 1e-15); the sign makes the entry of
 *                        largest magnitude positive; map = ReLU(projection)
 *   eigengradcam         the same for G ⊙ A (pytorch-grad-cam's EigenGradCAM: get_2d_projection(grads * activations))
 * `counterfactual` negates G first (Selvaraju et al. 2017, §"Counterfactual explanations").
 * `eigenSmooth` (pytorch-grad-cam's eigen_smooth, weighted and element-wise methods): the map is the
 * first principal component of the channel terms (w_k A_k, or term(G_k, A_k)) instead of their sum,
 * by the same projection as eigencam.
 * Each result also has the map before its final ReLU (`signed`) and, for the weighted methods, the
 * channel weights; tests scale their error bounds by those sizes.
 */

export type CamMethod = 'gradcam' | 'hirescam' | 'gradcam-elementwise' | 'gradcam++' | 'xgradcam' | 'layercam' | 'eigencam' | 'eigengradcam';

export const CAM_METHODS: readonly CamMethod[] = ['gradcam', 'hirescam', 'gradcam-elementwise', 'gradcam++', 'xgradcam', 'layercam', 'eigencam', 'eigengradcam'];

export interface CamReference {
  /** The map before the final ReLU, [h·w]. */
  signed: Float64Array;
  /** ReLU(signed), [h·w]. */
  map: Float64Array;
  /** Channel weights w_k, for the methods that have them. */
  weights?: Float64Array;
  /** Σ_k |w_k A_k| (or |G_k A_k|) per position: the magnitude the float32 sum's rounding scales with. */
  magnitude: Float64Array;
}

const relu = (v: number) => Math.max(v, 0);

/** One method's map for one class. A and G are [C, h·w] row-major. */
export function camReference(method: CamMethod, A: ArrayLike<number>, G: ArrayLike<number>, C: number, hw: number,
  opts: { counterfactual?: boolean; eigenSmooth?: boolean } = {}): CamReference {
  const g = (k: number, i: number) => (opts.counterfactual ? -G[k * hw + i] : G[k * hw + i]);
  const a = (k: number, i: number) => A[k * hw + i];
  const signed = new Float64Array(hw);
  const magnitude = new Float64Array(hw);

  const weighted = (w: Float64Array): CamReference => {
    if (opts.eigenSmooth) return { ...principalProjection((k, i) => w[k] * a(k, i), C, hw), weights: w };
    for (let k = 0; k < C; k++) for (let i = 0; i < hw; i++) { signed[i] += w[k] * a(k, i); magnitude[i] += Math.abs(w[k] * a(k, i)); }
    return { signed, map: signed.map(relu), weights: w, magnitude };
  };
  const elementwise = (term: (k: number, i: number) => number): CamReference => {
    if (opts.eigenSmooth) { const r = principalProjection(term, C, hw); return { ...r, weights: undefined }; }
    for (let k = 0; k < C; k++) for (let i = 0; i < hw; i++) { const t = term(k, i); signed[i] += t; magnitude[i] += Math.abs(t); }
    return { signed, map: signed.map(relu), magnitude };
  };

  switch (method) {
    case 'gradcam': {
      const w = new Float64Array(C);
      for (let k = 0; k < C; k++) { for (let i = 0; i < hw; i++) w[k] += g(k, i); w[k] /= hw; }
      return weighted(w);
    }
    case 'hirescam':
      return elementwise((k, i) => g(k, i) * a(k, i));
    case 'gradcam-elementwise':
      return elementwise((k, i) => relu(g(k, i) * a(k, i)));
    case 'layercam':
      return elementwise((k, i) => relu(g(k, i)) * a(k, i));
    case 'gradcam++': {
      const w = new Float64Array(C);
      for (let k = 0; k < C; k++) {
        let S = 0;
        for (let i = 0; i < hw; i++) S += a(k, i);
        for (let i = 0; i < hw; i++) {
          const gi = g(k, i);
          if (gi === 0) continue;
          const alpha = (gi * gi) / (2 * gi * gi + S * gi * gi * gi + 1e-6);
          w[k] += relu(gi) * alpha;
        }
      }
      return weighted(w);
    }
    case 'xgradcam': {
      const w = new Float64Array(C);
      for (let k = 0; k < C; k++) {
        let num = 0, den = 0;
        for (let i = 0; i < hw; i++) { num += g(k, i) * a(k, i); den += a(k, i); }
        w[k] = num / (den + 1e-7);
      }
      return weighted(w);
    }
    case 'eigencam':
      return principalProjection(a, C, hw);
    case 'eigengradcam':
      return principalProjection((k, i) => g(k, i) * a(k, i), C, hw);
  }
}

/** The first principal component's projection of E (E(k, i): channel k at position i, as [h·w, C], centred over positions). */
function principalProjection(E: (k: number, i: number) => number, C: number, hw: number): CamReference {
  const mean = new Float64Array(C);
  for (let k = 0; k < C; k++) { for (let i = 0; i < hw; i++) mean[k] += E(k, i); mean[k] /= hw; }
  // X[i, k] = E(k, i) − mean_k, [h·w, C] row-major, materialised once: the power iteration below
  // reads it once per iteration, hundreds of times (the same sums, in the same order, as reading E).
  const Xd = new Float64Array(hw * C);
  for (let i = 0; i < hw; i++) for (let k = 0; k < C; k++) Xd[i * C + k] = E(k, i) - mean[k];
  const X = (i: number, k: number) => Xd[i * C + k];
  // Power iteration on XᵀX (C×C, applied as Xᵀ(Xv)), from a fixed start, to convergence.
  let v = new Float64Array(C).map((_, k) => 1 + 0.01 * k);
  let norm = Math.hypot(...v);
  v = v.map((x) => x / norm);
  const u = new Float64Array(hw);
  for (let it = 0; it < 100_000; it++) {
    for (let i = 0; i < hw; i++) {
      let s = 0;
      for (let k = 0, row = i * C; k < C; k++) s += Xd[row + k] * v[k];
      u[i] = s;
    }
    const next = new Float64Array(C);
    for (let i = 0; i < hw; i++) for (let k = 0, row = i * C, ui = u[i]; k < C; k++) next[k] += Xd[row + k] * ui;
    norm = Math.hypot(...next);
    if (norm === 0) break;
    for (let k = 0; k < C; k++) next[k] /= norm;
    let change = 0;
    for (let k = 0; k < C; k++) change = Math.max(change, Math.abs(next[k] - v[k]));
    v = next;
    if (change < 1e-15) break;
  }
  const signed = new Float64Array(hw);
  const magnitude = new Float64Array(hw);
  for (let i = 0; i < hw; i++) for (let k = 0; k < C; k++) { signed[i] += X(i, k) * v[k]; magnitude[i] += Math.abs(X(i, k) * v[k]); }
  let at = 0;
  for (let i = 1; i < hw; i++) if (Math.abs(signed[i]) > Math.abs(signed[at])) at = i;
  if (signed[at] < 0) for (let i = 0; i < hw; i++) signed[i] = -signed[i];
  return { signed, map: signed.map(relu), weights: v, magnitude };
}

/** Guided Grad-CAM: the guided-backprop gradient [3, H, W] times the Grad-CAM map upsampled to H×W. */
export function guidedGradcam(guided: ArrayLike<number>, upsampledCam: ArrayLike<number>, H: number, W: number): Float64Array {
  const out = new Float64Array(3 * H * W);
  for (let c = 0; c < 3; c++) for (let i = 0; i < H * W; i++) out[c * H * W + i] = guided[c * H * W + i] * upsampledCam[i];
  return out;
}

/**
 * Aug-smooth's composition (pytorch-grad-cam's forward_augmentation_smoothing, at the map's
 * resolution): `maps[a]` is the map (h × w, after the ReLU) of augmentation a = 3·flip + j of the
 * input (flipped horizontally when flip = 1, times (1, 0.9, 1.1)[j]); each is flipped back, min-max
 * normalised as scale_cam_image ((M − min) / (max − min + 1e-7)) and the six are averaged.
 */
export function augSmoothReference(maps: readonly ArrayLike<number>[], h: number, w: number): Float64Array {
  const out = new Float64Array(h * w);
  maps.forEach((m, a) => {
    const back = Float64Array.from({ length: h * w }, (_, i) => (a >= 3 ? m[Math.floor(i / w) * w + (w - 1 - (i % w))] : m[i]));
    const lo = Math.min(...back), hi = Math.max(...back);
    back.forEach((v, i) => { out[i] += (v - lo) / (hi - lo + 1e-7) / maps.length; });
  });
  return out;
}

/** The input of aug-smooth's augmentation a (a = 3·flip + j) of x [C, H, W]: flipped along W when flip = 1, times (1, 0.9, 1.1)[j], in float64. */
export function augmentedInput(x: ArrayLike<number>, c: number, h: number, w: number, a: number): Float64Array {
  const factor = [1, 0.9, 1.1][a % 3];
  return Float64Array.from({ length: c * h * w }, (_, e) => {
    const col = e % w;
    return factor * x[a >= 3 ? e - col + (w - 1 - col) : e];
  });
}

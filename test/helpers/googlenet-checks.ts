/**
 * The exactness checks of the generated GoogLeNets against the float64 references (test/reference/),
 * shared by the full-size file (test/googlenet-zoo.test.ts: googlenet-zoo-seeded at 224, one GPU call
 * and one float64 forward for every check) and the 96×96 twin's files (cam-methods-googlenet,
 * guided-googlenet, inspect-googlenet: googlenet-torchvision-seeded, test/helpers/googlenets.ts).
 *
 * 0. expectLogitsAgree (test/forward-googlenet.test.ts's tolerance, stated there): max |Δlogit| ≤
 *    1e-3 · max |logit| against onnxruntime-node, and the same top 5.
 * 1. checkCamMaps: every non-guided method at a feature layer against test/reference/cam-methods.ts.
 *    Grad-CAM is also checked on its own scale (it was test/gradcam-googlenet.test.ts, on the same
 *    inputs, layers, classes and reductions): err = max_i |GPU(i) − ReLU(pre(i))| ≤ bound · max_i |pre(i)|,
 *    pre = Σ_k α_k A_k the reference sum before the ReLU — the rounding error is that of the whole sum,
 *    and a map's positive part can be a small tip of a mostly negative sum. Bounds, from float32 PyTorch
 *    against float64 on such models (~5e-5 at inception_5b, up to 1e-3 at 4e, up to 1e-2 earlier, where
 *    float32 rounding flips ReLU and max-pool decisions): 1e-3 at inception_5b, 1e-2 at 4e, 5e-2 earlier.
 *
 *    Error scale. Each map is a sum over channels of products of float32 values (A from the forward
 *    pass, G from the backward pass, weights made from them). A float32 sum of terms t_j, each with a
 *    relative error ≤ δ, is within δ·Σ|t_j| of the exact sum, so each position is compared with the
 *    "conditioned magnitude" M(i) = Σ_k |term_k(i)| of the method, where a weight that is a quotient or
 *    a cancelling sum enters with the magnitude of what it is made of:
 *      gradcam              M = Σ_k mean_hw|G_k| · |A_k(i)|       (the mean of G cancels: its error is that of mean|G|)
 *      hirescam, -elementwise, layercam   M = Σ_k |G_k(i) A_k(i)|
 *      gradcam++            M = Σ_k w_k · |A_k(i)|                (w_k ≥ 0 is a sum of non-negative terms, see below)
 *      xgradcam             M = Σ_k (Σ_hw|G_k A_k| / |S_k + 1e-7|) · |A_k(i)|   (see below)
 *      eigencam, eigengradcam   M = Σ_k |X(i, k) v_k| (X: A, or G ⊙ A, centred)
 *    and err = max_i |GPU(i) − ref(i)| is asked to stay ≤ bound · max_i M(i). The bound per layer is the
 *    one stated above for Grad-CAM on its own scale (1e-3 at 5b, 1e-2 at 4e, 5e-2 at 3b): δ is
 *    not float32's 6e-8 there but the gradients' own error, which float32 rounding in the backward pass
 *    makes larger at earlier layers (it flips ReLU and max-pool decisions); every method reads the same A
 *    and G, so the same δ applies.
 *
 *    Conditioning of the divisions.
 *      gradcam++: a term is ReLU(g)·g²/(2g² + S g³ + 1e-6) = ReLU(g) / D with D = 2 + S g + 1e-6/g².
 *        Only g > 0 counts (ReLU(g)); GoogLeNet's block outputs are ReLU outputs, so A ≥ 0 and S ≥ 0
 *        (checked), hence every counted D ≥ 2: D is a sum of non-negative terms, its relative error is
 *        that of its inputs, and no denominator comes near 0. The check asserts min D ≥ 2 over the
 *        counted terms (the argument's premise), so a model where it fails is reported, not hidden.
 *      xgradcam: w_k = N_k / (S_k + 1e-7), N_k = Σ G_k A_k. S_k ≥ 0 (A ≥ 0) is a sum of non-negative
 *        terms (relative error ≤ hw·δ); N_k cancels, so its error is δ·Σ|G_k A_k|. The error of w_k A_k(i)
 *        is thus ≤ δ·(Σ|G_k A_k| / (S_k + 1e-7))·A_k(i) (plus the S term, smaller): M above. A dead
 *        channel (A_k ≡ 0) has N_k = 0 exactly and w_k·A_k = 0: no 0/0.
 *      eigencam: the power iteration stops when v changes by ≤ EIGEN_TOLERANCE = 1e-6 per entry; with
 *        r = (σ2/σ1)² the remaining error is ≤ 1e-6·r/(1 − r) per entry (≈ 4e-6 at r = 0.81), far
 *        below the bounds; the check also asks that it converged (not stopped at the cap).
 *
 * 2. checkGuided: guided backprop and guided Grad-CAM (kind 'guided') against the float64 guided
 *    backward pass (backwardReference with `guided`: every Relu passes g_in = g_out·[x > 0]·[g_out > 0];
 *    cam-methods.ts guidedGradcam; gradcam.ts upsampleBilinear); raw maps are [3, H, W]. The gradient at
 *    the input passes every layer of the network, and float32 rounding flips ReLU, max-pool and (guided)
 *    sign decisions on the way; as for Grad-CAM at its earliest layer, the error is asked to stay within
 *    GUIDED_BOUND = 5e-2 of the largest |value| of the reference map.
 *
 * 3. checkInspector: the inspector (`inspect: true`, src/gradcam/inspect.ts) and the CAM identity at
 *    inception_5b, K classes, Grad-CAM and HiResCAM (and Eigen-CAM's weights).
 *    - The CAM identity: inception_5b is followed only by a global average pool and the classifier, so
 *      with the logit reduction Grad-CAM's α_k = W[c, k] / (h·w) and its signed map = CAM / (h·w) =
 *      Σ_k W[c, k] A_k / (h·w). Bounds from float32 rounding: the backward pass seeds 1 at class c; the
 *      classifier's data gradient is 1·W[c, k] plus zeros (exact), the average pool's backward gives
 *      W[c, k]·(1/(h·w)) (≤ 2 roundings) to each of the h·w positions, and α sums those h·w values and
 *      divides by h·w: |α_k − W[c, k]/(h·w)| ≤ (h·w + 3)·2⁻²⁴ · max_k |W[c, k]| / (h·w) (a sum of n terms
 *      rounds by ≤ (n − 1)·u of Σ|terms|); the map sums C products α_k·A_k in float32: ≤ (C + h·w + 4)·2⁻²⁴
 *      · max_hw Σ_k |W[c, k] A_k| / (h·w). At inception_4e (more layers follow) it does not apply, and
 *      says why.
 *    - The inspector against the float64 references: weights, signed maps and the sum of the per-channel
 *      contributions, with the error scale and bound of checkCamMaps (1e-3 of the conditioned magnitude
 *      at 5b); the top channels; the branches of the inception block against the ONNX Concat node's
 *      inputs (channel counts from the reference's forward values). The branch kinds come from the
 *      producing convolutions: the zoo model's blocks end in 1×1, 3×3, 5×5 and pool projection;
 *      torchvision's "5×5" branch is a 3×3 convolution (torchvision kept that bug for its weights), so it
 *      reads 1×1, 3×3, 3×3, pool proj.
 */
import { expect } from 'vitest';
import { METHODS as ALL_METHODS, atInput, isMultiPass, type Method, methodSpec } from '../../src/gradcam/methods.ts';
import type { GradcamMap, GradcamResult, Reduction } from '../../src/gradcam/types.ts';
import type { OnnxModel } from '../../src/onnx/model.ts';
import { camReference, type CamMethod, guidedGradcam } from '../reference/cam-methods.ts';
import { upsampleBilinear } from '../reference/gradcam.ts';
import { backwardReference } from '../reference/graph.ts';
import type { GooglenetCase } from './googlenets.ts';

/** The methods at a feature layer (the guided ones: checkGuided). */
export const CAM_METHODS = ALL_METHODS.filter((m) => !atInput(m) && !isMultiPass(m));
/** The methods whose counterfactual differs from their map: they read G and are not a principal component. */
export const COUNTERFACTUAL_METHODS = CAM_METHODS.filter((m) => methodSpec(m).gradients && methodSpec(m).kind !== 'eigen');

const BOUND: Record<string, number> = { '3b': 5e-2, '4e': 1e-2, '5b': 1e-3 };
export const camBound = (layer: string) => BOUND[Object.keys(BOUND).find((k) => layer.replace('_', '').includes(k))!];
export const GUIDED_BOUND = 5e-2;
const U = 2 ** -24;

function topK(v: ArrayLike<number>, k: number): number[] {
  return [...Array(v.length).keys()].sort((a, b) => v[b] - v[a]).slice(0, k);
}

/** 0. GPU logits against onnxruntime-node's: max |Δlogit| ≤ 1e-3 · max |logit| and the same top 5. */
export function expectLogitsAgree(got: Float32Array, want: Float32Array, what: string): void {
  let err = 0, scale = 0;
  for (let i = 0; i < want.length; i++) {
    err = Math.max(err, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  expect(err, `${what}: max |Δlogit| ${err} vs max |logit| ${scale}`).toBeLessThanOrEqual(1e-3 * scale);
  expect(topK(got, 5)).toEqual(topK(want, 5));
}

/** Float64 forward values (forwardValues) by tensor name. */
export type Values = Map<string, { shape: number[]; data: Float64Array }>;
/** Float64 gradients by layer, one per class. */
export type Grads = Record<string, { data: Float64Array }[]>;

export function softmax(z: Float64Array): Float64Array {
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

/** The seed ∂score/∂logits of each class (negated for the counterfactual's guided pass when `sign` is −1). */
export function scoreSeeds(logits: Float64Array, classes: number[], reduction: Reduction, sign = 1): Float64Array[] {
  const p = softmax(logits);
  return classes.map((c) => Float64Array.from(logits, (_, j) => sign * (reduction === 'logit' ? (j === c ? 1 : 0) : p[c] * ((j === c ? 1 : 0) - p[j]))));
}

/** G = ∂score/∂A per layer and class, float64. */
export function referenceGradients(model: OnnxModel, values: Values, logitsName: string, layers: string[], classes: number[], reduction: Reduction): Grads {
  const seeds = scoreSeeds(values.get(logitsName)!.data, classes, reduction);
  return backwardReference(model, values as never, { score: logitsName, seeds, wrt: layers });
}

/** The conditioned magnitude M(i) of the header, per position. */
function conditionedMagnitude(method: Method, A: Float64Array, G: Float64Array, C: number, hw: number, weights: Float64Array | undefined,
  counterfactual: boolean): Float64Array {
  const M = new Float64Array(hw);
  const g = (k: number, i: number) => (counterfactual ? -1 : 1) * G[k * hw + i];
  for (let k = 0; k < C; k++) {
    let w = 0;
    if (method === 'gradcam') { for (let i = 0; i < hw; i++) w += Math.abs(g(k, i)); w /= hw; }
    if (method === 'gradcam++') w = weights![k];
    if (method === 'xgradcam') {
      let n = 0, s = 0;
      for (let i = 0; i < hw; i++) { n += Math.abs(g(k, i) * A[k * hw + i]); s += A[k * hw + i]; }
      w = n / Math.abs(s + 1e-7);
    }
    for (let i = 0; i < hw; i++) {
      const a = Math.abs(A[k * hw + i]);
      M[i] += method === 'hirescam' || method === 'gradcam-elementwise' || method === 'layercam' ? Math.abs(g(k, i)) * a : w * a;
    }
  }
  return M;
}

/** Grad-CAM's sum before the ReLU, pre(i) = Σ_k α_k A_k(i) with α_k = mean_hw G_k (G := −G for the counterfactual), float64. */
function gradcamPreRelu(A: Float64Array, G: Float64Array, C: number, hw: number, counterfactual: boolean): Float64Array {
  const pre = new Float64Array(hw);
  for (let k = 0; k < C; k++) {
    let s = 0;
    for (let i = 0; i < hw; i++) s += G[k * hw + i];
    const alpha = ((counterfactual ? -1 : 1) * s) / hw;
    for (let i = 0; i < hw; i++) pre[i] += alpha * A[k * hw + i];
  }
  return pre;
}

/** The smallest Grad-CAM++ denominator D = 2 + S g + 1e-6/g² over the terms that count (g > 0). */
function minPlusPlusDenominator(A: Float64Array, G: Float64Array, C: number, hw: number, counterfactual: boolean): number {
  let min = Infinity;
  for (let k = 0; k < C; k++) {
    let S = 0;
    for (let i = 0; i < hw; i++) S += A[k * hw + i];
    for (let i = 0; i < hw; i++) {
      const g = (counterfactual ? -1 : 1) * G[k * hw + i];
      if (g > 0) min = Math.min(min, 2 + S * g + 1e-6 / (g * g));
    }
  }
  return min;
}

/** 1. Each of `methods`' maps of `result` at `layers` for `classes` against the float64 references (header). */
export function checkCamMaps(result: GradcamResult, values: Values, grads: Grads, layers: string[], classes: number[],
  what: string, counterfactual: boolean, methods: readonly Method[] = CAM_METHODS): void {
  for (const layer of layers) {
    const Av = values.get(layer)!;
    const [, C, h, w] = Av.shape;
    const hw = h * w;
    expect(Av.data.every((v) => v >= 0), `${layer} is a ReLU output (A ≥ 0: the division arguments' premise)`).toBe(true);
    classes.forEach((c, k) => {
      const G = grads[layer][k].data;
      for (const method of methods) {
        const got = result.maps.find((m) => m.layer === layer && m.class === c && m.method === method);
        expect(got, `${what}: a ${method} map of class ${c} at ${layer}`).toBeDefined();
        expect(got!.counterfactual).toBe(counterfactual && methodSpec(method).gradients);
        const ref = camReference(method as CamMethod, Av.data, G, C, hw, { counterfactual });
        const eigen = methodSpec(method).kind === 'eigen';
        const M = eigen ? ref.magnitude : conditionedMagnitude(method, Av.data, G, C, hw, ref.weights, counterfactual);
        if (method === 'gradcam++') {
          const d = minPlusPlusDenominator(Av.data, G, C, hw, counterfactual);
          expect(d, `${what}: Grad-CAM++'s counted denominators at ${layer}`).toBeGreaterThanOrEqual(2);
        }
        if (eigen) {
          expect(got!.eigen?.converged, `${what}: ${method} converged at ${layer} (${got!.eigen?.iterations} iterations)`).toBe(true);
        }
        let err = 0, scale = 0, refMax = 0;
        for (let i = 0; i < hw; i++) {
          err = Math.max(err, Math.abs(got!.raw[i] - ref.map[i]));
          scale = Math.max(scale, M[i]);
          refMax = Math.max(refMax, ref.map[i]);
        }
        expect(scale, `${what}: ${method} at ${layer} has terms`).toBeGreaterThan(0);
        const rel = err / scale;
        const extra = eigen ? `, ${got!.eigen!.iterations} iterations` : '';
        console.log(`${what} ${method} ${layer} class ${c}: max |Δ| / M = ${rel.toExponential(2)} (bound ${camBound(layer)}; map max ${refMax.toExponential(2)}, M ${scale.toExponential(2)}${extra})`);
        expect(rel, `${what}: ${method} at ${layer}, class ${c}`).toBeLessThanOrEqual(camBound(layer));
        if (method === 'gradcam') {
          // Grad-CAM on its own scale (header): max |pre| of the sum before the ReLU.
          const pre = gradcamPreRelu(Av.data, G, C, hw, counterfactual);
          let e = 0, s = 0;
          for (let i = 0; i < hw; i++) {
            e = Math.max(e, Math.abs(got!.raw[i] - Math.max(pre[i], 0)));
            s = Math.max(s, Math.abs(pre[i]));
          }
          console.log(`${what} gradcam ${layer} class ${c}: max |Δ| / max |pre| = ${(e / s).toExponential(2)} (bound ${camBound(layer)})`);
          expect(e / s, `${what}: gradcam at ${layer}, class ${c}, on the scale max |Σ α A|`).toBeLessThanOrEqual(camBound(layer));
        }
      }
    });
  }
}

/** max |got − want| over max |want|, and that scale. */
export const relErr = (got: ArrayLike<number>, want: ArrayLike<number>) => {
  let err = 0, scale = 0;
  for (let i = 0; i < want.length; i++) {
    err = Math.max(err, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  return { rel: err / scale, scale };
};

/**
 * 2. The guided-backprop map of each class of `r` and its guided-gradcam maps at `layers` against the
 * float64 guided backward pass to the input. `plain`: the float64 gradients at `layers` of the same
 * classes and reduction (the counterfactual's unnegated ones), when the caller has them already.
 */
export function checkGuided(c: GooglenetCase, name: string, logitsName: string, values: Values, r: GradcamResult, layers: string[],
  reduction: Reduction, counterfactual: boolean, plain?: Grads): void {
  const { model, size, inputName } = c;
  const logits = values.get(logitsName)!.data;
  const classes = r.maps.filter((m) => m.method === 'gradcam' && m.layer === layers[0]).map((m) => m.class);
  const sign = counterfactual ? -1 : 1;
  const guided = backwardReference(model, values as never, { score: logitsName, seeds: scoreSeeds(logits, classes, reduction, sign), wrt: [inputName], guided: true })[inputName];
  plain ??= backwardReference(model, values as never, { score: logitsName, seeds: scoreSeeds(logits, classes, reduction), wrt: layers });
  let compared = 0; // guided-gradcam maps that are not all 0
  classes.forEach((cls, k) => {
    const find = (method: string, layer?: string): GradcamMap => r.maps.find((m) => m.method === method && m.class === cls && (!layer || m.layer === layer))!;
    const gb = find('guided-backprop');
    expect(gb.channels).toBe(3);
    expect(gb.shape).toEqual([size, size]);
    expect(gb.layer).toBe(inputName);
    expect(gb.raw.length).toBe(3 * size * size);
    const e1 = relErr(gb.raw, guided[k].data);
    const what = `${name} ${size}×${size} ${reduction}${counterfactual ? ' counterfactual' : ''} class ${cls}`;
    console.log(`${what}: guided-backprop max |Δ| / max |ref| ${e1.rel.toExponential(2)} (max ${e1.scale.toExponential(2)})`);
    expect(e1.scale, `${what}: a guided gradient`).toBeGreaterThan(0);
    expect(e1.rel, `${what}: guided-backprop`).toBeLessThanOrEqual(GUIDED_BOUND);
    for (const layer of layers) {
      const A = values.get(layer)!;
      const [, C, h, w] = A.shape;
      const cam = camReference('gradcam', A.data, plain![layer][k].data, C, h * w, { counterfactual });
      const gg = find('guided-gradcam', layer);
      expect(gg.layer).toBe(layer);
      const want = guidedGradcam(guided[k].data, upsampleBilinear(cam.map, h, w, size, size), size, size);
      const e2 = relErr(gg.raw, want);
      console.log(`${what}: guided-gradcam at ${layer} ${e2.rel.toExponential(2)} (max ${e2.scale.toExponential(2)})`);
      if (e2.scale > 0) {
        expect(e2.rel, `${what}: guided-gradcam at ${layer}`).toBeLessThanOrEqual(GUIDED_BOUND);
        compared++;
      } else expect(gg.raw.every((v) => v === 0), `${what}: guided-gradcam at ${layer} is 0 where Grad-CAM is`).toBe(true);
    }
  });
  if (!counterfactual) expect(compared, `${name} ${reduction}: some guided-gradcam map is not all 0`).toBeGreaterThan(0);
}

/**
 * 3. The CAM identity and the inspector (header) of `r`, a logit-reduction call with `inspect: true` and
 * gradcam, hirescam and eigencam at [l4e, l5b]; `grads5b`: the float64 gradients at l5b of r's top
 * classes (logit reduction); `kinds`: the inception block's branch kinds.
 */
export function checkInspector(model: OnnxModel, name: string, values: Values, r: GradcamResult, [l4e, l5b]: string[], grads5b: { data: Float64Array }[],
  kinds: string[]): void {
  const find = (layer: string, method: string, c: number) => r.maps.find((m) => m.layer === layer && m.method === method && m.class === c)!;
  const classes = r.predictions.slice(0, grads5b.length).map((p) => p.class);

  // The CAM identity.
  for (const c of classes) {
    const m5b = find(l5b, 'gradcam', c);
    const id = m5b.inspection!.camIdentity!;
    expect(id.applies, id.reason).toBe(true);
    const C = m5b.inspection!.weights!.length, hw = m5b.shape[0] * m5b.shape[1];
    expect(C).toBe(1024);
    console.log(`${name} class ${c}: |α − W/hw| ${id.maxAbsDiff!.toExponential(2)} of ${id.scale!.toExponential(2)}, |map − CAM/hw| ${id.mapMaxAbsDiff!.toExponential(2)} of ${id.mapScale!.toExponential(2)}`);
    expect(id.maxAbsDiff!).toBeLessThanOrEqual((hw + 3) * U * id.scale!);
    expect(id.mapMaxAbsDiff!).toBeLessThanOrEqual((C + hw + 4) * U * id.mapScale!);
    expect(find(l4e, 'gradcam', c).inspection!.camIdentity).toMatchObject({ applies: false, reason: expect.stringContaining('global average pool') });
    expect(find(l5b, 'hirescam', c).inspection!.camIdentity).toBeUndefined();
  }

  // The inspector against the references.
  const A = values.get(l5b)!;
  const [, C, h, w] = A.shape;
  const hw = h * w;
  const concat = model.nodes.find((n) => n.opType === 'Concat' && n.outputs[0] === l5b)!;
  const ranges = concat.inputs.reduce<[number, number][]>((acc, t) => {
    const start = acc.length ? acc[acc.length - 1][1] : 0;
    return [...acc, [start, start + values.get(t)!.shape[1]]];
  }, []);
  classes.forEach((c, k) => {
    const G = grads5b[k].data;
    for (const method of ['gradcam', 'hirescam'] as const) {
      const m = find(l5b, method, c);
      const ins = m.inspection!;
      const ref = camReference(method, A.data, G, C, hw);
      // The conditioned magnitude of checkCamMaps, and its bound at inception_5b.
      const M = new Float64Array(hw);
      const meanAbsG = new Float64Array(C);
      for (let ch = 0; ch < C; ch++) {
        for (let i = 0; i < hw; i++) meanAbsG[ch] += Math.abs(G[ch * hw + i]) / hw;
        for (let i = 0; i < hw; i++) M[i] += (method === 'gradcam' ? meanAbsG[ch] : Math.abs(G[ch * hw + i])) * Math.abs(A.data[ch * hw + i]);
      }
      const scale = Math.max(...M);
      let err = 0;
      for (let i = 0; i < hw; i++) err = Math.max(err, Math.abs(ins.signed[i] - ref.signed[i]));
      expect(err, `${method} class ${c}: signed map`).toBeLessThanOrEqual(1e-3 * scale);
      // Σ_k contribution_k = Σ_hw signed map (float64 sums of float32 values: the map's own rounding, C + hw terms).
      const sumC = ins.contributions.reduce((a, b) => a + b, 0);
      const sumS = ins.signed.reduce((a, b) => a + b, 0);
      expect(Math.abs(sumC - sumS), `${method} class ${c}: contributions add up to the signed map`).toBeLessThanOrEqual((C + hw) * U * hw * scale);
      if (method === 'gradcam') {
        let werr = 0;
        for (let ch = 0; ch < C; ch++) werr = Math.max(werr, Math.abs(ins.weights![ch] - ref.weights![ch]));
        expect(werr, `gradcam class ${c}: α`).toBeLessThanOrEqual(1e-3 * Math.max(...meanAbsG));
      }
      // Top channels: positive, sorted, with the layer's activation and gradient maps.
      const tops = ins.topChannels;
      expect(tops.length).toBeGreaterThan(0);
      tops.forEach((t, i) => {
        expect(t.contribution).toBeGreaterThan(0);
        if (i) expect(t.contribution).toBeLessThanOrEqual(tops[i - 1].contribution);
        expect(t.activation.length).toBe(hw);
        for (let j = 0; j < hw; j++) expect(Math.abs(t.activation[j] - A.data[t.channel * hw + j])).toBeLessThanOrEqual(1e-3 * Math.max(...A.data.slice(t.channel * hw, (t.channel + 1) * hw)) + 1e-30);
        expect(t.gradient!.length).toBe(hw);
      });
      expect(ins.negativeChannels.every((n) => n.contribution < 0)).toBe(true);
      // Branches: the Concat node's inputs, in order.
      expect(ins.branches!.map((b) => b.channels)).toEqual(ranges);
      expect(ins.branches!.map((b) => b.kind)).toEqual(kinds);
      // The branches partition the channels: their sums add up to the total (float64 sums, reordered).
      const branchSum = ins.branches!.reduce((a, b) => a + b.contribution, 0);
      const absSum = ins.contributions.reduce((a, b) => a + Math.abs(b), 0);
      expect(Math.abs(branchSum - sumC)).toBeLessThanOrEqual(C * 2 ** -52 * absSum);
      expect(ins.negativeShare).toBeGreaterThanOrEqual(0);
      expect(ins.negativeShare).toBeLessThanOrEqual(1);
      expect(ins.diagnosis).toMatch(m.max > 0 ? new RegExp(`^The map is positive at \\d+ of ${hw} positions; \\d+% of the signed map's mass is negative`) : /^The map is all zero because/);
    }
    const eigen = find(l5b, 'eigencam', c).inspection!;
    expect(eigen.weights!.length).toBe(C);
    expect(eigen.topChannels.every((t) => t.gradient === undefined)).toBe(true);
  });
}

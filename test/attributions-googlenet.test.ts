/**
 * The input attributions and Score-CAM (issue 20 item 2) on a generated GoogLeNet against references
 * written in test/ (test/reference/attributions.ts, multipass.ts: nothing from src/):
 * googlenet-torchvision-seeded (test/helpers/googlenets.ts) at SIZE × SIZE, one input, its float64
 * top class, ONE GPU call for all six methods (one first pass, then their passes), one float64
 * forward and backward at x that every check shares:
 *   saliency, input-x-gradient   the float64 gradient at x;
 *   smoothgrad                   SG.samples noisy copies, the seeded noise reproduced by the
 *                                reference's own generator (noisyInput), a float64 backward each;
 *   integrated-gradients         m = IG.steps, zeros baseline: the trapezoid rule over the float64
 *                                gradients at the path's points (x's is the shared one), and the
 *                                path's ends' scores;
 *   occlusion                    OCCLUSION's 2 × 2 overlapping windows: the drops of five forwards;
 *   scorecam                     at inception3a's 16-channel 1×1 reduce: the masks and softmax in
 *                                float64 from the float64 activations, the 16 masked inputs'
 *                                scores from forwards (the layer with the fewest channels: the
 *                                weights' softmax needs every channel's score).
 * The forward-only methods take their forwards from onnxruntime-node (test/helpers/ort.ts), the
 * project's forward reference, and their formulas in float64.
 *
 * Cost, not the GPU's: the float64 reference of this network takes ~5 s per forward and ~4.5 s per
 * backward at 96×96 (the other GoogLeNet tests' size; scratch measurement at load 1–7 on the 2-core
 * machine), which would put the 5 forward + backward pairs here (x, 2 noisy copies, 2 path points)
 * at ~50 s and scorecam's 16 forwards at ~80 s. At SIZE = 48 the same graph runs at a quarter of the
 * cost (inception3a is 6 × 6, 5b 2 × 2: every layer keeps spatial extent) and the forwards of the
 * forward-only methods come from ONNX Runtime in milliseconds.
 *
 * Tolerances. The engine's forward pass is within LOGIT_TOL · max|logit| of onnxruntime's (both
 * float32, other summation orders: test/forward-googlenet.test.ts states it at 224×224), and so is
 * the float64 one: each score y is within e_y = LOGIT_TOL · max|L| of the reference, L its pass's
 * logits. Then
 *   occlusion    |δ drop| ≤ e_y(x) + e_y(x_w); a position's mean of drops within the largest, 8u |y| for the mean;
 *   scorecam     S_k = y(x ⊙ M_k), w = softmax(S): |δw_k| ≤ w_k (e_k + Σ_j w_j e_j) (first order; the
 *                weights are read back by the inspector, which the call asks for, and held to it); the
 *                GPU's masks, made in float32 from its own A, differ from the float64 ones by ~1e-6
 *                relative, which moves S_k by far less than e_k; A_k within LOGIT_TOL · max|A_k|
 *                (the forward's tolerance, per channel); the map within
 *                Σ_k |δw_k| |A_k(i)| + w_k LOGIT_TOL max|A_k| + (C + 4) u w_k |A_k(i)| (×1.01).
 * The gradients at the input pass every layer backwards, where float32 rounding also flips ReLU and
 * max-pool decisions (test/guided-googlenet.test.ts, test/cam-methods-googlenet.test.ts: up to 1e-2
 * of the map's scale at early layers; a flip moves a few values by their own order): each gradient
 * map is asked to be within GRADIENT_BOUND · max|reference| of it, as the guided maps are
 * (guided-googlenet). A wrong sign, index, noise sample, path weight, window or mask is an error of
 * the map's own order.
 */
import { afterAll, expect, test } from 'vitest';
import type { GradcamMap, GradcamResult, MethodOptions } from '../src/gradcam/types.ts';
import { destroyGooglenets, type GooglenetCase, googlenetInput, googlenetNetwork } from './helpers/googlenets.ts';
import { U } from './helpers/magnitude.ts';
import { OrtOracle } from './helpers/ort.ts';
import {
  integratedGradientsReference, noisyInput, occlusionMap, occlusionWindows, saliencyReference, scoreAndGradient, type ScoreSpec,
} from './reference/attributions.ts';
import { backwardReference, forwardValues } from './reference/graph.ts';
import { scoreCamInputs, scoreCamMap } from './reference/multipass.ts';
import { type Tensor, tensor } from './reference/tensor.ts';

const NAME = 'googlenet-torchvision-seeded';
const SIZE = 48;
/** 16 channels at 6 × 6 (48 / 8): inception3a's "5x5" branch's 1×1 reduce. */
const SCORECAM_LAYER = '/inception3a/branch3/branch3.0/Relu_output_0';
const SG = { samples: 2, sigma: 0.15, seed: 3 };
const IG = { steps: 2, baseline: 'zeros' as const };
/** 2 × 2 windows of 32 at stride 16 on 48 × 48: the middle band is covered by two. */
const OCCLUSION = { patch: 32, stride: 16, fill: 0 };
const LOGIT_TOL = 1e-3;
const GRADIENT_BOUND = 5e-2;

interface Shared {
  c: GooglenetCase;
  x: Tensor;
  cls: number;
  spec: ScoreSpec;
  /** The float64 values at x (one forward) and ∂y/∂x (one backward). */
  values: Map<string, Tensor>;
  atX: { score: number; gradient: Float64Array };
  result: GradcamResult;
}

let shared: Promise<Shared> | undefined;
/** The file's one GPU call and one float64 forward and backward, made by the first test that needs them. */
function setup(): Promise<Shared> {
  shared ??= (async () => {
    const { c, net } = await googlenetNetwork(NAME, SIZE);
    const x = tensor(c.shape, googlenetInput(c.shape, 5));
    const t0 = performance.now();
    const values = forwardValues(c.model, { [c.inputName]: x });
    const logitsName = net.graph.logits;
    const logits = values.get(logitsName)!.data;
    const cls = logits.indexOf(Math.max(...logits));
    const spec: ScoreSpec = { logits: logitsName, classIndex: cls, reduction: 'logit' };
    const seed = Float64Array.from(logits, (_, j) => (j === cls ? 1 : 0));
    const gradient = backwardReference(c.model, values, { score: logitsName, seeds: [seed], wrt: [c.inputName] })[c.inputName][0].data;
    const t1 = performance.now();
    // Batches of 2 passes for every method: one pass engine (of 2 images) for all, and no padded slot (a pass engine runs all its images).
    const batchSize = 2;
    const methodOptions: MethodOptions = {
      smoothgrad: { ...SG, batchSize }, 'integrated-gradients': { ...IG, batchSize }, occlusion: { ...OCCLUSION, batchSize }, scorecam: { batchSize },
    };
    const result = await net.gradCAM({ shape: c.shape, data: Float32Array.from(x.data) }, {
      methods: ['saliency', 'input-x-gradient', 'smoothgrad', 'integrated-gradients', 'occlusion', 'scorecam'],
      featureLayers: [SCORECAM_LAYER], classes: [cls], upsample: false, methodOptions, inspect: true, // (scorecam's weights)
    });
    console.log(`${NAME} ${SIZE}×${SIZE}: float64 forward + backward ${(t1 - t0).toFixed(0)} ms, the GPU call (six methods, ${result.timings.passesMs?.toFixed(0)} ms of passes) ${(performance.now() - t1).toFixed(0)} ms`);
    return { c, x, cls, spec, values, atX: { score: logits[cls], gradient }, result };
  })();
  return shared;
}

afterAll(destroyGooglenets);

const mapOf = (r: GradcamResult, method: string): GradcamMap => {
  const m = r.maps.find((x) => x.method === method);
  expect(m, method).toBeDefined();
  return m!;
};

/** max |got − want| / max |want| (max |want| must not be 0: the comparison would be empty). */
function relative(got: ArrayLike<number>, want: ArrayLike<number>, what: string): number {
  expect(got.length, what).toBe(want.length);
  let err = 0, scale = 0;
  for (let i = 0; i < want.length; i++) {
    err = Math.max(err, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  expect(scale, `${what}: a map that is not all zero`).toBeGreaterThan(0);
  console.log(`${NAME} ${SIZE}×${SIZE} ${what}: max |Δ| / max |float64| ${(err / scale).toExponential(2)} (bound ${GRADIENT_BOUND})`);
  return err / scale;
}

const maxAbs = (v: ArrayLike<number>) => Array.from(v).reduce((a, b) => Math.max(a, Math.abs(b)), 0);

/** The logits of the model at each input, from onnxruntime-node (float32). */
async function ortLogits(c: GooglenetCase, logits: string, inputs: readonly Tensor[]): Promise<Float32Array[]> {
  const ort = await OrtOracle.create(c.model);
  const out: Float32Array[] = [];
  for (const t of inputs) out.push((await ort.run(Float32Array.from(t.data), c.shape, [logits]))[logits]);
  return out;
}

test('saliency and input-x-gradient: the float64 gradient at x (one backward pass)', async () => {
  const { c, x, result, atX } = await setup();
  const [, C, H, W] = c.shape;
  const saliency = mapOf(result, 'saliency');
  expect(saliency.shape).toEqual([H, W]);
  expect(relative(saliency.raw, saliencyReference(atX.gradient, C, H * W), 'saliency')).toBeLessThanOrEqual(GRADIENT_BOUND);
  const ixg = mapOf(result, 'input-x-gradient');
  expect(ixg.channels).toBe(C);
  expect(relative(ixg.raw, atX.gradient.map((g, e) => g * x.data[e]), 'input-x-gradient')).toBeLessThanOrEqual(GRADIENT_BOUND);
});

test(`smoothgrad (${SG.samples} samples, σ ${SG.sigma}, seed ${SG.seed}): the mean of the float64 gradients at the same noisy copies`, async () => {
  const { c, x, spec, result, atX } = await setup();
  const map = mapOf(result, 'smoothgrad');
  expect(map.passes).toBe(1 + SG.samples);
  const want = new Float64Array(x.data.length);
  for (let j = 0; j < SG.samples; j++) {
    const { gradient } = scoreAndGradient(c.model, noisyInput(x, SG.sigma, SG.seed, j), spec);
    gradient.forEach((g, e) => { want[e] += g / SG.samples; });
  }
  expect(relative(map.raw, want, 'smoothgrad')).toBeLessThanOrEqual(GRADIENT_BOUND);
  // The noise did something: the mean is not the gradient at x (by far more than the bound).
  expect(relative(atX.gradient, want, 'smoothgrad against the plain gradient (must differ)')).toBeGreaterThan(4 * GRADIENT_BOUND);
});

test(`integrated gradients (m = ${IG.steps}, ${IG.baseline} baseline): the trapezoid rule over the float64 gradients on the path; its ends' scores`, async () => {
  const { c, x, spec, values, result, atX } = await setup();
  const map = mapOf(result, 'integrated-gradients');
  expect(map.passes).toBe(1 + IG.steps);
  const ref = integratedGradientsReference(c.model, x, new Float64Array(x.data.length), spec, IG.steps, atX);
  expect(relative(map.raw, ref.attributions, 'integrated-gradients')).toBeLessThanOrEqual(GRADIENT_BOUND);
  // The path's ends: y(x) from the first pass, y(0) from the path's first point; each within its forward bound.
  const completeness = map.completeness!;
  expect(Math.abs(completeness.score - ref.scoreInput)).toBeLessThanOrEqual(LOGIT_TOL * maxAbs(values.get(spec.logits)!.data));
  expect(Math.abs(completeness.baselineScore - ref.scoreBaseline)).toBeLessThanOrEqual(LOGIT_TOL * ref.baselineLogitScale);
  console.log(`${NAME} integrated gradients m = ${IG.steps}: gap GPU ${completeness.gap.toExponential(3)}, float64 ${ref.gap.toExponential(3)} (y(x) − y(0) = ${(ref.scoreInput - ref.scoreBaseline).toFixed(3)})`);
});

test(`occlusion (patch ${OCCLUSION.patch}, stride ${OCCLUSION.stride}: 2 × 2 windows): the mean drops of onnxruntime's forwards`, async () => {
  const { c, x, cls, spec, result } = await setup();
  const [, , H, W] = c.shape;
  const map = mapOf(result, 'occlusion');
  expect(map.passes).toBe(1 + 4);
  const windows = occlusionWindows(x, { patch: OCCLUSION.patch, step: OCCLUSION.stride, fill: OCCLUSION.fill });
  expect(windows.length).toBe(4);
  const [clean, ...occluded] = await ortLogits(c, spec.logits, [x, ...windows.map((w) => w.input)]);
  const want = occlusionMap(windows, occluded.map((l) => clean[cls] - l[cls]), H * W);
  // e_y of the clean pass and of the occluded ones (a mean of drops within the largest), and the mean's rounding.
  const bound = LOGIT_TOL * (maxAbs(clean) + Math.max(...occluded.map(maxAbs))) + 8 * U * Math.abs(clean[cls]);
  let err = 0;
  for (let i = 0; i < H * W; i++) err = Math.max(err, Math.abs(map.raw[i] - want[i]));
  console.log(`${NAME} ${SIZE}×${SIZE} occlusion: max |GPU − reference| ${err.toExponential(2)} (bound ${bound.toExponential(2)}, max |drop| ${maxAbs(want).toFixed(3)})`);
  expect(maxAbs(want), 'the drops are not all within the bound').toBeGreaterThan(10 * bound);
  expect(err).toBeLessThanOrEqual(bound);
});

test('scorecam at inception3a\'s 16-channel 1×1 reduce: the softmax of the 16 masked inputs\' scores (the weights, read by the inspector), the weighted map', async () => {
  const { c, x, cls, spec, values, result } = await setup();
  const map = mapOf(result, 'scorecam');
  expect(map.layer).toBe(SCORECAM_LAYER);
  const A = values.get(SCORECAM_LAYER)!;
  const [, C, h, w] = A.shape;
  expect([C, h, w]).toEqual([16, SIZE / 8, SIZE / 8]);
  expect(map.shape).toEqual([h, w]);
  const hw = h * w;
  const passes = await ortLogits(c, spec.logits, scoreCamInputs(A, x));
  const { weights, map: want } = scoreCamMap(A, Float64Array.from(passes, (l) => l[cls]));
  const e = passes.map((l) => LOGIT_TOL * maxAbs(l));
  const mean = weights.reduce((a, wj, j) => a + wj * e[j], 0);
  const dw = weights.map((wk, k) => wk * (e[k] + mean));
  // The weights themselves (the inspector reads them back): each within its bound.
  const gpuWeights = map.inspection!.weights!;
  expect(gpuWeights.length).toBe(C);
  let worstWeight = 0;
  weights.forEach((wk, k) => {
    const d = Math.abs(gpuWeights[k] - wk);
    expect(d, `weight ${k}: GPU ${gpuWeights[k]}, reference ${wk}, bound ${dw[k]}`).toBeLessThanOrEqual(1.01 * dw[k] + 4 * U * wk);
    worstWeight = Math.max(worstWeight, d / (1.01 * dw[k] + 4 * U * wk));
  });
  const eA = Float64Array.from({ length: C }, (_, k) => LOGIT_TOL * maxAbs(A.data.subarray(k * hw, (k + 1) * hw)));
  let worst = 0;
  for (let i = 0; i < hw; i++) {
    let bound = 0;
    for (let k = 0; k < C; k++) {
      const a = Math.abs(A.data[k * hw + i]);
      bound += dw[k] * a + weights[k] * eA[k] + (C + 4) * U * weights[k] * a;
    }
    bound *= 1.01;
    const d = Math.abs(map.raw[i] - want[i]);
    expect(d, `position ${i}: GPU ${map.raw[i]}, reference ${want[i]}, bound ${bound}`).toBeLessThanOrEqual(bound);
    worst = Math.max(worst, d / bound);
  }
  expect(Math.max(...want)).toBeGreaterThan(0);
  // The weights are not all alike (else a wrong mask would hardly show): the largest is well above 1/C.
  expect(Math.max(...weights)).toBeGreaterThan(2 / C);
  console.log(`${NAME} ${SIZE}×${SIZE} scorecam: worst |GPU − reference| / bound ${worst.toExponential(2)} (weights: ${worstWeight.toExponential(2)}), weights ${Math.min(...weights).toExponential(2)} … ${Math.max(...weights).toExponential(2)}`);
});

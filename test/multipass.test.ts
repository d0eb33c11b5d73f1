/**
 * Score-CAM and Ablation-CAM (issue 20; src/gradcam/multipass.ts) against their float64 references
 * (test/reference/multipass.ts: pytorch-grad-cam's ScoreCAM and AblationCAM written from their
 * definitions) on the small GoogLeNet-like model (test/helpers/small-model.ts): the concat 'cat'
 * (16 channels, 8 × 6) and its slice 'a2' (8 channels: the forward from the layer runs the concat
 * with the other slice from the priming pass), two classes, two images in one call, batches of 3
 * (the last batch padded), and both reductions; skipZero on a model with dead channels; progress,
 * cancelling through an AbortSignal, and the refusals. The smoothings on both (issue 20 item 1, as
 * pytorch-grad-cam's BaseCAM options): eigenSmooth (the first principal component of w_k A_k, from the
 * float64 weights: test/reference/cam-methods.ts's projection) and augSmooth (six augmented copies,
 * each with its own C passes, composed as test/reference/cam-methods.ts augSmoothReference).
 *
 * Tolerance, from float32 rounding (test/helpers/magnitude.ts): every GPU value t is within
 * rtol_t · M_t of the float64 one (M the magnitude, rtol the budget of the ops on its way). From the
 * layer's activations A (error e_A) and the class score of each pass (error e_S: rounding of the pass,
 * plus for Score-CAM the reach of the masked input's own error, |x|·δm with δm ≤ 4·E_k / (max − min)
 * + 6u, E_k the error of A_k plus 8u·max|A_k|), first order:
 *   scorecam:    |δw_k| ≤ w_k (e_S,k + Σ_j w_j e_S,j)                    (softmax)
 *   ablationcam: |δw_k| ≤ (e_S + e_S,k) / |S| + |S − S_k| e_S / S²         (a ratio)
 *   map(i):      Σ_k |δw_k| |A_k(i)| + |w_k| e_A,k(i) + (C + 4) u |w_k| |A_k(i)|
 * and the probability's error from the logits' e_L: p (e_L,c + max_j e_L,j) + p (classes + 2 range + 8) u
 * (WGSL's exp). Ablation passes zero a channel, which only lowers magnitudes: the unablated M bounds them.
 * This worst-case bound is asserted, but it is loose where the method is ill-conditioned: a channel
 * whose upsampled span is small next to its activations' worst-case error makes its mask (and, through
 * the softmax's Σ_j w_j e_S,j, every weight) uncertain, and ablationcam's ratio divides by S (measured
 * on these maps: the bound's maximum is 3 to 3000 times the map's for scorecam and ablationcam with
 * the logit, up to 1e45 for a class of tiny probability). So every map is also held to the CAM tests'
 * bound on the conditioned magnitude, CAM_BOUND · max_i Σ_k |w_k A_k(i)| (below): a wrong channel,
 * mask or score is an error of the map's own order, far above it.
 * aug-smooth: each copy's map m_a within e_a = CAM_BOUND · max M_a on the copy's input (which the test
 * makes exactly as float32 does); min-max normalisation moves (v − lo) / (hi − lo) by at most
 * 2 e_a / range_a (first order: the value's error and the min's or the max's), the mean of six keeps
 * the mean; 16u for the normalisation's own rounding. eigen-smooth: CAM_BOUND on the projection's M.
 */
import { afterAll, describe, expect, test } from 'vitest';
import { GradcamError } from '../src/errors.ts';
import { METHOD_SPECS } from '../src/gradcam/methods.ts';
import { Network } from '../src/gradcam/network.ts';
import type { GradcamMap, TensorInput } from '../src/gradcam/types.ts';
import type { OnnxModel } from '../src/onnx/model.ts';
import { Rng } from '../weights/generate/random.ts';
import { testGpu } from './helpers/gpu.ts';
import { forwardBudgets, forwardMagnitudes, U } from './helpers/magnitude.ts';
import { SMALL_SHAPE, smallModel } from './helpers/small-model.ts';
import { augmentedInput, augSmoothReference, camReference } from './reference/cam-methods.ts';
import { forwardValues } from './reference/graph.ts';
import { buildModel, int, ints, node, weight } from './reference/models.ts';
import { ablationCamReference, type MultiPassReference, scoreCamReference, upsampleAlignCorners } from './reference/multipass.ts';
import { randomTensor, rng, type Tensor, tensor } from './reference/tensor.ts';

function tensorInput(r: Rng, shape = SMALL_SHAPE): TensorInput {
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = r.uniform(-2, 2);
  return { shape: [...shape], data };
}

/** The logits of a pass on `x` and the bound on each one's error (rounding, plus the reach of `inputError`); memoised per input. */
/**
 * The CAM tests' bound on the conditioned magnitude (test/eigen-smoothing.test.ts, aug-smooth.test.ts):
 * max_i |GPU(i) − float64(i)| ≤ CAM_BOUND · max_i M(i), M(i) = Σ_k |w_k A_k(i)| (eigen-smooth: the
 * projection's Σ_k |X(i, k) v_k|), what the float32 sum's rounding scales with; the weights and A carry
 * relative errors of the order L·√n·u ≈ 6e-5 through these models (measured: ≤ 2e-6 of max M).
 */
const CAM_BOUND = 1e-4;

const logitMemo = new Map<string, { l: Float64Array; eL: Float64Array }>();
function logitErrors(model: OnnxModel, key: string, x: Tensor, inputError?: Tensor): { l: Float64Array; eL: Float64Array } {
  let m = logitMemo.get(key);
  if (!m) {
    const values = forwardValues(model, { x });
    const M = forwardMagnitudes(model, { x }).get('logits')!.data;
    const rL = forwardBudgets(model, values).get('logits')!;
    const reach = inputError ? forwardMagnitudes(model, { x: inputError }, { winograd: false }).get('logits')!.data : undefined;
    m = { l: Float64Array.from(values.get('logits')!.data), eL: Float64Array.from(M, (v, j) => rL * v + (reach?.[j] ?? 0)) };
    logitMemo.set(key, m);
  }
  return m;
}

/** The bound on the class score of a pass on input `x` (|logit| or probability), `inputError` the bound on |δx| per value. */
function scoreError(model: OnnxModel, key: string, x: Tensor, cls: number, softmax: boolean, inputError?: Tensor): number {
  const { l, eL } = logitErrors(model, key, x, inputError);
  if (!softmax) return eL[cls];
  const mx = Math.max(...l);
  const sum = l.reduce((a, v) => a + Math.exp(v - mx), 0);
  const p = Math.exp(l[cls] - mx) / sum;
  const range = mx - Math.min(...l);
  return p * (eL[cls] + Math.max(...eL)) + p * (l.length + 2 * range + 8) * U;
}

/**
 * Whether channel k of tensor `name` is exactly 0 in float32 as in float64 (batch 1): the output of a
 * Relu whose input channel lies below −4·reach everywhere (kinkMargins' margin: rounding cannot lift
 * it to 0) or is itself exactly 0, or a MaxPool's or Concat's (axis 1) copy of such a channel.
 */
function exactZeroChannel(model: OnnxModel, values: Map<string, Tensor>, reach: (t: string) => ArrayLike<number>, name: string, k: number): boolean {
  const node = model.nodes.find((n) => n.outputs.includes(name));
  if (!node) return false;
  if (node.opType === 'Concat') {
    const axis = node.attributes.axis;
    if (!axis || axis.type !== 'int' || axis.value !== 1) return false;
    let at = k;
    for (const input of node.inputs) {
      const c = values.get(input)!.shape[1];
      if (at < c) return exactZeroChannel(model, values, reach, input, at);
      at -= c;
    }
    return false;
  }
  if (node.opType === 'MaxPool') return exactZeroChannel(model, values, reach, node.inputs[0], k);
  if (node.opType !== 'Relu') return false;
  const input = node.inputs[0];
  if (exactZeroChannel(model, values, reach, input, k)) return true;
  const t = values.get(input)!;
  const plane = t.shape[2] * t.shape[3];
  const r = reach(input);
  for (let i = k * plane; i < (k + 1) * plane; i++) if (!(t.data[i] < -4 * r[i])) return false;
  return true;
}

/** The reference, the worst-case bound on each position of the map (file comment) and the conditioned magnitude Σ_k |w_k A_k(i)|. */
function mapBound(model: OnnxModel, key: string, x: Tensor, layer: string, cls: number, softmax: boolean, method: 'scorecam' | 'ablationcam'): {
  ref: MultiPassReference; bound: Float64Array; magnitude: Float64Array;
} {
  const at = { input: 'x', logits: 'logits', layer, cls, softmax };
  const ref = method === 'scorecam' ? scoreCamReference(model, x, at) : ablationCamReference(model, x, at);
  const values = forwardValues(model, { x });
  const A = values.get(layer)!;
  const budgets = forwardBudgets(model, values);
  const magnitudes = forwardMagnitudes(model, { x });
  const reach = (t: string) => magnitudes.get(t)!.data.map((m) => budgets.get(t)! * m);
  const eA = reach(layer);
  const [, C, h, w] = A.shape;
  const hw = h * w;
  // A channel exactly 0 in float32 too: no error, and Score-CAM's mask of it is exactly 0 on both sides.
  for (let k = 0; k < C; k++) if (exactZeroChannel(model, values, reach, layer, k)) eA.fill(0, k * hw, (k + 1) * hw);
  const eS = new Float64Array(C);
  const dw = new Float64Array(C);
  if (method === 'scorecam') {
    const [, , H, W] = x.shape;
    for (let k = 0; k < C; k++) {
      const Ak = A.data.subarray(k * hw, (k + 1) * hw);
      const E = Math.max(...eA.subarray(k * hw, (k + 1) * hw)) + 8 * U * Math.max(...Ak.map(Math.abs));
      const up = upsampleAlignCorners(Ak, h, w, H, W);
      const span = Math.max(...up) - Math.min(...up) + 1e-8;
      const dm = (4 * E) / span + 6 * U;
      const inputError = tensor(x.shape, x.data.map((v) => Math.abs(v) * (dm + U)));
      eS[k] = scoreError(model, `${key}|${layer}|${k}`, ref.inputs![k], cls, softmax, inputError);
    }
    const mean = ref.weights.reduce((a, wj, j) => a + wj * eS[j], 0);
    ref.weights.forEach((wk, k) => { dw[k] = wk * (eS[k] + mean); });
  } else {
    const e = scoreError(model, key, x, cls, softmax);
    const S = ref.score;
    ref.passScores.forEach((Sk, k) => { dw[k] = (2 * e) / Math.abs(S) + (Math.abs(S - Sk) * e) / (S * S); });
  }
  const bound = new Float64Array(hw);
  const magnitude = new Float64Array(hw);
  for (let i = 0; i < hw; i++) {
    let b = 0;
    for (let k = 0; k < C; k++) {
      const a = Math.abs(A.data[k * hw + i]);
      b += dw[k] * a + Math.abs(ref.weights[k]) * eA[k * hw + i] + (C + 4) * U * Math.abs(ref.weights[k]) * a;
      magnitude[i] += Math.abs(ref.weights[k]) * a;
    }
    bound[i] = 1.01 * b + 1e-30;
  }
  return { ref, bound, magnitude };
}

/** The float64 reference of a map and its conditioned magnitude M(i) = Σ_k |w_k A_k(i)| (CAM_BOUND's scale). */
function multiPassReference(model: OnnxModel, method: 'scorecam' | 'ablationcam', x: Tensor, layer: string, cls: number): { ref: MultiPassReference; A: Float64Array; magnitude: Float64Array } {
  const at = { input: 'x', logits: 'logits', layer, cls };
  const values = forwardValues(model, { x });
  const ref = method === 'scorecam' ? scoreCamReference(model, x, at, values) : ablationCamReference(model, x, at);
  const A = values.get(layer)!;
  const [, C, h, w] = A.shape;
  const magnitude = new Float64Array(h * w);
  for (let k = 0; k < C; k++) for (let i = 0; i < h * w; i++) magnitude[i] += Math.abs(ref.weights[k] * A.data[k * h * w + i]);
  return { ref, A: A.data, magnitude };
}

/** Checks a map against the reference within the bound; returns the worst |d| / bound. */
function expectClose(got: GradcamMap, ref: MultiPassReference, bound: Float64Array, magnitude: Float64Array, what: string): number {
  let err = 0;
  for (let i = 0; i < bound.length; i++) {
    const d = Math.abs(got.raw[i] - ref.map[i]);
    expect(d, `${what}: position ${i} (ref ${ref.map[i]}, got ${got.raw[i]}, bound ${bound[i]})`).toBeLessThanOrEqual(bound[i]);
    err = Math.max(err, d);
  }
  // (M = 0: every weight is 0 in float64, as for a saturated probability; the first bound alone holds then.)
  const M = Math.max(...magnitude);
  if (M === 0) return 0;
  expect(err, `${what}: max |GPU − float64| against CAM_BOUND · max M (${M.toExponential(2)})`).toBeLessThanOrEqual(CAM_BOUND * M);
  return err / M;
}

/** x → conv 3×3 (5 channels; channels 1 and 3 biased to −100: dead after the ReLU) + ReLU → conv 1×1 (4) + ReLU → GAP → Gemm (3 classes). */
function deadChannelModel(): OnnxModel {
  const r = rng(11);
  const b1 = randomTensor([5], r, 0, 0.2);
  b1.data[1] = -100;
  b1.data[3] = -100;
  return buildModel({
    inputs: { x: [1, 3, 7, 5] },
    outputs: ['logits'],
    weights: [weight('w1', randomTensor([5, 3, 3, 3], r)), weight('b1', b1), weight('w2', randomTensor([4, 5, 1, 1], r)), weight('fc', randomTensor([3, 4], r)), weight('fcb', randomTensor([3], r))],
    nodes: [
      node('Conv', ['x', 'w1', 'b1'], ['c1'], { kernel_shape: ints([3, 3]), pads: ints([1, 1, 1, 1]) }),
      node('Relu', ['c1'], ['a1']),
      node('Conv', ['a1', 'w2'], ['c2'], { kernel_shape: ints([1, 1]) }),
      node('Relu', ['c2'], ['a2']),
      node('GlobalAveragePool', ['a2'], ['g']),
      node('Flatten', ['g'], ['flat']),
      node('Gemm', ['flat', 'fc', 'fcb'], ['logits'], { transB: int(1) }),
    ],
  });
}

describe('scorecam and ablationcam against float64 (small model)', async () => {
  const gpu = await testGpu();
  const model = smallModel(3, 'flatten');
  const net = await Network.load(gpu, model, { taps: ['a2'] });
  afterAll(() => net.destroy());
  const r = new Rng(5);
  const xs = [tensorInput(r), tensorInput(r)];

  test('two layers (a concat and its slice), two classes, two images (softmax: one), batches of 3; logit and softmax', async () => {
    for (const reduction of ['logit', 'softmax'] as const) {
      const progress: number[] = [];
      // Softmax on one image (its bounds cost float64 passes too).
      const inputs = reduction === 'logit' ? xs : xs.slice(0, 1);
      const results = await net.gradCAM(inputs, {
        // Softmax: the top classes (a class of probability 1e-40 is 0 in float32, and Ablation-CAM divides by it).
        methods: ['scorecam', 'ablationcam'], featureLayers: ['cat', 'a2'], classes: reduction === 'logit' ? [2, 7] : 'top2', reduction, upsample: false,
        methodOptions: { scorecam: { batchSize: 3 }, ablationcam: { batchSize: 3 } }, onProgress: (p) => progress.push(p.done),
      });
      // Per image: 16 + 8 channels, both methods.
      const total = inputs.length * 2 * (16 + 8);
      expect(progress.at(-1)).toBe(total);
      expect(progress.every((d, i) => i === 0 || d > progress[i - 1])).toBe(true);
      let worst = 0;
      let nonzero = 0;
      for (const [n, res] of results.entries()) {
        const cls = [...new Set(res.maps.map((m) => m.class))];
        if (reduction === 'logit') expect(cls).toEqual([2, 7]);
        else expect(cls).toEqual(res.predictions.slice(0, 2).map((p) => p.class));
        expect(res.maps.map((m) => `${m.layer}:${m.method}`).sort()).toEqual(['a2:ablationcam', 'a2:ablationcam', 'a2:scorecam', 'a2:scorecam', 'cat:ablationcam', 'cat:ablationcam', 'cat:scorecam', 'cat:scorecam']);
        expect(res.timings.passesMs).toBeGreaterThan(0);
        for (const m of res.maps) {
          const { ref, bound, magnitude } = mapBound(model, `image ${n}`, tensor(xs[n].shape, xs[n].data), m.layer, m.class, reduction === 'softmax', m.method as 'scorecam' | 'ablationcam');
          if (Math.max(...ref.map) > 0) nonzero++;
          worst = Math.max(worst, expectClose(m, ref, bound, magnitude, `${reduction} image ${n} ${m.method} ${m.layer} class ${m.class}`));
        }
      }
      expect(nonzero, 'maps with something in them (a ReLU may leave some all zero)').toBeGreaterThanOrEqual(4 * inputs.length);
      console.log(`${reduction}: worst max |GPU − float64| / max M ${worst.toExponential(2)} (CAM_BOUND ${CAM_BOUND})`);
    }
  });

  test('onProgress, and an AbortSignal: an aborted run rejects with AbortError and the network stays usable', async () => {
    const options = { methods: ['scorecam' as const], featureLayers: ['cat'], classes: [2], upsample: false, methodOptions: { scorecam: { batchSize: 3 } } };
    const seen: { done: number; total: number; method: string }[] = [];
    const whole = await net.gradCAM(xs[0], { ...options, onProgress: (p) => seen.push({ ...p }) });
    expect(seen.map((p) => p.done)).toEqual([3, 6, 9, 12, 15, 16]);
    expect(seen.every((p) => p.total === 16 && p.method === 'scorecam')).toBe(true);
    const controller = new AbortController();
    let batches = 0;
    const run = net.gradCAM(xs[0], { ...options, signal: controller.signal, onProgress: () => { if (++batches === 2) controller.abort(); } });
    await expect(run).rejects.toThrow(/cancelled.*AbortSignal/);
    await expect(run).rejects.toMatchObject({ name: 'AbortError' });
    expect(batches).toBe(2);
    // Already aborted: refused before any pass.
    await expect(net.gradCAM(xs[0], { ...options, signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
    const again = await net.gradCAM(xs[0], options);
    expect(again.maps[0].raw).toEqual(whole.maps[0].raw);
    // profileMethods: scorecam's own time is its passes (its map alone is a few dispatches).
    const profiled = await net.profileMethods(xs[0], options, 1);
    expect(profiled.timings.methodMs!.scorecam!).toBeGreaterThan(0.5 * profiled.timings.passesMs!);
  });

  test("ablationcam for a class of probability 0 in float32 (reduction 'softmax'): a clear error, not a NaN map", async () => {
    const big = { shape: xs[0].shape, data: xs[0].data.map((v) => v * 300) };
    const { probabilities } = await net.classify(big);
    const least = probabilities.indexOf(Math.min(...probabilities));
    expect(probabilities[least]).toBe(0);
    await expect(net.gradCAM(big, { methods: ['ablationcam'], featureLayers: ['cat'], classes: [least], reduction: 'softmax', upsample: false }))
      .rejects.toThrow(/ablationcam's map of class \d+ at 'cat' is not finite .*divide by the class's score S, which is 0 in float32 \(probability 0\)/);
  });

  test('eigenSmooth: the map is the first principal component of w_k A_k (the float64 weights), two layers, two classes', async () => {
    const r = await net.gradCAM(xs[0], {
      methods: ['scorecam', 'ablationcam'], featureLayers: ['cat', 'a2'], classes: [2, 7], upsample: false, eigenSmooth: true,
      methodOptions: { scorecam: { batchSize: 3 }, ablationcam: { batchSize: 3 } },
    });
    expect(r.maps.length).toBe(8);
    const x = tensor(xs[0].shape, xs[0].data);
    const report: string[] = [];
    for (const m of r.maps) {
      const what = `${m.method} ${m.layer} class ${m.class}`;
      expect(m.smoothing, what).toEqual({ eigen: true });
      expect(m.eigen?.converged, `${what}: the power iteration converged`).toBe(true);
      const { ref, A } = multiPassReference(model, m.method as 'scorecam' | 'ablationcam', x, m.layer, m.class);
      const C = ref.weights.length;
      const hw = m.shape[0] * m.shape[1];
      const terms = Float64Array.from(A, (v, e) => ref.weights[Math.floor(e / hw)] * v);
      const want = camReference('eigencam', terms, terms, C, hw); // eigencam of the terms: their principal component
      const M = Math.max(...want.magnitude);
      let err = 0, apart = 0;
      for (let i = 0; i < hw; i++) {
        err = Math.max(err, Math.abs(m.raw[i] - want.map[i]));
        apart = Math.max(apart, Math.abs(want.map[i] - ref.map[i]));
      }
      expect(err, `${what}: max |GPU − float64| ${err.toExponential(2)}, M ${M.toExponential(2)}`).toBeLessThanOrEqual(CAM_BOUND * M);
      // The check tells eigen-smooth from the plain sum: the two maps differ by far more than the bound.
      expect(apart, `${what}: the projection differs from ReLU(Σ_k w_k A_k)`).toBeGreaterThan(10 * CAM_BOUND * M);
      report.push(`${what} ${(err / M).toExponential(1)}`);
    }
    console.log(`eigen-smooth, max |GPU − float64| / max M (bound ${CAM_BOUND}): ${report.join(', ')}`);
  });

  test('inspect explains scorecam and ablationcam as weighted maps: their weights, contributions w_k Σ_i A_k(i) that sum to Σ_i of the signed map', async () => {
    const r = await net.gradCAM(xs[0], {
      methods: ['scorecam', 'ablationcam'], featureLayers: ['cat'], classes: [2], upsample: false, inspect: true,
      methodOptions: { scorecam: { batchSize: 3 }, ablationcam: { batchSize: 3 } },
    });
    for (const m of r.maps) {
      const ins = m.inspection!;
      expect(ins.weights!.length, m.method).toBe(16);
      // Σ_k w_k Σ_i A_k(i) = Σ_i Σ_k w_k A_k(i): the float32 sums of 16 · 48 terms, within 1e-5 of their magnitude.
      const total = ins.contributions.reduce((a, b) => a + b, 0);
      const signed = ins.signed.reduce((a, b) => a + b, 0);
      const scale = ins.contributions.reduce((a, b) => a + Math.abs(b), 0);
      expect(scale, m.method).toBeGreaterThan(0);
      expect(Math.abs(total - signed), `${m.method}: Σ contributions ${total}, Σ signed ${signed}`).toBeLessThanOrEqual(1e-5 * scale);
    }
  });

  test('augSmooth: every copy of two inputs gets its own passes (6 × C per input and method), the mean of the normalised maps is the float64 composition', async () => {
    const layer = 'a2'; // 8 channels, 8 × 6: the forward from a concat's slice
    const cls = 7;
    const [, c, H, W] = SMALL_SHAPE;
    const C = 8;
    expect(METHOD_SPECS.scorecam.passes({ channels: C, input: [c, H, W], augSmooth: true })).toBe(6 * (1 + C));
    expect(METHOD_SPECS.ablationcam.passes({ channels: C, input: [c, H, W] })).toBe(1 + C);
    const seen: { done: number; total: number }[] = [];
    const results = await net.gradCAM(xs, {
      methods: ['scorecam', 'ablationcam'], featureLayers: [layer], classes: [cls], upsample: false, augSmooth: true,
      methodOptions: { scorecam: { batchSize: 3 }, ablationcam: { batchSize: 3 } }, onProgress: (p) => seen.push({ ...p }),
    });
    const total = xs.length * 2 * 6 * C;
    expect(seen.every((p) => p.total === total)).toBe(true);
    expect(seen.at(-1)!.done).toBe(total);
    const report: string[] = [];
    for (const [n, res] of results.entries()) {
      for (const method of ['scorecam', 'ablationcam'] as const) {
        const got = res.maps.find((m) => m.method === method)!;
        expect(got.smoothing).toEqual({ aug: true });
        expect(got.class).toBe(cls);
        const [h, w] = got.shape;
        const hw = h * w;
        // Copy a: the input flipped (a ≥ 3) times (1, 0.9, 1.1)[a % 3], as float32 computes it (one product).
        const maps: Float64Array[] = [];
        let bound = 16 * U; // the normalisation's and the mean's own rounding (values ≤ 1)
        for (let a = 0; a < 6; a++) {
          const factor = Math.fround([1, 0.9, 1.1][a % 3]);
          const flipped = augmentedInput(xs[n].data, c, H, W, a >= 3 ? 3 : 0);
          const { ref, magnitude } = multiPassReference(model, method, tensor(SMALL_SHAPE, flipped.map((v) => Math.fround(factor * v))), layer, cls);
          const range = Math.max(...ref.map) - Math.min(...ref.map);
          expect(range, `image ${n} ${method} copy ${a}: not a constant map`).toBeGreaterThan(0);
          // (v − lo) / (hi − lo) moves by at most (e(v) + max e) / range ≤ 2e / range: the value's error and the min's or the max's.
          bound += (2 * CAM_BOUND * Math.max(...magnitude)) / range / 6;
          maps.push(ref.map);
        }
        const want = augSmoothReference(maps, h, w);
        let err = 0;
        for (let i = 0; i < hw; i++) err = Math.max(err, Math.abs(got.raw[i] - want[i]));
        expect(err, `image ${n} ${method}: max |GPU − float64| ${err.toExponential(2)}`).toBeLessThanOrEqual(bound);
        expect(Math.max(...want)).toBeGreaterThan(0.5);
        report.push(`image ${n} ${method} ${err.toExponential(1)} (bound ${bound.toExponential(1)})`);
      }
    }
    console.log(`aug-smooth at ${layer}, max |GPU − float64|: ${report.join(', ')}`);
  });

  test('refused: reductionLayer with a multi-pass method, a bad methodOptions entry', async () => {
    await expect(net.gradCAM(xs[0], { methods: ['ablationcam'], reductionLayer: 'logits' })).rejects.toThrow(/reductionLayer .* not supported/);
    await expect(net.gradCAM(xs[0], { methods: ['ablationcam'], methodOptions: { ablationcam: { skipZero: 1 as unknown as boolean } } })).rejects.toThrow(GradcamError);
    await expect(net.gradCAM(xs[0], { methods: ['ablationcam'], methodOptions: { ablationcam: { batchSize: 0 } } })).rejects.toThrow(/methodOptions\.ablationcam\.batchSize is 0: expected an integer ≥ 1/);
    await expect(net.gradCAM(xs[0], { methods: ['scorecam'], methodOptions: { scorecam: { skipZero: true } as never } })).rejects.toThrow(/methodOptions\.scorecam has no field 'skipZero'/);
  });
});

describe('ablationcam skipZero (a model with two dead channels)', async () => {
  const gpu = await testGpu();
  const model = deadChannelModel();
  const net = await Network.load(gpu, model);
  afterAll(() => net.destroy());
  const x = tensorInput(new Rng(8), [1, 3, 7, 5]);

  test('the dead channels get no pass and weight exactly 0; the map is the same', async () => {
    const options = { methods: ['ablationcam' as const], featureLayers: ['a1'], classes: [1], upsample: false, inspect: false };
    const totals: number[] = [];
    const all = await net.gradCAM(x, { ...options, onProgress: (p) => totals.push(p.total) });
    const skipped = await net.gradCAM(x, { ...options, methodOptions: { ablationcam: { skipZero: true } }, onProgress: (p) => totals.push(p.total) });
    expect([...new Set(totals)]).toEqual([5, 3]);
    const { ref, bound, magnitude } = mapBound(model, 'dead', tensor(x.shape, x.data), 'a1', 1, false, 'ablationcam');
    expect(Math.abs(ref.weights[1])).toBe(0);
    expect(Math.abs(ref.weights[3])).toBe(0);
    expectClose(all.maps[0], ref, bound, magnitude, 'all channels');
    expectClose(skipped.maps[0], ref, bound, magnitude, 'skipZero');
  });
});

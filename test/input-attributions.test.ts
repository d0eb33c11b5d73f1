/**
 * The input attributions (issue 20; src/gradcam/attributions.ts, shaders/attribution.wgsl) against
 * their float64 references (test/reference/attributions.ts, written from the papers) on the small
 * GoogLeNet-like model (test/helpers/small-model.ts: 3 × 16 × 12 input, ReLU, max-pool, concat):
 * saliency and input-x-gradient (one backward pass to the input), smoothgrad (σ = 0 is the plain
 * gradient; σ > 0 with the same noise as the reference: it is exact in float32), integrated gradients
 * (trapezoid rule; its completeness gap as the reference's, shrinking with m), occlusion (a CPU loop
 * over windows). Every many-pass call runs in batches of 4 passes (one pass engine for the file) with a
 * short last batch; two images in one call check that image 1 gets its own passes.
 *
 * Tolerances, from float32 rounding (test/helpers/magnitude.ts): a gradient g = ∂y/∂x is within
 * E_g = rtol_x · M_g of the float64 one (M_g the backward magnitude, rtol_x the budget of the ops from
 * the logits to x) when the GPU takes the reference's ReLU and max-pool decisions (the reference
 * rounds the perturbed inputs as float32 does; at a constant baseline max-pool windows tie exactly on
 * both, and both take the first maximum). A decision that rounding flipped would change a gradient by
 * its own order and fail the test, never pass it; the inputs are fixed, so it cannot flake. Then
 *   saliency          max_c E_g                       (|·| and max are 1-Lipschitz)
 *   input-x-gradient  |x| E_g + u |x g|               (one product)
 *   smoothgrad        (1/n) Σ_j (E_g,j + (n + 2) u |g_j|)                   (a sum of n, a scale)
 *   integrated grad.  |x − x'| (1/m) Σ_j w_j (E_g,j + (m + 5) u |g_j|)       (a sum of m + 1, two products)
 *   occlusion         e_y(x) + max_w e_y(x_w) + 8 u max |y|                  (a mean of ≤ 4 drops)
 * with e_y the score's forward bound (logit: rtol · M; probability: from the logits' bounds, as in
 * test/multipass.test.ts). A wrong index, noise, weight or window is an error of the map's own order.
 */
import { afterAll, describe, expect, test } from 'vitest';
import { passOptions } from '../src/cli/explain.ts';
import { UsageError } from '../src/cli/command.ts';
import { GradcamError } from '../src/errors.ts';
import { describeCompleteness, mapJson } from '../src/gradcam/json.ts';
import { AbortError } from '../src/gradcam/passes.ts';
import { Network } from '../src/gradcam/network.ts';
import type { GradcamMap, GradcamOptions, GradcamResult, TensorInput } from '../src/gradcam/types.ts';
import { Rng } from '../weights/generate/random.ts';
import { testGpu } from './helpers/gpu.ts';
import { backwardBudgets, backwardMagnitudes, forwardBudgets, forwardMagnitudes, U } from './helpers/magnitude.ts';
import { SMALL_CLASSES, SMALL_SHAPE, smallModel } from './helpers/small-model.ts';
import {
  integratedGradientsReference, noisyInput, occlusionReference, pathPoint, type Reduction, saliencyReference, scoreAndGradient, smoothgradReference,
} from './reference/attributions.ts';
import { forwardValues } from './reference/graph.ts';
import { type Tensor, tensor } from './reference/tensor.ts';

const model = smallModel(3, 'flatten');
const [, C, H, W] = SMALL_SHAPE;
const HW = H * W;
const B = 4; // passes per batch, every call (one pass engine)

function randomInput(seed: number): TensorInput {
  const r = new Rng(seed);
  const data = new Float32Array(C * HW).map(() => r.uniform(-2, 2));
  return { shape: [...SMALL_SHAPE], data };
}
const asTensor = (x: TensorInput): Tensor => tensor(SMALL_SHAPE, x.data);

let net: Network | undefined;
const network = async () => (net ??= await Network.load(await testGpu(), model));
afterAll(() => net?.destroy());

const mapOf = (r: GradcamResult, method: string, cls: number): GradcamMap => r.maps.find((m) => m.method === method && m.class === cls)!;

/** The gradient at x (float64) and its bound E_g = rtol_x · M_g. */
function gradientAt(x: Tensor, cls: number): { g: Float64Array; E: Float64Array } {
  const values = forwardValues(model, { x });
  const seed = new Float64Array(SMALL_CLASSES);
  seed[cls] = 1;
  const M = backwardMagnitudes(model, values, 'logits', [seed], ['x']).x[0].data;
  const rtol = backwardBudgets(model, values, 'logits').get('x')!;
  const { gradient } = scoreAndGradient(model, x, { logits: 'logits', classIndex: cls, reduction: 'logit' });
  return { g: gradient, E: M.map((v) => rtol * v) };
}

/** The bound on the score y (logit or probability) at x, from the logits' forward bounds (test/multipass.test.ts's). */
function scoreError(x: Tensor, cls: number, reduction: Reduction): { y: number; e: number } {
  const values = forwardValues(model, { x });
  const M = forwardMagnitudes(model, { x }).get('logits')!.data;
  const rL = forwardBudgets(model, values).get('logits')!;
  const l = values.get('logits')!.data;
  const eL = M.map((m) => rL * m);
  if (reduction === 'logit') return { y: l[cls], e: eL[cls] };
  const mx = Math.max(...l);
  const sum = l.reduce((a, v) => a + Math.exp(v - mx), 0);
  const p = Math.exp(l[cls] - mx) / sum;
  return { y: p, e: p * (eL[cls] + Math.max(...eL)) + p * (l.length + 2 * (mx - Math.min(...l)) + 8) * U };
}

/** Checks |got − want| ≤ bound everywhere (and that the comparison is not vacuous); returns the worst ratio. */
function within(got: ArrayLike<number>, want: ArrayLike<number>, bound: ArrayLike<number>, what: string): number {
  expect(got.length, what).toBe(want.length);
  let worst = 0, scale = 0;
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    scale = Math.max(scale, Math.abs(want[i]));
    if (!(err <= bound[i])) throw new Error(`${what}: value ${i}: GPU ${got[i]}, float64 ${want[i]}, |d| ${err.toExponential(2)} > bound ${bound[i].toExponential(2)}`);
    worst = Math.max(worst, err / (bound[i] || 1));
  }
  expect(scale, `${what}: a map that is not all zero`).toBeGreaterThan(0);
  return worst;
}

describe('input attributions on the small model, against float64', () => {
  const x0 = randomInput(5);
  const classes = [2, 7];

  test('saliency and input-x-gradient: two classes, one backward pass to the input; counterfactual', async () => {
    const n = await network();
    for (const counterfactual of [false, true]) {
      const r = await n.gradCAM(x0, { classes, upsample: false, methods: ['saliency', 'input-x-gradient'], counterfactual });
      for (const cls of classes) {
        const { g, E } = gradientAt(asTensor(x0), cls);
        const sign = counterfactual ? -1 : 1;
        const sal = mapOf(r, 'saliency', cls);
        expect(sal.shape).toEqual([H, W]);
        expect(sal.channels).toBeUndefined();
        const eMax = Float64Array.from({ length: HW }, (_, i) => Math.max(...[0, 1, 2].map((c) => E[c * HW + i])));
        within(sal.raw, saliencyReference(g, C, HW), eMax, `saliency class ${cls}`);
        const ixg = mapOf(r, 'input-x-gradient', cls);
        expect(ixg.channels).toBe(C);
        within(ixg.raw, g.map((v, e) => sign * v * x0.data[e]), E.map((v, e) => Math.abs(x0.data[e]) * v + U * Math.abs(g[e] * x0.data[e])), `input-x-gradient class ${cls}`);
        expect(ixg.passes).toBeUndefined();
      }
    }
  });

  test('smoothgrad: σ = 0 is the gradient; σ = 0.15 is the float64 mean over the same noise (6 samples, batches 4 + 2); the seed reproduces it', async () => {
    const n = await network();
    const x = asTensor(x0);
    const cls = classes[0];
    const plain = gradientAt(x, cls);
    const zero = await n.gradCAM(x0, { classes: [cls], upsample: false, methods: ['smoothgrad'], methodOptions: { smoothgrad: { samples: 2, sigma: 0, batchSize: B } } });
    within(mapOf(zero, 'smoothgrad', cls).raw, plain.g, plain.E.map((e, i) => e + 4 * U * Math.abs(plain.g[i])), 'smoothgrad σ = 0');

    const o = { samples: 6, sigma: 0.15, seed: 11 };
    const opts: GradcamOptions = { classes: [cls], upsample: false, methods: ['smoothgrad'], methodOptions: { smoothgrad: { ...o, batchSize: B } } };
    const r = await n.gradCAM(x0, opts);
    const map = mapOf(r, 'smoothgrad', cls);
    expect(map.passes).toBe(1 + o.samples);
    const bound = new Float64Array(C * HW);
    for (let j = 0; j < o.samples; j++) {
      const at = gradientAt(noisyInput(x, o.sigma, o.seed, j), cls);
      at.E.forEach((e, i) => { bound[i] += (e + (o.samples + 2) * U * Math.abs(at.g[i])) / o.samples; });
    }
    const want = smoothgradReference(model, x, { logits: 'logits', classIndex: cls, reduction: 'logit' }, o);
    within(map.raw, want, bound, 'smoothgrad σ = 0.15');
    // Not the plain gradient (the noise did something), the same again with the same seed, not with another.
    expect(want.some((v, i) => Math.abs(v - plain.g[i]) > 10 * bound[i])).toBe(true);
    const again = await n.gradCAM(x0, opts);
    expect(Array.from(mapOf(again, 'smoothgrad', cls).raw)).toEqual(Array.from(map.raw));
    const other = await n.gradCAM(x0, { ...opts, methodOptions: { smoothgrad: { ...o, seed: 12, batchSize: B } } });
    expect(Array.from(mapOf(other, 'smoothgrad', cls).raw)).not.toEqual(Array.from(map.raw));
  });

  test('integrated gradients (trapezoid rule, zeros and black baselines, two images in one call): the float64 attributions and completeness gap', async () => {
    const n = await network();
    const x1 = randomInput(9);
    const cls = classes[1];
    for (const [baselineKind, steps] of [['zeros', 3], ['black', 6]] as const) {
      const results = await n.gradCAM([x0, x1], {
        classes: [cls], upsample: false, batchSize: 2, methods: ['integrated-gradients'],
        methodOptions: { 'integrated-gradients': { steps, baseline: baselineKind, batchSize: B } },
      });
      // The black picture through the network's recipe: (0 − mean) / std per channel, in the model's channel order.
      const recipe = n.engine.recipe;
      const black = [0, 1, 2].map((c) => -recipe.mean[c] / recipe.std[c]);
      const perChannel = recipe.channelOrder === 'BGR' ? [black[2], black[1], black[0]] : black;
      const base = baselineKind === 'zeros' ? new Float64Array(C * HW) : Float64Array.from({ length: C * HW }, (_, e) => Math.fround(perChannel[Math.floor(e / HW)]));
      for (const [image, input] of [x0, x1].entries()) {
        const x = asTensor(input);
        const ref = integratedGradientsReference(model, x, base, { logits: 'logits', classIndex: cls, reduction: 'logit' }, steps);
        const map = mapOf(results[image], 'integrated-gradients', cls);
        expect(map.passes).toBe(1 + steps); // the first pass (with x's gradient) and m path points
        const bound = new Float64Array(C * HW);
        for (let j = 0; j <= steps; j++) {
          const at = gradientAt(pathPoint(x, base, j, steps), cls);
          const w = (j === 0 || j === steps ? 0.5 : 1) / steps;
          at.E.forEach((e, i) => { bound[i] += Math.abs(x.data[i] - base[i]) * w * (e + (steps + 5) * U * Math.abs(at.g[i])); });
        }
        within(map.raw, ref.attributions, bound, `integrated gradients (${baselineKind}, m = ${steps}) image ${image}`);
        // Completeness: Σ attributions and the ends' scores, each within its bound.
        const c = map.completeness!;
        const eX = scoreError(x, cls, 'logit').e, eB = scoreError(tensor(x.shape, base), cls, 'logit').e;
        expect(Math.abs(c.score - ref.scoreInput)).toBeLessThanOrEqual(eX);
        expect(Math.abs(c.baselineScore - ref.scoreBaseline)).toBeLessThanOrEqual(eB);
        const sumBound = bound.reduce((a, b) => a + b, 0) + C * HW * U * ref.attributions.reduce((a, v) => a + Math.abs(v), 0);
        expect(Math.abs(c.gap - ref.gap)).toBeLessThanOrEqual(sumBound + eX + eB);
      }
    }
  });

  test("integrated gradients' completeness gap shrinks as m grows, to near zero (the model is piecewise linear)", async () => {
    const n = await network();
    const cls = classes[0];
    const gaps: number[] = [];
    let delta = 0;
    for (const steps of [2, 8, 32, 128]) {
      const r = await n.gradCAM(x0, { classes: [cls], upsample: false, methods: ['integrated-gradients'], methodOptions: { 'integrated-gradients': { steps, batchSize: B } } });
      const c = mapOf(r, 'integrated-gradients', cls).completeness!;
      gaps.push(Math.abs(c.gap));
      delta = Math.abs(c.score - c.baselineScore);
    }
    console.log(`IG completeness |gap| for m = 2, 8, 32, 128: ${gaps.map((g) => g.toExponential(2)).join(', ')} (|y(x) − y(x')| = ${delta.toFixed(3)})`);
    expect(gaps[3]).toBeLessThan(gaps[0]);
    expect(gaps[2]).toBeLessThan(gaps[0]);
    // The path crosses finitely many ReLU kinks: the trapezoid rule's error falls like 1/m.
    expect(gaps[3]).toBeLessThan(0.02 * delta);
  });

  test('occlusion: the mean score drop per position, against a CPU loop over windows (logit and softmax, two classes)', async () => {
    const n = await network();
    const x = asTensor(x0);
    const o = { patch: 5, stride: 3, fill: 0.5 };
    for (const reduction of ['logit', 'softmax'] as const) {
      const r = await n.gradCAM(x0, { classes, reduction, upsample: false, methods: ['occlusion'], methodOptions: { occlusion: { ...o, batchSize: B } } });
      for (const cls of classes) {
        const map = mapOf(r, 'occlusion', cls);
        expect(map.shape).toEqual([H, W]);
        expect(map.passes).toBe(1 + 5 * 4); // ⌈(16 − 5)/3⌉ + 1 = 5 rows, ⌈(12 − 5)/3⌉ + 1 = 4 columns of windows
        const want = occlusionReference(model, x, { logits: 'logits', classIndex: cls, reduction }, { patch: o.patch, step: o.stride, fill: o.fill });
        const clean = scoreError(x, cls, reduction);
        let worst = 0, top = Math.abs(clean.y);
        for (let wy = 0; wy < 5; wy++) {
          for (let wx = 0; wx < 4; wx++) {
            const occluded = tensor(x.shape, x.data);
            for (let c = 0; c < C; c++) {
              for (let yy = wy * 3; yy < Math.min(H, wy * 3 + 5); yy++) for (let xx = wx * 3; xx < Math.min(W, wx * 3 + 5); xx++) occluded.data[c * HW + yy * W + xx] = o.fill;
            }
            const s = scoreError(occluded, cls, reduction);
            worst = Math.max(worst, s.e);
            top = Math.max(top, Math.abs(s.y));
          }
        }
        within(map.raw, want, new Float64Array(HW).fill(clean.e + worst + 8 * U * top), `occlusion ${reduction} class ${cls}`);
      }
    }
  });

  test('progress over the call, cancelling between batches, then the network still works', async () => {
    const n = await network();
    const seen: { done: number; total: number; method: string }[] = [];
    const methodOptions = { smoothgrad: { samples: 6, batchSize: B }, 'integrated-gradients': { steps: 3, batchSize: B } };
    await n.gradCAM(x0, { classes: [2], upsample: false, methods: ['smoothgrad', 'integrated-gradients'], methodOptions, onProgress: (p) => seen.push(p) });
    expect(seen.map((p) => p.done)).toEqual([4, 6, 9]);
    expect(seen.every((p) => p.total === 9)).toBe(true);
    expect(seen.map((p) => p.method)).toEqual(['smoothgrad', 'smoothgrad', 'integrated-gradients']);
    const stop = new AbortController();
    const run = n.gradCAM(x0, { classes: [2], upsample: false, methods: ['smoothgrad'], methodOptions, signal: stop.signal, onProgress: () => stop.abort() });
    await expect(run).rejects.toBeInstanceOf(AbortError);
    const after = await n.gradCAM(x0, { classes: [2], upsample: false, methods: ['saliency'] });
    expect(after.maps[0].max).toBeGreaterThan(0);
  });

  test('profileMethods: a multi-pass method is timed by its passes as they ran (methodPassesMs, within methodMs), a single-pass one by its replay', async () => {
    const n = await network();
    const methodOptions = { smoothgrad: { samples: 6, batchSize: B }, 'integrated-gradients': { steps: 3, batchSize: B } };
    const r = await n.profileMethods(x0, { classes: [2], upsample: false, methods: ['saliency', 'smoothgrad', 'integrated-gradients'], methodOptions }, 1);
    const { methodMs, methodPassesMs, passesMs } = r.timings;
    expect(Object.keys(methodPassesMs!).sort()).toEqual(['integrated-gradients', 'smoothgrad']);
    for (const m of ['smoothgrad', 'integrated-gradients'] as const) {
      expect(methodPassesMs![m]).toBeGreaterThan(0);
      expect(methodMs![m]).toBeGreaterThanOrEqual(methodPassesMs![m]!);
    }
    // Each method's passes are timed around its own batches: together, nearly all of the run's passes.
    const sum = methodPassesMs!.smoothgrad! + methodPassesMs!['integrated-gradients']!;
    expect(sum).toBeLessThanOrEqual(passesMs!);
    expect(sum).toBeGreaterThan(0.5 * passesMs!);
    expect(methodMs!.saliency).toBeGreaterThan(0);
  });

  test('bad options are refused before any GPU work, naming the option', async () => {
    const n = await network();
    const refused = async (options: GradcamOptions, words: string) => {
      const e = await n.gradCAM(x0, { upsample: false, ...options }).catch((err: unknown) => err);
      expect(e).toBeInstanceOf(GradcamError);
      expect((e as Error).message).toContain(words);
    };
    await refused({ methods: ['smoothgrad'], methodOptions: { smoothgrad: { sigma: -1 } } }, 'option methodOptions.smoothgrad.sigma is -1');
    await refused({ methods: ['integrated-gradients'], methodOptions: { 'integrated-gradients': { baseline: 'grey' as 'black' } } }, "methodOptions.integrated-gradients.baseline is 'grey'");
    await refused({ methods: ['occlusion'], methodOptions: { occlusion: { patch: 13 } } }, 'occlusion.patch 13 is larger than the input (16×12)');
    await refused({ methods: ['smoothgrad'], reductionLayer: 'logits' }, 'reductionLayer');
  });
});

test('the command line: the pass flags become methodOptions, a flag without its method is a usage error; the JSON and the completeness line', () => {
  const args = (values: Record<string, string | boolean>) => ({ values, positionals: [] });
  expect(passOptions(args({ samples: '8', sigma: '0.2', seed: '3', 'pass-batch': '4' }), ['smoothgrad'])).toEqual({ smoothgrad: { samples: 8, sigma: 0.2, seed: 3, batchSize: 4 } });
  expect(passOptions(args({ steps: '32', baseline: 'black' }), ['integrated-gradients', 'gradcam'])).toEqual({ 'integrated-gradients': { steps: 32, baseline: 'black', batchSize: undefined } });
  expect(passOptions(args({ patch: '16', stride: '8', fill: '-0.5' }), ['occlusion'])).toEqual({ occlusion: { patch: 16, stride: 8, fill: -0.5, batchSize: undefined } });
  const usage = (values: Record<string, string | boolean>, methods: Parameters<typeof passOptions>[1], words: string) => {
    const e = (() => { try { passOptions(args(values), methods); } catch (err) { return err; } })();
    expect(e).toBeInstanceOf(UsageError);
    expect((e as Error).message).toContain(words);
  };
  usage({ steps: '8' }, ['smoothgrad'], '--steps applies to --method integrated-gradients');
  usage({ sigma: '-1' }, ['smoothgrad'], "--sigma takes a number ≥ 0 (a fraction of the input's range), got '-1'");
  usage({ baseline: 'grey' }, ['integrated-gradients'], "--baseline takes 'zeros' or 'black', got 'grey'");
  usage({ fill: 'x' }, ['occlusion'], "--fill takes a number");
  usage({ 'pass-batch': '4' }, ['gradcam'], '--pass-batch applies to --method scorecam, ablationcam, smoothgrad, integrated-gradients, occlusion');
  const c = { sum: 0.9, score: 4, baselineScore: 3, gap: -0.1 };
  expect(describeCompleteness(c)).toBe("completeness: Σ attributions 0.900000, y(x) − y(x') = 4.00000 − 3.00000 = 1.00000; gap -1.00e-1 (10% of |y(x) − y(x')|)");
  const json = mapJson({ layer: 'x', method: 'integrated-gradients', counterfactual: false, class: 1, label: 'a', reduction: 'logit', score: 4, probability: 0.5, shape: [1, 1], channels: 3, raw: new Float32Array(3), min: 0, max: 0, passes: 9, completeness: c });
  expect(json).toMatchObject({ shape: [3, 1, 1], passes: 9, completeness: c });
});

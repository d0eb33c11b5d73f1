/**
 * eigengradcam and eigen-smooth (issue 20) against the float64 reference (test/reference/cam-methods.ts:
 * the first principal component of G ⊙ A, and of each method's channel terms w_k A_k / term(G_k, A_k)
 * instead of their sum), with A and G from the float64 forward and backward of test/reference/graph.ts,
 * on the small GoogLeNet-like model (test/helpers/small-model.ts, layers [6, 8, 6] and a concat
 * [16, 8, 6]), K = 2 classes in one call; and the refusals where a smoothing does not apply.
 * eigengradcam on the eleven generated families (C > H·W included) is in test/model-families.test.ts,
 * which runs every layer method.
 *
 * Tolerance, as test/model-families.test.ts for Eigen-CAM: max_i |GPU(i) − ref(i)| ≤ 1e-4 · max_i M(i),
 * M(i) = Σ_k |X(i, k) v_k| (the reference's magnitude: what the float32 projection's rounding scales
 * with). A and G carry float32 relative errors of at most L·√n·u ≈ 6e-5 through these models, and the
 * power iteration stops when v moves by ≤ 1e-6 per entry and must say it converged.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { GradcamError } from '../src/errors.ts';
import { Network } from '../src/gradcam/network.ts';
import { isMultiPass, type Method, METHODS } from '../src/gradcam/methods.ts';
import { eigenSmoothApplies } from '../src/gradcam/smoothing.ts';
import type { GradcamResult } from '../src/gradcam/types.ts';
import type { OnnxModel } from '../src/onnx/model.ts';
import { Rng } from '../weights/generate/random.ts';
import { testGpu } from './helpers/gpu.ts';
import { SMALL_SHAPE, smallModel } from './helpers/small-model.ts';
import { camReference, type CamMethod } from './reference/cam-methods.ts';
import { backwardReference, forwardValues } from './reference/graph.ts';
import { type Tensor, tensor } from './reference/tensor.ts';

const BOUND = 1e-4;
/** The one-pass methods eigen-smooth applies to (scorecam's and ablationcam's: test/multipass.test.ts). */
const SMOOTHABLE = METHODS.filter((m) => eigenSmoothApplies(m) && !isMultiPass(m));

interface Case {
  name: string;
  model: OnnxModel;
  net: Network;
  x: Float32Array;
  shape: number[];
  layers: string[];
  values: Map<string, Tensor>;
}

const cases: Case[] = [];

function normalInput(seed: number, shape: number[]): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => r.normal());
}

beforeAll(async () => {
  const gpu = await testGpu();
  const make = async (name: string, model: OnnxModel, layers: string[]) => {
    const shape = model.inputs[0].shape as number[];
    const x = normalInput(11, shape);
    const net = await Network.load(gpu, model, { taps: layers });
    const values = forwardValues(model, { [model.inputs[0].name]: tensor(shape, Float64Array.from(x)) });
    cases.push({ name, model, net, x, shape, layers, values });
  };
  await make('small', smallModel(5, 'flatten'), ['a3', 'cat']);
  expect(cases[0].shape).toEqual(SMALL_SHAPE);
});

afterAll(() => {
  for (const c of cases) c.net.destroy();
});

/** Every map of `methods` in `result` against camReference(method, …, opts); logs the worst ratio per method. */
function check(c: Case, result: GradcamResult, methods: readonly Method[], opts: { counterfactual?: boolean; eigenSmooth?: boolean }, what: string): void {
  const classes = [...new Set(result.maps.map((m) => m.class))];
  expect(classes).toEqual(result.predictions.slice(0, 2).map((p) => p.class));
  const logits = c.values.get(c.net.graph.logits)!.data;
  const seeds = classes.map((k) => Float64Array.from(logits, (_, j) => (j === k ? 1 : 0)));
  const grads = backwardReference(c.model, c.values, { score: c.net.graph.logits, seeds, wrt: c.layers });
  for (const layer of c.layers) {
    const A = c.values.get(layer)!;
    const [, C, h, w] = A.shape;
    const worst: string[] = [];
    for (const method of methods) {
      let rel = 0;
      classes.forEach((cls, k) => {
        const got = result.maps.find((m) => m.layer === layer && m.method === method && m.class === cls);
        expect(got, `${what}: ${method} class ${cls} at ${layer}`).toBeDefined();
        expect(got!.eigen?.converged, `${what}: ${method} converged at ${layer}`).toBe(true);
        if (opts.eigenSmooth) expect(got!.smoothing).toEqual({ eigen: true });
        const ref = camReference(method as CamMethod, A.data, grads[layer][k].data, C, h * w, opts);
        let err = 0, scale = 0;
        for (let i = 0; i < h * w; i++) {
          err = Math.max(err, Math.abs(got!.raw[i] - ref.map[i]));
          scale = Math.max(scale, ref.magnitude[i]);
        }
        expect(scale, `${what}: ${method} at ${layer} has terms`).toBeGreaterThan(0);
        expect(err / scale, `${what}: ${method} class ${cls} at ${layer} (max |Δ| ${err.toExponential(2)}, M ${scale.toExponential(2)})`).toBeLessThanOrEqual(BOUND);
        rel = Math.max(rel, err / scale);
      });
      worst.push(`${method} ${rel.toExponential(1)}`);
    }
    console.log(`${what} ${layer} [${C}, ${h}, ${w}] (bound ${BOUND}): ${worst.join(', ')}`);
  }
}

describe('the small model', () => {
  let c: Case;
  beforeAll(() => {
    c = cases[0];
  });

  test('eigengradcam (and eigencam beside it) at two layers, K = 2; the counterfactual gives the same map (the sign is fixed)', async () => {
    const input = { shape: c.shape, data: c.x };
    const options = { classes: 'top2' as const, featureLayers: c.layers, upsample: false, methods: ['eigencam', 'eigengradcam'] as Method[] };
    const r = await c.net.gradCAM(input, options);
    check(c, r, ['eigencam', 'eigengradcam'], {}, `${c.name} eigengradcam`);
    // eigencam is one map per image (the same for both classes); eigengradcam's differ by class.
    const eg = r.maps.filter((m) => m.method === 'eigengradcam' && m.layer === c.layers[0]);
    expect(eg[0].raw).not.toEqual(eg[1].raw);
    const cf = await c.net.gradCAM(input, { ...options, counterfactual: true });
    check(c, cf, ['eigengradcam'], { counterfactual: true }, `${c.name} eigengradcam counterfactual`);
  });

  test('eigenSmooth on every weighted and element-wise method at two layers, K = 2', async () => {
    expect(SMOOTHABLE).toEqual(expect.arrayContaining(['gradcam', 'hirescam', 'gradcam-elementwise', 'gradcam++', 'xgradcam', 'layercam']));
    const r = await c.net.gradCAM({ shape: c.shape, data: c.x }, { classes: 'top2', featureLayers: c.layers, upsample: false, methods: [...SMOOTHABLE], eigenSmooth: true });
    check(c, r, SMOOTHABLE, { eigenSmooth: true }, `${c.name} eigen-smooth`);
  });
});

test('the inspector on eigengradcam decomposes G ⊙ A: the contributions sum to the positive part of the signed map', async () => {
  const c = cases[0];
  const r = await c.net.gradCAM({ shape: c.shape, data: c.x }, { classes: 'top2', featureLayers: 'a3', methods: ['eigengradcam'], upsample: false, inspect: true });
  for (const m of r.maps) {
    const ins = m.inspection!;
    expect(ins.weights!.length).toBe(6);
    // c_k = v_k Σ_{P > 0} X_k with X the centred G ⊙ A, so Σ_k c_k = Σ_{P > 0} P (the decomposition of the map itself).
    const positive = [...ins.signed].filter((p) => p > 0).reduce((a, b) => a + b, 0);
    const total = [...ins.contributions].reduce((a, b) => a + b, 0);
    expect(positive).toBeGreaterThan(0);
    expect(Math.abs(total - positive)).toBeLessThanOrEqual(1e-5 * positive);
  }
});

test('eigenSmooth where it does not apply, and with inspect, is refused naming the methods', async () => {
  const c = cases[0];
  const input = { shape: c.shape, data: c.x };
  // (scorecam and ablationcam take it: test/multipass.test.ts.)
  for (const methods of [['gradcam', 'eigencam'], ['eigengradcam'], ['guided-backprop'], ['scorecam', 'saliency']] as Method[][]) {
    const e = await c.net.gradCAM(input, { methods, eigenSmooth: true }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(GradcamError);
    expect((e as Error).message).toContain(`eigenSmooth does not apply to ${methods.filter((m) => m !== 'gradcam' && m !== 'scorecam').join(', ')}`);
  }
  const e = await c.net.gradCAM(input, { methods: ['gradcam'], eigenSmooth: true, inspect: true }).catch((x: unknown) => x);
  expect((e as Error).message).toMatch(/inspect .* cannot be combined with eigenSmooth/);
  const bad = await c.net.gradCAM(input, { eigenSmooth: 'yes' as unknown as boolean }).catch((x: unknown) => x);
  expect((bad as Error).message).toBe("option eigenSmooth is 'yes': expected true or false");
});

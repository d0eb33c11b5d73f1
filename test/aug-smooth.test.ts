/**
 * aug-smooth (issue 20; src/gradcam/smoothing.ts, aug-smooth.ts) against the reference composition
 * (test/reference/cam-methods.ts augSmoothReference): the six augmented inputs made in float64
 * (augmentedInput), each through the float64 forward and backward of test/reference/graph.ts and the
 * CAM reference, flipped back, normalised, averaged; on the small model (16 × 12 input, layer a3
 * [6, 8, 6]: an even width, so the flip pairs columns), K = 2 classes, for gradcam, hirescam and
 * eigencam. Also: the classes and scores are the unaugmented input's, a batch of two inputs gives
 * bitwise the single results (the groups of 6 at images 6 … 11 too), and the refusals (the methods
 * with maps at the input; scorecam and ablationcam take it: test/multipass.test.ts).
 *
 * Tolerance: each augmentation's map has the error bound of test/eigen-smoothing.test.ts,
 * e_a = 1e-4 · max_i M_a(i) (M: the conditioned magnitude: Σ_k mean|G_k|·|A_k(i)| for gradcam, the
 * reference's Σ|terms| for hirescam and eigencam). Min-max normalisation turns an error e into at
 * most 3e / (max − min) (the value's, the min's and the max's, to first order), and the mean of six
 * keeps the mean of those: bound = (1/6) Σ_a 3 e_a / range_a. The GPU multiplies by float32(0.9)
 * (a relative 2.6e-8 from 0.9): far below.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { GradcamError } from '../src/errors.ts';
import { gradCAM, Network } from '../src/gradcam/network.ts';
import type { Method } from '../src/gradcam/methods.ts';
import { Rng } from '../weights/generate/random.ts';
import { testGpu } from './helpers/gpu.ts';
import { SMALL_SHAPE, smallModel } from './helpers/small-model.ts';
import { augmentedInput, augSmoothReference, camReference, type CamMethod } from './reference/cam-methods.ts';
import { backwardReference, forwardValues } from './reference/graph.ts';
import { tensor } from './reference/tensor.ts';

const model = smallModel(13, 'flatten');
const LAYER = 'a3';
const METHODS: Method[] = ['gradcam', 'hirescam', 'eigencam'];
let net: Network;
beforeAll(async () => {
  net = await Network.load(await testGpu(), model, { taps: [LAYER] });
});
afterAll(() => net?.destroy());

function input(seed: number): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: SMALL_SHAPE.reduce((a, b) => a * b, 1) }, () => r.normal());
}

test('gradcam, hirescam and eigencam with augSmooth, K = 2, equal the reference composition of six float64 passes', async () => {
  const x = input(21);
  const [, c, H, W] = SMALL_SHAPE;
  const r = await net.gradCAM({ shape: SMALL_SHAPE, data: x }, { classes: 'top2', featureLayers: LAYER, methods: METHODS, augSmooth: true, upsample: false });
  const plain = await net.gradCAM({ shape: SMALL_SHAPE, data: x }, { classes: 'top2', featureLayers: LAYER, methods: ['gradcam'], upsample: false });
  // The classes, scores and predictions are the unaugmented input's.
  expect(r.predictions).toEqual(plain.predictions);
  expect(r.logits).toEqual(plain.logits);
  const classes = plain.maps.map((m) => m.class);
  expect([...new Set(r.maps.map((m) => m.class))]).toEqual(classes);
  // Per augmentation: the float64 maps of the same classes.
  const perMethod = new Map<Method, { maps: Float64Array[]; bound: number }[]>(METHODS.map((m) => [m, classes.map(() => ({ maps: [], bound: 0 }))]));
  let h = 0, w = 0;
  for (let a = 0; a < 6; a++) {
    const xa = augmentedInput(x, c, H, W, a);
    const values = forwardValues(model, { x: tensor(SMALL_SHAPE, xa) });
    const seeds = classes.map((k) => Float64Array.from({ length: 10 }, (_, j) => (j === k ? 1 : 0)));
    const grads = backwardReference(model, values, { score: 'logits', seeds, wrt: [LAYER] })[LAYER];
    const A = values.get(LAYER)!;
    const [, C] = A.shape;
    [h, w] = A.shape.slice(2);
    const hw = h * w;
    for (const method of METHODS) {
      classes.forEach((_, k) => {
        const G = grads[k].data;
        const ref = camReference(method as CamMethod, A.data, G, C, hw);
        let M = ref.magnitude;
        if (method === 'gradcam') {
          M = new Float64Array(hw);
          for (let ch = 0; ch < C; ch++) {
            let g = 0;
            for (let i = 0; i < hw; i++) g += Math.abs(G[ch * hw + i]) / hw;
            for (let i = 0; i < hw; i++) M[i] += g * Math.abs(A.data[ch * hw + i]);
          }
        }
        const range = Math.max(...ref.map) - Math.min(...ref.map);
        expect(range, `${method} class ${classes[k]} augmentation ${a} is not constant`).toBeGreaterThan(0);
        const entry = perMethod.get(method)![k];
        entry.maps.push(ref.map);
        entry.bound += (3 * 1e-4 * Math.max(...M)) / range / 6;
      });
    }
  }
  const report: string[] = [];
  for (const method of METHODS) {
    classes.forEach((cls, k) => {
      const { maps, bound } = perMethod.get(method)![k];
      const want = augSmoothReference(maps, h, w);
      const got = r.maps.find((m) => m.method === method && m.class === cls)!;
      expect(got.smoothing).toEqual({ aug: true });
      expect(got.shape).toEqual([h, w]);
      let err = 0;
      for (let i = 0; i < h * w; i++) err = Math.max(err, Math.abs(got.raw[i] - want[i]));
      report.push(`${method} class ${cls}: max |d| ${err.toExponential(2)} (bound ${bound.toExponential(2)})`);
      expect(err, `${method} class ${cls}`).toBeLessThanOrEqual(bound);
      expect(Math.max(...got.raw)).toBeLessThanOrEqual(1);
    });
  }
  console.log(`aug-smooth at ${LAYER} [${h}×${w}]: ${report.join('; ')}`);
});

test('a batch of two inputs with augSmooth gives bitwise the single results; explicit classes', async () => {
  const xs = [input(22), input(23)].map((data) => ({ shape: SMALL_SHAPE, data }));
  const options = { classes: [3, 7], featureLayers: LAYER, methods: ['gradcam', 'eigencam'] as Method[], augSmooth: true, upsample: true };
  const batch = await gradCAM(net, xs, options);
  for (const [i, x] of xs.entries()) {
    const one = await net.gradCAM(x, options);
    expect(batch[i].maps.map((m) => m.class)).toEqual([3, 7, 3, 7]);
    expect(batch[i].logits).toEqual(one.logits);
    batch[i].maps.forEach((m, j) => {
      expect(m.raw).toEqual(one.maps[j].raw);
      expect(m.upsampled!.data).toEqual(one.maps[j].upsampled!.data);
    });
  }
});

test('augSmooth where it does not apply is refused naming the methods; with inspect too', async () => {
  const x = { shape: SMALL_SHAPE, data: input(24) };
  // (scorecam and ablationcam take it: test/multipass.test.ts.)
  for (const methods of [['gradcam', 'guided-backprop'], ['saliency'], ['scorecam', 'smoothgrad']] as Method[][]) {
    const e = await net.gradCAM(x, { methods, augSmooth: true }).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(GradcamError);
    expect((e as Error).message).toContain(`augSmooth does not apply to ${methods.filter((m) => m !== 'gradcam' && m !== 'scorecam').join(', ')}: it averages the maps at a feature layer of six augmented copies, and these maps are at the input`);
  }
  const e = await net.gradCAM(x, { augSmooth: true, inspect: true }).catch((err: unknown) => err);
  expect((e as Error).message).toMatch(/cannot be combined with augSmooth/);
});

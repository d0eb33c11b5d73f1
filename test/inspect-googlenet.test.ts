/**
 * The inspector (`inspect: true`, src/gradcam/inspect.ts) and the CAM identity, on the GPU.
 *
 * googlenet-zoo-seeded runs at its full 224×224 (5b is 7×7), googlenet-torchvision-seeded at 96×96 (5b is
 * 3×3; test/helpers/googlenets.ts: the same graph, a fifth of the cost), one network per model.
 *
 * 1. The CAM identity (both generated GoogLeNets). inception_5b is followed only by a global average
 *    pool and the classifier, so with the logit reduction Grad-CAM's α_k = W[c, k] / (h·w) and its
 *    signed map = CAM / (h·w) = Σ_k W[c, k] A_k / (h·w). Bounds from float32 rounding:
 *    - the backward pass seeds 1 at class c; the classifier's data gradient is 1·W[c, k] plus zeros
 *      (exact), the average pool's backward gives W[c, k]·(1/(h·w)) (≤ 2 roundings) to each of the h·w
 *      positions, and α sums those h·w values and divides by h·w: |α_k − W[c, k]/(h·w)| ≤
 *      (h·w + 3)·2⁻²⁴ · max_k |W[c, k]| / (h·w) (a sum of n terms rounds by ≤ (n − 1)·u of Σ|terms|);
 *    - the map sums C products α_k·A_k in float32: ≤ (C + h·w + 4)·2⁻²⁴ · max_hw Σ_k |W[c, k] A_k| / (h·w).
 *    At inception_4e (more layers follow) and with the softmax reduction it does not apply, and says why.
 * 2. The inspector against the float64 references (test/reference/cam-methods.ts) on both models,
 *    inception_5b, K = 3, Grad-CAM and HiResCAM: weights, signed maps and the sum of the per-channel
 *    contributions, with the error scale and bound of test/cam-methods-googlenet.test.ts (1e-3 of the
 *    conditioned magnitude at 5b); the top channels; the branches of the inception block against the
 *    ONNX Concat node's inputs (channel counts from the reference's forward values). The branch kinds
 *    come from the producing convolutions: the zoo model's blocks end in 1×1, 3×3, 5×5 and pool
 *    projection; torchvision's "5×5" branch is a 3×3 convolution (torchvision kept that bug for its
 *    weights), so it reads 1×1, 3×3, 3×3, pool proj.
 * 3. "Why is my map all zero?" on the known-answer model, where the answer is known: the maps of the
 *    colours not in the picture are exactly 0 because every channel they weigh is 0; the
 *    counterfactual of the square's colour is 0 because every α_k = −W[c, k]/(h·w) ≤ 0.
 */
import { afterAll, describe, expect, test } from 'vitest';
import { Network } from '../src/gradcam/network.ts';
import type { GradcamMap } from '../src/gradcam/types.ts';
import type { RgbaImage } from '../src/image/image.ts';
import { decodeOnnx } from '../src/onnx/decode.ts';
import { generateModelBytes } from '../weights/generate/index.ts';
import { destroyGooglenets, googlenetInput, googlenetNetwork, type GooglenetName } from './helpers/googlenets.ts';
import { testGpu } from './helpers/gpu.ts';
import { camReference } from './reference/cam-methods.ts';
import { backwardReference, forwardValues } from './reference/graph.ts';
import { tensor } from './reference/tensor.ts';

const U = 2 ** -24;
const CASES: { model: GooglenetName; layers: string[]; kinds: string[] }[] = [
  { model: 'googlenet-zoo-seeded', layers: ['inception_4e/output_1', 'inception_5b/output_1'], kinds: ['1×1', '3×3', '5×5', 'pool proj'] },
  { model: 'googlenet-torchvision-seeded', layers: ['/inception4e/Concat_output_0', '/inception5b/Concat_output_0'], kinds: ['1×1', '3×3', '3×3', 'pool proj'] },
];

afterAll(destroyGooglenets);

const find = (maps: GradcamMap[], layer: string, method: string, c: number) => maps.find((m) => m.layer === layer && m.method === method && m.class === c)!;

for (const { model: name, layers, kinds } of CASES) {
  describe(name, () => {
    test('the CAM identity at inception_5b to float32 rounding; the inspector against the float64 references', async () => {
      const { c: { model, shape }, net } = await googlenetNetwork(name);
      const x = googlenetInput(shape, 5);
      const input = { shape, data: x };
      const r = await net.gradCAM(input, { classes: 'top3', featureLayers: layers, methods: ['gradcam', 'hirescam', 'eigencam'], upsample: false, inspect: true });
      const [l4e, l5b] = layers;
      const classes = r.predictions.slice(0, 3).map((p) => p.class);

      // 1. The CAM identity.
      for (const c of classes) {
        const m5b = find(r.maps, l5b, 'gradcam', c);
        const id = m5b.inspection!.camIdentity!;
        expect(id.applies, id.reason).toBe(true);
        const C = m5b.inspection!.weights!.length, hw = m5b.shape[0] * m5b.shape[1];
        expect(C).toBe(1024);
        console.log(`${name} class ${c}: |α − W/hw| ${id.maxAbsDiff!.toExponential(2)} of ${id.scale!.toExponential(2)}, |map − CAM/hw| ${id.mapMaxAbsDiff!.toExponential(2)} of ${id.mapScale!.toExponential(2)}`);
        expect(id.maxAbsDiff!).toBeLessThanOrEqual((hw + 3) * U * id.scale!);
        expect(id.mapMaxAbsDiff!).toBeLessThanOrEqual((C + hw + 4) * U * id.mapScale!);
        expect(find(r.maps, l4e, 'gradcam', c).inspection!.camIdentity).toMatchObject({ applies: false, reason: expect.stringContaining('global average pool') });
        expect(find(r.maps, l5b, 'hirescam', c).inspection!.camIdentity).toBeUndefined();
      }
      const soft = await net.gradCAM(input, { classes: [classes[0]], featureLayers: [l5b], reduction: 'softmax', upsample: false, inspect: true });
      expect(soft.maps[0].inspection!.camIdentity).toMatchObject({ applies: false, reason: expect.stringContaining('logit reduction') });

      // 2. The inspector against the references.
      const values = forwardValues(model, { [model.inputs[0].name]: tensor(shape, x) });
      const logits = values.get(net.graph.logits)!.data;
      const seeds = classes.map((c) => Float64Array.from(logits, (_, j) => (j === c ? 1 : 0)));
      const grads = backwardReference(model, values as never, { score: net.graph.logits, seeds, wrt: [l5b] })[l5b];
      const A = values.get(l5b)!;
      const [, C, h, w] = A.shape;
      const hw = h * w;
      const concat = model.nodes.find((n) => n.opType === 'Concat' && n.outputs[0] === l5b)!;
      const ranges = concat.inputs.reduce<[number, number][]>((acc, t) => {
        const start = acc.length ? acc[acc.length - 1][1] : 0;
        return [...acc, [start, start + values.get(t)!.shape[1]]];
      }, []);
      classes.forEach((c, k) => {
        const G = grads[k].data;
        for (const method of ['gradcam', 'hirescam'] as const) {
          const m = find(r.maps, l5b, method, c);
          const ins = m.inspection!;
          const ref = camReference(method, A.data, G, C, hw);
          // The conditioned magnitude of test/cam-methods-googlenet.test.ts, and its bound at inception_5b.
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
        const eigen = find(r.maps, l5b, 'eigencam', c).inspection!;
        expect(eigen.weights!.length).toBe(C);
        expect(eigen.topChannels.every((t) => t.gradient === undefined)).toBe(true);
      });
    });
  });
}

test('known-answer model: the inspector says why a map is all zero', async () => {
  const model = decodeOnnx(generateModelBytes('googlenet-known-answer'));
  const net = await Network.load(await testGpu(), model);
  const data = new Uint8Array(224 * 224 * 4);
  for (let y = 0; y < 224; y++) {
    for (let x = 0; x < 224; x++) data.set(x >= 60 && x < 140 && y >= 50 && y < 130 ? [230, 30, 20, 255] : [128, 128, 128, 255], (y * 224 + x) * 4);
  }
  const img: RgbaImage = { width: 224, height: 224, data };
  const r = await net.gradCAM(img, { classes: [0, 1, 2], upsample: false, inspect: true });
  expect(r.predictions[0].class).toBe(0);
  expect(r.maps[0].max).toBeGreaterThan(0);
  for (const m of r.maps.slice(1)) {
    expect(m.max).toBe(0);
    expect(m.inspection!.diagnosis).toMatch(/^The map is all zero because every channel contributes exactly 0/);
  }
  const cf = await net.gradCAM(img, { classes: [0], upsample: false, inspect: true, counterfactual: true });
  expect(cf.maps[0].max).toBe(0);
  expect(cf.maps[0].inspection!.diagnosis).toMatch(/^The map is all zero because every channel weight is ≤ 0/);
  console.log(r.maps.map((m) => `class ${m.class}: ${m.inspection!.diagnosis}`).join('\n'), `\ncounterfactual: ${cf.maps[0].inspection!.diagnosis}`);
  net.destroy();
});

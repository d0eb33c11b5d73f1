/**
 * Guided backprop and guided Grad-CAM (src/gradcam/methods.ts, kind 'guided') on both generated
 * GoogLeNets against the float64 reference (test/reference/graph.ts backwardReference with
 * `guided`: every Relu passes g_in = g_out·[x > 0]·[g_out > 0]; cam-methods.ts guidedGradcam;
 * gradcam.ts upsampleBilinear): K = 3 classes in one call, both reductions, the counterfactual (the
 * seed negated) with the logit reduction; raw maps are [3, H, W].
 *
 * Error scale: the gradient at the input passes every layer of the network, and float32 rounding
 * flips ReLU, max-pool and (guided) sign decisions on the way; as test/gradcam-googlenet.test.ts does
 * for its earliest layer, the error is asked to stay within BOUND of the largest |value| of the
 * reference map.
 */
import { describe, expect, test } from 'vitest';
import { Network } from '../src/gradcam/network.ts';
import type { GradcamMap, Reduction } from '../src/gradcam/types.ts';
import { decodeOnnx } from '../src/onnx/decode.ts';
import { generateModelBytes } from '../weights/generate/index.ts';
import { Rng } from '../weights/generate/random.ts';
import { testGpu } from './helpers/gpu.ts';
import { camReference, guidedGradcam } from './reference/cam-methods.ts';
import { upsampleBilinear } from './reference/gradcam.ts';
import { backwardReference, forwardValues } from './reference/graph.ts';
import { tensor } from './reference/tensor.ts';

const CASES = [
  { model: 'googlenet-zoo-seeded', layer: 'inception_5b/output_1' },
  { model: 'googlenet-torchvision-seeded', layer: '/inception5b/Concat_output_0' },
];
const BOUND = 5e-2;

function softmax(z: Float64Array): Float64Array {
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

const relErr = (got: ArrayLike<number>, want: ArrayLike<number>) => {
  let err = 0, scale = 0;
  for (let i = 0; i < want.length; i++) {
    err = Math.max(err, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  return { rel: err / scale, scale };
};

for (const { model: name, layer } of CASES) {
  describe(name, () => {
    test('guided-backprop and guided-gradcam, K = 3, both reductions and the counterfactual, match the float64 reference', async () => {
      const model = decodeOnnx(generateModelBytes(name));
      const net = await Network.load(await testGpu(), model);
      const rng = new Rng(11);
      const x = Float32Array.from({ length: 3 * 224 * 224 }, () => rng.normal() * 50);
      const inputName = model.inputs[0].name;
      const values = forwardValues(model, { [inputName]: tensor([1, 3, 224, 224], x) });
      const logits = values.get(net.graph.logits)!.data;
      const p = softmax(logits);
      const A = values.get(layer)!;
      const [, C, h, w] = A.shape;
      const runs: [Reduction, boolean][] = [['logit', false], ['softmax', false], ['logit', true]];
      for (const [reduction, counterfactual] of runs) {
        const r = await net.gradCAM({ shape: [1, 3, 224, 224], data: x }, {
          classes: 'top3', featureLayers: layer, reduction, counterfactual, upsample: false, methods: ['gradcam', 'guided-backprop', 'guided-gradcam'],
        });
        const classes = r.maps.filter((m) => m.method === 'gradcam').map((m) => m.class);
        const sign = counterfactual ? -1 : 1;
        const seeds = classes.map((c) => Float64Array.from(logits, (_, j) => sign * (reduction === 'logit' ? (j === c ? 1 : 0) : p[c] * ((j === c ? 1 : 0) - p[j]))));
        const guided = backwardReference(model, values as never, { score: net.graph.logits, seeds, wrt: [inputName], guided: true })[inputName];
        const plain = backwardReference(model, values as never, { score: net.graph.logits, seeds: seeds.map((s) => s.map((v) => sign * v)), wrt: [layer] })[layer];
        classes.forEach((c, k) => {
          const find = (method: string): GradcamMap => r.maps.find((m) => m.method === method && m.class === c)!;
          const gb = find('guided-backprop');
          expect(gb.channels).toBe(3);
          expect(gb.shape).toEqual([224, 224]);
          expect(gb.layer).toBe(inputName);
          expect(gb.raw.length).toBe(3 * 224 * 224);
          const e1 = relErr(gb.raw, guided[k].data);
          const cam = camReference('gradcam', A.data, plain[k].data, C, h * w, { counterfactual });
          const gg = find('guided-gradcam');
          expect(gg.layer).toBe(layer);
          const want = guidedGradcam(guided[k].data, upsampleBilinear(cam.map, h, w, 224, 224), 224, 224);
          const e2 = relErr(gg.raw, want);
          const what = `${name} ${reduction}${counterfactual ? ' counterfactual' : ''} class ${c}`;
          console.log(`${what}: guided-backprop max |Δ| / max |ref| ${e1.rel.toExponential(2)} (max ${e1.scale.toExponential(2)}), guided-gradcam ${e2.rel.toExponential(2)} (max ${e2.scale.toExponential(2)})`);
          expect(e1.scale, `${what}: a guided gradient`).toBeGreaterThan(0);
          expect(e1.rel, `${what}: guided-backprop`).toBeLessThanOrEqual(BOUND);
          if (e2.scale > 0) expect(e2.rel, `${what}: guided-gradcam`).toBeLessThanOrEqual(BOUND);
          else expect(gg.raw.every((v) => v === 0), `${what}: guided-gradcam is 0 where Grad-CAM is`).toBe(true);
        });
      }
      net.destroy();
    });
  });
}

test('guided-backprop alone runs the guided backward pass only, and its maps have overlays', async () => {
  const model = decodeOnnx(generateModelBytes('googlenet-zoo-seeded'));
  const net = await Network.load(await testGpu(), model);
  const rng = new Rng(4);
  const x = Float32Array.from({ length: 3 * 224 * 224 }, () => rng.normal() * 50);
  const r = await net.gradCAM({ shape: [1, 3, 224, 224], data: x }, { classes: 'top2', methods: ['guided-backprop'], overlay: true });
  expect(r.maps.map((m) => m.method)).toEqual(['guided-backprop', 'guided-backprop']);
  for (const m of r.maps) {
    expect(m.overlay!.data.length).toBe(224 * 224 * 4);
    // The display plane: Σ_c |g_c| per position.
    const plane = Float64Array.from({ length: 224 * 224 }, (_, i) => Math.abs(m.raw[i]) + Math.abs(m.raw[224 * 224 + i]) + Math.abs(m.raw[2 * 224 * 224 + i]));
    const { rel } = relErr(m.upsampled!.data, plane);
    expect(rel).toBeLessThanOrEqual(1e-6);
  }
  const program = [...(net as unknown as { programs: Map<string, { needsGradients: boolean; guided?: unknown }> }).programs.values()][0];
  expect(program.needsGradients).toBe(false);
  expect(program.guided).toBeDefined();
  net.destroy();
});

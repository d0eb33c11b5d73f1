/**
 * Guided backprop and guided Grad-CAM (src/gradcam/methods.ts, kind 'guided') on both generated
 * GoogLeNets against the float64 reference (test/reference/graph.ts backwardReference with
 * `guided`: every Relu passes g_in = g_out·[x > 0]·[g_out > 0]; cam-methods.ts guidedGradcam;
 * gradcam.ts upsampleBilinear): K = 3 classes in one call; raw maps are [3, H, W].
 * googlenet-zoo-seeded runs at its full 224×224 with the logit reduction (the full-size check: LRN,
 * the 7×7 stride-2 conv1 down to the input); googlenet-torchvision-seeded at 96×96
 * (test/helpers/googlenets.ts: the same graph, a fifth of the cost) with both reductions and the
 * counterfactual (the seed negated) with the logit reduction.
 *
 * Error scale: the gradient at the input passes every layer of the network, and float32 rounding
 * flips ReLU, max-pool and (guided) sign decisions on the way; as test/cam-methods-googlenet.test.ts
 * does for Grad-CAM at its earliest layer, the error is asked to stay within BOUND of the largest
 * |value| of the reference map.
 */
import { afterAll, describe, expect, test } from 'vitest';
import type { GradcamMap, Reduction } from '../src/gradcam/types.ts';
import { destroyGooglenets, googlenetInput, googlenetNetwork, type GooglenetName, programsOf } from './helpers/googlenets.ts';
import { camReference, guidedGradcam } from './reference/cam-methods.ts';
import { upsampleBilinear } from './reference/gradcam.ts';
import { backwardReference, forwardValues } from './reference/graph.ts';
import { tensor } from './reference/tensor.ts';

// guided-gradcam at two layers of the torchvision model (3×3 and 6×6 maps upsampled to 96×96). For the top
// classes the counterfactual Grad-CAM is 0 everywhere at these layers (at 224 too: the zoo model's at 5b),
// so the counterfactual guided-gradcam is checked to be 0 where Grad-CAM is; its guided-backprop is compared.
const CASES: { model: GooglenetName; layers: string[]; runs: [Reduction, boolean][] }[] = [
  { model: 'googlenet-zoo-seeded', layers: ['inception_5b/output_1'], runs: [['logit', false]] },
  { model: 'googlenet-torchvision-seeded', layers: ['/inception4e/Concat_output_0', '/inception5b/Concat_output_0'], runs: [['logit', false], ['softmax', false], ['logit', true]] },
];
const BOUND = 5e-2;

afterAll(destroyGooglenets);

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

for (const { model: name, layers, runs } of CASES) {
  describe(name, () => {
    test(`guided-backprop and guided-gradcam, K = 3, ${runs.map(([r, cf]) => r + (cf ? ' counterfactual' : '')).join(', ')}, match the float64 reference`, async () => {
      const { c: { model, shape, size, inputName }, net } = await googlenetNetwork(name);
      const x = googlenetInput(shape, 11);
      const values = forwardValues(model, { [inputName]: tensor(shape, x) });
      const logits = values.get(net.graph.logits)!.data;
      const p = softmax(logits);
      for (const [reduction, counterfactual] of runs) {
        const r = await net.gradCAM({ shape, data: x }, {
          classes: 'top3', featureLayers: layers, reduction, counterfactual, upsample: false, methods: ['gradcam', 'guided-backprop', 'guided-gradcam'],
        });
        const classes = r.maps.filter((m) => m.method === 'gradcam' && m.layer === layers[0]).map((m) => m.class);
        const sign = counterfactual ? -1 : 1;
        const seeds = classes.map((c) => Float64Array.from(logits, (_, j) => sign * (reduction === 'logit' ? (j === c ? 1 : 0) : p[c] * ((j === c ? 1 : 0) - p[j]))));
        const guided = backwardReference(model, values as never, { score: net.graph.logits, seeds, wrt: [inputName], guided: true })[inputName];
        const plain = backwardReference(model, values as never, { score: net.graph.logits, seeds: seeds.map((s) => s.map((v) => sign * v)), wrt: layers });
        let compared = 0; // guided-gradcam maps that are not all 0
        classes.forEach((c, k) => {
          const find = (method: string, layer?: string): GradcamMap => r.maps.find((m) => m.method === method && m.class === c && (!layer || m.layer === layer))!;
          const gb = find('guided-backprop');
          expect(gb.channels).toBe(3);
          expect(gb.shape).toEqual([size, size]);
          expect(gb.layer).toBe(inputName);
          expect(gb.raw.length).toBe(3 * size * size);
          const e1 = relErr(gb.raw, guided[k].data);
          const what = `${name} ${size}×${size} ${reduction}${counterfactual ? ' counterfactual' : ''} class ${c}`;
          console.log(`${what}: guided-backprop max |Δ| / max |ref| ${e1.rel.toExponential(2)} (max ${e1.scale.toExponential(2)})`);
          expect(e1.scale, `${what}: a guided gradient`).toBeGreaterThan(0);
          expect(e1.rel, `${what}: guided-backprop`).toBeLessThanOrEqual(BOUND);
          for (const layer of layers) {
            const A = values.get(layer)!;
            const [, C, h, w] = A.shape;
            const cam = camReference('gradcam', A.data, plain[layer][k].data, C, h * w, { counterfactual });
            const gg = find('guided-gradcam', layer);
            expect(gg.layer).toBe(layer);
            const want = guidedGradcam(guided[k].data, upsampleBilinear(cam.map, h, w, size, size), size, size);
            const e2 = relErr(gg.raw, want);
            console.log(`${what}: guided-gradcam at ${layer} ${e2.rel.toExponential(2)} (max ${e2.scale.toExponential(2)})`);
            if (e2.scale > 0) {
              expect(e2.rel, `${what}: guided-gradcam at ${layer}`).toBeLessThanOrEqual(BOUND);
              compared++;
            } else expect(gg.raw.every((v) => v === 0), `${what}: guided-gradcam at ${layer} is 0 where Grad-CAM is`).toBe(true);
          }
        });
        if (!counterfactual) expect(compared, `${name} ${reduction}: some guided-gradcam map is not all 0`).toBeGreaterThan(0);
      }
    });
  });
}

test('guided-backprop alone runs the guided backward pass only, and its maps have overlays', async () => {
  // The program's make-up does not depend on the input size: the 96×96 network of the file.
  const { c: { shape, size }, net } = await googlenetNetwork('googlenet-torchvision-seeded');
  const x = googlenetInput(shape, 4);
  const before = new Set(programsOf(net).keys());
  const r = await net.gradCAM({ shape, data: x }, { classes: 'top2', methods: ['guided-backprop'], overlay: true });
  expect(r.maps.map((m) => m.method)).toEqual(['guided-backprop', 'guided-backprop']);
  const hw = size * size;
  for (const m of r.maps) {
    expect(m.overlay!.data.length).toBe(hw * 4);
    // The display plane: Σ_c |g_c| per position.
    const plane = Float64Array.from({ length: hw }, (_, i) => Math.abs(m.raw[i]) + Math.abs(m.raw[hw + i]) + Math.abs(m.raw[2 * hw + i]));
    const { rel } = relErr(m.upsampled!.data, plane);
    expect(rel).toBeLessThanOrEqual(1e-6);
  }
  const programs = [...programsOf<{ needsGradients: boolean; guided?: unknown }>(net)].filter(([key]) => !before.has(key));
  expect(programs.length).toBe(1);
  const [[, program]] = programs;
  expect(program.needsGradients).toBe(false);
  expect(program.guided).toBeDefined();
});

/**
 * Guided backprop and guided Grad-CAM (src/gradcam/methods.ts, kind 'guided') against the float64
 * guided backward pass on the 96×96 twin, googlenet-torchvision-seeded (test/helpers/googlenets.ts: the
 * zoo model's graph at a fifth of the cost): K = 3 classes in one call, guided-gradcam at inception4e
 * and 5b, with both reductions and the counterfactual (the seed negated) with the logit reduction.
 * The checks and their bound (5e-2 of the largest |value| of the reference map) are
 * test/helpers/googlenet-checks.ts's checkGuided. The full-size check (googlenet-zoo-seeded at 224: LRN,
 * the 7×7 stride-2 conv1 down to the input; the logit reduction, guided-gradcam at inception_5b) runs in
 * test/googlenet-zoo.test.ts, in the same GPU call as the other methods.
 */
import { afterAll, expect, test } from 'vitest';
import type { Reduction } from '../src/gradcam/types.ts';
import { checkGuided, relErr, type Values } from './helpers/googlenet-checks.ts';
import { destroyGooglenets, googlenetInput, googlenetNetwork, programsOf } from './helpers/googlenets.ts';
import { forwardValues } from './reference/graph.ts';
import { tensor } from './reference/tensor.ts';

const NAME = 'googlenet-torchvision-seeded';
// guided-gradcam at two layers (3×3 and 6×6 maps upsampled to 96×96). For the top classes the
// counterfactual Grad-CAM is 0 everywhere at these layers (at 224 too: the zoo model's at 5b), so the
// counterfactual guided-gradcam is checked to be 0 where Grad-CAM is; its guided-backprop is compared.
const LAYERS = ['/inception4e/Concat_output_0', '/inception5b/Concat_output_0'];
const RUNS: [Reduction, boolean][] = [['logit', false], ['softmax', false], ['logit', true]];

afterAll(destroyGooglenets);

test(`${NAME}: guided-backprop and guided-gradcam, K = 3, ${RUNS.map(([r, cf]) => r + (cf ? ' counterfactual' : '')).join(', ')}, match the float64 reference`, async () => {
  const { c, net } = await googlenetNetwork(NAME);
  const x = googlenetInput(c.shape, 11);
  const values = forwardValues(c.model, { [c.inputName]: tensor(c.shape, x) }) as unknown as Values;
  for (const [reduction, counterfactual] of RUNS) {
    const r = await net.gradCAM({ shape: c.shape, data: x }, {
      classes: 'top3', featureLayers: LAYERS, reduction, counterfactual, upsample: false, methods: ['gradcam', 'guided-backprop', 'guided-gradcam'],
    });
    checkGuided(c, NAME, net.graph.logits, values, r, LAYERS, reduction, counterfactual);
  }
});

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

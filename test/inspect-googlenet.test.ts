/**
 * The inspector (`inspect: true`, src/gradcam/inspect.ts) and the CAM identity, on the GPU.
 *
 * 1. The CAM identity and the inspector against the float64 references on the 96×96 twin,
 *    googlenet-torchvision-seeded (test/helpers/googlenets.ts: the zoo model's graph at a fifth of the
 *    cost; 5b is 3×3), inception4e and 5b, K = 3, Grad-CAM, HiResCAM, Eigen-CAM: the checks and bounds
 *    of test/helpers/googlenet-checks.ts's checkInspector (the identity to float32 rounding with bounds
 *    from the map's h·w and the inspector's C; weights, signed maps, contributions within 1e-3 of the
 *    conditioned magnitude at 5b; top channels; the inception branches, torchvision's reading 1×1, 3×3,
 *    3×3, pool proj). With the softmax reduction the identity does not apply, and says why. The
 *    full-size check (googlenet-zoo-seeded at 224, 5b 7×7, branches 1×1, 3×3, 5×5, pool proj) runs in
 *    test/googlenet-zoo.test.ts, on the GPU call its other checks read.
 * 2. "Why is my map all zero?" on the known-answer model, where the answer is known: the maps of the
 *    colours not in the picture are exactly 0 because every channel they weigh is 0; the
 *    counterfactual of the square's colour is 0 because every α_k = −W[c, k]/(h·w) ≤ 0.
 */
import { afterAll, expect, test } from 'vitest';
import { Network } from '../src/gradcam/network.ts';
import type { RgbaImage } from '../src/image/image.ts';
import { decodeOnnx } from '../src/onnx/decode.ts';
import { generateModelBytes } from '../weights/generate/index.ts';
import { checkInspector, referenceGradients, type Values } from './helpers/googlenet-checks.ts';
import { destroyGooglenets, googlenetInput, googlenetNetwork } from './helpers/googlenets.ts';
import { testGpu } from './helpers/gpu.ts';
import { forwardValues } from './reference/graph.ts';
import { tensor } from './reference/tensor.ts';

const NAME = 'googlenet-torchvision-seeded';
const LAYERS = ['/inception4e/Concat_output_0', '/inception5b/Concat_output_0'];

afterAll(destroyGooglenets);

test(`${NAME}: the CAM identity at inception_5b to float32 rounding; the inspector against the float64 references`, async () => {
  const { c: { model, shape, inputName }, net } = await googlenetNetwork(NAME);
  const x = googlenetInput(shape, 5);
  const input = { shape, data: x };
  const r = await net.gradCAM(input, { classes: 'top3', featureLayers: LAYERS, methods: ['gradcam', 'hirescam', 'eigencam'], upsample: false, inspect: true });
  const classes = r.predictions.slice(0, 3).map((p) => p.class);
  const soft = await net.gradCAM(input, { classes: [classes[0]], featureLayers: [LAYERS[1]], reduction: 'softmax', upsample: false, inspect: true });
  expect(soft.maps[0].inspection!.camIdentity).toMatchObject({ applies: false, reason: expect.stringContaining('logit reduction') });
  const values = forwardValues(model, { [inputName]: tensor(shape, x) }) as unknown as Values;
  const grads = referenceGradients(model, values, net.graph.logits, [LAYERS[1]], classes, 'logit')[LAYERS[1]];
  checkInspector(model, NAME, values, r, LAYERS, grads, ['1×1', '3×3', '3×3', 'pool proj']);
});

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

/**
 * Input gradients and input perturbations for an NHWC model (EfficientNet-Lite4's input as tf2onnx
 * writes it: x [1, H, W, 3], a Transpose to NCHW first; weights/generate/own-models.ts): the
 * guided methods, the input attributions (one backward pass, many passes, occlusion), Score-CAM's
 * masks and the perturbation metrics (deletion, insertion, drop/increase, ROAD) read the gradient at
 * the input, or write the input, in its layout (the kernels' `nhwc`), and give the maps in [C, H, W] /
 * [H, W] as for an NCHW model.
 *
 * The check: the NHWC model against its NCHW twin, built here by the same generator from the same
 * seed (the Transpose takes no random numbers, so the weights are the same) with an NCHW input and no
 * Transpose, on the same image (the twin gets it transposed). After the Transpose the two run the same
 * float32 operations on the same values in the same order (the Transpose and its backward only move
 * values), so every map and score must agree bit for bit: the tolerance is 0. A layout mix-up (an
 * element read at c·hw + i of an NHWC tensor) is an error of the map's own order. Small shapes that hit
 * odd cases: 3 channels, 21 × 19 (odd, not a multiple of a tile), stride 2, an occlusion window that
 * does not tile the input.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Method } from '../src/gradcam/methods.ts';
import { Network } from '../src/gradcam/network.ts';
import type { GradcamOptions, GradcamResult, TensorInput } from '../src/gradcam/types.ts';
import { evaluateImage } from '../src/metrics/evaluate.ts';
import type { OnnxModel } from '../src/onnx/model.ts';
import { Rng } from '../weights/generate/random.ts';
import { TorchNet } from '../weights/generate/torch-net.ts';
import { testGpu } from './helpers/gpu.ts';

const H = 21, W = 19, C = 3, CLASSES = 10;
const LAYER = '/block/relu/Relu_output_0';

/** The twins: the same seeded CNN (conv stride 2 + BN + ReLU twice, global pooling, a linear classifier) behind an NHWC input and a Transpose, or an NCHW input. */
function twin(nhwc: boolean): OnnxModel {
  const net = new TorchNet(71);
  let x = net.input(nhwc ? [1, H, W, C] : [1, C, H, W], 1);
  if (nhwc) x = net.transpose('', x, [0, 3, 1, 2]);
  x = net.relu('stem.relu', net.bn('stem.bn', net.conv('stem.conv', x, 8, 3, { stride: 2, pad: 1 })));
  x = net.relu('block.relu', net.bn('block.bn', net.conv('block.conv', x, 6, 3, { stride: 2, pad: [1, 0, 0, 1] })));
  x = net.flatten('', net.gap('pool', x));
  return net.build(net.linear('classifier', x, CLASSES, undefined, 'logits'), 11, nhwc ? 'nhwc twin' : 'nchw twin');
}

/** The same image for both: NCHW planes, and the NHWC tensor made from them. */
const r = new Rng(5);
const planes = new Float32Array(C * H * W).map(() => r.uniform(-2, 2));
const nchwInput: TensorInput = { shape: [1, C, H, W], data: planes };
const nhwcData = new Float32Array(C * H * W);
for (let c = 0; c < C; c++) for (let i = 0; i < H * W; i++) nhwcData[i * C + c] = planes[c * H * W + i];
const nhwcInput: TensorInput = { shape: [1, H, W, C], data: nhwcData };

let nhwc: Network, nchw: Network;
beforeAll(async () => {
  const gpu = await testGpu();
  nhwc = await Network.load(gpu, twin(true));
  nchw = await Network.load(gpu, twin(false));
});
afterAll(() => {
  nhwc?.destroy();
  nchw?.destroy();
});

/** Every map of the two results: the same methods, layers, classes, shapes and values (bit for bit). */
function expectSameMaps(a: GradcamResult, b: GradcamResult, methods: Method[]): void {
  expect(a.maps.map((m) => `${m.method} ${m.layer === 'x' ? 'input' : m.layer} ${m.class}`).sort()).toEqual(b.maps.map((m) => `${m.method} ${m.layer === 'x' ? 'input' : m.layer} ${m.class}`).sort());
  expect(new Set(a.maps.map((m) => m.method))).toEqual(new Set(methods));
  for (const m of a.maps) {
    const t = b.maps.find((o) => o.method === m.method && o.layer === m.layer && o.class === m.class)!;
    expect([m.shape, m.channels, m.raw.length], `${m.method}`).toEqual([t.shape, t.channels, t.raw.length]);
    let worst = 0;
    for (let i = 0; i < m.raw.length; i++) worst = Math.max(worst, Math.abs(m.raw[i] - t.raw[i]));
    expect(worst, `${m.method} at ${m.layer}: max |NHWC − NCHW|`).toBe(0);
    // Not all zeros (a map that is zero on both would check nothing).
    expect(Math.max(...Array.from(m.raw, Math.abs)), `${m.method} is not all zero`).toBeGreaterThan(0);
  }
}

describe('an NHWC input (x [1, 21, 19, 3], Transpose first) against its NCHW twin', () => {
  test('the twins: the layouts read from the shapes, the same logits', async () => {
    expect([nhwc.engine.layout, nchw.engine.layout]).toEqual(['NHWC', 'NCHW']);
    const [a, b] = [await nhwc.classify(nhwcInput, CLASSES), await nchw.classify(nchwInput, CLASSES)];
    expect(a.predictions).toEqual(b.predictions);
  });

  test('guided-backprop, guided-gradcam, saliency, input-x-gradient: one backward pass to the input', async () => {
    const methods: Method[] = ['guided-backprop', 'guided-gradcam', 'saliency', 'input-x-gradient'];
    const options: GradcamOptions = { classes: 'top2', featureLayers: [LAYER], methods };
    expectSameMaps(await nhwc.gradCAM(nhwcInput, options), await nchw.gradCAM(nchwInput, options), methods);
  });

  test('integrated-gradients (4 steps, black baseline), smoothgrad (3 samples), occlusion (5 × 5, stride 4), scorecam: many passes', async () => {
    const methods: Method[] = ['integrated-gradients', 'smoothgrad', 'occlusion', 'scorecam'];
    const options: GradcamOptions = {
      classes: [3], featureLayers: [LAYER], methods,
      methodOptions: { 'integrated-gradients': { steps: 4, baseline: 'black', batchSize: 3 }, smoothgrad: { samples: 3, sigma: 0.2 }, occlusion: { patch: 5, stride: 4, batchSize: 7 } },
    };
    const [a, b] = [await nhwc.gradCAM(nhwcInput, options), await nchw.gradCAM(nchwInput, options)];
    expectSameMaps(a, b, methods);
    const ig = (res: GradcamResult) => res.maps.find((m) => m.method === 'integrated-gradients')!.completeness;
    expect(ig(a)).toEqual(ig(b));
  });

  test('deletion, insertion, drop/increase and ROAD: the same scores', async () => {
    const options = { methods: ['gradcam', 'saliency'] as Method[], featureLayer: LAYER, steps: 6, batchSize: 5, road: true, roadPercentiles: [30, 70] };
    const [a, b] = [await evaluateImage(nhwc, nhwcInput, options), await evaluateImage(nchw, nchwInput, options)];
    expect([a.width, a.height]).toEqual([W, H]);
    expect(a.methods.length).toBe(2);
    const scores = (e: typeof a) => e.methods.map((m) => ({ method: m.method, full: m.full, explained: m.explained, deletion: m.deletion, insertion: m.insertion, road: m.road }));
    expect(scores(a)).toEqual(scores(b));
    // The curves move: a layout mix-up in the perturbation would change them.
    expect(new Set(a.methods[0].deletion).size).toBeGreaterThan(2);
  });
});

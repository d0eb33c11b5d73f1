/** Bad Grad-CAM requests: each is a clear GradcamError, raised before any GPU work. */
import { beforeAll, describe, expect, test } from 'vitest';
import { GradcamError } from '../src/errors.ts';
import { Network } from '../src/gradcam/network.ts';
import { classPlan } from '../src/gradcam/request.ts';
import { decodeOnnx } from '../src/onnx/decode.ts';
import { encodeOnnx } from '../src/onnx/write.ts';
import { generateModelBytes } from '../weights/generate/index.ts';
import { testGpu } from './helpers/gpu.ts';
import { gradcamReference } from './reference/gradcam.ts';
import { buildModel, ints, node, weight } from './reference/models.ts';
import { randomTensor, rng } from './reference/tensor.ts';

const input = { shape: [1, 3, 224, 224], data: new Float32Array(3 * 224 * 224) };

async function rejects(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(GradcamError);
  expect((err as Error).message).toMatch(pattern);
}

describe('zoo-style GoogLeNet', () => {
  let net: Network;
  beforeAll(async () => {
    net = await Network.load(await testGpu(), decodeOnnx(generateModelBytes('googlenet-zoo-seeded')));
  });

  test('a class index out of range', async () => {
    await rejects(net.gradCAM(input, { classes: 1000 }), /class index 1000 is out of range: the model has classes 0 … 999/);
    await rejects(net.gradCAM(input, { classes: [3, -1] }), /class index -1 is out of range/);
  });

  test('more classes than the model has', async () => {
    await rejects(net.gradCAM(input, { classes: 'top1001' }), /top1001 asks for 1001 classes, but the model has 1000/);
  });

  test('a feature layer after the reduction layer', async () => {
    await rejects(net.gradCAM(input, { featureLayers: 'prob_1' }), /layer 'prob_1' comes after the reduction layer 'loss3\/classifier_1'/);
    await rejects(net.gradCAM(input, { featureLayers: 'inception_5b/output_1', reductionLayer: 'inception_4e/output_1' }), /comes after the reduction layer/);
  });

  test('unknown and ambiguous layer names list the candidates', async () => {
    await rejects(net.gradCAM(input, { featureLayers: 'inception_9z' }), /unknown layer 'inception_9z'/);
    const err = await net.gradCAM(input, { featureLayers: 'inception_9z' }).catch((e: GradcamError) => e);
    expect((err as GradcamError).hint).toMatch(/inception_3a\/output_1.*inception_5b\/output_1/);
    await rejects(net.gradCAM(input, { featureLayers: 'pool_proj_2' }), /layer 'pool_proj_2' is ambiguous: it matches inception_3a\/pool_proj_2, .*inception_5b\/pool_proj_2/);
  });

  test('block names resolve to the block output', () => {
    expect(net.layers().filter((l) => l.block).map((l) => l.name)).toEqual(
      ['3a', '3b', '4a', '4b', '4c', '4d', '4e', '5a', '5b'].map((b) => `inception_${b}/output_1`));
  });
});

test('a layer with no path to the score', async () => {
  // x → conv → logits, and x → dead conv (a graph output the score does not depend on).
  const r = rng(1);
  const model = buildModel({
    inputs: { x: [1, 3, 8, 8] },
    outputs: ['logits', 'dead'],
    weights: [
      weight('w', randomTensor([4, 3, 3, 3], r)), weight('wd', randomTensor([2, 3, 1, 1], r)),
      weight('fc', randomTensor([5, 4 * 8 * 8], r)),
    ],
    nodes: [
      node('Conv', ['x', 'w'], ['a'], { kernel_shape: ints([3, 3]), pads: ints([1, 1, 1, 1]) }),
      node('Conv', ['x', 'wd'], ['dead'], { kernel_shape: ints([1, 1]) }),
      node('Flatten', ['a'], ['flat']),
      node('Gemm', ['flat', 'fc'], ['logits'], { transB: { type: 'int', value: 1 } }),
    ],
  });
  const net = await Network.load(await testGpu(), decodeOnnx(encodeOnnx(model)));
  const x = { shape: [1, 3, 8, 8], data: new Float32Array(3 * 64).fill(1) };
  await rejects(net.gradCAM(x, { featureLayers: 'dead' }), /layer 'dead' has no path to the score 'logits'/);
  // The candidates (and so 'auto') only offer layers the score depends on.
  expect(net.layers().map((l) => l.name)).toEqual(['a']);
  net.destroy();
});

test('a tensor hidden by fusion (a Conv output before its Relu) can still be explained', async () => {
  const r = rng(2);
  const model = buildModel({
    inputs: { x: [1, 3, 6, 6] },
    outputs: ['logits'],
    weights: [weight('w', randomTensor([5, 3, 3, 3], r)), weight('fc', randomTensor([4, 5 * 6 * 6], r))],
    nodes: [
      node('Conv', ['x', 'w'], ['pre'], { kernel_shape: ints([3, 3]), pads: ints([1, 1, 1, 1]) }),
      node('Relu', ['pre'], ['act']),
      node('Flatten', ['act'], ['flat']),
      node('Gemm', ['flat', 'fc'], ['logits'], { transB: { type: 'int', value: 1 } }),
    ],
  });
  const decoded = decodeOnnx(encodeOnnx(model));
  const net = await Network.load(await testGpu(), decoded);
  expect(net.graph.fusedAway.has('pre')).toBe(true);
  const x = randomTensor([1, 3, 6, 6], r);
  const result = await net.gradCAM({ shape: [1, 3, 6, 6], data: Float32Array.from(x.data) }, { featureLayers: 'pre', classes: 2, upsample: false });
  expect(net.graph.tensors.has('pre')).toBe(true); // re-lowered with 'pre' kept
  const ref = gradcamReference(decoded, x, { layer: 'pre', classes: [2], reduction: 'logit', logitsTensor: 'logits' }).classes[0];
  const got = result.maps[0].raw;
  let err = 0, scale = 0;
  for (let i = 0; i < got.length; i++) {
    err = Math.max(err, Math.abs(got[i] - ref.map.data[i]));
    scale = Math.max(scale, Math.abs(ref.preRelu.data[i]));
  }
  expect(err).toBeLessThanOrEqual(1e-5 * scale);
  net.destroy();
});

test('a class asked for twice is explained once, in first-seen order', async () => {
  expect(classPlan([5, 5], 10)).toEqual({ k: 1, explicit: [5] });
  expect(classPlan([3, 7, 3, 1, 7], 10)).toEqual({ k: 3, explicit: [3, 7, 1] });
  // Duplicates do not count against the class count either.
  expect(classPlan([2, 2, 2, 2, 2, 2], 4)).toEqual({ k: 1, explicit: [2] });
  const r = rng(3);
  const model = buildModel({
    inputs: { x: [1, 3, 6, 6] },
    outputs: ['logits'],
    weights: [weight('w', randomTensor([5, 3, 3, 3], r)), weight('fc', randomTensor([8, 5 * 6 * 6], r))],
    nodes: [
      node('Conv', ['x', 'w'], ['a'], { kernel_shape: ints([3, 3]), pads: ints([1, 1, 1, 1]) }),
      node('Relu', ['a'], ['act']),
      node('Flatten', ['act'], ['flat']),
      node('Gemm', ['flat', 'fc'], ['logits'], { transB: { type: 'int', value: 1 } }),
    ],
  });
  const net = await Network.load(await testGpu(), decodeOnnx(encodeOnnx(model)));
  const x = { shape: [1, 3, 6, 6], data: Float32Array.from(randomTensor([1, 3, 6, 6], r).data) };
  const twice = await net.gradCAM(x, { classes: [5, 5], upsample: false });
  expect(twice.maps.map((m) => m.class)).toEqual([5]);
  const mixed = await net.gradCAM(x, { classes: [6, 2, 6, 2, 0], upsample: false });
  expect(mixed.maps.map((m) => m.class)).toEqual([6, 2, 0]);
  const once = await net.gradCAM(x, { classes: [6, 2, 0], upsample: false });
  expect(mixed.maps.map((m) => Array.from(m.raw))).toEqual(once.maps.map((m) => Array.from(m.raw)));
  net.destroy();
});

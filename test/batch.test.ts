/**
 * Batches: `gradCAM(net, images[])` and `net.classify(images[])` run the images in batches of B on
 * engines compiled per batch size, and give exactly — bit for bit — the results of one call per
 * image. Exactly, not within a tolerance: every kernel computes each image (and each class item)
 * on its own, with the same summation order whatever the batch, so no value may differ; a last
 * batch of r < B images runs padded on the engine for the next power of two, and the padding may
 * change nothing either. Only the timings (and the `batch` field) differ.
 *
 * A small model keeps most cases CI-sized (pictures of several sizes, tensors, K = 2, two layers,
 * overlays, both reductions); it ends in Reshape [1, 6] → Gemm as the Model Zoo GoogLeNet does, so
 * re-batching a model exported with batch 1 is tested too. A generated GoogLeNet
 * (googlenet-torchvision-seeded at 96×96, test/helpers/googlenets.ts: the real graph at a fifth of the
 * cost) runs N = 3 pictures of three sizes with B = 2 (a full batch, then one image alone) and B = 4
 * (3 images padded to 4 places) against singles: Grad-CAM at inception_4e with K = 2, and classify.
 * (It ran the Model Zoo GoogLeNet at 224×224 until the suite got too slow: the property, bitwise
 * equality, does not depend on the size; and N = 5 with B = 2 and 4 before that, with no padded batch.)
 */
import { describe, expect, test } from 'vitest';
import { GradcamError } from '../src/errors.ts';
import { gradCAM, Network, slotsFor } from '../src/gradcam/network.ts';
import type { GradcamOptions, ModelInput } from '../src/gradcam/types.ts';
import { decodeOnnx } from '../src/onnx/decode.ts';
import type { OnnxModel } from '../src/onnx/model.ts';
import { encodeOnnx } from '../src/onnx/write.ts';
import { Rng } from '../weights/generate/random.ts';
import { bits as bitsOf } from './helpers/bits.ts';
import { googlenetCase } from './helpers/googlenets.ts';
import { testGpu } from './helpers/gpu.ts';
import { randomPicture, SMALL_SHAPE, smallModel } from './helpers/small-model.ts';

/** Results compared bitwise, without timings and a batch's place. */
const bits = (x: unknown) => bitsOf(x, ['timings', 'batch']);

const SHAPE = SMALL_SHAPE;



function tensorInput(r: Rng, shape: number[]): ModelInput {
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = r.uniform(-2, 2);
  return { shape, data };
}


/**
 * Singles, then each batch size, on one network (the batch engines are compiled next to the
 * single-image one, sharing its pipelines): results bitwise equal, `batch` places as planned.
 */
async function compare(model: OnnxModel, inputs: ModelInput[], options: GradcamOptions, sizes: number[]): Promise<void> {
  const gpu = await testGpu();
  const net = await Network.load(gpu, model);
  const want: unknown[] = [];
  const wantClassified: unknown[] = [];
  for (const x of inputs) want.push(bits(await gradCAM(net, x, options)));
  for (const x of inputs) wantClassified.push(bits(await net.classify(x, 3)));
  for (const batchSize of sizes) {
    const seen: number[] = [];
    const results = await gradCAM(net, inputs, { ...options, batchSize, onResult: (_, i) => seen.push(i) });
    expect(results.map(bits), `batchSize ${batchSize}`).toEqual(want);
    expect(seen).toEqual(inputs.map((_, i) => i));
    // Batches of batchSize in order; the last one (r images) on the engine for slotsFor(r).
    const places = inputs.map((_, i) => {
      const start = i - (i % batchSize);
      const images = Math.min(batchSize, inputs.length - start);
      return { images, slots: slotsFor(images, batchSize), index: i - start };
    });
    expect(results.map((r) => r.batch)).toEqual(places);
    const classified = await net.classify(inputs, { batchSize, top: 3 });
    expect(classified.map(bits), `classify, batchSize ${batchSize}`).toEqual(wantClassified);
  }
  net.destroy();
}

describe('batches give bitwise the results of one call per image', () => {
  test('slotsFor: the smallest power of two that holds the images, at most the batch size', () => {
    expect([1, 2, 3, 4, 5, 7, 8].map((r) => slotsFor(r, 8))).toEqual([1, 2, 4, 4, 8, 8, 8]);
    expect([1, 2, 3, 5, 6].map((r) => slotsFor(r, 6))).toEqual([1, 2, 4, 6, 6]);
  });

  test('small model: 7 inputs (pictures of 4 sizes, tensors), top-2 at two layers with overlays, B = 1, 2, 3, 4, 8', async () => {
    const r = new Rng(3);
    const inputs = [randomPicture(r, 16, 12), tensorInput(r, SHAPE), randomPicture(r, 37, 23), randomPicture(r, 9, 30), tensorInput(r, SHAPE), randomPicture(r, 16, 12), randomPicture(r, 64, 48)];
    const model = decodeOnnx(encodeOnnx(smallModel(11, 'reshape-softmax')));
    await compare(model, inputs, { classes: 'top2', featureLayers: ['a3', 'cat'], overlay: true }, [1, 2, 3, 4, 8]);
  });

  test('small model: explicit classes, softmax reduction, raw maps only, B = 2 and 4', async () => {
    const r = new Rng(4);
    const inputs = [randomPicture(r, 20, 20), randomPicture(r, 13, 17), tensorInput(r, SHAPE), randomPicture(r, 20, 20), randomPicture(r, 5, 40)];
    const model = decodeOnnx(encodeOnnx(smallModel(11, 'reshape-softmax')));
    await compare(model, inputs, { classes: [7, 2, 7, 4], featureLayers: 'a1', reduction: 'softmax', upsample: false }, [2, 4]);
  });

  test('a layer hidden by fusion (c1, before its ReLU), asked for first in a batched call on a fresh network', async () => {
    const gpu = await testGpu();
    const model = decodeOnnx(encodeOnnx(smallModel(11, 'reshape-softmax')));
    const r = new Rng(8);
    const inputs = [randomPicture(r, 16, 12), randomPicture(r, 30, 20), tensorInput(r, SHAPE)];
    const options: GradcamOptions = { classes: 'top2', featureLayers: ['c1', 'a3'], overlay: true };
    const single = await Network.load(gpu, model);
    const want = [];
    for (const x of inputs) want.push(bits(await gradCAM(single, x, options)));
    single.destroy();
    const net = await Network.load(gpu, model);
    expect(net.graph.fusedAway.has('c1')).toBe(true);
    expect((await gradCAM(net, inputs, options)).map(bits)).toEqual(want); // default batch size: 16, one batch of 3 on 4 places
    net.destroy();
  });

  test('the default batch size comes from the limits: a smaller binding limit, smaller batches', async () => {
    const gpu = await testGpu();
    const model = decodeOnnx(encodeOnnx(smallModel(11, 'reshape-softmax')));
    const net = await Network.load(gpu, model);
    expect(net.defaultBatchSize()).toBe(16); // the small model's buffers are tiny: the cap
    // Its largest forward buffer per image (conv1's Winograd scratch, larger than any gradient of
    // the request below); a binding limit of 3.5 of them leaves room for 3 images.
    const largest = net.engine.forwardBytes.largest;
    net.destroy();
    const limited = await Network.load(gpu, model, { limits: { maxStorageBufferBindingSize: 3.5 * largest } });
    expect(limited.defaultBatchSize()).toBe(3);
    const r = new Rng(5);
    const inputs = [randomPicture(r, 16, 12), randomPicture(r, 16, 12), randomPicture(r, 16, 12), randomPicture(r, 16, 12)];
    const results = await gradCAM(limited, inputs, { upsample: false });
    expect(results.map((x) => x.batch)).toEqual([
      { images: 3, slots: 3, index: 0 }, { images: 3, slots: 3, index: 1 }, { images: 3, slots: 3, index: 2 }, { images: 1, slots: 1, index: 0 },
    ]);
    limited.destroy();
  });

  test('bad batched calls are refused before any GPU work, naming the input', async () => {
    const gpu = await testGpu();
    const net = await Network.load(gpu, decodeOnnx(encodeOnnx(smallModel(11, 'reshape-softmax'))));
    const r = new Rng(6);
    const good = randomPicture(r, 16, 12);
    await expect(gradCAM(net, [])).rejects.toThrow(/no inputs given/);
    await expect(gradCAM(net, [good, { shape: [1, 3, 16, 11], data: new Float32Array(3 * 16 * 11) }, good])).rejects.toThrow(/^input 1 of 3: input has shape \[1,3,16,11\]/);
    await expect(net.classify([good, { width: 2, height: 2, data: new Uint8Array(3) }])).rejects.toThrow(GradcamError);
    await expect(gradCAM(net, [good], { batchSize: 0 })).rejects.toThrow(/batchSize 0 is not a batch size/);
    net.destroy();
  });
});

describe('batches on a generated GoogLeNet (googlenet-torchvision-seeded, 96×96)', () => {
  test('3 pictures, Grad-CAM at inception_4e with K = 2 and classify: B = 2 and B = 4 (a padded batch) equal singles bit for bit', async () => {
    const { model } = googlenetCase('googlenet-torchvision-seeded');
    const r = new Rng(13);
    const inputs = [randomPicture(r, 224, 224), randomPicture(r, 160, 200), randomPicture(r, 300, 240)];
    await compare(model, inputs, { classes: 'top2', featureLayers: 'inception_4e', upsample: false }, [2, 4]);
  });
});

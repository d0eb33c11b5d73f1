/**
 * The engine's answers to inputs, models and requests at the edges:
 *  - non-finite values: a NaN or infinite tensor input and a model with a NaN or infinite weight
 *    are refused before any GPU work, naming the input or the initializer; scores or maps that
 *    come out non-finite from finite weights (float32 overflow) are an error naming the first
 *    tensor where non-finite values appear (in the forward pass, else in the backward pass);
 *  - device limits: dispatches fold planes beyond maxComputeWorkgroupsPerDimension (top256 and
 *    top1000 on a 1000-class model work), requests whose buffers exceed
 *    maxStorageBufferBindingSize are refused before any GPU work with the largest K that fits, a
 *    display too large for the buffers is scaled down (aspect ratio kept, said in the result), and
 *    pictures beyond the preprocessing limits are refused clearly.
 * Small models (test/reference/models.ts) keep most of it fast; the known-answer GoogLeNet is used
 * where the reported failures were (top256 at its default layer).
 */
import { beforeAll, describe, expect, test } from 'vitest';
import { GradcamError } from '../src/errors.ts';
import { checkProgramFits, fitDisplay } from '../src/gradcam/limits.ts';
import { Network } from '../src/gradcam/network.ts';
import { GradcamProgram } from '../src/gradcam/program.ts';
import { type DeviceLimits, KernelEnv } from '../src/gpu/dispatch.ts';
import { PreprocessStage } from '../src/image/preprocess.ts';
import { ReadbackPlan } from '../src/runtime/readback.ts';
import { decodeOnnx } from '../src/onnx/decode.ts';
import type { OnnxModel } from '../src/onnx/model.ts';
import { encodeOnnx } from '../src/onnx/write.ts';
import { generateModelBytes } from '../weights/generate/index.ts';
import { testGpu } from './helpers/gpu.ts';
import { upsampleBilinear } from './reference/gradcam.ts';
import { buildModel, ints, node, weight } from './reference/models.ts';
import { randomTensor, rng } from './reference/tensor.ts';

async function rejects(p: Promise<unknown>, pattern: RegExp): Promise<GradcamError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err, 'expected a GradcamError').toBeInstanceOf(GradcamError);
  expect((err as Error).message).toMatch(pattern);
  return err as GradcamError;
}

const load = async (model: OnnxModel, limits?: Partial<DeviceLimits>) => Network.load(await testGpu(), decodeOnnx(encodeOnnx(model)), { limits });

/** x [1, 3, 8, 8] → conv a (3×3, pad 1) + Relu → conv b (3×3, pad 1) + Relu → maxpool 2×2 → Gemm → 'logits' (classes). */
function twoConvModel(w1: Float32Array, w2: Float32Array, fc: Float32Array, classes = 4): OnnxModel {
  return buildModel({
    inputs: { x: [1, 3, 8, 8] },
    outputs: ['logits'],
    weights: [
      { name: 'w1', dims: [4, 3, 3, 3], dataType: 'float32', data: w1 },
      { name: 'w2', dims: [4, 4, 3, 3], dataType: 'float32', data: w2 },
      { name: 'fc', dims: [classes, 4 * 4 * 4], dataType: 'float32', data: fc },
    ],
    nodes: [
      node('Conv', ['x', 'w1'], ['a'], { kernel_shape: ints([3, 3]), pads: ints([1, 1, 1, 1]) }),
      node('Relu', ['a'], ['ra']),
      node('Conv', ['ra', 'w2'], ['b'], { kernel_shape: ints([3, 3]), pads: ints([1, 1, 1, 1]) }),
      node('Relu', ['b'], ['rb']),
      node('MaxPool', ['rb'], ['p'], { kernel_shape: ints([2, 2]), strides: ints([2, 2]) }),
      node('Flatten', ['p'], ['flat']),
      node('Gemm', ['flat', 'fc'], ['logits'], { transB: { type: 'int', value: 1 } }),
    ],
  });
}

/** SwiftShader's limits; tests that name them pin them (Network.load's `limits` only lowers the device's). */
const GIB_LIMITS: DeviceLimits = { maxComputeWorkgroupsPerDimension: 65535, maxStorageBufferBindingSize: 2 ** 30, maxBufferSize: 2 ** 30 };

const filled = (n: number, v: number) => new Float32Array(n).fill(v);
const randomWeights = (n: number, seed: number) => Float32Array.from(randomTensor([n], rng(seed)).data);
const ones = { shape: [1, 3, 8, 8], data: filled(192, 1) };

describe('non-finite values', () => {
  test('a NaN or infinite tensor input is refused before any GPU work, naming the input', async () => {
    const net = await load(twoConvModel(randomWeights(108, 1), randomWeights(144, 2), randomWeights(256, 3)));
    const nan = { shape: [1, 3, 8, 8], data: filled(192, NaN) };
    await rejects(net.classify(nan), /^input 'x' has non-finite values \(NaN\): 192 of 192, the first at \[0, 0, 0, 0\]$/);
    await rejects(net.gradCAM(nan), /^input 'x' has non-finite values \(NaN\)/);
    const inf = { shape: [1, 3, 8, 8], data: filled(192, 0.5) };
    inf.data[2 * 64 + 5 * 8 + 3] = -Infinity;
    await rejects(net.gradCAM(inf, { classes: 1 }), /^input 'x' has non-finite values \(Inf\): 1 of 192, the first at \[0, 2, 5, 3\]$/);
    // The network still works after the refusals.
    expect((await net.classify(ones)).logits.every(Number.isFinite)).toBe(true);
    net.destroy();
  });

  test('a model with a NaN or infinite weight is refused at load, naming the initializer', async () => {
    const w2 = randomWeights(144, 2);
    w2[(1 * 4 + 2) * 9 + 7] = NaN; // W[1][2][2][1]
    await rejects(load(twoConvModel(randomWeights(108, 1), w2, randomWeights(256, 3))),
      /^initializer 'w2' \(node 'Conv_b'\) has non-finite values \(NaN\): 1 of 144, the first at \[1, 2, 2, 1\]$/);
    const fc = randomWeights(256, 3);
    fc[70] = Infinity;
    await rejects(load(twoConvModel(randomWeights(108, 1), randomWeights(144, 2), fc)), /^initializer 'fc' \(node 'Gemm_logits'\) has non-finite values \(Inf\)/);
  });

  test('scores that overflow float32 with finite weights name the first tensor with non-finite values', async () => {
    // a = 27e30 (finite), b = 4 · 9 · 27e30 · 1e30 = Inf: the first non-finite tensor is conv b's output.
    const net = await load(twoConvModel(filled(108, 1e30), filled(144, 1e30), randomWeights(256, 3)));
    const message = /^the model's scores are not finite \((NaN|Inf|NaN and Inf) in \d+ of 4\): non-finite values \(Inf\) first appear in 'rb' \(node 'Conv_b\+Relu_rb'\); the model's weights or input may be broken$/;
    await rejects(net.classify(ones), message);
    await rejects(net.gradCAM(ones, { featureLayers: 'ra' }), message);
    net.destroy();
  });

  test('maps that overflow in the backward pass name the first gradient with non-finite values', async () => {
    // Forward: a ≈ 27e-30, b ≈ 1e-7, logits ≈ 6e14: finite. Backward: ∂logit/∂ra = W_fc · W_b ≈ 1e40
    // overflows (Inf, then NaN in the Winograd transforms); the map's ReLU must not hide it.
    const net = await load(twoConvModel(filled(108, 1e-30), filled(144, 1e20), filled(256, 1e20)));
    const x = { shape: [1, 3, 8, 8], data: filled(192, 1) };
    expect((await net.classify(x)).logits.every(Number.isFinite)).toBe(true);
    await rejects(net.gradCAM(x, { featureLayers: 'ra', classes: 0 }),
      /^the Grad-CAM map of class 0 at 'ra' is not finite \((NaN|Inf|NaN and Inf)\): non-finite values \((NaN|Inf|NaN and Inf)\) first appear in the gradient of 'ra' \(the backward pass of node 'Conv_b\+Relu_rb'\); the model's weights or input may be broken$/);
    net.destroy();
  });
});

describe('device limits on the known-answer GoogLeNet', () => {
  let net: Network;
  const picture = { width: 224, height: 224, data: new Uint8Array(224 * 224 * 4).map((_, i) => (i % 4 === 3 ? 255 : (i * 37) % 251)) };
  beforeAll(async () => {
    // SwiftShader's limits, pinned (a device with larger ones would let more through), and the CPU
    // kernel variant (the GPU variant's split-K depends on K, so its sums would not be bitwise equal).
    net = await Network.load(await testGpu(), decodeOnnx(generateModelBytes('googlenet-known-answer')), { limits: GIB_LIMITS, variant: 'cpu' });
  });

  test("top256 works (the average pool's backward folds its planes) and matches a smaller request for the same classes", async () => {
    const limit = net.engine.env.limits.maxComputeWorkgroupsPerDimension;
    // 256 items × 1024 channels of pool5's backward: 65536 workgroups along z unfolded.
    expect(256 * 1024 / 4).toBeGreaterThan(limit);
    const big = await net.gradCAM(picture, { classes: 'top256', upsample: false });
    expect(big.maps).toHaveLength(256);
    // The top 256 by logit, ties to the lower index.
    const order = [...big.logits.keys()].sort((a, b) => big.logits[b] - big.logits[a] || a - b).slice(0, 256);
    expect(big.maps.map((m) => m.class)).toEqual(order);
    const some = [0, 1, 2, 100, 255];
    const small = await net.gradCAM(picture, { classes: some.map((i) => big.maps[i].class), upsample: false });
    // Exactly: a class's item is computed by the same operations in the same order whatever the others are.
    some.forEach((i, j) => expect(Array.from(small.maps[j].raw)).toEqual(Array.from(big.maps[i].raw)));
    expect(big.maps[0].max).toBeGreaterThan(0);
  });

  test('a request whose buffers exceed the device is refused before any GPU work, with the most classes that fit', async () => {
    const pipelines = net.engine.env.pipelineCount;
    const err = await rejects(net.gradCAM(picture, { classes: 'top1000', featureLayers: 'all', upsample: false }),
      /^1000 classes per image at 9 layers need \d+\.\d\d GiB for the buffer '[^']+', more than this GPU's maxStorageBufferBindingSize \(1\.00 GiB\): at most (\d+) classes per request fit with these layers$/);
    expect(net.engine.env.pipelineCount).toBe(pipelines); // nothing compiled
    const k = Number(/at most (\d+)/.exec(err.message)![1]);
    expect(err.hint).toMatch(new RegExp(`at most ${k} classes`));
    // The bound is the limit: K classes pass the check, K + 1 are refused.
    const layers = net.layers().filter((l) => l.block).map((l) => l.name);
    const limits = net.engine.env.limits;
    expect(() => checkProgramFits(net.engine, { layers, k, reduction: 'logit' }, limits)).not.toThrow();
    expect(() => checkProgramFits(net.engine, { layers, k: k + 1, reduction: 'logit' }, limits)).toThrow(GradcamError);
  });

  test('an 8192×8192 picture with top5 gets a display scaled to fit the buffer limits (aspect ratio kept)', () => {
    // The plan alone (the run itself takes a minute on SwiftShader): 5 maps × 8192² × 8 bytes exceed 1 GiB.
    const limits = net.engine.env.limits;
    const plan = fitDisplay(8192, 8192, 5, { upsampled: true, overlay: true }, 4096, limits);
    expect(plan.width).toBe(plan.height);
    expect(plan.width).toBeLessThan(8192);
    expect(5 * plan.width * plan.height * 8 + 4096).toBeLessThanOrEqual(limits.maxBufferSize);
    expect(5 * (plan.width + 1) * (plan.height + 1) * 8 + 4096).toBeGreaterThan(limits.maxBufferSize);
    expect(plan.downscaled).toEqual({ pictureWidth: 8192, pictureHeight: 8192, reason: expect.stringMatching(/5 maps at 8192×8192 need 2\.50 GiB of read-back, more than the maxBufferSize \(1\.00 GiB\)/) });
    // A picture that fits keeps its size.
    expect(fitDisplay(4000, 3000, 5, { upsampled: true, overlay: true }, 4096, limits)).toEqual({ width: 4000, height: 3000 });
  });
});

/** x [1, 3, 8, 6] → conv 3×3 + Relu (16 ch) → maxpool 2×2 → conv 1×1 + Relu → GAP → Gemm: 'classes' classes. */
function poolModel(classes: number): OnnxModel {
  const r = rng(11);
  return buildModel({
    inputs: { x: [1, 3, 8, 6] },
    outputs: ['logits'],
    weights: [
      weight('w1', randomTensor([16, 3, 3, 3], r)), weight('w2', randomTensor([16, 16, 1, 1], r)),
      weight('fc', randomTensor([classes, 16], r)), weight('fcb', randomTensor([classes], r)),
    ],
    nodes: [
      node('Conv', ['x', 'w1'], ['a'], { kernel_shape: ints([3, 3]), pads: ints([1, 1, 1, 1]) }),
      node('Relu', ['a'], ['ra']),
      node('MaxPool', ['ra'], ['p'], { kernel_shape: ints([2, 2]), strides: ints([2, 2]) }),
      node('Conv', ['p', 'w2'], ['c'], { kernel_shape: ints([1, 1]) }),
      node('Relu', ['c'], ['rc']),
      node('GlobalAveragePool', ['rc'], ['g']),
      node('Flatten', ['g'], ['flat']),
      node('Gemm', ['flat', 'fc', 'fcb'], ['logits'], { transB: { type: 'int', value: 1 } }),
    ],
  });
}

describe('device limits on small models', () => {
  const x = { shape: [1, 3, 8, 6], data: Float32Array.from(randomTensor([1, 3, 8, 6], rng(5)).data) };

  test('pooling planes beyond maxComputeWorkgroupsPerDimension are folded: the same maps, bit for bit', async () => {
    const limit = 128;
    const plain = await load(poolModel(300));
    const folded = await load(poolModel(300), { maxComputeWorkgroupsPerDimension: limit });
    // 120 classes × 16 channels: the max-pool backward (8×6 planes, 4 per workgroup) wants 480 along z.
    const program = await GradcamProgram.create(folded.engine, { layers: ['ra'], classesPerImage: 120, reduction: 'logit' });
    const pool = program.backwardStage.find((d) => d.kernel === 'maxpool.backward')!;
    expect(Math.max(...pool.workgroups)).toBeLessThanOrEqual(limit);
    const unfolded = await GradcamProgram.create(plain.engine, { layers: ['ra'], classesPerImage: 120, reduction: 'logit' });
    expect(unfolded.backwardStage.find((d) => d.kernel === 'maxpool.backward')!.workgroups[2]).toBeGreaterThan(limit);
    for (const reduction of ['logit', 'softmax'] as const) {
      const a = await plain.gradCAM(x, { classes: 'top120', featureLayers: ['ra', 'p'], reduction, upsample: false });
      const b = await folded.gradCAM(x, { classes: 'top120', featureLayers: ['ra', 'p'], reduction, upsample: false });
      expect(b.maps.map((m) => Array.from(m.raw))).toEqual(a.maps.map((m) => Array.from(m.raw)));
    }
    plain.destroy();
    folded.destroy();
  });

  test('a dispatch that cannot be folded is refused naming the limit', async () => {
    const env = new KernelEnv((await testGpu()).device, 'cpu', { maxComputeWorkgroupsPerDimension: 10 });
    expect(() => env.dispatch({} as GPUComputePipeline, [], [11, 1, 1], { kernel: 'k', label: 'op', opType: 'Conv', flops: 0, shapes: '1×2' }))
      .toThrow(/^op \(k, 1×2\) needs 11 × 1 × 1 workgroups, more than this GPU's maxComputeWorkgroupsPerDimension \(10\)$/);
    env.destroy();
  });

  test('a read-back beyond maxBufferSize is refused naming the limit', async () => {
    const { device } = await testGpu();
    const limit = device.limits.maxBufferSize;
    const buffer = device.createBuffer({ size: 16, usage: GPUBufferUsage.COPY_SRC });
    expect(() => new ReadbackPlan(device).add('a', { buffer, offset: 0, bytes: limit }).add('b', { buffer, offset: 0, bytes: 4 }))
      .toThrow(/^reading back [\d.]+ (GiB|MiB) exceeds this GPU's maxBufferSize \([\d.]+ (GiB|MiB)\)$/);
    buffer.destroy();
  });

  test('the classes-per-request limit: K fits and runs, K + 1 is refused before any GPU work', async () => {
    // 1 MiB buffers: the gradient of 'ra' (16 × 8 × 6 floats per class) allows 341 classes.
    const net = await load(poolModel(400), { maxStorageBufferBindingSize: 2 ** 20 });
    const err = await rejects(net.gradCAM(x, { classes: 'top400', featureLayers: 'ra', upsample: false }),
      /^400 classes per image at layer 'ra' need 1\.2 MiB for the buffer 'grad ra', more than this GPU's maxStorageBufferBindingSize \(1\.0 MiB\): at most 341 classes per request fit with this layer$/);
    expect(err.hint).toBe('Ask for at most 341 classes at once (split the request), or choose later layers.');
    const ok = await net.gradCAM(x, { classes: 'top341', featureLayers: 'ra', upsample: false });
    expect(ok.maps).toHaveLength(341);
    net.destroy();
  });

  test('a display too large for the buffers is scaled down, keeping the aspect ratio, and says so', async () => {
    // 256 KiB buffers: 10 maps at 160×120 need 750 KiB per display buffer (float32 upsampled maps).
    const net = await load(poolModel(10), { maxStorageBufferBindingSize: 2 ** 18 });
    const [PW, PH] = [160, 120];
    const r = rng(9);
    const picture = { width: PW, height: PH, data: new Uint8Array(PW * PH * 4).map((_, i) => (i % 4 === 3 ? 255 : Math.floor(r() * 256))) };
    const result = await net.gradCAM(picture, { classes: 'top10', featureLayers: 'ra', overlay: true });
    const { width: W, height: H } = result;
    expect(result.downscaled).toEqual({
      pictureWidth: PW, pictureHeight: PH,
      reason: "10 maps at 160×120 need 750.0 KiB per display buffer, more than this GPU's maxStorageBufferBindingSize (256.0 KiB)",
    });
    expect(10 * W * H * 4).toBeLessThanOrEqual(2 ** 18);
    expect(10 * (W + 1) * (H + 1) * 4).toBeGreaterThan(2 ** 18); // no smaller than it has to be
    expect(Math.abs(W / H - PW / PH)).toBeLessThan(2 / H);
    let upErr = 0, overlayErr = 0;
    for (const m of result.maps) {
      // The upsampling, to the display size, against the float64 reference: float32 coordinates (an
      // ulp of s ≤ w moves a weight by ≤ 1e-6) and three linear blends; 1e-5 of the map's largest value.
      const ref = upsampleBilinear(m.raw, m.shape[0], m.shape[1], H, W);
      for (let i = 0; i < ref.length; i++) upErr = Math.max(upErr, Math.abs(ref[i] - m.upsampled!.data[i]) / Math.max(m.max, 1e-30));
      expect([m.upsampled!.width, m.upsampled!.height, m.overlay!.width, m.overlay!.height, m.overlay!.data.length]).toEqual([W, H, W, H, W * H * 4]);
      // The overlay blends over the picture's pixel under each display pixel's centre (±1 for RGBA8 rounding).
      const { min, max } = m.upsampled!;
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) {
          const sx = Math.min(Math.floor(((x + 0.5) * PW) / W), PW - 1), sy = Math.min(Math.floor(((y + 0.5) * PH) / H), PH - 1);
          const v = max > min ? (m.upsampled!.data[y * W + x] - min) / (max - min) : 0;
          for (let ch = 0; ch < 3; ch++) {
            const jet = Math.min(Math.max(1.5 - Math.abs(4 * v - (3 - ch)), 0), 1);
            const want = 255 * (0.5 * jet + 0.5 * (picture.data[(sy * PW + sx) * 4 + ch] / 255));
            overlayErr = Math.max(overlayErr, Math.abs(m.overlay!.data[(y * W + x) * 4 + ch] - want));
          }
        }
      }
    }
    expect(upErr).toBeLessThanOrEqual(1e-5);
    expect(overlayErr).toBeLessThanOrEqual(1);
    net.destroy();
  });

  test('pictures beyond the preprocessing limits are refused before any GPU work, naming the limit', async () => {
    const net = await load(poolModel(10), GIB_LIMITS);
    const tall = { width: 1, height: 600_000, data: new Uint8Array(600_000 * 4) };
    await rejects(net.classify(tall), /^a 1×600000 picture needs 75000 workgroups along one dimension to preprocess, more than this GPU's maxComputeWorkgroupsPerDimension \(65535\)$/);
    // Too many bytes to bind (checked without making the 1 GiB picture).
    expect(() => PreprocessStage.check(GIB_LIMITS, 16385, 16384, 224, 224))
      .toThrow(/^a 16385×16384 picture needs 1\.00 GiB, more than this GPU's maxStorageBufferBindingSize \(1\.00 GiB\)$/);
    await rejects(net.classify({ width: 4, height: 4, data: new Uint8Array(10) }), /^image: 4×4 needs 64 RGBA bytes, got 10$/);
    net.destroy();
  });
});

/**
 * ReLU6 (Clip(0, 6), MobileNetV2's activation) in the activation family, fused into the convolution
 * before it (src/graph/fuse.ts; the rule written once for every convolution kernel: FUSED_RELU in
 * src/gpu/wgsl-library.ts), forward, backward and guided backward:
 *
 * 1. Fusion: each Conv → Clip(0, 6) of the model is one conv op with `relu6`; a Clip with other bounds,
 *    or whose input is kept (a tap), stays an activation op.
 * 2. Fused = unfused, exactly: the same model loaded with the convolutions' outputs as taps (so the Clips
 *    run in the activation kernel) gives the same logits, input-x-gradient and guided-backprop maps
 *    (K = 2), value for value, under the CPU family's rules (MobileNetV2's stem, a stride-2 conv of few
 *    channels: im2col forward and the rules' data-gradient kernel; the direct kernel for the depthwise
 *    layer; Winograd both ways for the 3×3 stride-1 conv) and with gemm-blocked everywhere (grouped
 *    too); gemm-tiled only with GRADCAM_VARIANTS_ALL=1 (its pipelines take SwiftShader minutes). Both
 *    sides do the same float operations on the same values (max and min forward; backward the
 *    fused mask selects dy where the Clip multiplies it by 1, and 0 where it multiplies by 0), so the
 *    comparison is ===, not a tolerance (=== because a masked 0 is +0 on one side, dy·0 = −0 for a
 *    negative dy on the other).
 * 3. Against the oracles, on the fused engine: logits against onnxruntime-node within 1e-5·max|logit|
 *    (float32 sums of at most 108 terms through 4 layers: L·√n·u = 4·11·6e-8 = 2.6e-6); x ⊙ ∂y/∂x
 *    and guided backprop against the float64 reference (test/reference/graph.ts: Clip's gradient
 *    passes for lo < x < hi; guided, also for g > 0) within 1e-4·max|ref|, the relative error of the
 *    same float32 sums backward, after checking that no Clip input lies within 1e-4 of a bound (where
 *    rounding could flip a decision: the comparison would then not be of the same function).
 */
import { afterAll, describe, expect, test } from 'vitest';
import type { ConvVariantName } from '../src/kernels/variants.ts';
import { Network } from '../src/gradcam/network.ts';
import type { OnnxModel } from '../src/onnx/model.ts';
import { testGpu } from './helpers/gpu.ts';
import { OrtOracle } from './helpers/ort.ts';
import { backwardReference, forwardValues } from './reference/graph.ts';
import { buildModel, int, ints, node, weight } from './reference/models.ts';
import { randomTensor, rng, tensor } from './reference/tensor.ts';

const SHAPE = [1, 5, 9, 8];
const CLASSES = [4, 1];
/** The pre-Clip tensors: as taps they keep every Clip an op of its own. */
const CONV_OUTPUTS = ['y1', 'y2', 'y3'];

/**
 * x [1, 5, 9, 8] → Conv 3×3 stride 2 pad 1 (5 → 12) → Clip(0, hi) → depthwise Conv 3×3 pad 1 → Clip(0, 6)
 * → Conv 3×3 pad 1 (12 → 12) → Clip(0, 6) → GlobalAveragePool → Gemm (6 classes). Weights large enough
 * that every Clip sees values below 0 and above 6 (at least 16 of 240 above).
 */
function model(hi = 6): OnnxModel {
  const r = rng(61);
  const u = (shape: number[], s: number) => randomTensor(shape, r, -s, s);
  return buildModel({
    inputs: { x: SHAPE },
    weights: [
      weight('w1', u([12, 5, 3, 3], 0.8)), weight('b1', u([12], 0.5)), weight('w2', u([12, 1, 3, 3], 1)), weight('b2', u([12], 1)),
      weight('w3', u([12, 12, 3, 3], 0.4)), weight('b3', u([12], 0.5)), weight('fc', u([6, 12], 0.5)), weight('fcb', u([6], 0.3)),
      weight('lo', tensor([], [0])), weight('six', tensor([], [6])), weight('hi', tensor([], [hi])),
    ],
    nodes: [
      node('Conv', ['x', 'w1', 'b1'], ['y1'], { kernel_shape: ints([3, 3]), strides: ints([2, 2]), pads: ints([1, 1, 1, 1]) }),
      node('Clip', ['y1', 'lo', 'hi'], ['a1']),
      node('Conv', ['a1', 'w2', 'b2'], ['y2'], { kernel_shape: ints([3, 3]), pads: ints([1, 1, 1, 1]), group: int(12) }),
      node('Clip', ['y2', 'lo', 'six'], ['a2']),
      node('Conv', ['a2', 'w3', 'b3'], ['y3'], { kernel_shape: ints([3, 3]), pads: ints([1, 1, 1, 1]) }), node('Clip', ['y3', 'lo', 'six'], ['a3']),
      node('GlobalAveragePool', ['a3'], ['gap']), node('Flatten', ['gap'], ['flat'], { axis: int(1) }),
      node('Gemm', ['flat', 'fc', 'fcb'], ['logits'], { transB: int(1) }),
    ],
    outputs: ['logits'],
  });
}

const M = model();
const X = Float32Array.from(randomTensor(SHAPE, rng(62), -3, 3).data);
const INPUT = { shape: SHAPE, data: X };
const VALUES = forwardValues(M, { x: tensor(SHAPE, X) });

const networks: Network[] = [];
async function load(m: OnnxModel, options: Parameters<typeof Network.load>[2] = {}): Promise<Network> {
  const net = await Network.load(await testGpu(), m, options);
  networks.push(net);
  return net;
}
afterAll(() => networks.forEach((n) => n.destroy()));

/** The first index where a and b differ (=== on each value), or −1. */
function firstDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

/** Logits, and for CLASSES (logit) x ⊙ ∂y/∂x (input-x-gradient) and the guided-backprop maps, [C, H, W] each. */
async function run(net: Network): Promise<{ logits: Float32Array; grads: Float32Array[]; guided: Float32Array[] }> {
  net.engine.writeInput(X, SHAPE);
  const logits = (await net.engine.classify()).logits;
  const r = await net.gradCAM(INPUT, { classes: CLASSES, methods: ['input-x-gradient', 'guided-backprop'], upsample: false });
  const raw = (method: string) => CLASSES.map((c) => r.maps.find((m) => m.class === c && m.method === method)!.raw);
  return { logits, grads: raw('input-x-gradient'), guided: raw('guided-backprop') };
}

function worst(got: ArrayLike<number>, want: ArrayLike<number>): { err: number; scale: number } {
  let err = 0, scale = 0;
  for (let i = 0; i < want.length; i++) {
    err = Math.max(err, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  return { err, scale };
}

describe('ReLU6 fused into the convolution before it', () => {
  test('each Conv → Clip(0, 6) is one conv op with relu6; Clip(0, 5) and a Clip whose input is a tap stay activation ops', async () => {
    // Every Clip input crosses both bounds (the test would be vacuous otherwise).
    for (const t of CONV_OUTPUTS) {
      const v = VALUES.get(t)!.data;
      expect(v.filter((x) => x < 0).length > 16 && v.filter((x) => x > 6).length >= 16, `${t} crosses 0 and 6`).toBe(true);
    }
    const fused = await load(M);
    const convs = fused.graph.ops.filter((o) => o.kind === 'conv');
    expect(fused.graph.ops.filter((o) => o.kind === 'activation')).toHaveLength(0);
    expect(convs.map((o) => o.kind === 'conv' && o.relu && o.relu6)).toEqual([true, true, true, false]); // the Gemm head has none
    expect(convs[0].name).toContain('+');

    const other = await load(model(5));
    expect(other.graph.ops.filter((o) => o.kind === 'activation').map((o) => o.onnxTypes)).toEqual([['Clip']]);
    const tapped = await load(M, { taps: ['y2'] });
    expect(tapped.graph.ops.filter((o) => o.kind === 'activation')).toHaveLength(1);
  });

  test.each<[string, ConvVariantName | 'cpu']>([
    ['the CPU rules (im2col and the stem\'s data gradient, direct, Winograd)', 'cpu'], ['gemm-blocked', 'gemm-blocked'], ...(process.env.GRADCAM_VARIANTS_ALL ? [['gemm-tiled', 'gemm-tiled'] as [string, ConvVariantName]] : []),
  ])('fused and unfused give the same logits, input-x-gradient and guided-backprop maps, value for value: %s', async (_what, variant) => {
    const fused = await run(await load(M, { variant }));
    const unfused = await run(await load(M, { variant, taps: CONV_OUTPUTS }));
    expect(firstDifference(fused.logits, unfused.logits), 'logits').toBe(-1);
    CLASSES.forEach((c, k) => {
      expect(firstDifference(fused.grads[k], unfused.grads[k]), `x ⊙ ∂y_${c}/∂x`).toBe(-1);
      expect(firstDifference(fused.guided[k], unfused.guided[k]), `guided-backprop of ${c}`).toBe(-1);
      expect(fused.grads[k].some((v) => v !== 0) && fused.guided[k].some((v) => v !== 0), 'non-zero gradients').toBe(true);
    });
  });

  test('against onnxruntime-node (logits) and the float64 reference (input-x-gradient, guided backprop)', async () => {
    for (const t of CONV_OUTPUTS) {
      const near = VALUES.get(t)!.data.filter((v) => Math.abs(v) < 1e-4 || Math.abs(v - 6) < 1e-4 * 6);
      expect(near, `${t}: values within rounding of a Clip bound`).toHaveLength(0);
    }
    const got = await run(await load(M));
    const want = (await (await OrtOracle.create(M, ['logits'])).run(X, SHAPE, ['logits'])).logits;
    const f = worst(got.logits, want);
    console.log(`logits vs onnxruntime-node: max |Δ| / max |logit| = ${(f.err / f.scale).toExponential(2)}`);
    expect(f.err).toBeLessThanOrEqual(1e-5 * f.scale);

    const logits = VALUES.get('logits')!.data;
    const seeds = CLASSES.map((c) => Float64Array.from(logits, (_, j) => (j === c ? 1 : 0)));
    for (const guided of [false, true]) {
      const ref = backwardReference(M, VALUES, { score: 'logits', seeds, wrt: ['x'], guided }).x;
      CLASSES.forEach((c, k) => {
        const want = guided ? ref[k].data : ref[k].data.map((g, i) => g * X[i]);
        const g = worst(guided ? got.guided[k] : got.grads[k], want);
        console.log(`${guided ? 'guided-backprop' : 'x ⊙ ∂y/∂x'} class ${c}: max |Δ| / max |ref| = ${(g.err / g.scale).toExponential(2)}`);
        expect(g.scale).toBeGreaterThan(0);
        expect(g.err).toBeLessThanOrEqual(1e-4 * g.scale);
      });
    }
  });
});

/**
 * The GPU variant of the convolution (shaders/conv_tiled.wgsl: 64×64 tiles in workgroup memory,
 * split-K for layers with few tiles) against the float64 reference, forward and data gradient, on the
 * shapes that matter for it: many input channels on a small plane (split-K, as GoogLeNet's 7×7
 * layers), stride 2 with asymmetric pads, C_out not a multiple of 64, a fused ReLU (the backward
 * mask), K = 3 classes. It runs on SwiftShader here (correctness only; its speed is a GPU matter).
 *
 * Tolerance: |Δ| ≤ 1e-5 · (max |ref| + 1e-6). Each value is a float32 sum of at most 96·9 = 864 products
 * per GEMM, two GEMMs deep (conv, then the head), relative rounding ≲ 2·864·2⁻²⁴ ≈ 1e-4 in the worst
 * case and ~√864·2⁻²⁴ ≈ 2e-6 typically; a wrong tap or a lost split is O(1/channels) ≥ 1e-3 of the max.
 */
import { describe, expect, test } from 'vitest';
import type { OnnxAttribute } from '../src/onnx/model.ts';
import { Network } from '../src/gradcam/network.ts';
import { decodeOnnx } from '../src/onnx/decode.ts';
import { encodeOnnx } from '../src/onnx/write.ts';
import { splitK } from '../src/kernels/conv.ts';
import { testGpu } from './helpers/gpu.ts';
import { gpuGradients } from './helpers/grad.ts';
import { backwardReference, forwardValues } from './reference/graph.ts';
import { buildModel, int, ints, node, weight } from './reference/models.ts';
import { randomTensor, rng } from './reference/tensor.ts';

const CASES: { name: string; x: number[]; w: number[]; attrs: Record<string, OnnxAttribute> }[] = [
  { name: 'many channels on 5×5: split-K', x: [1, 96, 5, 5], w: [70, 96, 3, 3], attrs: { kernel_shape: ints([3, 3]), pads: ints([1, 1, 1, 1]) } },
  { name: '1×1 on 7×7 with 130 channels: split-K', x: [1, 130, 7, 7], w: [40, 130, 1, 1], attrs: { kernel_shape: ints([1, 1]) } },
  { name: '7×7 stride 2, pads [3,2,2,3], on 20×17', x: [1, 3, 20, 17], w: [19, 3, 7, 7], attrs: { kernel_shape: ints([7, 7]), strides: ints([2, 2]), pads: ints([3, 2, 2, 3]) } },
  { name: '3×3 stride 1 on 18×18 (several tiles)', x: [1, 9, 18, 18], w: [67, 9, 3, 3], attrs: { kernel_shape: ints([3, 3]), pads: ints([1, 1, 1, 1]) } },
  // Groups in the grid (z = group · SPLIT + split), per-group split-K sums; dilation.
  { name: 'group 2 (64 → 70), 3×3 dilation 2 pads 2 on 5×5: split-K per group', x: [1, 64, 5, 5], w: [70, 32, 3, 3], attrs: { kernel_shape: ints([3, 3]), pads: ints([2, 2, 2, 2]), dilations: ints([2, 2]), group: int(2) } },
];

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): [number, number] {
  let d = 0, m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return [d, m];
}

describe('tiled convolution (GPU variant)', () => {
  test('the split-K choice: enough workgroups, at least 4 chunks per split', () => {
    expect(splitK(1, 54)).toEqual({ split: 11, chunksPerSplit: 5 });
    expect(splitK(300, 54)).toEqual({ split: 1, chunksPerSplit: 54 });
    expect(splitK(4, 3)).toEqual({ split: 1, chunksPerSplit: 3 });
  });

  for (const [i, c] of CASES.entries()) {
    test(`${c.name}: forward and data gradient (K = 3) match float64`, async () => {
      const r = rng(100 + i);
      const classes = 6;
      const model = buildModel({
        inputs: { x: c.x },
        weights: [weight('w', randomTensor(c.w, r)), weight('b', randomTensor([c.w[0]], r))],
        nodes: [node('Conv', ['x', 'w', 'b'], ['y'], c.attrs), node('Relu', ['y'], ['a']), node('Flatten', ['a'], ['f'])],
        outputs: ['f'],
      });
      // The head: f → Gemm(W) → logits, with the flattened size known from a reference run.
      const F = (model.outputs[0].shape as number[])[1];
      model.initializers.set('head', weight('head', randomTensor([classes, F], r)));
      model.nodes.push(node('Gemm', ['f', 'head'], ['logits'], { transB: int(1) }));
      model.outputs = [{ name: 'logits', elemType: 'float32', shape: [1, classes] }];
      const decoded = decodeOnnx(encodeOnnx(model));
      const x = randomTensor(c.x, r);
      const net = await Network.load(await testGpu(), decoded, { variant: 'gpu', taps: ['a'] });
      const kernels = net.engine.compiled.dispatches.map((d) => d.kernel);
      if (c.name.includes('split-K')) expect(kernels.some((k) => k.includes('splitk'))).toBe(true);

      const values = forwardValues(decoded, { x });
      const input = { shape: c.x, data: Float32Array.from(x.data) };
      net.engine.writeInput(input.data, input.shape);
      await net.engine.classify();
      const [dy, my] = maxAbsDiff(await net.engine.readTensor('a'), values.get('a')!.data);
      expect(dy).toBeLessThanOrEqual(1e-5 * (my + 1e-6));

      const picked = [4, 0, 2];
      const seeds = picked.map((k) => Float64Array.from({ length: classes }, (_, j) => (j === k ? 1 : 0)));
      const ref = backwardReference(decoded, values, { score: 'logits', seeds, wrt: ['x'] }).x;
      const got = (await gpuGradients(net, input, ['x'], picked)).x;
      picked.forEach((_, k) => {
        const [d, m] = maxAbsDiff(got[k], ref[k].data);
        expect(d, `class ${picked[k]}: ${d} vs max ${m}`).toBeLessThanOrEqual(1e-5 * (m + 1e-6));
      });
      net.destroy();
    });
  }
});

/**
 * The element-wise kernels (shaders/binary.wgsl, activation.wgsl) beyond the kernel cases: a
 * deliberately broken shader is caught, and guided backprop passes through a fused broadcast Add.
 *
 * Broken shaders: the element-wise kernel tests (kernels-forward, kernels-backward on the groups of
 * helpers/kernel-cases.ts) would fail if shaders/binary.wgsl or shaders/activation.wgsl computed
 * something else. Each mutant replaces one expression of a kernel's
 * WGSL for the time of one network (Kernel.code; pipelines are cached by code, so the mutant compiles
 * apart from the real kernel), runs a small model that exercises it (mutantCase), and the same
 * bounds as those tests (|gpu − ref| ≤ rtol·M, helpers/magnitude.ts) must be exceeded somewhere;
 * the real kernels stay within them on the same model.
 */
import { describe, expect, test } from 'vitest';
import { Network } from '../src/gradcam/network.ts';
import type { Reduction } from '../src/gradcam/types.ts';
import type { AnyKernel } from '../src/gpu/kernel.ts';
import { decodeOnnx } from '../src/onnx/decode.ts';
import { encodeOnnx } from '../src/onnx/write.ts';
import { ACTIVATION } from '../src/ops/activation.ts';
import { BINARY } from '../src/ops/binary.ts';
import { testGpu } from './helpers/gpu.ts';
import { gpuGradients } from './helpers/grad.ts';
import type { KernelCase } from './helpers/kernel-cases.ts';
import { loadNetwork, prepare, seeds, softmax64 } from './helpers/kernel-check.ts';
import { backwardBudgets, backwardMagnitudes } from './helpers/magnitude.ts';
import { backwardReference, forwardValues } from './reference/graph.ts';
import { buildModel, node, weight } from './reference/models.ts';
import { maxAbs, maxAbsDiff, numel, randomTensor, rng } from './reference/tensor.ts';

/** The largest |gpu − ref| / allowed over the case's forward checks and its gradients (logit reduction). */
async function worstRatio(c: KernelCase): Promise<number> {
  const { values, mags, fwd } = prepare(c);
  const net = await loadNetwork(c);
  try {
    let worst = 0;
    const note = (got: ArrayLike<number>, want: ArrayLike<number>, tol: (i: number) => number) => {
      for (let i = 0; i < want.length; i++) {
        const err = Math.abs(got[i] - want[i]);
        worst = Math.max(worst, err === 0 ? 0 : Number.isNaN(err) ? Infinity : err / tol(i));
      }
    };
    net.engine.writeInput(Float32Array.from(c.input.data), c.input.shape);
    await net.engine.classify();
    for (const on of c.checks) {
      const m = mags.get(on.tensor)!.data, rtol = fwd.get(on.tensor)!;
      note(await net.engine.readTensor(on.tensor), values.get(on.tensor)!.data, (i) => rtol * m[i]);
    }
    const wrt = c.grads.map((g) => g.tensor);
    const s = seeds(values.get('logits')!, c.classes, 'logit');
    const ref = backwardReference(c.model, values, { score: 'logits', seeds: s.ref, wrt });
    const bound = backwardMagnitudes(c.model, values, 'logits', s.mag, wrt, mags);
    const rtolOf = backwardBudgets(c.model, values, 'logits');
    const got = await gpuGradients(net, { shape: c.input.shape, data: Float32Array.from(c.input.data) }, wrt, c.classes, 'logit');
    const K = c.classes[0].length;
    for (const t of wrt) {
      const per = numel(values.get(t)!.shape.slice(1));
      got[t].forEach((g, b) => {
        const n = Math.floor(b / K);
        const want = ref[t][b].data.subarray(n * per, (n + 1) * per), mag = bound[t][b].data.subarray(n * per, (n + 1) * per);
        note(g, want, (i) => rtolOf.get(t)! * mag[i]);
      });
    }
    return worst;
  } finally {
    net.destroy();
  }
}

/** Runs `fn` with one expression of `kernel`'s WGSL replaced. */
async function mutated<T>(kernel: AnyKernel, from: string, to: string, fn: () => Promise<T>): Promise<T> {
  const real = kernel.code;
  expect(real.split(from).length, `'${from}' occurs once in ${kernel.name}`).toBe(2);
  (kernel as { code: string }).code = real.replace(from, to);
  try {
    return await fn();
  } finally {
    (kernel as { code: string }).code = real;
  }
}

/**
 * One small model that runs every mutated expression: x [2, 3, 4, 5] → the squeeze-and-excite product
 * GAP(x) · x (a broadcast forward and a broadcast gradient sum), Max(x, x) (exact ties), Gelu(x);
 * their sum, weighted by a random constant [1, 3, 4, 5] (dense gradients), averaged per channel →
 * Flatten: 3 classes (no convolution, whose pipelines take seconds to compile on SwiftShader).
 * Inputs uniform in ±3 (float32-exact).
 */
function mutantCase(): KernelCase {
  const r = rng(5);
  const shape = [2, 3, 4, 5];
  const model = buildModel({
    opset: 20, inputs: { x: shape },
    weights: [weight('w', randomTensor([1, 3, 4, 5], r))],
    nodes: [
      node('GlobalAveragePool', ['x'], ['g']), node('Mul', ['g', 'x'], ['s']), node('Max', ['x', 'x'], ['m']), node('Gelu', ['x'], ['u']),
      node('Sum', ['s', 'm', 'u'], ['y']), node('Mul', ['y', 'w'], ['z']), node('GlobalAveragePool', ['z'], ['p']), node('Flatten', ['p'], ['logits']),
    ],
    outputs: ['logits'],
  });
  const on = (tensor: string) => ({ tensor, kernel: 'mutant', branch: tensor });
  return {
    name: 'mutants', model, input: randomTensor(shape, r, -3, 3), checks: ['s', 'm', 'u', 'y'].map(on), grads: ['x', 'g', 's', 'm', 'u'].map(on),
    taps: ['s', 'm', 'u'], classes: [[1, 2], [2, 0]], reductions: ['logit'],
  };
}

describe('a broken element-wise shader fails the kernel tests\' bounds', () => {
  const MUTANTS: { name: string; kernel: AnyKernel; from: string; to: string }[] = [
    {
      name: 'binary backward: the broadcast sum keeps only its first term',
      kernel: BINARY, from: 'for (var r = 0u; r < total; r++)', to: 'for (var r = 0u; r < min(total, 1u); r++)',
    },
    {
      name: 'binary forward: a and b swap their strides along the innermost dimension',
      kernel: BINARY, from: 'case 0u: { return vec2<u32>(p.a0, p.b0); }', to: 'case 0u: { return vec2<u32>(p.b0, p.a0); }',
    },
    {
      name: 'binary backward: a tie of Max gives the whole gradient to each operand (not half)',
      kernel: BINARY, from: 'select(0.0, 0.5 * g, x == o)', to: 'select(0.0, g, x == o)',
    },
    {
      name: "activation backward: GELU's x·φ(x) term subtracted",
      kernel: ACTIVATION, from: '+ u * INV_SQRT_2PI * exp(-0.5 * u * u)', to: '- u * INV_SQRT_2PI * exp(-0.5 * u * u)',
    },
  ];
  test('the real kernels stay within the bounds on the mutants\' model', async () => {
    expect(await worstRatio(mutantCase())).toBeLessThanOrEqual(1);
  });
  for (const m of MUTANTS) {
    test(m.name, async () => {
      const ratio = await mutated(m.kernel, m.from, m.to, () => worstRatio(mutantCase()));
      console.log(`${m.name}: max |Δ|/allowed ${ratio.toExponential(2)}`);
      expect(ratio).toBeGreaterThan(1);
    });
  }
});

/**
 * Guided backprop through a broadcast Add with a fused Relu (shaders/binary.wgsl's backward with
 * MASK and GUIDED: a ResNet's residual Add + Relu, here with a [N, C, 1, 1] operand), against the
 * float64 reference's guided backward (every Relu passes g·[x > 0]·[g > 0]), K = 2 classes, both
 * reductions. A small model without convolutions:
 *   x [1, 3, 8, 8] → a = x · k (a constant [1, 3, 8, 8]) → r = Relu(a + mean_HW(x)) (fused) →
 *   mean_HW(r · w) → Flatten: 3 classes; Grad-CAM's layer r.
 * Error scale: float32 rounding of a few ops on values of order 1 (and guided decisions flipped only
 * where the gradient is within rounding of 0, which moves the result by as little): 1e-5 of the
 * largest |gradient| leaves a wide margin and still catches a wrong mask (an O(1) error).
 */
test('guided-backprop through a broadcast Add + Relu (fused) matches the float64 reference', async () => {
  const r = rng(9);
  const model = buildModel({
    inputs: { x: [1, 3, 8, 8] },
    weights: [weight('k', randomTensor([1, 3, 8, 8], r)), weight('w', randomTensor([1, 3, 8, 8], r))],
    nodes: [
      node('Mul', ['x', 'k'], ['a']), node('GlobalAveragePool', ['x'], ['g']), node('Add', ['a', 'g'], ['s']), node('Relu', ['s'], ['r']),
      node('Mul', ['r', 'w'], ['z']), node('GlobalAveragePool', ['z'], ['p']), node('Flatten', ['p'], ['logits']),
    ],
    outputs: ['logits'],
  });
  const net = await Network.load(await testGpu(), decodeOnnx(encodeOnnx(model)));
  try {
    // The Add and its Relu are one op (the Relu fused), the Relu's output the layer.
    expect(net.graph.ops.map((o) => o.kind)).toEqual(['binary', 'avgpool', 'binary', 'binary', 'avgpool']);
    expect(net.graph.ops[2].kind === 'binary' && net.graph.ops[2].relu).toBe(true);
    const x = randomTensor([1, 3, 8, 8], r, -2, 2);
    const values = forwardValues(model, { x });
    const logits = values.get('logits')!.data;
    const p = softmax64(logits);
    for (const reduction of ['logit', 'softmax'] as Reduction[]) {
      const res = await net.gradCAM({ shape: [1, 3, 8, 8], data: Float32Array.from(x.data) }, {
        classes: [0, 2], featureLayers: 'r', reduction, upsample: false, methods: ['guided-backprop'],
      });
      const seeds = [0, 2].map((c) => Float64Array.from(logits, (_, j) => (reduction === 'logit' ? (j === c ? 1 : 0) : p[c] * ((j === c ? 1 : 0) - p[j]))));
      const want = backwardReference(model, values, { score: 'logits', seeds, wrt: ['x'], guided: true }).x;
      const plain = backwardReference(model, values, { score: 'logits', seeds, wrt: ['x'] }).x;
      [0, 2].forEach((c, k) => {
        const got = res.maps.find((m) => m.class === c)!.raw;
        const scale = maxAbs(want[k].data);
        expect(scale, 'a guided gradient').toBeGreaterThan(0);
        // The guided gradient differs from the plain one (the check is not vacuous).
        expect(maxAbsDiff(want[k].data, plain[k].data)).toBeGreaterThan(0.1 * scale);
        expect(maxAbsDiff(got, want[k].data), `${reduction}, class ${c}`).toBeLessThanOrEqual(1e-5 * scale);
      });
    }
  } finally {
    net.destroy();
  }
});

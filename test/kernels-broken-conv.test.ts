/**
 * The grouped, depthwise and dilated convolution kernels and the dilated max pool (issue 18), beyond
 * kernels-forward/backward (which check the real kernels on helpers/kernel-cases.ts):
 *
 * 1. A deliberately broken kernel fails the same checks. Each mutant is one plausible slip in a
 *    shader (a dilation or a group offset dropped, the fused ReLU's mask lost, a window range too
 *    short), compiled in place of the real one (helpers/broken-pipelines.ts, a PipelineCache that
 *    edits the WGSL it is given) on a small model that runs it; the comparison of
 *    kernels-forward/backward (|gpu − ref| ≤ rtol·M, helpers/magnitude.ts) must fail there: its worst
 *    |Δ|/allowed is > 1. The same models with the real kernels must pass it (checked first).
 * 2. Guided backprop through them: the GUIDED override of the direct (depthwise) kernel and of the
 *    per-group GEMM, where a ReLU is fused, against the float64 reference's guided backward pass
 *    (every ReLU passes g_out·[x > 0]·[g_out > 0]). Tolerance: the unguided bound rtol·M of
 *    helpers/magnitude.ts, whose M sums |terms| over a superset of the guided pass's terms (guided
 *    backprop only zeroes terms), provided no guided decision (the sign of a gradient reaching a ReLU)
 *    lies within rounding of 0: checked on the reference.
 */
import { describe, expect, test } from 'vitest';
import type { Network } from '../src/gradcam/network.ts';
import { Network as Net } from '../src/gradcam/network.ts';
import type { KernelVariant } from '../src/gpu/dispatch.ts';
import type { OnnxAttribute, OnnxModel } from '../src/onnx/model.ts';
import { decodeOnnx } from '../src/onnx/decode.ts';
import { encodeOnnx } from '../src/onnx/write.ts';
import { Engine } from '../src/runtime/engine.ts';
import { BrokenPipelines } from './helpers/broken-pipelines.ts';
import { gpuGradients } from './helpers/grad.ts';
import { testGpu } from './helpers/gpu.ts';
import type { KernelCase } from './helpers/kernel-cases.ts';
import { prepare, seeds } from './helpers/kernel-check.ts';
import { backwardBudgets, backwardMagnitudes } from './helpers/magnitude.ts';
import { backwardReference } from './reference/graph.ts';
import { buildModel, int, ints, node, weight } from './reference/models.ts';
import { numel, randomTensor, rng, tensor, type Tensor } from './reference/tensor.ts';

/** x → [ops] → Flatten → Gemm (6 classes, W ~ U(±1.5/√F)) → logits; conv weights ~ U(±1/√fan_in). */
function model(name: string, input: Tensor, ops: (add: (op: string, ins: string[], out: string, a?: Record<string, OnnxAttribute>) => void, w: (n: string, shape: number[], s: number) => string) => string, seed: number): KernelCase {
  const r = rng(seed);
  const weights: ReturnType<typeof weight>[] = [];
  const nodes: ReturnType<typeof node>[] = [];
  const w = (n: string, shape: number[], s: number) => {
    weights.push(weight(n, randomTensor(shape, r, -s, s)));
    return n;
  };
  const feature = ops((op, ins, out, a = {}) => nodes.push(node(op, ins, [out], a)), w);
  const F = numel((buildModel({ inputs: { x: input.shape }, weights: [...weights], nodes: [...nodes], outputs: [feature] }).outputs[0].shape as number[]).slice(1));
  nodes.push(node('Flatten', [feature], ['flat'], { axis: int(1) }), node('Gemm', ['flat', w('head_w', [6, F], 1.5 / Math.sqrt(F)), w('head_b', [6], 0.5)], ['logits'], { transB: int(1) }));
  const m: OnnxModel = buildModel({ inputs: { x: input.shape }, weights, nodes, outputs: ['logits'] });
  return { name, model: m, input, checks: [], grads: [], taps: [], classes: input.shape[0] === 1 ? [[3, 0]] : [[3, 0], [5, 1]], reductions: ['logit'] };
}

/** Distinct values on a 1/64 grid (no max-pool ties), shuffled. */
function distinct(shape: number[], seed: number): Tensor {
  const r = rng(seed);
  const n = numel(shape);
  const v = Array.from({ length: n }, (_, k) => (k + 0.5) / 64 - n / 128);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [v[i], v[j]] = [v[j], v[i]];
  }
  return tensor(shape, v);
}

const conv = (group: number, pads: number[], dilations: number[], k: number[]): Record<string, OnnxAttribute> =>
  ({ kernel_shape: ints(k), group: int(group), pads: ints(pads), dilations: ints(dilations) });

const MODELS = {
  // Per-group GEMMs both ways (17 output channels per group forward, 8 per group backward), dilation [2, 1], ReLU fused.
  grouped: model('group 2, 16 → 34, 3×3 dilation [2,1] + Relu', randomTensor([2, 16, 6, 5], rng(41)), (add, w) => {
    add('Conv', ['x', w('w', [34, 8, 3, 3], 1 / Math.sqrt(72)), w('b', [34], 0.5)], 'y', conv(2, [2, 1, 2, 1], [2, 1], [3, 3]));
    add('Relu', ['y'], 'r');
    return 'r';
  }, 42),
  // The direct kernel both ways (depthwise ×2 forward, 1 channel per group backward), dilation 2, ReLU fused (the mask).
  depthwise: model('depthwise ×2, 3×3 dilation 2 + Relu', randomTensor([1, 6, 7, 6], rng(43)), (add, w) => {
    add('Conv', ['x', w('w', [12, 1, 3, 3], 1 / 3), w('b', [12], 0.5)], 'y', conv(6, [2, 2, 2, 2], [2, 2], [3, 3]));
    add('Relu', ['y'], 'r');
    return 'r';
  }, 44),
  maxpool: model('maxpool 3×3 dilation 2 pads 1', distinct([1, 3, 9, 8], 45), (add) => {
    add('MaxPool', ['x'], 'p', { kernel_shape: ints([3, 3]), pads: ints([1, 1, 1, 1]), dilations: ints([2, 2]) });
    return 'p';
  }, 46),
};

type ModelKey = keyof typeof MODELS;
interface Mutant { what: string; find: string; replacement: string; model: ModelKey; tensor: string; direction: 'forward' | 'backward'; variant?: KernelVariant }

const MUTANTS: Mutant[] = [
  { what: 'depthwise: the forward ignores the dilation', model: 'depthwise', tensor: 'r', direction: 'forward',
    find: 'iy = oy * i32(SH) - p.padT + i32(ky * DH);', replacement: 'iy = oy * i32(SH) - p.padT + i32(ky);' },
  { what: 'depthwise: a channel reads group c mod cols instead of c / cols', model: 'depthwise', tensor: 'r', direction: 'forward',
    find: 'let groupIn = (c / p.cols) * p.rows * inHW;', replacement: 'let groupIn = (c % p.cols) * p.rows * inHW;' },
  { what: 'depthwise: the transposed window ignores the dilation', model: 'depthwise', tensor: 'x', direction: 'backward',
    find: 'let ty = oy + p.padT - i32(ky * DH);', replacement: 'let ty = oy + p.padT - i32(ky);' },
  { what: 'depthwise: the backward drops the fused ReLU\'s mask', model: 'depthwise', tensor: 'x', direction: 'backward',
    find: 'v = select(vec4<f32>(0.0), v, fusedPasses4(y, v));', replacement: 'v = v + 0.0 * y;' },
  { what: 'grouped GEMM: every group reads group 0\'s input channels', model: 'grouped', tensor: 'r', direction: 'forward',
    find: 'let groupIn = grp * p.rows * inHW;', replacement: 'let groupIn = 0u;' },
  { what: 'grouped GEMM: the data gradient uses group 0\'s weights for every group', model: 'grouped', tensor: 'x', direction: 'backward',
    find: 'var weights0 = grp * rows * tapStride;', replacement: 'var weights0 = 0u;' },
  { what: 'grouped GEMM (GPU variant, tiled): every workgroup computes group 0', model: 'grouped', tensor: 'r', direction: 'forward', variant: 'gpu',
    find: 'let grp = wid.z / SPLIT;', replacement: 'let grp = 0u;' },
  { what: 'max pool: the forward ignores the dilation', model: 'maxpool', tensor: 'p', direction: 'forward',
    find: 'let iy = oy * i32(SH) - p.padT + i32(ky * DH);', replacement: 'let iy = oy * i32(SH) - p.padT + i32(ky);' },
  { what: 'max pool: the backward visits windows of the undilated extent only', model: 'maxpool', tensor: 'x', direction: 'backward',
    find: 'let oy0 = max(0, (iy + p.padT - i32((KH - 1u) * DH + 1u) + i32(SH)) / i32(SH));', replacement: 'let oy0 = max(0, (iy + p.padT - i32(KH) + i32(SH)) / i32(SH));' },
];

/** max over values of |got − ref| / (rtol·M). */
function worstRatio(got: ArrayLike<number>, ref: ArrayLike<number>, rtol: number, mag: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < ref.length; i++) {
    const err = Math.abs(got[i] - ref[i]);
    if (err > 0) worst = Math.max(worst, err / (rtol * mag[i]));
  }
  return worst;
}

/** The worst |Δ|/allowed of `tensor` (forward value or gradient) on an engine built with `pipelines`. */
async function check(c: KernelCase, tensor: string, direction: 'forward' | 'backward', variant: KernelVariant | undefined, pipelines?: BrokenPipelines): Promise<number> {
  const { values, mags, fwd } = prepare(c);
  const engine = await Engine.create(await testGpu(), decodeOnnx(encodeOnnx(c.model)), { taps: [tensor].filter((t) => t !== 'x'), pipelines, variant });
  try {
    const input = { shape: c.input.shape, data: Float32Array.from(c.input.data) };
    if (direction === 'forward') {
      engine.writeInput(input.data, input.shape);
      await engine.classify();
      return worstRatio(await engine.readTensor(tensor), values.get(tensor)!.data, fwd.get(tensor)!, mags.get(tensor)!.data);
    }
    const classes = c.input.shape[0] === 1 ? c.classes[0] : c.classes;
    const got = await gpuGradients({ engine } as Network, input, [tensor], classes);
    const s = seeds(values.get('logits')!, c.classes, 'logit');
    const ref = backwardReference(c.model, values, { score: 'logits', seeds: s.ref, wrt: [tensor] })[tensor];
    const bound = backwardMagnitudes(c.model, values, 'logits', s.mag, [tensor])[tensor];
    const rtol = backwardBudgets(c.model, values, 'logits').get(tensor)!;
    return Math.max(...got[tensor].map((g, k) => {
      const per = g.length, n = Math.floor(k / c.classes[0].length);
      return worstRatio(g, ref[k].data.subarray(n * per, (n + 1) * per), rtol, bound[k].data.subarray(n * per, (n + 1) * per));
    }));
  } finally {
    engine.destroy();
  }
}

describe('a deliberately broken grouped, depthwise, dilated conv or dilated max-pool kernel fails the kernel checks', () => {
  test('the real kernels pass them on the same models', async () => {
    const pairs = [...new Set(MUTANTS.map((m) => `${m.model}|${m.tensor}|${m.direction}|${m.variant ?? ''}`))];
    for (const p of pairs) {
      const [key, t, direction, variant] = p.split('|');
      const ratio = await check(MODELS[key as ModelKey], t, direction as 'forward', (variant || undefined) as KernelVariant | undefined);
      console.log(`real kernels: ${key} ${direction} '${t}'${variant ? ` (${variant} variant)` : ''}: max |Δ|/allowed ${ratio.toExponential(2)}`);
      expect(ratio, p).toBeLessThanOrEqual(1);
    }
  });

  test.each(MUTANTS.map((m) => [m.what, m] as const))('%s', async (_what, m) => {
    const broken = new BrokenPipelines((await testGpu()).device, m.find, m.replacement);
    const ratio = await check(MODELS[m.model], m.tensor, m.direction, m.variant, broken);
    expect(broken.applied, 'the mutant was compiled').toBeGreaterThan(0);
    console.log(`${m.what}: max |Δ|/allowed at '${m.tensor}' (${m.direction}) = ${ratio.toExponential(2)}`);
    expect(ratio).toBeGreaterThan(1);
  });
});

describe('guided backprop through the direct (depthwise) kernel and the per-group GEMM', () => {
  test('guided-backprop matches the float64 reference\'s guided backward pass, K = 2', async () => {
    // x [1, 3, 8, 7] → 1×1 conv 3 → 8 + Relu → depthwise 3×3/2 pad 1 + Relu (direct both ways)
    // → group 2 1×1 8 → 32 + Relu (per-group GEMM forward, 16 per group; direct backward, 4 per group) → GAP → Gemm.
    const r = rng(47);
    const u = (shape: number[], s: number) => randomTensor(shape, r, -s, s);
    const x = u([1, 3, 8, 7], 1);
    const m = buildModel({
      inputs: { x: [1, 3, 8, 7] },
      weights: [
        weight('w1', u([8, 3, 1, 1], 0.6)), weight('b1', u([8], 0.3)), weight('w2', u([8, 1, 3, 3], 0.33)), weight('b2', u([8], 0.3)),
        weight('w3', u([32, 4, 1, 1], 0.5)), weight('b3', u([32], 0.3)), weight('fc', u([5, 32], 0.3)), weight('fcb', u([5], 0.3)),
      ],
      nodes: [
        node('Conv', ['x', 'w1', 'b1'], ['c1']), node('Relu', ['c1'], ['a']),
        node('Conv', ['a', 'w2', 'b2'], ['c2'], { kernel_shape: ints([3, 3]), strides: ints([2, 2]), pads: ints([1, 1, 1, 1]), group: int(8) }), node('Relu', ['c2'], ['d']),
        node('Conv', ['d', 'w3', 'b3'], ['c3'], { group: int(2) }), node('Relu', ['c3'], ['g']),
        node('GlobalAveragePool', ['g'], ['gap']), node('Flatten', ['gap'], ['f']), node('Gemm', ['f', 'fc', 'fcb'], ['logits'], { transB: int(1) }),
      ],
      outputs: ['logits'],
    });
    const c: KernelCase = { name: 'guided', model: m, input: x, checks: [], grads: [], taps: [], classes: [[1, 3]], reductions: ['logit'] };
    const { values } = prepare(c);
    const net = await Net.load(await testGpu(), decodeOnnx(encodeOnnx(m)));
    try {
      const kernels = net.engine.compiled.dispatches.map((d) => d.kernel);
      expect(kernels.filter((k) => k === 'depthwise.forward.conv')).toHaveLength(1);
      const result = await net.gradCAM({ shape: x.shape, data: Float32Array.from(x.data) }, { classes: [1, 3], methods: ['guided-backprop'], upsample: false });
      const s = seeds(values.get('logits')!, c.classes, 'logit');
      const guided = backwardReference(m, values, { score: 'logits', seeds: s.ref, wrt: ['x'], guided: true }).x;
      const bound = backwardMagnitudes(m, values, 'logits', s.mag, ['x']).x;
      const rtol = backwardBudgets(m, values, 'logits').get('x')!;
      // No guided decision within rounding of 0: each gradient reaching a ReLU output, in the guided pass,
      // is 0 or further from 0 than its own bound.
      for (const t of ['a', 'd', 'g']) {
        const gt = backwardReference(m, values, { score: 'logits', seeds: s.ref, wrt: [t], guided: true })[t];
        const bt = backwardMagnitudes(m, values, 'logits', s.mag, [t])[t];
        const rt = backwardBudgets(m, values, 'logits').get(t)!;
        gt.forEach((g, k) => g.data.forEach((v, i) => {
          if (v !== 0) expect(Math.abs(v), `guided gradient at ${t}[${i}] near 0`).toBeGreaterThan(4 * rt * bt[k].data[i]);
        }));
      }
      [1, 3].forEach((cls, k) => {
        const map = result.maps.find((mp) => mp.method === 'guided-backprop' && mp.class === cls)!;
        expect(map.channels).toBe(3);
        const ratio = worstRatio(map.raw, guided[k].data, rtol, bound[k].data);
        console.log(`guided-backprop, class ${cls}: max |Δ|/allowed ${ratio.toExponential(2)}`);
        expect(Math.max(...guided[k].data.map(Math.abs)), 'a non-zero guided gradient').toBeGreaterThan(0);
        expect(ratio).toBeLessThanOrEqual(1);
        // Guided and plain differ here (the test reaches the GUIDED override, not only the mask).
        const plain = backwardReference(m, values, { score: 'logits', seeds: [s.ref[k]], wrt: ['x'] }).x[0];
        expect(worstRatio(plain.data, guided[k].data, rtol, bound[k].data), 'guided differs from plain').toBeGreaterThan(1);
      });
    } finally {
      net.destroy();
    }
  });
});

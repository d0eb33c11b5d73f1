/**
 * The kernel checks catch a broken kernel of the layout ops and LayerNormalization (issue 18): each
 * mutant below is one plausible slip in a shader, compiled in place of the real one (a PipelineCache
 * that edits the WGSL it is given), on the ConvNeXt channels-last case of helpers/kernel-cases.ts
 * (Transpose → LayerNorm → MatMul → Relu → MatMul → Transpose; a channel Split as views). The same comparison as
 * kernels-forward/backward (|gpu − ref| ≤ rtol·M, helpers/magnitude.ts) must fail for the mutant's
 * tensor: its worst |Δ|/allowed is > 1. (The real kernels pass that comparison in those two files.)
 */
import { describe, expect, test } from 'vitest';
import type { Network } from '../src/gradcam/network.ts';
import { decodeOnnx } from '../src/onnx/decode.ts';
import { encodeOnnx } from '../src/onnx/write.ts';
import { Engine } from '../src/runtime/engine.ts';
import { gpuGradients } from './helpers/grad.ts';
import { BrokenPipelines } from './helpers/broken-pipelines.ts';
import { testGpu } from './helpers/gpu.ts';
import { kernelCases } from './helpers/kernel-cases.ts';
import { prepare, seeds } from './helpers/kernel-check.ts';
import { backwardBudgets, backwardMagnitudes } from './helpers/magnitude.ts';
import { backwardReference } from './reference/graph.ts';

/** max over values of |got − ref| / (rtol·M). */
function worstRatio(got: ArrayLike<number>, ref: ArrayLike<number>, rtol: number, mag: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < ref.length; i++) {
    const err = Math.abs(got[i] - ref[i]);
    if (err > 0) worst = Math.max(worst, err / (rtol * mag[i]));
  }
  return worst;
}

const MUTANTS = [
  {
    what: 'Transpose gather reads the output stride instead of the input stride',
    find: 'xi += s.x * g(d, 1);', replacement: 'xi += s.x * g(d, 5);', tensor: 'b0/t', direction: 'forward',
  },
  {
    what: 'the scatter (Transpose backward) walks dy with the input strides',
    find: 'yi += (lo[pick[d]] + u % len) * g(d, 5);', replacement: 'yi += (lo[pick[d]] + u % len) * g(d, 1);', tensor: 'b0/ln', direction: 'backward',
  },
  {
    what: 'LayerNorm backward without the variance term x̂·mean(g·x̂)',
    find: '- (x[base + i] - s.x) * s.y * (gxSum / n)', replacement: '', tensor: 'b0/t', direction: 'backward',
  },
  {
    what: 'LayerNorm forward with the variance divided by n − 1',
    find: 'return vec2<f32>(mean, inverseSqrt(sq / f32(p.inner) + p.epsilon));', replacement: 'return vec2<f32>(mean, inverseSqrt(sq / f32(p.inner - 1u) + p.epsilon));', tensor: 'b0/ln', direction: 'forward',
  },
  {
    // The channels of a Split's unused part get no gradient from anyone: only the fill zeroes them.
    what: 'the zero fill of a channel split\'s gradient writes 1',
    find: 'dst[item * p.dstStride + p.dstOffset + id % p.inCount] = p.value;', replacement: 'dst[item * p.dstStride + p.dstOffset + id % p.inCount] = p.value + 1.0;', tensor: 'b3/in', direction: 'backward',
  },
] as const;

describe('a deliberately broken layout or LayerNorm kernel fails the kernel checks', () => {
  const c = kernelCases().find((k) => k.name.startsWith('ConvNeXt channels-last chain'))!;
  test.each(MUTANTS.map((m) => [m.what, m] as const))('%s', async (_what, m) => {
    const { values, mags, fwd } = prepare(c);
    const gpu = await testGpu();
    const broken = new BrokenPipelines(gpu.device, m.find, m.replacement);
    const engine = await Engine.create(gpu, decodeOnnx(encodeOnnx(c.model)), { taps: c.taps, pipelines: broken });
    try {
      const name = m.tensor;
      let ratio: number;
      if (m.direction === 'forward') {
        expect(broken.applied, 'the mutant was compiled').toBeGreaterThan(0);
        engine.writeInput(Float32Array.from(c.input.data), c.input.shape);
        await engine.classify();
        ratio = worstRatio(await engine.readTensor(name), values.get(name)!.data, fwd.get(name)!, mags.get(name)!.data);
      } else {
        const input = { shape: c.input.shape, data: Float32Array.from(c.input.data) };
        const got = await gpuGradients({ engine } as Network, input, [name], c.classes[0]);
        expect(broken.applied, 'the mutant was compiled').toBeGreaterThan(0);
        const s = seeds(values.get('logits')!, c.classes, 'logit');
        const ref = backwardReference(c.model, values, { score: 'logits', seeds: s.ref, wrt: [name] })[name];
        const bound = backwardMagnitudes(c.model, values, 'logits', s.mag, [name])[name];
        const rtol = backwardBudgets(c.model, values, 'logits').get(name)!;
        ratio = Math.max(...got[name].map((g, k) => worstRatio(g, ref[k].data, rtol, bound[k].data)));
      }
      console.log(`${m.what}: max |Δ|/allowed at '${name}' = ${ratio.toExponential(2)}`);
      expect(ratio).toBeGreaterThan(1);
    } finally {
      engine.destroy();
    }
  });
});

/**
 * Runs on one Network share its buffers (input, classes, activations, maps) and read-back staging
 * buffers, so the network serialises them: each classify, gradCAM and readTensor call is one run,
 * from the input write to the decoded result, in call order, also across the engine replacement
 * that explaining a tensor hidden by fusion causes (Network.keep).
 *
 * Property: N calls started at once (Promise.all) with a seeded mix of kinds, inputs (tensors and
 * pictures of several sizes), classes, layers (one of them hidden by fusion), reductions and
 * display options give exactly — bit for bit — the results of the same calls made one at a time,
 * in the same order, on a fresh network. Exactly: the same runs on the same buffers compute the
 * same values in the same order; only the timings may differ. Before the queue, concurrent calls
 * read each other's inputs and classes, and rejected with OperationError when two of them mapped
 * one staging buffer.
 *
 * A small model (convolutions, a fused ReLU, max pooling, a concat, global pooling, Gemm) keeps it
 * CI-sized on SwiftShader: a run takes milliseconds.
 */
import { describe, expect, test } from 'vitest';
import { Network } from '../src/gradcam/network.ts';
import type { GradcamMap, GradcamOptions, ModelInput } from '../src/gradcam/types.ts';
import { decodeOnnx } from '../src/onnx/decode.ts';
import { encodeOnnx } from '../src/onnx/write.ts';
import { Rng } from '../weights/generate/random.ts';
import { bits } from './helpers/bits.ts';
import { testGpu } from './helpers/gpu.ts';
import { randomPicture, SMALL_CLASSES, SMALL_SHAPE, smallModel } from './helpers/small-model.ts';

const SHAPE = SMALL_SHAPE;
const CLASSES = SMALL_CLASSES;


type Call =
  | { kind: 'gradcam'; input: ModelInput; options: GradcamOptions }
  | { kind: 'classify'; input: ModelInput; top: number }
  | { kind: 'read'; tensor: string };


function tensorInput(r: Rng): ModelInput {
  const data = new Float32Array(SHAPE.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = r.uniform(-2, 2);
  return { shape: SHAPE, data };
}

/** A seeded mix of calls: every kind, input type, class form, layer (and the hidden 'c1'), reduction. */
function calls(seed: number, n: number): Call[] {
  const r = new Rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[r.nextU32() % xs.length];
  const inputs: ModelInput[] = [tensorInput(r), tensorInput(r), randomPicture(r, 16, 12), randomPicture(r, 37, 23), randomPicture(r, 9, 30)];
  const layers = ['a1', 'p1', 'a2', 'pp', 'cat', 'a3', 'c1'];
  const out: Call[] = [];
  for (let i = 0; i < n; i++) {
    const roll = r.uniform();
    if (roll < 0.2) {
      out.push({ kind: 'classify', input: pick(inputs), top: 1 + (r.nextU32() % 5) });
    } else if (roll < 0.28) {
      out.push({ kind: 'read', tensor: pick(['x', 'a1', 'logits']) });
    } else {
      const classes = pick([
        () => r.nextU32() % CLASSES,
        () => [r.nextU32() % CLASSES, r.nextU32() % CLASSES, r.nextU32() % CLASSES],
        () => 'top' as const,
        () => `top${1 + (r.nextU32() % 4)}` as `top${number}`,
      ])();
      const featureLayers = r.uniform() < 0.3 ? [pick(layers), pick(layers)] : pick(layers);
      out.push({
        kind: 'gradcam', input: pick(inputs),
        options: { classes, featureLayers, reduction: pick(['logit', 'softmax'] as const), upsample: r.uniform() < 0.5, overlay: r.uniform() < 0.4 },
      });
    }
  }
  // The hidden tensor at least once, after other calls: its engine replacement happens mid-flight.
  out[Math.floor(n / 2)] = { kind: 'gradcam', input: inputs[0], options: { classes: 'top2', featureLayers: ['c1', 'a3'] } };
  return out;
}

function run(net: Network, c: Call): Promise<unknown> {
  if (c.kind === 'gradcam') return net.gradCAM(c.input, c.options);
  if (c.kind === 'classify') return net.classify(c.input, c.top);
  return net.readTensor(c.tensor);
}


describe('concurrent calls on one Network', () => {
  for (const seed of [1, 2]) {
    test(`${12} calls at once (seed ${seed}) give bitwise the results of the same calls one at a time`, async () => {
      const gpu = await testGpu();
      const model = decodeOnnx(encodeOnnx(smallModel(7, 'flatten')));
      const mix = calls(seed, 12);

      const sequential = await Network.load(gpu, model);
      const one: unknown[] = [];
      for (const c of mix) one.push(bits(await run(sequential, c)));
      sequential.destroy();

      const shared = await Network.load(gpu, model);
      const all = await Promise.allSettled(mix.map((c) => run(shared, c)));
      shared.destroy();

      all.forEach((s, i) => {
        expect(s.status, `call ${i} (${mix[i].kind}): ${s.status === 'rejected' ? String(s.reason) : ''}`).toBe('fulfilled');
        expect(bits((s as PromiseFulfilledResult<unknown>).value), `call ${i} (${mix[i].kind})`).toEqual(one[i]);
      });
    });
  }

  test('ten gradCAM calls with different classes, and two classify calls on different pictures, at once', async () => {
    // The reported cases: class 0's call got another class's map; classify got the other picture's logits.
    const gpu = await testGpu();
    const net = await Network.load(gpu, decodeOnnx(encodeOnnx(smallModel(7, 'flatten'))));
    const r = new Rng(3);
    const x = tensorInput(r);
    const [p, q] = [randomPicture(r, 16, 12), randomPicture(r, 20, 20)];
    const alone: GradcamMap[] = [];
    for (let c = 0; c < CLASSES; c++) alone.push((await net.gradCAM(x, { classes: c, featureLayers: 'a3' })).maps[0]);
    const [lp, lq] = [(await net.classify(p)).logits, (await net.classify(q)).logits];
    const [maps, cp, cq] = await Promise.all([
      Promise.all([...Array(CLASSES).keys()].map((c) => net.gradCAM(x, { classes: c, featureLayers: 'a3' }))),
      net.classify(p), net.classify(q),
    ]);
    maps.forEach((m, c) => {
      expect(m.maps[0].class).toBe(c);
      expect(bits(m.maps[0])).toEqual(bits(alone[c]));
    });
    expect(bits(cp.logits)).toEqual(bits(lp));
    expect(bits(cq.logits)).toEqual(bits(lq));
    net.destroy();
  });
});

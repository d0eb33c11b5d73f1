/**
 * The 96×96 twin, googlenet-torchvision-seeded (test/helpers/googlenets.ts: the zoo model's graph at a
 * fifth of the cost; its input declared [1, 3, 96, 96] in the bytes both sides run), end to end on the
 * Engine against onnxruntime-node (CPU, an independent implementation) on the same ONNX bytes, for 4
 * seeded inputs of both regimes (image-like and noise: regimeInput). The full-size model
 * (googlenet-zoo-seeded at 224) is checked the same way, one input per regime, on the network of
 * test/googlenet-zoo.test.ts.
 *
 * Tolerance: max |Δlogit| ≤ 1e-3 · max |logit|. Both sides compute in float32 with different
 * summation orders; over ~60 layers with reductions of up to 4608 terms, relative rounding
 * differences of order 1e-5 per layer accumulate to ~1e-4 at the logits: 1e-3 leaves a margin of 10
 * without hiding a wrong kernel, which shows up as O(1) relative error.
 */
import { test } from 'vitest';
import { Engine } from '../src/runtime/engine.ts';
import { expectLogitsAgree } from './helpers/googlenet-checks.ts';
import { googlenetCase, regimeInput } from './helpers/googlenets.ts';
import { testGpu } from './helpers/gpu.ts';
import { OrtOracle } from './helpers/ort.ts';

test('googlenet-torchvision-seeded: logits and top-5 agree with onnxruntime-node for 4 seeded inputs', async () => {
  const { model, shape, size } = googlenetCase('googlenet-torchvision-seeded');
  const engine = await Engine.create(await testGpu(), model);
  const logitsName = engine.graph.logits;
  const oracle = await OrtOracle.create(model, [logitsName]);
  for (const seed of [1, 2, 3, 4]) {
    const x = regimeInput(seed, size);
    const want = (await oracle.run(x, shape, [logitsName]))[logitsName];
    engine.writeInput(x);
    expectLogitsAgree((await engine.classify()).logits, want, `seed ${seed}`);
  }
  engine.destroy();
});

/**
 * Both generated GoogLeNets end to end against onnxruntime-node (CPU, an independent implementation)
 * on the same ONNX bytes, for several seeded inputs: googlenet-zoo-seeded at its full 224×224,
 * googlenet-torchvision-seeded at 96×96 (test/helpers/googlenets.ts: the same graph at a fifth of the
 * cost; its input declared [1, 3, 96, 96] in the bytes both sides run).
 *
 * Tolerance: max |Δlogit| ≤ 1e-3 · max |logit|. Both sides compute in float32 with different
 * summation orders; over ~60 layers with reductions of up to 4608 terms, relative rounding
 * differences of order 1e-5 per layer accumulate to ~1e-4 at the logits: 1e-3 leaves a margin of 10
 * without hiding a wrong kernel, which shows up as O(1) relative error.
 */
import { describe, expect, test } from 'vitest';
import { Engine } from '../src/runtime/engine.ts';
import { Rng } from '../weights/generate/random.ts';
import { googlenetCase, type GooglenetName } from './helpers/googlenets.ts';
import { testGpu } from './helpers/gpu.ts';
import { OrtOracle } from './helpers/ort.ts';

function topK(v: Float32Array, k: number): number[] {
  return [...v.keys()].sort((a, b) => v[b] - v[a]).slice(0, k);
}

/** A [3, size, size] input. */
function seededInput(seed: number, size: number): Float32Array {
  const n = 3 * size * size;
  const rng = new Rng(seed);
  // Half the inputs image-like (smooth, 0–255 minus means), half noise: both regimes matter.
  if (seed % 2 === 0) return Float32Array.from({ length: n }, () => rng.normal() * 50);
  const out = new Float32Array(n);
  const [fx, fy, ph] = [rng.uniform() * 0.1, rng.uniform() * 0.1, rng.uniform() * 6];
  for (let i = 0; i < n; i++) {
    const x = i % size, y = Math.floor(i / size) % size, c = Math.floor(i / size / size);
    out[i] = 120 * Math.sin(fx * x + ph + c) * Math.cos(fy * y - c) + 10 * rng.normal();
  }
  return out;
}

for (const name of ['googlenet-zoo-seeded', 'googlenet-torchvision-seeded'] as GooglenetName[]) {
  describe(name, () => {
    test('logits and top-5 agree with onnxruntime-node for 4 seeded inputs', async () => {
      const { model, shape, size } = googlenetCase(name);
      const engine = await Engine.create(await testGpu(), model);
      const logitsName = engine.graph.logits;
      const oracle = await OrtOracle.create(model, [logitsName]);
      for (const seed of [1, 2, 3, 4]) {
        const x = seededInput(seed, size);
        const want = (await oracle.run(x, shape, [logitsName]))[logitsName];
        engine.writeInput(x);
        const got = (await engine.classify()).logits;
        let err = 0, scale = 0;
        for (let i = 0; i < want.length; i++) {
          err = Math.max(err, Math.abs(got[i] - want[i]));
          scale = Math.max(scale, Math.abs(want[i]));
        }
        expect(err, `seed ${seed}: max |Δlogit| ${err} vs max |logit| ${scale}`).toBeLessThanOrEqual(1e-3 * scale);
        expect(topK(got, 5)).toEqual(topK(want, 5));
      }
      engine.destroy();
    });
  });
}

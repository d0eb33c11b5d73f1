/**
 * ROAD in evaluateImage (src/metrics/evaluate.ts) on the GPU, on the small model
 * (test/helpers/small-model.ts, a 16 × 12 input): every method is accepted (a guided one scored by
 * its display plane Σ_c |raw_c|), and ROAD's probabilities are those of the imputed inputs made
 * independently here (roadRemoved + imputeRemoved with the same seeds, classified one by one:
 * batches give bitwise the results of single runs); summarise's ROAD means follow their formulas.
 * The imputation itself is checked against a dense float64 solve in test/road.test.ts.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { Network } from '../src/gradcam/network.ts';
import { evaluateImage, summarise } from '../src/metrics/evaluate.ts';
import { imputeRemoved, ROAD_NOISE, roadRemoved } from '../src/metrics/road.ts';
import { Rng } from '../weights/generate/random.ts';
import { testGpu } from './helpers/gpu.ts';
import { SMALL_SHAPE, smallModel } from './helpers/small-model.ts';

let net: Network;
beforeAll(async () => {
  net = await Network.load(await testGpu(), smallModel(9, 'flatten'));
});
afterAll(() => net?.destroy());

test('ROAD at three percentiles for a CAM, eigengradcam and guided-backprop: the probabilities of the imputed inputs; the summary means', async () => {
  const r = new Rng(4);
  const x = Float32Array.from({ length: SMALL_SHAPE.reduce((a, b) => a * b, 1) }, () => r.normal());
  const input = { shape: SMALL_SHAPE, data: x };
  const percentiles = [20, 50, 80];
  const methods = ['gradcam', 'eigengradcam', 'guided-backprop'] as const;
  const e = await evaluateImage(net, input, { methods: [...methods], road: true, roadPercentiles: percentiles, dropIncrease: false, deletion: false, insertion: false, featureLayer: 'a3' });
  expect(e.methods.map((m) => m.method)).toEqual([...methods]);
  const [, c, h, w] = SMALL_SHAPE;
  const maps = await net.gradCAM(input, { classes: [e.methods[0].class], featureLayers: 'a3', methods: [...methods], upsample: true });
  for (const m of e.methods) {
    expect(m.road!.percentiles).toEqual(percentiles);
    const map = maps.maps.find((x) => x.method === m.method)!.upsampled!.data;
    for (const [o, order] of (['morf', 'lerf'] as const).entries()) {
      const want = await Promise.all(percentiles.map(async (p, k) => {
        const imputed = imputeRemoved(x, c, h, w, roadRemoved(map, p, order), ROAD_NOISE, 1000 * o + k);
        return (await net.classify({ shape: SMALL_SHAPE, data: imputed.data }, 1)).probabilities[m.class];
      }));
      expect(m.road![order], `${m.method} ${order}`).toEqual(want);
    }
  }
  const [s] = summarise([e]);
  const g = e.methods[0];
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  expect(s.roadMorf).toBeCloseTo(mean(g.road!.morf.map((p) => p - g.full)), 12);
  expect(s.roadLerf).toBeCloseTo(mean(g.road!.lerf.map((p) => p - g.full)), 12);
  expect(s.roadCombined).toBeCloseTo((s.roadLerf! - s.roadMorf!) / 2, 12);
  console.log(`ROAD on the small model: ${summarise([e]).map((q) => `${q.method} MoRF ${q.roadMorf!.toFixed(4)} LeRF ${q.roadLerf!.toFixed(4)} combined ${q.roadCombined!.toFixed(4)}`).join('; ')}`);
});

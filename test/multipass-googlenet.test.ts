/**
 * ablationcam on the generated Model Zoo GoogLeNet at inception_5b (1024 channels, 7 × 7): the one
 * full-size check of the forward from a layer (issue 20). After inception_5b the network is linear
 * (7 × 7 average pool, Dropout, Reshape, Gemm), so zeroing channel k lowers the class's logit by
 * exactly W_ck · mean_hw A_k: w_k = W_ck · mean(A_k) / S, in float64 from the layer's activations as
 * the first pass left them (net.readTensor) and the classifier's weights from the model file.
 *
 * Tolerance: the GPU's S and S_k each sum 1024 products and a 49-term mean, so each is within
 * γ·M, γ = (1024 + 49 + 32)·u, M = |b_c| + Σ_j |W_cj| · mean|A_j|; then (first order)
 * |δw_k| ≤ 2γM/|S| + |S − S_k| γM/S², and the map within Σ_k |δw_k| |A_k| + (C + 4) u Σ_k |w_k| |A_k|.
 * 1024 passes in batches of 16 (only the tail runs per batch; scorecam's 1024 full forwards are the
 * bench's, not a test's).
 */
import { expect, test } from 'vitest';
import { Network } from '../src/gradcam/network.ts';
import { decodeOnnx } from '../src/onnx/decode.ts';
import { generateModelBytes } from '../weights/generate/index.ts';
import { Rng } from '../weights/generate/random.ts';
import { testGpu } from './helpers/gpu.ts';

const U = 2 ** -24;

test('ablationcam at inception_5b: w_k = W_ck · mean(A_k) / S (the tail is linear), 1024 passes', async () => {
  const model = decodeOnnx(generateModelBytes('googlenet-zoo-seeded'));
  const net = await Network.load(await testGpu(), model);
  try {
    const rng = new Rng(7);
    const x = Float32Array.from({ length: 3 * 224 * 224 }, () => rng.normal() * 50);
    const layer = 'inception_5b/output_1';
    let total = 0;
    const result = await net.gradCAM({ shape: [1, 3, 224, 224], data: x }, {
      methods: ['ablationcam'], featureLayers: [layer], classes: 'top', upsample: false, methodOptions: { ablationcam: { batchSize: 16 } },
      onProgress: (p) => { total = p.total; },
    });
    expect(total).toBe(1024);
    const map = result.maps[0];
    const c = map.class;
    const A = await net.readTensor(layer);
    const C = 1024, hw = 49;
    const W = model.initializers.get('loss3/classifier_w_0')!.data as Float32Array;
    const b = (model.initializers.get('loss3/classifier_b_0')!.data as Float32Array)[c];
    const mean = Float64Array.from({ length: C }, (_, k) => A.subarray(k * hw, (k + 1) * hw).reduce((a, v) => a + v, 0) / hw);
    const meanAbs = Float64Array.from({ length: C }, (_, k) => A.subarray(k * hw, (k + 1) * hw).reduce((a, v) => a + Math.abs(v), 0) / hw);
    const S = b + mean.reduce((a, m, k) => a + W[c * C + k] * m, 0);
    const M = Math.abs(b) + meanAbs.reduce((a, m, k) => a + Math.abs(W[c * C + k]) * m, 0);
    const eS = (1024 + 49 + 32) * U * M;
    expect(Math.abs(map.score - S)).toBeLessThanOrEqual(eS);
    const w = Float64Array.from({ length: C }, (_, k) => (W[c * C + k] * mean[k]) / S);
    const dw = Float64Array.from({ length: C }, (_, k) => (2 * eS) / Math.abs(S) + (Math.abs(W[c * C + k] * mean[k]) * eS) / (S * S));
    let worst = 0;
    for (let i = 0; i < hw; i++) {
      let ref = 0, bound = 0;
      for (let k = 0; k < C; k++) {
        const a = A[k * hw + i];
        ref += w[k] * a;
        bound += dw[k] * Math.abs(a) + (C + 4) * U * Math.abs(w[k] * a);
      }
      ref = Math.max(ref, 0);
      const d = Math.abs(map.raw[i] - ref);
      expect(d, `position ${i}: got ${map.raw[i]}, float64 ${ref}, bound ${bound}`).toBeLessThanOrEqual(1.01 * bound);
      worst = Math.max(worst, d / bound);
    }
    expect(map.max).toBeGreaterThan(0);
    console.log(`googlenet-zoo-seeded ablationcam at ${layer}, class ${c}: worst |GPU − float64| / bound ${worst.toExponential(2)}, passes ${result.timings.passesMs?.toFixed(0)} ms`);
  } finally {
    await net.destroy();
  }
}, 300_000);

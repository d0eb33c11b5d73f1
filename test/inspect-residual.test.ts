/**
 * The inspector's branch shares at a residual Add (src/gradcam/inspect.ts): a ResNet block's output
 * A = ReLU(R + I) splits a Grad-CAM map's contributions c_k = w_k Σ_hw A_k into the residual
 * branch's w_k Σ_{A>0} R_k and the identity's w_k Σ_{A>0} I_k. Checked on a small ResNet with
 * torchvision names (test/helpers/small-resnet.ts), on the GPU (SwiftShader):
 *   - which input is which: a plain shortcut (layer1.1) and a downsampling 1×1 conv (layer2.0);
 *   - the split is exact up to the float32 rounding of A = fl(R + I): |Σ shares − Σ_k c_k| ≤
 *     2^-24 · Σ_k |w_k| Σ_hw |A_k| (+ float64 noise);
 *   - the residual share against R and A from onnxruntime-node with the engine's weights w_k:
 *     the activations differ by float32 rounding of two implementations (relative 1e-5 of the
 *     activations' scale here), so the bound is 1e-4 · Σ_k |w_k| Σ_hw (|R_k| + |A_k|).
 */
import { expect, test } from 'vitest';
import { Network } from '../src/gradcam/network.ts';
import { testGpu } from './helpers/gpu.ts';
import { OrtOracle } from './helpers/ort.ts';
import { smallResnet } from './helpers/small-resnet.ts';

const CASES = [
  { layer: '/layer1/layer1.1/relu_1/Relu_output_0', residual: '/layer1/layer1.1/conv2/Conv_output_0', identity: '/layer1/layer1.0/relu_1/Relu_output_0' },
  { layer: '/layer2/layer2.0/relu_2/Relu_output_0', residual: '/layer2/layer2.0/conv3/Conv_output_0', identity: '/layer2/layer2.0/downsample/downsample.0/Conv_output_0' },
];

test('residual and identity shares of a ResNet block output: which is which, exact split, against onnxruntime-node', async () => {
  const model = smallResnet();
  const net = await Network.load(await testGpu(), model);
  const x = Float32Array.from({ length: 3 * 32 * 32 }, (_, i) => Math.sin(i * 0.37) * 2);
  const r = await net.gradCAM({ shape: [1, 3, 32, 32], data: x }, { classes: 'top2', featureLayers: CASES.map((c) => c.layer), methods: ['gradcam'], upsample: false, inspect: true });
  const oracle = await OrtOracle.create(model, CASES.flatMap((c) => [c.layer, c.residual]));
  const ort = await oracle.run(x, [1, 3, 32, 32], CASES.flatMap((c) => [c.layer, c.residual]));
  expect(r.maps.length).toBe(4);
  for (const m of r.maps) {
    const c = CASES.find((k) => k.layer === m.layer)!;
    const ins = m.inspection!;
    expect(ins.branches!.map((b) => [b.kind, b.name])).toEqual([['residual', c.residual], ['identity', c.identity]]);
    const [res, id] = ins.branches!;
    const w = ins.weights!;
    const C = w.length, hw = m.shape[0] * m.shape[1];
    const A = ort[c.layer], R = ort[c.residual];
    let total = 0, scaleA = 0, shareR = 0, scaleR = 0;
    for (let k = 0; k < C; k++) {
      total += ins.contributions[k];
      for (let j = 0; j < hw; j++) {
        const p = k * hw + j;
        scaleA += Math.abs(w[k] * A[p]);
        scaleR += Math.abs(w[k] * R[p]);
        if (A[p] > 0) shareR += w[k] * R[p];
      }
    }
    expect(scaleA).toBeGreaterThan(0);
    expect(Math.abs(res.contribution + id.contribution - total)).toBeLessThanOrEqual(2 ** -24 * scaleA + 1e-12 * scaleA);
    expect(Math.abs(res.contribution - shareR)).toBeLessThanOrEqual(1e-4 * (scaleR + scaleA));
    // Both shares carry weight here (neither branch is idle), so the split says something.
    expect(Math.abs(res.contribution)).toBeGreaterThan(1e-3 * scaleA);
    expect(Math.abs(id.contribution)).toBeGreaterThan(1e-3 * scaleA);
  }
  net.destroy();
}, 120_000);

/**
 * The float64 CAM-family reference (test/reference/cam-methods.ts) checked against answers known
 * by construction, before it judges any kernel:
 * - at one position (h·w = 1) Grad-CAM and HiResCAM coincide (the mean over one position is the value);
 * - Grad-CAM's weights are the spatial means of G, and its signed map is Σ w_k A_k;
 * - Grad-CAM++ on a hand-worked 1-channel example;
 * - XGradCAM's weights on a hand-worked example;
 * - Eigen-CAM of a rank-one centred A = u vᵀ (+ per-channel offsets) is |u|'s direction, sign-fixed;
 * - the counterfactual negates Grad-CAM's signed map;
 * - guided backprop zeroes a Relu's gradient where the incoming gradient is negative.
 */
import { describe, expect, test } from 'vitest';
import { camReference } from './reference/cam-methods.ts';
import { gradientsReference } from './reference/graph.ts';
import { rng, tensor } from './reference/tensor.ts';
import type { OnnxModel } from '../src/onnx/model.ts';

function random(n: number, seed: number): Float64Array {
  const r = rng(seed);
  return Float64Array.from({ length: n }, () => r() * 2 - 1);
}

describe('CAM-family reference', () => {
  test('one position: Grad-CAM = HiResCAM', () => {
    const A = random(7, 1), G = random(7, 2);
    const a = camReference('gradcam', A, G, 7, 1), b = camReference('hirescam', A, G, 7, 1);
    expect(a.signed[0]).toBeCloseTo(b.signed[0], 14);
  });

  test('Grad-CAM: weights are the spatial means of G; signed = Σ w_k A_k; counterfactual negates it', () => {
    const C = 3, hw = 4;
    const A = random(C * hw, 3), G = random(C * hw, 4);
    const r = camReference('gradcam', A, G, C, hw);
    for (let k = 0; k < C; k++) expect(r.weights![k]).toBeCloseTo((G[k * 4] + G[k * 4 + 1] + G[k * 4 + 2] + G[k * 4 + 3]) / 4, 14);
    for (let i = 0; i < hw; i++) {
      let s = 0;
      for (let k = 0; k < C; k++) s += r.weights![k] * A[k * hw + i];
      expect(r.signed[i]).toBeCloseTo(s, 14);
      expect(r.map[i]).toBe(Math.max(s, 0));
    }
    const cf = camReference('gradcam', A, G, C, hw, { counterfactual: true });
    cf.signed.forEach((v, i) => expect(v).toBeCloseTo(-r.signed[i], 14));
  });

  test('Grad-CAM++ and XGradCAM on hand-worked numbers', () => {
    // One channel, two positions: A = [1, 3] (S = 4), G = [2, −1].
    // a = G²/(2G² + S·G³ + 1e-6): position 0: 4/(8 + 32 + 1e-6); position 1: 1/(2 − 4 + 1e-6).
    // w = ReLU(2)·a0 + ReLU(−1)·a1 = 2·4/(40 + 1e-6).
    const pp = camReference('gradcam++', [1, 3], [2, -1], 1, 2);
    expect(pp.weights![0]).toBeCloseTo(8 / (40 + 1e-6), 15);
    expect([...pp.signed]).toEqual([pp.weights![0] * 1, pp.weights![0] * 3]);
    // XGradCAM: w = (2·1 + (−1)·3)/(1 + 3 + 1e-7) = −1/(4 + 1e-7); the map is all zero after the ReLU.
    const x = camReference('xgradcam', [1, 3], [2, -1], 1, 2);
    expect(x.weights![0]).toBeCloseTo(-1 / (4 + 1e-7), 15);
    expect([...x.map]).toEqual([0, 0]);
    // A gradient of exactly 0 contributes nothing to Grad-CAM++ (a = 0 there).
    expect(camReference('gradcam++', [1, 3], [0, 0], 1, 2).weights![0]).toBe(0);
  });

  test('Eigen-CAM of a rank-one A recovers its spatial factor, largest entry positive', () => {
    const C = 5, hw = 6;
    const u = [0.5, -2, 1, 0.25, -0.75, 1]; // centred below
    const mu = u.reduce((s, x) => s + x, 0) / hw;
    const uc = u.map((x) => x - mu);
    const v = [0.3, -0.1, 0.8, 0.4, -0.2];
    const offsets = [5, -1, 2, 0, 3];
    const A = new Float64Array(C * hw);
    for (let k = 0; k < C; k++) for (let i = 0; i < hw; i++) A[k * hw + i] = u[i] * v[k] + offsets[k];
    const r = camReference('eigencam', A, new Float64Array(C * hw), C, hw);
    const vn = Math.hypot(...v);
    const sign = Math.sign(uc[uc.reduce((m, x, i) => (Math.abs(x) > Math.abs(uc[m]) ? i : m), 0)]);
    r.signed.forEach((s, i) => expect(s).toBeCloseTo(sign * uc[i] * vn, 12));
    expect(Math.max(...r.signed)).toBeGreaterThan(0);
  });

  test('guided backprop: a Relu passes the gradient only where input and gradient are positive', () => {
    // y = Σ_i s_i·Relu(x_i) with seeds s = [1, −1, 1, −1]: plain dx = s·[x>0]; guided also needs s > 0.
    const model: OnnxModel = {
      irVersion: 8, opset: 13, producerName: 'test', graphName: 'g',
      inputs: [{ name: 'x', shape: [1, 4], dtype: 'float32' }], outputs: [{ name: 'y', shape: [1, 4], dtype: 'float32' }],
      initializers: new Map(), nodes: [{ name: 'r', opType: 'Relu', domain: '', inputs: ['x'], outputs: ['y'], attributes: {} }],
    } as unknown as OnnxModel;
    const x = tensor([1, 4], Float64Array.from([1, 2, -1, 3]));
    const seeds = [Float64Array.from([1, -1, 1, -1])];
    const plain = gradientsReference(model, { x }, { score: 'y', seeds, wrt: ['x'] }).x[0].data;
    const guided = gradientsReference(model, { x }, { score: 'y', seeds, wrt: ['x'], guided: true }).x[0].data;
    expect([...plain]).toEqual([1, -1, 0, -1]);
    expect([...guided]).toEqual([1, 0, 0, 0]);
  });
});

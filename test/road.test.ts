/**
 * ROAD (src/metrics/road.ts) on the CPU, against the float64 references of test/reference/metrics.ts:
 * numpy's percentile, the MoRF / LeRF masks, and the noisy linear imputation against a dense float64
 * solve of the system as the authors' imputations.py sets it up (removed pixels on the border, in
 * corners and in several groups; three channels). No GPU.
 *
 * Tolerance of the imputation: the conjugate gradient stops at a relative residual of 1e-9; on these
 * small systems (condition number < 100) its error is below 1e-7 of max |x|, and the result is rounded
 * to float32 (2⁻²⁴ ≈ 6e-8 relative): |GPU − ref| ≤ 2e-7 · max |x|.
 */
import { describe, expect, test } from 'vitest';
import { gaussian, imputeRemoved, percentile, ROAD_NOISE, roadRemoved } from '../src/metrics/road.ts';
import { percentileReference, roadImputationReference } from './reference/metrics.ts';
import { rng } from './reference/tensor.ts';

describe('ROAD', () => {
  test("percentile is numpy's linear interpolation", () => {
    expect(percentile([1, 2, 3, 4], 50)).toBe(2.5);
    expect(percentile([4, 1, 3, 2], 10)).toBeCloseTo(1.3, 14);
    expect(percentile([5], 30)).toBe(5);
    const r = rng(3);
    const v = Array.from({ length: 101 }, () => r());
    for (const p of [0, 7, 10, 50, 90, 100]) expect(percentile(v, p)).toBeCloseTo(percentileReference(v, p), 15);
  });

  test('MoRF removes the map values ≥ the p-th percentile, LeRF those ≤ the (100 − p)-th: both remove the same share', () => {
    const ramp = Float64Array.from({ length: 100 }, (_, i) => i / 99);
    for (const p of [10, 20, 80, 90]) {
      const morf = roadRemoved(ramp, p, 'morf'), lerf = roadRemoved(ramp, p, 'lerf');
      // q_p = p·99/100 / 99 on the ramp: MoRF keeps the values below it (i < 0.99p), LeRF the values above the mirrored one.
      const kept = Math.ceil((p * 99) / 100);
      expect([...morf].map((m, i) => (m ? i : -1)).filter((i) => i >= 0)).toEqual(Array.from({ length: 100 - kept }, (_, k) => kept + k));
      expect([...lerf].map((m, i) => (m ? i : -1)).filter((i) => i >= 0)).toEqual(Array.from({ length: 100 - kept }, (_, k) => k));
    }
  });

  test('the imputation without noise equals a dense float64 solve; kept pixels are untouched', () => {
    const [c, h, w] = [3, 7, 9];
    const r = rng(5);
    const x = Float32Array.from({ length: c * h * w }, () => r() * 4 - 2);
    // Removed: a 3×3 group touching the top-left corner, a strip on the right edge, and single pixels.
    const removed = new Uint8Array(h * w);
    for (let y = 0; y < 3; y++) for (let xx = 0; xx < 3; xx++) removed[y * w + xx] = 1;
    for (let y = 2; y < 7; y++) removed[y * w + 8] = 1;
    for (const p of [4 * w + 4, 6 * w + 1, 1 * w + 6]) removed[p] = 1;
    const got = imputeRemoved(x, c, h, w, removed, 0);
    const want = roadImputationReference(x, c, h, w, removed);
    const scale = Math.max(...x.map(Math.abs));
    let err = 0;
    for (let i = 0; i < x.length; i++) {
      err = Math.max(err, Math.abs(got.data[i] - want[i]));
      if (!removed[i % (h * w)]) expect(got.data[i]).toBe(x[i]);
    }
    console.log(`ROAD imputation ${c}×${h}×${w}, ${got.removed} removed: max |d| ${err.toExponential(2)} of max |x| ${scale.toFixed(2)}, ${got.iterations} iterations`);
    expect(got.removed).toBe(17);
    expect(err).toBeLessThanOrEqual(2e-7 * scale);
    // Each imputed value is the weighted mean of its neighbours (the equations hold): one check by hand at (4, 4).
    const at = (ch: number, y: number, xx: number) => got.data[ch * h * w + y * w + xx];
    const mean = (1 / 6) * (at(0, 3, 4) + at(0, 5, 4) + at(0, 4, 3) + at(0, 4, 5)) + (1 / 12) * (at(0, 3, 3) + at(0, 3, 5) + at(0, 5, 3) + at(0, 5, 5));
    expect(at(0, 4, 4)).toBeCloseTo(mean, 6);
  });

  test('the noise: N(0, 0.01²) on the removed pixels only, the same for the same seed; nothing kept gives 0 + noise', () => {
    const [c, h, w] = [3, 64, 64];
    const x = Float32Array.from({ length: c * h * w }, (_, i) => Math.sin(i * 0.01));
    const map = Float64Array.from({ length: h * w }, (_, i) => Math.hypot((i % w) - 20, Math.floor(i / w) - 30));
    const removed = roadRemoved(map, 50, 'morf');
    const plain = imputeRemoved(x, c, h, w, removed, 0);
    const noisy = imputeRemoved(x, c, h, w, removed, ROAD_NOISE, 7);
    expect(imputeRemoved(x, c, h, w, removed, ROAD_NOISE, 7).data).toEqual(noisy.data);
    const d: number[] = [];
    for (let i = 0; i < x.length; i++) {
      if (removed[i % (h * w)]) d.push(noisy.data[i] - plain.data[i]);
      else expect(noisy.data[i]).toBe(x[i]);
    }
    const mean = d.reduce((a, b) => a + b, 0) / d.length;
    const sd = Math.sqrt(d.reduce((a, b) => a + (b - mean) ** 2, 0) / d.length);
    // n ≈ 6,000 draws: the sample mean's standard error is 0.01/√n ≈ 1.3e-4, the sd's about 1 %; bounds at 4 standard errors.
    expect(Math.abs(mean)).toBeLessThan(4 * 0.01 / Math.sqrt(d.length));
    expect(Math.abs(sd / 0.01 - 1)).toBeLessThan(0.05);
    const all = imputeRemoved(x, c, 4, 4, new Uint8Array(16).fill(1), 0);
    expect(all.nothingKept).toBe(true);
    expect([...all.data.subarray(0, 48)]).toEqual(new Array(48).fill(0));
    const g = gaussian(1);
    expect(g()).not.toBe(g());
  });

  test('a 112 × 112 picture with 90 % removed (MoRF at 10) converges', () => {
    const [c, h, w] = [3, 112, 112];
    const x = Float32Array.from({ length: c * h * w }, (_, i) => Math.sin(i * 0.001) + Math.cos(i * 0.37));
    const map = Float64Array.from({ length: h * w }, (_, i) => Math.exp(-(((i % w) - 45) ** 2 + (Math.floor(i / w) - 60) ** 2) / 800));
    const t0 = performance.now();
    const removed = roadRemoved(map, 10, 'morf');
    const r = imputeRemoved(x, c, h, w, removed, 0);
    console.log(`ROAD imputation 112×112, ${r.removed} removed: ${r.iterations} iterations, ${(performance.now() - t0).toFixed(0)} ms`);
    const q = percentileReference(map, 10);
    expect(r.removed).toBe(map.filter((v) => v >= q).length);
    expect(r.removed / (h * w)).toBeCloseTo(0.9, 3);
    expect(r.data.every(Number.isFinite)).toBe(true);
  });
});

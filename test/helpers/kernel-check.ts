/**
 * Running the kernel cases (kernel-cases.ts) on the engine and judging them against the float64
 * reference with the rounding bounds of magnitude.ts; the worst errors are collected for a report.
 */
import { expect } from 'vitest';
import { Network } from '../../src/gradcam/network.ts';
import { decodeOnnx } from '../../src/onnx/decode.ts';
import { encodeOnnx } from '../../src/onnx/write.ts';
import { forwardValues, runReference } from '../reference/graph.ts';
import { maxAbs, type Tensor } from '../reference/tensor.ts';
import { testGpu } from './gpu.ts';
import type { Compared, KernelCase, Reduction } from './kernel-cases.ts';
import { exactInput, forwardBudgets, forwardMagnitudes, kinkMargins, softmaxForwardUlps, U } from './magnitude.ts';

/** The reference side of a case: values, magnitudes, forward rounding budgets; decisions checked. */
export interface Prepared {
  values: Map<string, Tensor>;
  mags: Map<string, Tensor>;
  /** Forward rtol per tensor (magnitude.ts). */
  fwd: Map<string, number>;
}

export function prepare(c: KernelCase): Prepared {
  const values = forwardValues(c.model, { x: c.input });
  const mags = forwardMagnitudes(c.model, { x: c.input });
  const fwd = forwardBudgets(c.model, values);
  const activations = ['x', ...c.model.nodes.map((n) => n.outputs[0])].filter((n) => n !== 'prob');
  // The bound must hold for the reference itself (|value| ≤ M): a check of the magnitude model.
  for (const name of activations) {
    const v = values.get(name)!, m = mags.get(name)!;
    for (let i = 0; i < v.data.length; i++) {
      if (Math.abs(v.data[i]) > m.data[i] * (1 + 1e-12)) throw new Error(`${c.name}: |${name}[${i}]| = ${Math.abs(v.data[i])} exceeds its magnitude ${m.data[i]}`);
    }
  }
  // Inputs are float32-exact, and so are the shifted copies (so their float32 add was exact).
  for (const name of activations.filter((n) => exactInput(c.model, n))) {
    const v = values.get(name)!.data;
    expect(v.every((e) => Math.fround(e) === e), `'${name}' is float32-exact`).toBe(true);
  }
  // ReLU and max decisions further from their kinks than rounding (rtol·M) and the FD step
  // (2.5e-5 of the direct magnitude: an input perturbation moves a value through the direct sum) can move them.
  const direct = forwardMagnitudes(c.model, { x: c.input }, { winograd: false });
  const reach = (t: string) => {
    const m = mags.get(t)!.data, d = direct.get(t)!.data, rtol = fwd.get(t) ?? 0;
    return Float64Array.from(m, (mi, i) => Math.max(rtol * mi, 2.5e-5 * d[i]));
  };
  expect(kinkMargins(c.model, values, reach), 'decisions within rounding of a kink').toEqual([]);
  return { values, mags, fwd };
}

/** The network as a file gives it (encoded and decoded), with the case's taps. */
export async function loadNetwork(c: KernelCase): Promise<Network> {
  return Network.load(await testGpu(), decodeOnnx(encodeOnnx(c.model)), { taps: c.taps });
}

// ───────────────────────────── comparison and report ─────────────────────────────

export interface Row {
  file: string;
  kernel: string;
  case: string;
  what: string;
  /** max |gpu − ref| / max |ref| over the compared values. */
  relErr: number;
  /** max over values of |gpu − ref| / allowed: below 1 passes. */
  ratio: number;
  count: number;
}

export const rows: Row[] = [];

/**
 * |got − ref| ≤ tol(i) for every i; records the worst errors. Asserts also that the comparison is not
 * vacuous (some reference value is non-zero).
 */
export function compare(file: string, c: KernelCase, on: Compared, what: string, got: ArrayLike<number>, ref: ArrayLike<number>, tol: (i: number) => number): void {
  expect(got.length, `${what}: length`).toBe(ref.length);
  let worst = 0, worstAt = -1, maxErr = 0;
  for (let i = 0; i < ref.length; i++) {
    const err = Math.abs(got[i] - ref[i]);
    maxErr = Math.max(maxErr, err);
    const t = tol(i);
    const r = err === 0 ? 0 : err / t;
    if (!(r <= worst)) { worst = r; worstAt = i; } // NaN counts as the worst
  }
  const scale = maxAbs(ref);
  rows.push({ file, kernel: on.kernel, case: `${on.branch} [${c.name}]`, what, relErr: scale > 0 ? maxErr / scale : maxErr, ratio: worst, count: ref.length });
  // Soft: a failing case reports every tensor that disagrees, which tells where the fault is.
  expect.soft(scale, `${what}: the reference is all zeros (a vacuous comparison)`).toBeGreaterThan(0);
  const detail = worstAt < 0 ? '' : `worst at ${worstAt}: gpu ${got[worstAt]}, ref ${ref[worstAt]}, |Δ| ${Math.abs(got[worstAt] - ref[worstAt])}, allowed ${tol(worstAt)}`;
  expect.soft(worst, `${on.branch}: ${what}: ${detail}`).toBeLessThanOrEqual(1);
}

/** Prints the worst errors: one line per (kernel, case, compared tensor), then per kernel. */
export function printReport(file: string): void {
  const merged = new Map<string, Row>();
  for (const r of rows.filter((x) => x.file === file)) {
    const key = `${r.kernel}|${r.case}|${r.what}`;
    const m = merged.get(key);
    if (!m) merged.set(key, { ...r });
    else { m.relErr = Math.max(m.relErr, r.relErr); m.ratio = Math.max(m.ratio, r.ratio); m.count += r.count; }
  }
  const mine = [...merged.values()];
  const fmt = (v: number) => v.toExponential(2);
  const lines = mine.map((r) => `  ${r.kernel.padEnd(14)} ${fmt(r.relErr).padStart(9)} ${r.ratio.toFixed(4).padStart(7)}  ${r.what.padEnd(24)} ${r.case}`);
  const kernels = [...new Set(mine.map((r) => r.kernel))];
  const worst = kernels.map((k) => {
    const rs = mine.filter((r) => r.kernel === k);
    return `  ${k.padEnd(14)} max rel err ${fmt(Math.max(...rs.map((r) => r.relErr)))}, max |Δ|/allowed ${Math.max(...rs.map((r) => r.ratio)).toFixed(4)} (${rs.reduce((a, r) => a + r.count, 0)} values)`;
  });
  console.log(`${file}: kernel, max|Δ|/max|ref|, max |Δ|/allowed, compared, case\n${lines.join('\n')}\nper kernel:\n${worst.join('\n')}`);
}

// ───────────────────────────── seeds ─────────────────────────────

export function softmax64(z: ArrayLike<number>): Float64Array {
  const max = Math.max(...Array.from(z));
  const e = Float64Array.from(z, (v) => Math.exp(v - max));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

/**
 * Seeds on the logits [N, classes] for item b = n·K + k: the reference's (one-hot; or the softmax
 * Jacobian row p_c·(e_c − p) of image n) and the magnitude's (|one-hot|; or p_j·(δ_jc + p_c), the
 * absolute terms of the engine's softmax backward y_j·(δ_jc − y_c)).
 */
export function seeds(logits: Tensor, classes: number[][], reduction: Reduction): { ref: Float64Array[]; mag: Float64Array[] } {
  const [N, M] = logits.shape;
  const ref: Float64Array[] = [], mag: Float64Array[] = [];
  for (let n = 0; n < N; n++) {
    const p = softmax64(logits.data.subarray(n * M, (n + 1) * M));
    for (const c of classes[n]) {
      const r = new Float64Array(N * M), m = new Float64Array(N * M);
      if (reduction === 'logit') {
        r[n * M + c] = 1;
        m[n * M + c] = 1;
      } else {
        for (let j = 0; j < M; j++) {
          r[n * M + j] = p[c] * ((j === c ? 1 : 0) - p[j]);
          m[n * M + j] = p[j] * ((j === c ? 1 : 0) + p[c]);
        }
      }
      ref.push(r);
      mag.push(m);
    }
  }
  return { ref, mag };
}

/** The forward rounding of a softmax over each row of `logits` (relative, on each probability). */
export function softmaxRtol(logits: Tensor): number {
  const [N, M] = logits.shape;
  let range = 0;
  for (let n = 0; n < N; n++) {
    const row = Array.from(logits.data.subarray(n * M, (n + 1) * M));
    range = Math.max(range, Math.max(...row) - Math.min(...row));
  }
  return softmaxForwardUlps(M, range) * U;
}

// ───────────────────────────── engine gradients for batches ─────────────────────────────

// ───────────────────────────── finite differences ─────────────────────────────

/**
 * Central differences of the float64 reference: ∂L/∂x_i, L = logits[n, c] (or softmax(logits[n])_c),
 * step h = 1e-5·max|x|. Error: truncation h²·|L'''|/6 (zero for piecewise-linear ops away from
 * kinks, ≲ 1e-10·M for LRN and softmax), rounding ≈ (ops ≲ 2000)·ε64·M_L/h ≤ 1e-12·M_L/h.
 */
export function centralDifference(c: KernelCase, n: number, cls: number, reduction: Reduction, i: number): { fd: number; h: number } {
  const x = { shape: c.input.shape, data: Float64Array.from(c.input.data) };
  const h = 1e-5 * maxAbs(c.input.data);
  const L = () => {
    const z = runReference(c.model, { x }, { keep: ['logits'] }).logits;
    const M = z.shape[1];
    const row = z.data.subarray(n * M, (n + 1) * M);
    return reduction === 'logit' ? row[cls] : softmax64(row)[cls];
  };
  const xi = x.data[i];
  x.data[i] = xi + h;
  const up = L();
  x.data[i] = xi - h;
  const down = L();
  return { fd: (up - down) / (2 * h), h };
}

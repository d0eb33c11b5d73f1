/**
 * ROAD, RemOve And Debias (Rong et al. 2022, "A Consistent and Efficient Evaluation Strategy for
 * Attribution Methods"), as pytorch-grad-cam's ROADMostRelevantFirst / ROADLeastRelevantFirst
 * (metrics/road.py, after the authors' imputations.py): the pixels a map ranks most (MoRF) or least
 * (LeRF) relevant are removed and filled in by noisy linear imputation, and the class's score is
 * measured on the result.
 *
 * Which pixels, at percentile p of the map's values (numpy's linear interpolation, `percentile`):
 *   MoRF removes the pixels with map ≥ q_p (about 100 − p % of them, the most relevant),
 *   LeRF removes those with (1 − map) ≥ q_p(1 − map), i.e. map ≤ q_{100−p} (the least relevant),
 * as pytorch-grad-cam's binary masks `map < q_p` (kept) on the map, and on 1 − map.
 *
 * Noisy linear imputation: each removed pixel's value (per channel) is the weighted mean of its
 * neighbours inside the picture, weights 1/6 for the 4 edge neighbours and 1/12 for the 4 corner
 * ones (normalised by those that exist); neighbours that were kept give known values, removed ones
 * unknowns. That is the sparse linear system M u = b over the removed pixels, M = D − W (D: the
 * sum of a pixel's in-picture neighbour weights; W: the weights between removed neighbours;
 * b: the weighted kept neighbours' values). Then noise N(0, σ²) (σ = 0.01 in the model's input
 * units, as pytorch-grad-cam's `noise`) is added to the imputed values.
 *
 * The solver: M is symmetric (the weights are symmetric in the offset) and, when every group of
 * removed pixels touches a kept one, positive definite (a weakly diagonally dominant M-matrix); the
 * system is solved in float64 on the CPU by the conjugate gradient method with the SSOR
 * preconditioner (ω = 1.8), each channel on its own, from u = 0, until ‖b − M u‖₂ ≤ ROAD_TOLERANCE ·
 * ‖b‖₂ (at most ROAD_MAX_ITERATIONS, else a GradcamError: never a half-solved picture). A relative
 * residual of 1e-9 leaves errors far below the noise's 0.01. Measured on a 224 × 224 picture with a
 * smooth two-blob map: 34–139 iterations (5,000 to 45,000 removed pixels) where the Jacobi
 * preconditioner took 183–855; scipy's spsolve (pytorch-grad-cam's) is a direct sparse LU. When no pixel is kept (MoRF at a percentile where
 * the map is constant), nothing is known to impute from: the removed pixels become 0 (the input
 * value 0: the dataset's mean colour after mean subtraction) plus the noise, and the result says so.
 */
import { GradcamError } from '../errors.ts';

export type RoadOrder = 'morf' | 'lerf';

/** pytorch-grad-cam's ROADCombined percentiles. */
export const ROAD_PERCENTILES = [10, 20, 30, 40, 50, 60, 70, 80, 90] as const;
/** The imputation noise's standard deviation, in the model's input units (pytorch-grad-cam's NoisyLinearImputer). */
export const ROAD_NOISE = 0.01;
/** The conjugate gradient stops at ‖b − M u‖ ≤ ROAD_TOLERANCE · ‖b‖. */
export const ROAD_TOLERANCE = 1e-9;
export const ROAD_MAX_ITERATIONS = 20_000;
/** The SSOR preconditioner's relaxation factor ω (0 < ω < 2; 1.8 measured best of 1.5, 1.8, 1.9 on 224 × 224 maps). */
export const ROAD_SSOR = 1.8;

/** The neighbours of a pixel and their weights (dy, dx, weight): edges 1/6, corners 1/12; they sum to 1. */
export const ROAD_NEIGHBOURS: readonly (readonly [number, number, number])[] = [
  [-1, -1, 1 / 12], [-1, 0, 1 / 6], [-1, 1, 1 / 12],
  [0, -1, 1 / 6], [0, 1, 1 / 6],
  [1, -1, 1 / 12], [1, 0, 1 / 6], [1, 1, 1 / 12],
];

/** The p-th percentile of `values` (0 ≤ p ≤ 100), as numpy's default (linear interpolation between order statistics). */
export function percentile(values: ArrayLike<number>, p: number): number {
  const sorted = Float64Array.from(values).sort();
  const at = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(at), hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (at - lo) * (sorted[hi] - sorted[lo]);
}

/** 1 where a pixel of the map is removed at percentile p (see the header), else 0. */
export function roadRemoved(map: ArrayLike<number>, p: number, order: RoadOrder): Uint8Array {
  const removed = new Uint8Array(map.length);
  if (order === 'morf') {
    const q = percentile(map, p);
    for (let i = 0; i < map.length; i++) removed[i] = map[i] < q ? 0 : 1;
  } else {
    const inverse = Float64Array.from(map, (v) => 1 - v);
    const q = percentile(inverse, p);
    for (let i = 0; i < map.length; i++) removed[i] = inverse[i] < q ? 0 : 1;
  }
  return removed;
}

/** A seeded source of N(0, 1) numbers (mulberry32 and Box–Muller): the same seed, the same noise. */
export function gaussian(seed: number): () => number {
  let s = seed >>> 0;
  const uniform = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 2 ** 32; // in (0, 1)
  };
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

export interface Imputation {
  /** The input with the removed pixels imputed (C planes of h × w, CHW). */
  data: Float32Array;
  removed: number;
  /** The conjugate gradient's iterations, the most over the channels. */
  iterations: number;
  /** No pixel was kept: the removed ones became 0 (plus the noise). */
  nothingKept: boolean;
}

/**
 * Noisy linear imputation of the pixels where `removed` is 1 in `x` (C planes of h × w); `noise`:
 * the standard deviation (0: none), from `seed`.
 */
export function imputeRemoved(x: Float32Array, c: number, h: number, w: number, removed: Uint8Array, noise = ROAD_NOISE, seed = 0): Imputation {
  const hw = h * w;
  const out = Float32Array.from(x);
  const unknowns: number[] = [];
  const index = new Int32Array(hw).fill(-1);
  for (let p = 0; p < hw; p++) if (removed[p]) index[p] = unknowns.push(p) - 1;
  const n = unknowns.length;
  const rand = gaussian(seed);
  if (n === 0) return { data: out, removed: 0, iterations: 0, nothingKept: false };
  if (n === hw) {
    for (let i = 0; i < x.length; i++) out[i] = noise > 0 ? noise * rand() : 0;
    return { data: out, removed: n, iterations: 0, nothingKept: true };
  }
  // M in compressed rows: D per unknown, and up to 8 (unknown neighbour, weight) pairs; `known` lists
  // each unknown's kept neighbours (pixel, weight) for b.
  const diag = new Float64Array(n);
  const start = new Int32Array(n + 1), knownStart = new Int32Array(n + 1);
  const cols: number[] = [], vals: number[] = [], knownPixels: number[] = [], knownWeights: number[] = [];
  for (let i = 0; i < n; i++) {
    const y = Math.floor(unknowns[i] / w), xx = unknowns[i] % w;
    for (const [dy, dx, wt] of ROAD_NEIGHBOURS) {
      const ny = y + dy, nx = xx + dx;
      if (ny < 0 || ny >= h || nx < 0 || nx >= w) continue;
      diag[i] += wt;
      const q = ny * w + nx;
      if (index[q] >= 0) { cols.push(index[q]); vals.push(wt); } else { knownPixels.push(q); knownWeights.push(wt); }
    }
    start[i + 1] = cols.length;
    knownStart[i + 1] = knownPixels.length;
  }
  const colIdx = Int32Array.from(cols), colW = Float64Array.from(vals);
  const knownPx = Int32Array.from(knownPixels), knownW = Float64Array.from(knownWeights);
  const multiply = (u: Float64Array, into: Float64Array) => {
    for (let i = 0; i < n; i++) {
      let s = diag[i] * u[i];
      for (let k = start[i]; k < start[i + 1]; k++) s -= colW[k] * u[colIdx[k]];
      into[i] = s;
    }
  };
  const dot = (a: Float64Array, b: Float64Array) => { let s = 0; for (let i = 0; i < n; i++) s += a[i] * b[i]; return s; };
  // The SSOR preconditioner (ω = ROAD_SSOR): z = M_ω⁻¹ r, M_ω = (D + ωL) D⁻¹ (D + ωU) / (ω(2 − ω)), L and U the
  // strictly lower and upper parts of M (−W) in the unknowns' (row-major) order: a forward and a backward sweep.
  const omega = ROAD_SSOR;
  const precondition = (r: Float64Array, z: Float64Array) => {
    for (let i = 0; i < n; i++) {
      let s = omega * (2 - omega) * r[i];
      for (let k = start[i]; k < start[i + 1]; k++) if (colIdx[k] < i) s += omega * colW[k] * z[colIdx[k]];
      z[i] = s / diag[i];
    }
    for (let i = n - 1; i >= 0; i--) {
      let s = diag[i] * z[i];
      for (let k = start[i]; k < start[i + 1]; k++) if (colIdx[k] > i) s += omega * colW[k] * z[colIdx[k]];
      z[i] = s / diag[i];
    }
  };
  let most = 0;
  const b = new Float64Array(n), u = new Float64Array(n), r = new Float64Array(n), z = new Float64Array(n), d = new Float64Array(n), md = new Float64Array(n);
  for (let ch = 0; ch < c; ch++) {
    const plane = ch * hw;
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let k = knownStart[i]; k < knownStart[i + 1]; k++) s += knownW[k] * x[plane + knownPx[k]];
      b[i] = s;
    }
    // Preconditioned conjugate gradient from u = 0: r = b, z = D⁻¹ r, d = z.
    u.fill(0);
    r.set(b);
    precondition(r, z);
    d.set(z);
    let rz = dot(r, z);
    const bNorm = Math.sqrt(dot(b, b));
    const stop = ROAD_TOLERANCE * bNorm;
    let it = 0;
    let rr = bNorm * bNorm;
    while (Math.sqrt(rr) > stop) {
      if (it++ >= ROAD_MAX_ITERATIONS) {
        throw new GradcamError(`ROAD's imputation did not converge in ${ROAD_MAX_ITERATIONS} conjugate-gradient iterations (${n} removed pixels of ${h}×${w}, relative residual ${(Math.sqrt(rr) / bNorm).toExponential(2)})`,
          'This is a bug in the solver or a degenerate map; please report it with the picture.');
      }
      multiply(d, md);
      const alpha = rz / dot(d, md);
      rr = 0;
      for (let i = 0; i < n; i++) {
        u[i] += alpha * d[i];
        const ri = r[i] - alpha * md[i];
        r[i] = ri;
        rr += ri * ri;
      }
      precondition(r, z);
      const next = dot(r, z);
      const beta = next / rz;
      rz = next;
      for (let i = 0; i < n; i++) d[i] = z[i] + beta * d[i];
    }
    most = Math.max(most, it);
    for (let i = 0; i < n; i++) out[plane + unknowns[i]] = noise > 0 ? u[i] + noise * rand() : u[i];
  }
  return { data: out, removed: n, iterations: most, nothingKept: false };
}

/**
 * The float64 reference of the layout ops (Transpose, Slice, Split, Pad), LayerNormalization and
 * MatMul over the last axis, forward and backward side by side, on full tensors (batch included).
 * Written from the ONNX operator docs, with coordinates spelled out: no strides shared with src/.
 * Every layout op is "y[o] = x[source(o)]" (or a pad value); its backward adds dy[o] into dx at
 * source(o) for every o: a scatter into zeros, the transpose of the gather.
 */
import { numel, zeros, type Tensor } from './tensor.ts';

/** Row-major coordinates of flat index i in `shape`. */
function coords(shape: readonly number[], i: number): number[] {
  const c = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    c[d] = i % shape[d];
    i = Math.floor(i / shape[d]);
  }
  return c;
}

function flat(shape: readonly number[], c: readonly number[]): number {
  let i = 0;
  for (let d = 0; d < shape.length; d++) i = i * shape[d] + c[d];
  return i;
}

/** y[o] = x[source(o)] (source: x's coordinates, or null for a pad value). */
function gather(x: Tensor, outShape: number[], source: (o: number[]) => number[] | null, value = 0): Tensor {
  const y = zeros(outShape);
  for (let i = 0; i < y.data.length; i++) {
    const s = source(coords(outShape, i));
    y.data[i] = s ? x.data[flat(x.shape, s)] : value;
  }
  return y;
}

/** dx[source(o)] += dy[o] for every o. */
function scatter(dy: Tensor, xShape: number[], source: (o: number[]) => number[] | null): Tensor {
  const dx = zeros(xShape);
  for (let i = 0; i < dy.data.length; i++) {
    const s = source(coords(dy.shape, i));
    if (s) dx.data[flat(xShape, s)] += dy.data[i];
  }
  return dx;
}

// ───────────────────────────── Transpose ─────────────────────────────

/** y[o] = x[p], where p[perm[d]] = o[d]. */
export function transpose(x: Tensor, perm: number[]): Tensor {
  return gather(x, perm.map((p) => x.shape[p]), (o) => transposeSource(o, perm));
}

function transposeSource(o: number[], perm: number[]): number[] {
  const s = new Array<number>(o.length);
  perm.forEach((p, d) => { s[p] = o[d]; });
  return s;
}

export function transposeBackward(dy: Tensor, xShape: number[], perm: number[]): Tensor {
  return scatter(dy, xShape, (o) => transposeSource(o, perm));
}

// ───────────────────────────── Slice, Split ─────────────────────────────

/** One axis of a slice: the first index, the step, how many. */
export interface SliceAxis { start: number; step: number; count: number }

/**
 * ONNX Slice on one axis of size `dim`: negative starts/ends count from the end; then, for a positive
 * step, both clamp to [0, dim]; for a negative step, start to [0, dim − 1] and end to [−1, dim − 1].
 */
export function sliceAxis(dim: number, start: number, end: number, step: number): SliceAxis {
  if (start < 0) start += dim;
  if (end < 0) end += dim;
  const [lo, hiStart, hiEnd, loEnd] = step > 0 ? [0, dim, dim, 0] : [0, dim - 1, dim - 1, -1];
  start = Math.min(Math.max(start, lo), hiStart);
  end = Math.min(Math.max(end, loEnd), hiEnd);
  return { start, step, count: Math.max(0, Math.ceil((end - start) / step)) };
}

export function slice(x: Tensor, axes: SliceAxis[]): Tensor {
  return gather(x, axes.map((a) => a.count), (o) => o.map((v, d) => axes[d].start + v * axes[d].step));
}

export function sliceBackward(dy: Tensor, xShape: number[], axes: SliceAxis[]): Tensor {
  return scatter(dy, xShape, (o) => o.map((v, d) => axes[d].start + v * axes[d].step));
}

// ───────────────────────────── Pad ─────────────────────────────

export type PadMode = 'constant' | 'edge' | 'reflect';

/** The x coordinate that padded coordinate s (= o − pad_begin) reads along an axis of size n, or −1 for the pad value. */
function padSource(s: number, n: number, mode: PadMode): number {
  if (s >= 0 && s < n) return s;
  if (mode === 'constant') return -1;
  if (mode === 'edge') return s < 0 ? 0 : n - 1;
  return s < 0 ? -s : 2 * (n - 1) - s; // reflect (pads < n: one mirror is enough)
}

/** pads: [begin_0 … begin_{r−1}, end_0 … end_{r−1}] (negative crops). */
export function pad(x: Tensor, pads: number[], mode: PadMode, value: number): Tensor {
  const r = x.shape.length;
  const out = x.shape.map((n, d) => n + pads[d] + pads[r + d]);
  return gather(x, out, (o) => padCoords(o, x.shape, pads, mode), value);
}

function padCoords(o: number[], shape: number[], pads: number[], mode: PadMode): number[] | null {
  const s = o.map((v, d) => padSource(v - pads[d], shape[d], mode));
  return s.some((v) => v < 0) ? null : s;
}

export function padBackward(dy: Tensor, xShape: number[], pads: number[], mode: PadMode): Tensor {
  return scatter(dy, xShape, (o) => padCoords(o, xShape, pads, mode));
}

// ───────────────────────────── LayerNormalization ─────────────────────────────

/**
 * ONNX LayerNormalization: over the axes from `axis` on (inner = their product), per row:
 * y = (x − μ)/√(σ² + ε)·scale + B, μ and σ² the row's mean and (biased) variance; scale and B have
 * the normalised axes' shape.
 */
export function layerNorm(x: Tensor, scale: Tensor, bias: Tensor | null, axis: number, epsilon: number): Tensor {
  const inner = numel(x.shape.slice(axis));
  const y = zeros(x.shape);
  for (let row = 0; row < x.data.length; row += inner) {
    const { mean, inv } = rowStats(x.data, row, inner, epsilon);
    for (let i = 0; i < inner; i++) y.data[row + i] = (x.data[row + i] - mean) * inv * scale.data[i] + (bias ? bias.data[i] : 0);
  }
  return y;
}

function rowStats(x: Float64Array, row: number, inner: number, epsilon: number): { mean: number; inv: number } {
  let mean = 0;
  for (let i = 0; i < inner; i++) mean += x[row + i];
  mean /= inner;
  let variance = 0;
  for (let i = 0; i < inner; i++) variance += (x[row + i] - mean) ** 2;
  variance /= inner;
  return { mean, inv: 1 / Math.sqrt(variance + epsilon) };
}

/**
 * dx = inv·(g − mean(g) − x̂·mean(g·x̂)), g = dy·scale, x̂ = (x − μ)·inv: the full Jacobian-vector
 * product (μ and σ² depend on every x of the row).
 */
export function layerNormBackward(dy: Tensor, x: Tensor, scale: Tensor, axis: number, epsilon: number): Tensor {
  const inner = numel(x.shape.slice(axis));
  const dx = zeros(x.shape);
  for (let row = 0; row < x.data.length; row += inner) {
    const { mean, inv } = rowStats(x.data, row, inner, epsilon);
    let gMean = 0, gxMean = 0;
    for (let i = 0; i < inner; i++) {
      const g = dy.data[row + i] * scale.data[i];
      gMean += g;
      gxMean += g * (x.data[row + i] - mean) * inv;
    }
    gMean /= inner;
    gxMean /= inner;
    for (let i = 0; i < inner; i++) {
      const g = dy.data[row + i] * scale.data[i];
      dx.data[row + i] = inv * (g - gMean - (x.data[row + i] - mean) * inv * gxMean);
    }
  }
  return dx;
}

// ───────────────────────────── MatMul over the last axis ─────────────────────────────

/** y[…, d] = Σ_c x[…, c]·w[c, d]: an activation of any rank times a constant [C, D] matrix. */
export function matmulLastAxis(x: Tensor, w: Tensor): Tensor {
  const [C, D] = w.shape;
  const rows = x.data.length / C;
  const y = zeros([...x.shape.slice(0, -1), D]);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < C; c++) {
      const xv = x.data[r * C + c];
      for (let d = 0; d < D; d++) y.data[r * D + d] += xv * w.data[c * D + d];
    }
  }
  return y;
}

/** dx[…, c] = Σ_d dy[…, d]·w[c, d]. */
export function matmulLastAxisBackward(dy: Tensor, xShape: number[], w: Tensor): Tensor {
  const [C, D] = w.shape;
  const rows = dy.data.length / D;
  const dx = zeros(xShape);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (let d = 0; d < D; d++) s += dy.data[r * D + d] * w.data[c * D + d];
      dx.data[r * C + c] = s;
    }
  }
  return dx;
}

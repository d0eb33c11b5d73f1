/**
 * The reference's only data type: a dense float64 tensor, row-major (NCHW for images).
 * float64 so that the reference's own rounding (~1e-16) is negligible next to the float32 errors
 * of the engine and of onnxruntime that it judges.
 */
import type { OnnxTensor } from '../../src/onnx/model.ts';

export interface Tensor {
  shape: number[];
  data: Float64Array;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** A tensor of the given shape; `data` is copied (and checked for length) when given. */
export function tensor(shape: readonly number[], data?: ArrayLike<number>): Tensor {
  const n = numel(shape);
  if (data !== undefined && data.length !== n) throw new Error(`tensor: shape [${shape}] needs ${n} values, got ${data.length}`);
  const t = { shape: [...shape], data: new Float64Array(n) };
  if (data !== undefined) t.data.set(data);
  return t;
}

export const zeros = (shape: readonly number[]): Tensor => tensor(shape);

/** Same data, new shape (a copy, so that no two tensors of the reference ever alias). */
export function reshape(t: Tensor, shape: readonly number[]): Tensor {
  return tensor(shape, t.data);
}

/** An ONNX initializer in float64. int64 values (Reshape's shape) are small integers, exact in float64. */
export function fromOnnx(t: OnnxTensor): Tensor {
  const out = zeros(t.dims);
  for (let i = 0; i < out.data.length; i++) out.data[i] = Number(t.data[i]);
  return out;
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** max |a − b| over all elements; the arrays must have the same length. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`maxAbsDiff: lengths ${a.length} and ${b.length} differ`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** A small seeded generator (mulberry32) so that every test input is reproducible. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Uniform values in [lo, hi), rounded to float32 so that the same numbers can be given to
 * onnxruntime (float32) and to the reference (float64) without a difference in the inputs.
 */
export function randomTensor(shape: readonly number[], random: () => number, lo = -1, hi = 1): Tensor {
  const t = zeros(shape);
  for (let i = 0; i < t.data.length; i++) t.data[i] = Math.fround(lo + (hi - lo) * random());
  return t;
}

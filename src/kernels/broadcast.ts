/**
 * ONNX (numpy) multidirectional broadcasting for the element-wise kernels (shaders/binary.wgsl):
 * the output shape of several operands, and the geometry a kernel walks, rank-generic.
 *
 * Operands are aligned at their last dimension; a dimension of size 1 (or a missing leading one)
 * repeats along the output's. Per image, the kernel sees the output as up to MAX_DIMS dimensions,
 * innermost first, and each operand as one stride per dimension (0 where it is broadcast). Adjacent
 * dimensions that every operand walks alike are merged (a same-shape Add is one dimension, the
 * squeeze-and-excite product [C, 1, 1] × [C, H, W] two: [H·W, C] with strides [0, 1] and [1, H·W]),
 * so that the kernel divides as little as it can.
 */
import { InternalError } from '../errors.ts';

/** Dimensions per image a kernel reads: rank 6 tensors with their batch. */
export const MAX_DIMS = 5;

/** The numpy broadcast of `shapes`, or a message naming the first dimension that disagrees. */
export function broadcastShape(shapes: readonly (readonly number[])[]): number[] | string {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    let d = 1;
    for (const s of shapes) {
      const v = s[s.length - rank + i] ?? 1;
      if (v === 1 || v === d) continue;
      if (d !== 1) return `dimension ${i} of the result would be both ${d} and ${v}`;
      d = v;
    }
    out.push(d);
  }
  return out;
}

export interface BroadcastGeometry {
  /** Sizes per image, innermost first, merged (at least one). */
  dims: number[];
  /** Per operand, its stride along each of `dims` (0 where it is broadcast). */
  strides: number[][];
  /** Values per image of the output. */
  count: number;
}

/**
 * The per-image geometry of out = f(operands): `out` and each operand are per-image shapes (the
 * batch dimension removed; an operand may have fewer dimensions, aligned at the end).
 */
export function broadcastGeometry(out: readonly number[], operands: readonly (readonly number[])[]): BroadcastGeometry {
  // Innermost first: size, and each operand's contiguous stride (0 where it has size 1).
  const dims: number[] = [];
  const strides: number[][] = operands.map(() => []);
  const running = operands.map(() => 1);
  for (let i = out.length - 1; i >= 0; i--) {
    const n = out[i];
    const own = operands.map((s) => s[s.length - (out.length - i)] ?? 1);
    own.forEach((v, k) => {
      if (v !== 1 && v !== n) throw new InternalError(`operand ${k} [${operands[k]}] does not broadcast to [${out}]`);
    });
    if (n === 1) continue; // walks nothing
    const st = own.map((v, k) => (v === 1 ? 0 : running[k]));
    own.forEach((v, k) => { running[k] *= v; });
    const last = dims.length - 1;
    // Merge with the previous (inner) dimension when every operand continues its walk there.
    if (last >= 0 && st.every((s, k) => s === strides[k][last] * dims[last])) {
      dims[last] *= n;
    } else {
      dims.push(n);
      st.forEach((s, k) => strides[k].push(s));
    }
  }
  if (dims.length === 0) {
    dims.push(1);
    strides.forEach((s) => s.push(1));
  }
  if (dims.length > MAX_DIMS) throw new InternalError(`broadcast over [${out}] needs ${dims.length} dimensions; the kernel walks at most ${MAX_DIMS}`);
  return { dims, strides, count: out.reduce((a, b) => a * b, 1) };
}

/**
 * Every op of the engine, once. OPS lists one spec per graph op kind (src/ops/<op>.ts: its IR type,
 * ONNX lowerings, forward and backward, fusion); from it come the lowering table (ONNX op type →
 * lowering), the Op union of the IR, the kernel of an op, and the op kernels in ALL_KERNELS.
 * Adding an op is one new file here and one entry in OPS (docs/design.md, "Adding an op").
 *
 * | ONNX op                 | op kind                                                          |
 * | ----------------------- | ---------------------------------------------------------------- |
 * | Conv                    | conv (any group, dilations, pads, auto_pad; depthwise and narrow |
 * |                         | groups by the direct kernel, wide groups one GEMM per group)     |
 * | Gemm, MatMul            | conv 1×1 over [N, K, 1, 1] (alpha, beta folded into the weights) |
 * | BatchNormalization      | affine; folded into the preceding conv when possible             |
 * | Relu                    | relu; fused into its producer (conv, binary, affine) if possible |
 * | MaxPool, AveragePool    | maxpool (with dilations), avgpool                                |
 * | GlobalAveragePool,      | avgpool, maxpool with a window of the whole plane                |
 * | GlobalMaxPool           |                                                                  |
 * | ReduceMean, ReduceMax   | avgpool, maxpool over the whole plane (axes [2, 3], keepdims or  |
 * | over [2, 3]             | not)                                                             |
 * | LRN                     | lrn                                                              |
 * | Add, Sub, Mul, Div      | binary (numpy broadcasting; activations or constants), or affine |
 * |                         | (one activation and a per-channel or scalar constant)            |
 * | Sum, Max, Min, PRelu    | binary (Sum of n; Max, Min of two; PRelu's slope a constant)     |
 * | Softmax                 | softmax over each image's values                                 |
 * | Sigmoid, HardSigmoid,   | activation (one kernel, the function an override)                |
 * | HardSwish, LeakyRelu,   |                                                                  |
 * | Tanh, Elu, Softplus,    |                                                                  |
 * | Erf, Gelu, Pow (scalar  |                                                                  |
 * | exponent), Sqrt, Neg,   |                                                                  |
 * | Reciprocal, Abs, Exp,   |                                                                  |
 * | Clip                    | (min/max from attributes, opset < 11, or constant inputs)        |
 * | Concat (axis 1)         | concat: placed as channel slices of the output's storage, no op  |
 * | Concat (axis ≥ 2)       | concatcopy: each input copied into its region (layout.wgsl)      |
 * | Transpose, Slice, Split | layout: a strided gather (identity or full slice: a view)        |
 * | Pad                     | layout: constant, edge, reflect (all-zero pads: a view)          |
 * | Squeeze, Unsqueeze      | view (size-1 axes dropped or inserted)                           |
 * | LayerNormalization      | layernorm (over the axes from `axis` on)                         |
 * | MatMul on rank ≥ 3      | matmul: the conv GEMM over the last axis, each row an item       |
 * | ReduceMean (other axes) | reducemean over a contiguous run of non-batch axes               |
 * | Flatten, Reshape        | view (same storage, new shape)                                   |
 * | Dropout, Identity       | view (inference: identity)                                       |
 * (copy, made by placement.ts, has no ONNX op.)
 */
import { InternalError } from '../errors.ts';
import type { AnyKernel } from '../gpu/kernel.ts';
import type { OpKernel, OpShapes } from '../kernels/types.ts';
import { activation } from './activation.ts';
import { affine } from './affine.ts';
import { binary } from './binary.ts';
import { concat } from './concat.ts';
import { conv } from './conv.ts';
import { copy } from './copy.ts';
import { concatcopy, layout } from './layout.ts';
import { layernorm } from './layernorm.ts';
import { lrn } from './lrn.ts';
import { matmul } from './matmul.ts';
import { avgpool, maxpool } from './pool.ts';
import { reducemean } from './reduce.ts';
import { relu } from './relu.ts';
import { softmax } from './softmax.ts';
import type { OnnxLowering, OpSpec } from './spec.ts';
import { VIEWS } from './views.ts';

export const OPS = [conv, maxpool, avgpool, lrn, softmax, binary, affine, relu, activation, copy, concat, layout, concatcopy, layernorm, matmul, reducemean] as const;

type OpOf<S> = S extends OpSpec<infer O> ? O : never;
/** An op of the IR: the union of every spec's op type. */
export type Op = OpOf<(typeof OPS)[number]>;

const byKind = new Map<string, OpSpec<Op>>();
for (const spec of OPS as readonly OpSpec<Op>[]) {
  if (byKind.has(spec.kind)) throw new InternalError(`op kind '${spec.kind}' is listed twice`);
  byKind.set(spec.kind, spec);
}

/** The spec of an op kind. */
export function opSpec(kind: string): OpSpec<Op> {
  const spec = byKind.get(kind);
  if (!spec) throw new InternalError(`no op kind '${kind}'`);
  return spec;
}

/** The lowering table: ONNX op type → its lowering (each op's rows, and the views). */
export const LOWERINGS: ReadonlyMap<string, OnnxLowering> = (() => {
  const table = new Map<string, OnnxLowering>();
  for (const [type, row] of [...OPS.flatMap((o) => Object.entries<OnnxLowering>(o.onnx ?? {})), ...Object.entries(VIEWS)]) {
    if (table.has(type)) throw new InternalError(`ONNX op type ${type} is lowered twice`);
    table.set(type, row);
  }
  return table;
})();

/** The ONNX op types the engine reads, sorted. */
export const SUPPORTED_OPS = [...LOWERINGS.keys()].sort();

/** The forward and backward dispatches of one op (made at compile time). */
export function kernelFor(op: Op, shapes: OpShapes): OpKernel {
  return opSpec(op.kind).kernel(op, shapes);
}

/** The declared WGSL kernels the ops use (each once). */
export const OP_KERNELS: readonly AnyKernel[] = [...new Set(OPS.flatMap((o): readonly AnyKernel[] => o.kernels ?? []))];

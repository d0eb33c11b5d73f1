/**
 * matmul: MatMul of an activation of rank 3 to 5 by a constant [C, D] matrix, over its last axis:
 * y[n, …, d] = Σ_c x[n, …, c]·B[c, d] (ConvNeXt's pointwise layers on channels-last [N, H, W, C]).
 * It is the convolution GEMM (src/kernels/conv.ts) as a 1×1 convolution in which every row (every
 * pixel of every image) is an item of C values: the input view's item stride is C, the output's D.
 * Forward: the GEMM; data gradient: the same GEMM transposed (TRANSPOSED), as conv's backward.
 * (A 2-D MatMul stays a `conv` over [N, K, 1, 1]: src/ops/conv.ts lowers it and calls this for
 * higher ranks.)
 */
import type { OpBase } from '../graph/ir.ts';
import { tensorElements } from '../graph/ir.ts';
import type { BufferView, Dispatch, KernelEnv, KernelVariant } from '../gpu/dispatch.ts';
import { CONV_TILED, gemm, layoutWeights, pad16, POINTWISE, splitK } from '../kernels/conv.ts';
import type { BackwardArgs, ForwardArgs, OpKernel, OpShapes } from '../kernels/types.ts';
import { fmtShape } from '../kernels/types.ts';
import type { ConvOp } from './conv.ts';
import { list, nodeInput } from './attributes.ts';
import { defineOp, type LowerContext } from './spec.ts';

export interface MatMulOp extends OpBase {
  kind: 'matmul';
  /** B transposed: [D][C] (a 1×1 convolution's [C_out, C_in] weights). */
  weight: Float32Array;
  /** C (the contracted last axis) and D. */
  cIn: number; cOut: number;
}

/** Lowers MatMul(A, B) with A of rank ≥ 3 and B a constant matrix [C, D]. */
export function lowerMatMulLastAxis(ctx: LowerContext): void {
  const { node } = ctx;
  const aName = nodeInput(ctx, 0, 'A');
  const a = ctx.shape(aName);
  const bName = nodeInput(ctx, 1, 'B');
  if (!ctx.isConstant(bName)) ctx.fail(`the second operand '${bName}' must be an initializer (a weight matrix); products of two activations are not supported`);
  const b = ctx.weight(bName);
  if (b.dims.length !== 2) ctx.fail(`weights '${bName}' have shape ${list(b.dims)}; expected a matrix [${a[a.length - 1]}, D] for the last axis of [${a}]`);
  const [c, d] = b.dims;
  if (c !== a[a.length - 1]) ctx.fail(`weights '${bName}' ${list(b.dims)} need ${c} values on the last axis, but '${aName}' is [${a}]`);
  const weight = new Float32Array(d * c);
  for (let i = 0; i < d; i++) for (let j = 0; j < c; j++) weight[i * c + j] = b.data[j * d + i];
  ctx.emit({ kind: 'matmul', name: node.name, onnxTypes: ['MatMul'], inputs: [aName], output: node.outputs[0], weight, cIn: c, cOut: d }, [...a.slice(0, -1), d]);
}

function matmulKernel(op: MatMulOp, shapes: OpShapes): OpKernel {
  // The GEMM's view of the op: a 1×1 convolution, no bias, no ReLU.
  const conv = {
    kind: 'conv', name: op.name, onnxTypes: op.onnxTypes, inputs: op.inputs, output: op.output, weight: op.weight, bias: new Float32Array(op.cOut),
    cIn: op.cIn, cOut: op.cOut, kh: 1, kw: 1, strideH: 1, strideW: 1, pads: [0, 0, 0, 0], dilations: [1, 1], group: 1, relu: false,
  } as ConvOp;
  const rows = tensorElements(shapes.output.slice(1)) / op.cOut; // per image
  let fwd: { weights: GPUBuffer; zeros: GPUBuffer } | undefined;
  let bwd: { weights: GPUBuffer; zeros: GPUBuffer } | undefined;

  /**
   * The GEMM over `items` images of `rows` rows each: one dispatch when both views hold the images
   * back to back (stride = rows · values), else one per image.
   */
  async function run(env: KernelEnv, items: number, input: BufferView, output: BufferView, inner: [number, number], transposed: boolean,
    w: { weights: GPUBuffer; zeros: GPUBuffer }, accumulate: boolean, use: string): Promise<Dispatch[]> {
    const [k, m] = inner;
    const packed = input.stride === rows * k && output.stride === rows * m;
    const calls = packed ? [{ n: 0, count: items * rows }] : Array.from({ length: items }, (_, n) => ({ n, count: rows }));
    const out: Dispatch[] = [];
    for (const { n, count } of calls) {
      out.push(...await gemm(env, conv, {
        window: POINTWISE, shapes: `${fmtShape([items, rows, k])} → ${fmtShape([items, rows, m])}`,
        rows: k, inH: 1, inW: 1, cols: m, outH: 1, outW: 1, items: count,
        input: { buffer: input.buffer, offset: input.offset + n * input.stride, stride: k },
        output: { buffer: output.buffer, offset: output.offset + n * output.stride, stride: m },
        mask: null, maskDiv: 1, relu: false, accumulate, transposed, weights: w.weights, bias: w.zeros,
      }, use, 2 * count * k * m));
    }
    return out;
  }

  return {
    forward({ env, inputs: [x], output, batch }: ForwardArgs) {
      fwd ??= { weights: env.storage(layoutWeights(conv, false)), zeros: env.storage(new Float32Array(pad16(op.cOut))) };
      return run(env, batch, x, output, [op.cIn, op.cOut], false, fwd, false, 'forward');
    },
    backward({ env, dy, dx: [t], items }: BackwardArgs) {
      if (!t) return Promise.resolve([]);
      bwd ??= { weights: env.storage(layoutWeights(conv, true)), zeros: env.storage(new Float32Array(pad16(op.cIn))) };
      return run(env, items, dy, t.view, [op.cOut, op.cIn], true, bwd, t.accumulate, 'backward');
    },
  };
}

/**
 * The scratch the data gradient of `op` makes for `items` items (floats), without making it: the GPU
 * variant's split-K partial sums (as src/kernels/conv.ts gemmTiled sizes them; for the packed views,
 * the larger case), for sizing a request before any GPU work (src/gradcam/limits.ts).
 */
export function matmulBackwardScratch(op: MatMulOp, shapes: OpShapes, items: number, variant: KernelVariant): { label: string; floats: number }[] {
  if (variant !== 'gpu') return [];
  const { TILE, CHUNK } = CONV_TILED.constants;
  const positions = items * (tensorElements(shapes.output.slice(1)) / op.cOut);
  const { split } = splitK(Math.ceil(positions / TILE) * Math.ceil(op.cIn / TILE), Math.ceil(op.cOut / CHUNK));
  return split > 1 ? [{ label: `${op.name} split-K`, floats: split * op.cIn * positions }] : [];
}

export const matmul = defineOp<MatMulOp>({ kind: 'matmul', kernel: matmulKernel });

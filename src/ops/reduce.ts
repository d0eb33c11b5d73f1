/**
 * reducemean: ReduceMean over a contiguous run of axes other than the batch (the last axis of a
 * channels-last tensor, the channel axis of [N, C, H, W], …), with or without keepdims: the
 * decomposed LayerNorm's means. ReduceMean over the spatial axes [2, 3] of a 4-D tensor is a global
 * average pool (src/ops/pool.ts, whose ReduceMean row hands other axes to lowerReduceMean here).
 * Forward and backward: shaders/reduce.wgsl.
 */
import code from '../../shaders/reduce.wgsl';
import type { OpBase } from '../graph/ir.ts';
import { tensorElements } from '../graph/ir.ts';
import { declareKernel, read, readWrite, view } from '../gpu/kernel.ts';
import type { BackwardArgs, ForwardArgs, OpKernel, OpShapes } from '../kernels/types.ts';
import { fmtShape } from '../kernels/types.ts';
import { list } from './attributes.ts';
import { defineOp, type LowerContext } from './spec.ts';

export interface ReduceMeanOp extends OpBase {
  kind: 'reducemean';
  /** Per image: [outer, len, inner], len the product of the reduced axes. */
  outer: number; len: number; inner: number;
}

export const REDUCE = declareKernel({
  name: 'reduce',
  body: code,
  uniforms: {
    outer: 'u32', len: 'u32', inner: 'u32', items: 'u32',
    xOffset: 'u32', xStride: 'u32', yOffset: 'u32', yStride: 'u32',
    dyOffset: 'u32', dyStride: 'u32', dxOffset: 'u32', dxStride: 'u32',
  },
  bindings: { x: read(), y: readWrite(), dy: read(), dx: readWrite() },
  entries: { forward: ['x', 'y'], backward: ['dy', 'dx'] },
  workgroupSize: [64, 1, 1],
  overrides: { ACCUMULATE: false },
});

/**
 * ReduceMean of `xName` over `axes` (normalised ≥ 0, sorted, distinct; the node's axes as ONNX gives
 * them, checked by the caller): the axes must be one contiguous run that leaves the batch axis alone.
 */
export function lowerReduceMean(ctx: LowerContext, xName: string, axes: number[], keepdims: boolean): void {
  const x = ctx.shape(xName);
  if (axes.length === 0 || axes.includes(0)) ctx.fail(`ReduceMean over axes ${list(axes)} of [${x}] would reduce the batch axis 0, which is not supported`);
  if (axes.some((a, i) => i > 0 && a !== axes[i - 1] + 1)) ctx.fail(`ReduceMean over axes ${list(axes)} of [${x}] is not supported: the axes must be contiguous`);
  const first = axes[0], end = axes[axes.length - 1] + 1;
  const out = keepdims ? x.map((d, i) => (i >= first && i < end ? 1 : d)) : x.filter((_, i) => i < first || i >= end);
  const op: ReduceMeanOp = {
    kind: 'reducemean', name: ctx.node.name, onnxTypes: ['ReduceMean'], inputs: [xName], output: ctx.node.outputs[0],
    outer: tensorElements(x.slice(1, first)), len: tensorElements(x.slice(first, end)), inner: tensorElements(x.slice(end)),
  };
  // [N] alone is no tensor of the engine: keepdims = 0 over every other axis keeps [N, 1].
  ctx.emit(op, out.length === 1 ? [x[0], 1] : out);
}

function reduceKernel(op: ReduceMeanOp, shapes: OpShapes): OpKernel {
  const geometry = { outer: op.outer, len: op.len, inner: op.inner };
  const opType = op.onnxTypes.join('+');
  const info = (items: number) => ({
    label: op.name, opType, flops: items * op.outer * op.len * op.inner,
    shapes: `${fmtShape([items, ...shapes.inputs[0].slice(1)])} → ${fmtShape([items, ...shapes.output.slice(1)])}`,
  });
  return {
    async forward({ env, inputs: [x], output, batch }: ForwardArgs) {
      return [await REDUCE.dispatch(env, 'forward', {
        uniforms: { ...geometry, items: batch, ...view('x', x), ...view('y', output) },
        buffers: { x: x.buffer, y: output.buffer },
        workgroups: REDUCE.grid1d('forward', op.outer * op.inner * batch, env.limits.maxComputeWorkgroupsPerDimension),
        ...info(batch),
      })];
    },
    async backward({ env, dy, dx: [t], items }: BackwardArgs) {
      if (!t) return [];
      return [await REDUCE.dispatch(env, 'backward', {
        overrides: { ACCUMULATE: t.accumulate },
        uniforms: { ...geometry, items, ...view('dy', dy), ...view('dx', t.view) },
        buffers: { dy: dy.buffer, dx: t.view.buffer },
        workgroups: REDUCE.grid1d('backward', op.outer * op.len * op.inner * items, env.limits.maxComputeWorkgroupsPerDimension),
        ...info(items),
      })];
    },
  };
}

export const reducemean = defineOp<ReduceMeanOp>({ kind: 'reducemean', kernel: reduceKernel, kernels: [REDUCE] });

/** lrn: LRN across channels (ONNX semantics: alpha divided by size), forward and backward: shaders/lrn.wgsl. */
import code from '../../shaders/lrn.wgsl';
import type { OpBase } from '../graph/ir.ts';
import { declareKernel } from '../gpu/kernel.ts';
import type { BackwardArgs, ForwardArgs, OpKernel, OpShapes } from '../kernels/types.ts';
import { UNARY_BINDINGS, UNARY_ENTRIES, UNARY_VIEWS } from '../kernels/unary.ts';
import { chwOf, fmtShape } from '../kernels/types.ts';
import { attrFloat, attrInt } from '../onnx/model.ts';
import { need4d, nodeInput } from './attributes.ts';
import { defineOp, type LowerContext } from './spec.ts';

export interface LrnOp extends OpBase {
  kind: 'lrn';
  size: number; alpha: number; beta: number; bias: number;
}

function lowerLrn(ctx: LowerContext): void {
  const xName = nodeInput(ctx, 0, 'X');
  const x = need4d(ctx, xName);
  const size = attrInt(ctx.node, 'size', 0);
  if (size < 1) ctx.fail(`attribute 'size' is required and must be ≥ 1, got ${size}`);
  ctx.emit({
    kind: 'lrn', name: ctx.node.name, onnxTypes: ['LRN'], inputs: [xName], output: ctx.node.outputs[0], size,
    alpha: attrFloat(ctx.node, 'alpha', 1e-4), beta: attrFloat(ctx.node, 'beta', 0.75), bias: attrFloat(ctx.node, 'bias', 1),
  }, x);
}

export const LRN = declareKernel({
  name: 'lrn',
  body: code,
  uniforms: {
    channels: 'u32', hw: 'u32', items: 'u32', alpha: 'f32', beta: 'f32', bias: 'f32',
    ...UNARY_VIEWS,
  },
  bindings: UNARY_BINDINGS,
  entries: UNARY_ENTRIES,
  workgroupSize: [64, 1, 1],
  overrides: { SIZE: 5, ACCUMULATE: false },
});

function lrnKernel(op: LrnOp, shapes: OpShapes): OpKernel {
  const [c, h, w] = chwOf(shapes.output);
  const geometry = { channels: c, hw: h * w, alpha: op.alpha, beta: op.beta, bias: op.bias };
  const info = (items: number, perValue: number) => ({
    label: op.name, opType: 'LRN', flops: items * c * h * w * perValue, shapes: `${fmtShape([items, c, h, w])} size ${op.size}`,
  });
  return {
    async forward({ env, inputs, output, batch }: ForwardArgs) {
      const x = inputs[0];
      return [await LRN.dispatch(env, 'forward', {
        overrides: { SIZE: op.size, ACCUMULATE: false },
        uniforms: { ...geometry, items: batch, xOffset: x.offset, xStride: x.stride, yOffset: output.offset, yStride: output.stride },
        buffers: { x: x.buffer, y: output.buffer },
        workgroups: LRN.grid1d('forward', batch * c * h * w, env.limits.maxComputeWorkgroupsPerDimension),
        ...info(batch, 2 * op.size + 4),
      })];
    },
    async backward({ env, inputs, dy, dx, items, maskDiv }: BackwardArgs) {
      const t = dx[0];
      if (!t) return [];
      const x = inputs[0];
      return [await LRN.dispatch(env, 'backward', {
        overrides: { SIZE: op.size, ACCUMULATE: t.accumulate },
        uniforms: {
          ...geometry, items, maskDiv, xOffset: x.offset, xStride: x.stride,
          dyOffset: dy.offset, dyStride: dy.stride, dxOffset: t.view.offset, dxStride: t.view.stride,
        },
        buffers: { x: x.buffer, dy: dy.buffer, dx: t.view.buffer },
        workgroups: LRN.grid1d('backward', items * c * h * w, env.limits.maxComputeWorkgroupsPerDimension),
        ...info(items, (op.size + 1) * (2 * op.size + 6)),
      })];
    },
  };
}

export const lrn = defineOp<LrnOp>({
  kind: 'lrn',
  onnx: { LRN: { inputs: [1, 1], outputs: [1, 1], attributes: ['alpha', 'beta', 'bias', 'size'], lower: lowerLrn } },
  kernel: lrnKernel,
  kernels: [LRN],
});

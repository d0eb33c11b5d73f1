/**
 * softmax: Softmax over each item's values (the last axis of [N, C]), forward and backward:
 * shaders/softmax.wgsl (a workgroup per row). Also the score that Grad-CAM's softmax reduction adds
 * after a model's logits (graph/score.ts).
 */
import code from '../../shaders/softmax.wgsl';
import { type OpBase, perImage } from '../graph/ir.ts';
import { declareKernel, read, readWrite } from '../gpu/kernel.ts';
import type { BackwardArgs, ForwardArgs, OpKernel, OpShapes } from '../kernels/types.ts';
import { fmtShape } from '../kernels/types.ts';
import { attrInt } from '../onnx/model.ts';
import { axisAttr, nodeInput } from './attributes.ts';
import { defineOp, type LowerContext } from './spec.ts';

export interface SoftmaxOp extends OpBase { kind: 'softmax' }

function lowerSoftmax(ctx: LowerContext): void {
  const xName = nodeInput(ctx, 0, 'X');
  const x = ctx.shape(xName);
  const a = axisAttr(ctx, ctx.opset >= 13 ? -1 : 1, x.length);
  // Supported: a softmax over all of each image's values (2-D last axis; opset < 13 coerces to 2-D at axis 1).
  const ok = x.length === 2 ? a === 1 : ctx.opset < 13 ? a === 1 : false;
  if (!ok) ctx.fail(`softmax over axis ${attrInt(ctx.node, 'axis', a)} of [${x}] is not supported (only over each image's values)`);
  ctx.emit({ kind: 'softmax', name: ctx.node.name, onnxTypes: ['Softmax'], inputs: [xName], output: ctx.node.outputs[0] }, x);
}

export const SOFTMAX = declareKernel({
  name: 'softmax',
  body: code,
  uniforms: {
    length: 'u32', // values per item
    xOffset: 'u32', xStride: 'u32',
    yOffset: 'u32', yStride: 'u32',
    probsOffset: 'u32', probsStride: 'u32', // backward: the forward output y, read at image item / maskDiv
    dyOffset: 'u32', dyStride: 'u32',
    dxOffset: 'u32', dxStride: 'u32',
    maskDiv: 'u32',
  },
  bindings: { x: read(), y: readWrite(), probs: read(), dy: read(), dx: readWrite() },
  entries: { forward: ['x', 'y'], backward: ['probs', 'dy', 'dx'] },
  // One workgroup per item; its invocations reduce the row (a power of two).
  workgroupSize: [64, 1, 1],
  overrides: { ACCUMULATE: false },
});

export function softmaxKernel(op: SoftmaxOp, shapes: OpShapes): OpKernel {
  const length = perImage(shapes.output);
  const info = (items: number) => ({ label: op.name, opType: 'Softmax', flops: items * length * 4, shapes: fmtShape([items, length]) });
  return {
    async forward({ env, inputs, output, batch }: ForwardArgs) {
      const x = inputs[0];
      return [await SOFTMAX.dispatch(env, 'forward', {
        overrides: { ACCUMULATE: false },
        uniforms: { length, xOffset: x.offset, xStride: x.stride, yOffset: output.offset, yStride: output.stride },
        buffers: { x: x.buffer, y: output.buffer }, workgroups: [batch, 1, 1],
        ...info(batch),
      })];
    },
    async backward({ env, output, dy, dx, items, maskDiv }: BackwardArgs) {
      const t = dx[0];
      if (!t) return [];
      return [await SOFTMAX.dispatch(env, 'backward', {
        overrides: { ACCUMULATE: t.accumulate },
        uniforms: {
          length, maskDiv, probsOffset: output.offset, probsStride: output.stride,
          dyOffset: dy.offset, dyStride: dy.stride, dxOffset: t.view.offset, dxStride: t.view.stride,
        },
        buffers: { probs: output.buffer, dy: dy.buffer, dx: t.view.buffer }, workgroups: [items, 1, 1],
        ...info(items),
      })];
    },
  };
}

export const softmax = defineOp<SoftmaxOp>({
  kind: 'softmax',
  onnx: { Softmax: { inputs: [1, 1], outputs: [1, 1], attributes: ['axis'], lower: lowerSoftmax } },
  kernel: softmaxKernel,
  kernels: [SOFTMAX],
});

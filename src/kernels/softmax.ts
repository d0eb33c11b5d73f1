/** Softmax over each item's values, forward and backward: shaders/softmax.wgsl (a workgroup per row). */
import code from '../../shaders/softmax.wgsl';
import type { SoftmaxOp } from '../graph/ir.ts';
import { Params } from '../gpu/dispatch.ts';
import type { BackwardArgs, ForwardArgs, OpKernel, OpShapes } from './types.ts';
import { fmtShape } from './types.ts';

export function softmaxKernel(op: SoftmaxOp, shapes: OpShapes): OpKernel {
  const length = shapes.output.slice(1).reduce((a, b) => a * b, 1);
  const params = (items: number, x: { offset: number; stride: number }, g: { offset: number; stride: number }, d: { offset: number; stride: number }, maskDiv: number) =>
    new Params().u32(length, items, x.offset, x.stride, g.offset, g.stride, d.offset, d.stride, maskDiv, 0, 0, 0);
  const meta = (kernel: string, items: number) => ({ kernel, label: op.name, opType: 'Softmax', flops: items * length * 4, shapes: fmtShape([items, length]) });
  return {
    async forward({ env, inputs, output, batch }: ForwardArgs) {
      const pipeline = await env.pipeline(code, 'forward', { ACCUMULATE: false });
      const p = params(batch, inputs[0], output, { offset: 0, stride: 0 }, 1);
      return [env.dispatch(pipeline, [env.uniform(p), inputs[0].buffer, output.buffer], [batch, 1, 1], meta('softmax.forward', batch))];
    },
    async backward({ env, output, dy, dx, items, maskDiv }: BackwardArgs) {
      const t = dx[0];
      if (!t) return [];
      const pipeline = await env.pipeline(code, 'backward', { ACCUMULATE: t.accumulate });
      const p = params(items, output, dy, t.view, maskDiv);
      return [env.dispatch(pipeline, [env.uniform(p), output.buffer, dy.buffer, t.view.buffer], [items, 1, 1], meta('softmax.backward', items))];
    },
  };
}

/** LRN across channels (ONNX semantics: alpha divided by size), forward and backward: shaders/lrn.wgsl. */
import code from '../../shaders/lrn.wgsl';
import type { LrnOp } from '../graph/ir.ts';
import { grid1d, Params } from '../gpu/dispatch.ts';
import type { BackwardArgs, ForwardArgs, OpKernel, OpShapes } from './types.ts';
import { chwOf, fmtShape } from './types.ts';

export function lrnKernel(op: LrnOp, shapes: OpShapes): OpKernel {
  const [c, h, w] = chwOf(shapes.output);
  const params = (items: number, x: { offset: number; stride: number }, g: { offset: number; stride: number }, d: { offset: number; stride: number }, maskDiv: number) =>
    new Params().u32(c, h * w, items).f32(op.alpha, op.beta, op.bias).u32(x.offset, x.stride, g.offset, g.stride, d.offset, d.stride, maskDiv, 0, 0, 0);
  const meta = (kernel: string, items: number, perValue: number) => ({
    kernel, label: op.name, opType: 'LRN', flops: items * c * h * w * perValue, shapes: `${fmtShape([items, c, h, w])} size ${op.size}`,
  });
  return {
    async forward({ env, inputs, output, batch }: ForwardArgs) {
      const pipeline = await env.pipeline(code, 'forward', { SIZE: op.size, ACCUMULATE: false });
      const p = params(batch, inputs[0], output, { offset: 0, stride: 0 }, 1);
      return [env.dispatch(pipeline, [env.uniform(p), inputs[0].buffer, output.buffer], grid1d(batch * c * h * w, 64, env.limits.maxComputeWorkgroupsPerDimension), meta('lrn.forward', batch, 2 * op.size + 4))];
    },
    async backward({ env, inputs, dy, dx, items, maskDiv }: BackwardArgs) {
      const t = dx[0];
      if (!t) return [];
      const pipeline = await env.pipeline(code, 'backward', { SIZE: op.size, ACCUMULATE: t.accumulate });
      const p = params(items, inputs[0], dy, t.view, maskDiv);
      return [env.dispatch(pipeline, [env.uniform(p), inputs[0].buffer, dy.buffer, t.view.buffer], grid1d(items * c * h * w, 64, env.limits.maxComputeWorkgroupsPerDimension), meta('lrn.backward', items, (op.size + 1) * (2 * op.size + 6)))];
    },
  };
}

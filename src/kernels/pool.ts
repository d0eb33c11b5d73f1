/**
 * MaxPool, AveragePool and GlobalAveragePool (an average over the whole plane), forward and
 * backward, both in shaders/pool.wgsl. The max-pool backward recomputes each window's arg-max
 * from the forward input instead of keeping indices.
 */
import code from '../../shaders/pool.wgsl';
import type { PoolOp } from '../graph/ir.ts';
import { Params } from '../gpu/dispatch.ts';
import type { BackwardArgs, ForwardArgs, OpKernel, OpShapes } from './types.ts';
import { chwOf, fmtShape } from './types.ts';

export function poolKernel(op: PoolOp, shapes: OpShapes): OpKernel {
  const [c, inH, inW] = chwOf(shapes.inputs[0]);
  const [, outH, outW] = chwOf(shapes.output);
  const constants = (accumulate: boolean) => ({
    KH: op.kh, KW: op.kw, SH: op.strideH, SW: op.strideW, MAX: op.kind === 'maxpool', COUNT_INCLUDE_PAD: op.countIncludePad, ACCUMULATE: accumulate,
  });
  const params = (items: number, x: { offset: number; stride: number }, g: { offset: number; stride: number }, d: { offset: number; stride: number }, maskDiv: number) =>
    new Params().u32(c, inH, inW, outH, outW, items).i32(...op.pads).u32(x.offset, x.stride, g.offset, g.stride, d.offset, d.stride, maskDiv, 0, 0, 0);
  const meta = (kernel: string, items: number) => ({
    kernel, label: op.name, opType: op.onnxTypes.join('+'), flops: items * c * outH * outW * op.kh * op.kw,
    shapes: `${fmtShape([items, c, inH, inW])} → ${fmtShape([items, c, outH, outW])} k${op.kh}×${op.kw}/${op.strideH}`,
  });
  return {
    async forward({ env, inputs, output, batch }: ForwardArgs) {
      const pipeline = await env.pipeline(code, 'forward', constants(false));
      const p = params(batch, inputs[0], output, { offset: 0, stride: 0 }, 1);
      return [env.dispatch(pipeline, [env.uniform(p), inputs[0].buffer, output.buffer], [Math.ceil(outW / 8), Math.ceil(outH / 8), batch * c], meta(`${op.kind}.forward`, batch))];
    },
    async backward({ env, inputs, dy, dx, items, maskDiv }: BackwardArgs) {
      const t = dx[0];
      if (!t) return [];
      const pipeline = await env.pipeline(code, 'backward', constants(t.accumulate));
      const p = params(items, inputs[0], dy, t.view, maskDiv);
      return [env.dispatch(pipeline, [env.uniform(p), inputs[0].buffer, dy.buffer, t.view.buffer], [Math.ceil(inW / 8), Math.ceil(inH / 8), items * c], meta(`${op.kind}.backward`, items))];
    },
  };
}

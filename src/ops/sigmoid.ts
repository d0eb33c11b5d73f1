/**
 * sigmoid: y = 1 / (1 + e^(−x)) (ONNX Sigmoid), forward and backward in shaders/sigmoid.wgsl; the
 * backward recomputes σ'(x) from the forward input. No Relu fuses into it.
 */
import code from '../../shaders/sigmoid.wgsl';
import { type OpBase, perImage } from '../graph/ir.ts';
import { declareKernel, view } from '../gpu/kernel.ts';
import type { BackwardArgs, ForwardArgs, OpKernel, OpShapes } from '../kernels/types.ts';
import { UNARY_BINDINGS, UNARY_ENTRIES, UNARY_VIEWS } from '../kernels/unary.ts';
import { fmtShape } from '../kernels/types.ts';
import { nodeInput } from './attributes.ts';
import { defineOp } from './spec.ts';

export interface SigmoidOp extends OpBase { kind: 'sigmoid' }

export const SIGMOID = declareKernel({
  name: 'sigmoid',
  body: code,
  uniforms: {
    count: 'u32', items: 'u32', // values per item, items
    ...UNARY_VIEWS,
  },
  bindings: UNARY_BINDINGS,
  entries: UNARY_ENTRIES,
  workgroupSize: [256, 1, 1],
  overrides: { ACCUMULATE: false },
});

function sigmoidKernel(op: SigmoidOp, shapes: OpShapes): OpKernel {
  const count = perImage(shapes.output);
  const info = (items: number, perValue: number) => ({
    label: op.name, opType: 'Sigmoid', flops: items * count * perValue, shapes: fmtShape([items, ...shapes.output.slice(1)]),
  });
  return {
    async forward({ env, inputs: [x], output, batch }: ForwardArgs) {
      return [await SIGMOID.dispatch(env, 'forward', {
        uniforms: { count, items: batch, ...view('x', x), ...view('y', output) },
        buffers: { x: x.buffer, y: output.buffer },
        workgroups: SIGMOID.grid1d('forward', count * batch, env.limits.maxComputeWorkgroupsPerDimension),
        ...info(batch, 4),
      })];
    },
    async backward({ env, inputs: [x], dy, dx, items, maskDiv }: BackwardArgs) {
      const t = dx[0];
      if (!t) return [];
      return [await SIGMOID.dispatch(env, 'backward', {
        overrides: { ACCUMULATE: t.accumulate },
        uniforms: { count, items, maskDiv, ...view('x', x), ...view('dy', dy), ...view('dx', t.view) },
        buffers: { x: x.buffer, dy: dy.buffer, dx: t.view.buffer },
        workgroups: SIGMOID.grid1d('backward', count * items, env.limits.maxComputeWorkgroupsPerDimension),
        ...info(items, 6),
      })];
    },
  };
}

export const sigmoid = defineOp<SigmoidOp>({
  kind: 'sigmoid',
  onnx: {
    Sigmoid: {
      inputs: [1, 1], outputs: [1, 1], attributes: ['consumed_inputs'],
      lower: (ctx) => {
        const xName = nodeInput(ctx, 0, 'X');
        ctx.emit({ kind: 'sigmoid', name: ctx.node.name, onnxTypes: ['Sigmoid'], inputs: [xName], output: ctx.node.outputs[0] }, ctx.shape(xName));
      },
    },
  },
  kernel: sigmoidKernel,
  kernels: [SIGMOID],
});

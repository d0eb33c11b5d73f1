/**
 * relu: y = max(x, 0), when it cannot fuse into its producer (graph/fuse.ts: a conv, add or affine
 * whose output only it reads and nobody keeps). Forward: elementwise.wgsl `relu`; backward: `grad`
 * with the mask of its own output (dx = dy where y > 0).
 */
import type { OpBase } from '../graph/ir.ts';
import { ELEMENTWISE, gradCall, unary } from '../kernels/elementwise.ts';
import type { BackwardArgs, ForwardArgs, OpKernel, OpShapes } from '../kernels/types.ts';
import { nodeInput } from './attributes.ts';
import { defineOp } from './spec.ts';

export interface ReluOp extends OpBase { kind: 'relu' }

function reluKernel(op: ReluOp, shapes: OpShapes): OpKernel {
  return {
    async forward({ env, inputs, output, batch }: ForwardArgs) {
      return [await unary(env, 'relu', shapes, op.name, 'Relu', inputs[0], output, batch)];
    },
    async backward({ env, output, dy, dx, items, maskDiv, guided }: BackwardArgs) {
      const t = dx[0];
      return t ? [await gradCall(env, shapes, op.name, 'Relu', dy, t, items, maskDiv, output, undefined, guided)] : [];
    },
  };
}

export const relu = defineOp<ReluOp>({
  kind: 'relu',
  onnx: {
    Relu: {
      inputs: [1, 1], outputs: [1, 1], attributes: ['consumed_inputs'],
      lower: (ctx) => {
        const xName = nodeInput(ctx, 0, 'X');
        ctx.emit({ kind: 'relu', name: ctx.node.name, onnxTypes: ['Relu'], inputs: [xName], output: ctx.node.outputs[0] }, ctx.shape(xName));
      },
    },
  },
  kernel: reluKernel,
  kernels: [ELEMENTWISE],
});

/**
 * copy: y = x into a concat slice, for a Concat input that cannot be written in place (the graph
 * input, a tensor listed more than once among the concats' inputs). No ONNX op lowers to it:
 * graph/placement.ts makes it. Forward: elementwise.wgsl `copy`; backward: `grad` (dx (+)= dy).
 */
import type { OpBase } from '../graph/ir.ts';
import { ELEMENTWISE, gradCall, unary } from '../kernels/elementwise.ts';
import type { BackwardArgs, ForwardArgs, OpKernel, OpShapes } from '../kernels/types.ts';
import { defineOp } from './spec.ts';

export interface CopyOp extends OpBase { kind: 'copy' }

function copyKernel(op: CopyOp, shapes: OpShapes): OpKernel {
  const opType = op.onnxTypes.join('+');
  return {
    async forward({ env, inputs, output, batch }: ForwardArgs) {
      return [await unary(env, 'copy', shapes, op.name, opType, inputs[0], output, batch)];
    },
    async backward({ env, dy, dx, items, maskDiv }: BackwardArgs) {
      const t = dx[0];
      return t ? [await gradCall(env, shapes, op.name, opType, dy, t, items, maskDiv, null)] : [];
    },
  };
}

export const copy = defineOp<CopyOp>({ kind: 'copy', kernel: copyKernel, kernels: [ELEMENTWISE] });

/** The kernel module of each graph op kind (the lowering table's second half: op kind → kernels). */
import type { Op } from '../graph/ir.ts';
import { convKernel } from './conv.ts';
import { addKernel, affineKernel, copyKernel, reluKernel } from './elementwise.ts';
import { lrnKernel } from './lrn.ts';
import { poolKernel } from './pool.ts';
import { softmaxKernel } from './softmax.ts';
import type { OpKernel, OpShapes } from './types.ts';

export function kernelFor(op: Op, shapes: OpShapes): OpKernel {
  switch (op.kind) {
    case 'conv': return convKernel(op, shapes);
    case 'maxpool':
    case 'avgpool': return poolKernel(op, shapes);
    case 'lrn': return lrnKernel(op, shapes);
    case 'softmax': return softmaxKernel(op, shapes);
    case 'add': return addKernel(op, shapes);
    case 'affine': return affineKernel(op, shapes);
    case 'relu': return reluKernel(op, shapes);
    case 'copy': return copyKernel(op, shapes);
    case 'concat': throw new Error(`internal: concat '${op.name}' should have been placed as views`);
  }
}

/**
 * The kernel module of each graph op kind (the lowering table's second half: op kind → kernels), and
 * every declared WGSL kernel (ALL_KERNELS: test/kernel-declarations.test.ts checks each declaration
 * against its body and compiles every entry point).
 */
import type { Op } from '../graph/ir.ts';
import type { AnyKernel } from '../gpu/kernel.ts';
import { CONV, CONV_TILED, convKernel, IM2COL } from './conv.ts';
import { addKernel, affineKernel, copyKernel, ELEMENTWISE, reluKernel } from './elementwise.ts';
import { GRADCAM } from './gradcam.ts';
import { LRN, lrnKernel } from './lrn.ts';
import { OVERLAY } from './overlay.ts';
import { AVGPOOL, MAXPOOL, poolKernel } from './pool.ts';
import { PREPROCESS } from './preprocess.ts';
import { SOFTMAX, softmaxKernel } from './softmax.ts';
import type { OpKernel, OpShapes } from './types.ts';
import { WINOGRAD } from './winograd.ts';

export const ALL_KERNELS: readonly AnyKernel[] = [
  CONV, CONV_TILED, IM2COL, WINOGRAD, MAXPOOL, AVGPOOL, LRN, SOFTMAX, ELEMENTWISE, GRADCAM, OVERLAY, PREPROCESS,
];

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

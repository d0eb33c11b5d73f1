/**
 * Every declared WGSL kernel (ALL_KERNELS: test/kernel-declarations.test.ts checks each declaration
 * against its body and compiles every entry point): the ops' (src/ops/index.ts, OP_KERNELS) and the
 * stages' (Grad-CAM, overlay, preprocessing).
 */
import type { AnyKernel } from '../gpu/kernel.ts';
import { OP_KERNELS } from '../ops/index.ts';
import { ATTRIBUTION } from './attribution.ts';
import { AUGSMOOTH } from './augsmooth.ts';
import { GRADCAM } from './gradcam.ts';
import { MULTIPASS } from './multipass.ts';
import { OVERLAY } from './overlay.ts';
import { PREPROCESS } from './preprocess.ts';

export const ALL_KERNELS: readonly AnyKernel[] = [...OP_KERNELS, GRADCAM, ATTRIBUTION, MULTIPASS, AUGSMOOTH, OVERLAY, PREPROCESS];

/**
 * The data gradient of an ungrouped convolution as a direct gather by stride phase
 * (shaders/conv_gather.wgsl), the 'gather' variant (src/kernels/variants.ts): for layers whose data
 * gradient has few channels (conv1: 3), where the GEMM pads them to its 16-channel block and, with a
 * stride, runs every tap that misses the stride grid as zeros. The weights are laid out once, at
 * compile time:
 *   Wg[((ky·KW + kx)·C_out + co)·⌈C_in/4⌉ + cb] = W[co][4·cb … 4·cb + 3][ky][kx]   (a vec4; channels ≥ C_in zero)
 * co innermost per tap: the kernel's loop over co walks them in order.
 */
import code from '../../shaders/conv_gather.wgsl';
import type { ConvOp } from '../ops/conv.ts';
import type { BufferView, Dispatch, KernelEnv } from '../gpu/dispatch.ts';
import { declareKernel, read, readWrite } from '../gpu/kernel.ts';
import { FUSED_RELU, fusedReluOverrides, maskedLoad4 } from '../gpu/wgsl-library.ts';
import { fmtShape } from './types.ts';

export const CONV_GATHER = declareKernel({
  name: 'conv_gather',
  body: code,
  uniforms: {
    rows: 'u32', cols: 'u32', // dy's channels (C_out, summed over), dx's (C_in)
    dyH: 'u32', dyW: 'u32', dxH: 'u32', dxW: 'u32',
    items: 'u32', // images × classes
    padT: 'i32', padL: 'i32',
    dyOffset: 'u32', dyStride: 'u32', dxOffset: 'u32', dxStride: 'u32', maskOffset: 'u32', maskStride: 'u32',
    maskDiv: 'u32', // gradient item i masks with the forward image i / maskDiv
  },
  bindings: { dy: read(), weights: read('vec4<f32>'), mask: read(), dx: readWrite() },
  entries: { gather: ['dy', 'weights', 'mask', 'dx'] },
  // TP dx positions (of one row and stride phase) per invocation.
  constants: { TP: 8 },
  workgroupSize: [64, 1, 1],
  // RELU, RELU6, MASK, GUIDED: the fused activation's backward rule (FUSED_RELU; RELU stays off: no forward output here).
  overrides: { KH: 1, KW: 1, SH: 1, SW: 1, DH: 1, DW: 1, RELU: false, RELU6: false, MASK: false, GUIDED: false, ACCUMULATE: false },
  libraries: [FUSED_RELU, maskedLoad4('dy')],
});

const { TP } = CONV_GATHER.constants;

/** Wg (file comment) from an ungrouped op's W[C_out][C_in][KH][KW]. */
export function gatherWeights(op: Pick<ConvOp, 'weight' | 'cIn' | 'cOut' | 'kh' | 'kw'>): Float32Array {
  const { weight, cIn, cOut, kh, kw } = op;
  const taps = kh * kw, cols4 = Math.ceil(cIn / 4);
  const out = new Float32Array(taps * cOut * cols4 * 4);
  for (let co = 0; co < cOut; co++) {
    for (let ci = 0; ci < cIn; ci++) {
      for (let k = 0; k < taps; k++) out[(k * cOut + co) * cols4 * 4 + ci] = weight[(co * cIn + ci) * taps + k];
    }
  }
  return out;
}

export interface GatherCall {
  dyH: number; dyW: number; dxH: number; dxW: number; items: number;
  dy: BufferView; dx: BufferView; mask: BufferView | null; maskDiv: number;
  guided?: boolean;
  accumulate: boolean;
  weights: GPUBuffer;
}

/** One dispatch of conv_gather.wgsl; profiles name it conv_gather.backward.gather. */
export async function convGather(env: KernelEnv, op: ConvOp & { relu6?: boolean }, c: GatherCall, flops: number): Promise<Dispatch> {
  const mask = c.mask ?? { buffer: env.dummy, offset: 0, stride: 0 };
  const blocks = Math.ceil(Math.ceil(c.dxW / op.strideW) / TP);
  const threads = c.items * Math.ceil(op.cIn / 4) * c.dxH * op.strideW * blocks;
  return CONV_GATHER.dispatch(env, 'gather', {
    overrides: {
      KH: op.kh, KW: op.kw, SH: op.strideH, SW: op.strideW, DH: op.dilations[0], DW: op.dilations[1],
      ...fusedReluOverrides(op, c), ACCUMULATE: c.accumulate,
    },
    uniforms: {
      rows: op.cOut, cols: op.cIn, dyH: c.dyH, dyW: c.dyW, dxH: c.dxH, dxW: c.dxW, items: c.items, padT: op.pads[0], padL: op.pads[1],
      dyOffset: c.dy.offset, dyStride: c.dy.stride, dxOffset: c.dx.offset, dxStride: c.dx.stride,
      maskOffset: mask.offset, maskStride: mask.stride, maskDiv: Math.max(1, c.maskDiv),
    },
    buffers: { dy: c.dy.buffer, weights: c.weights, mask: mask.buffer, dx: c.dx.buffer },
    workgroups: CONV_GATHER.grid1d('gather', threads, env.limits.maxComputeWorkgroupsPerDimension),
    use: 'backward', label: op.name, opType: op.onnxTypes.join('+'), flops,
    shapes: `${fmtShape([c.items, op.cOut, c.dyH, c.dyW])} → ${fmtShape([c.items, op.cIn, c.dxH, c.dxW])} k${op.kh}×${op.kw}/${op.strideH}`,
  });
}

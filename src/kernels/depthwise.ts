/**
 * The direct grouped convolution (shaders/depthwise.wgsl): depthwise layers and groups narrower than
 * the GEMM's 16-channel block, forward and data gradient (a transposed grouped convolution of dy,
 * the fused ReLU's mask applied as it is read). convLowering (src/kernels/conv.ts) picks it.
 * The weights are laid out once per direction, at compile time:
 *   forward  Wd[co][r][ky][kx] = W[co][r][ky][kx]                         (r < C_in/group)
 *   backward Wd[ci][j][ky][kx] = W[g·C_out/group + j][ci − g·C_in/group][ky][kx]   (g = ci / (C_in/group), j < C_out/group)
 */
import code from '../../shaders/depthwise.wgsl';
import type { ConvOp } from '../ops/conv.ts';
import type { BufferView, Dispatch, KernelEnv } from '../gpu/dispatch.ts';
import { declareKernel, read, readWrite } from '../gpu/kernel.ts';
import { FUSED_RELU, fusedReluOverrides } from '../gpu/wgsl-library.ts';
import { fmtShape } from './types.ts';

export const DEPTHWISE = declareKernel({
  name: 'depthwise',
  body: code,
  uniforms: {
    rows: 'u32', cols: 'u32', groups: 'u32', // per group: input channels summed over, output channels
    inH: 'u32', inW: 'u32', outH: 'u32', outW: 'u32',
    items: 'u32', // images, or images × classes for gradients
    padT: 'i32', padL: 'i32',
    inOffset: 'u32', inStride: 'u32', outOffset: 'u32', outStride: 'u32', maskOffset: 'u32', maskStride: 'u32',
    maskDiv: 'u32', // gradient item i masks with the forward image i / maskDiv
  },
  bindings: { input: read(), weights: read(), bias: read(), mask: read(), output: readWrite() },
  entries: { conv: ['input', 'weights', 'bias', 'mask', 'output'] },
  workgroupSize: [64, 1, 1],
  overrides: { KH: 1, KW: 1, SH: 1, SW: 1, DH: 1, DW: 1, TRANSPOSED: false, RELU: false, RELU6: false, MASK: false, GUIDED: false, ACCUMULATE: false },
  libraries: [FUSED_RELU],
});

/** Wd for one direction (file comment). */
export function directWeights(op: ConvOp, backward: boolean): Float32Array {
  const { weight, cIn, cOut, group, kh, kw } = op;
  if (!backward) return weight.slice();
  const inPG = cIn / group, outPG = cOut / group, taps = kh * kw;
  const out = new Float32Array(weight.length);
  for (let ci = 0; ci < cIn; ci++) {
    const g = Math.floor(ci / inPG);
    for (let j = 0; j < outPG; j++) {
      const from = ((g * outPG + j) * inPG + (ci - g * inPG)) * taps;
      out.set(weight.subarray(from, from + taps), (ci * outPG + j) * taps);
    }
  }
  return out;
}

export interface DirectCall {
  /** Per group: input channels of this direction summed over (rows), output channels (cols). */
  rows: number; cols: number; groups: number;
  inH: number; inW: number; outH: number; outW: number; items: number;
  input: BufferView; output: BufferView; mask: BufferView | null; maskDiv: number;
  guided?: boolean;
  relu: boolean; accumulate: boolean; transposed: boolean;
  weights: GPUBuffer; bias: GPUBuffer;
}

/** One dispatch of depthwise.wgsl; profiles name it depthwise.<use>.conv (use: forward, backward). */
export async function convDirect(env: KernelEnv, op: ConvOp, c: DirectCall, use: string, flops: number): Promise<Dispatch> {
  const mask = c.mask ?? { buffer: env.dummy, offset: 0, stride: 0 };
  const threads = c.items * c.groups * c.cols * Math.ceil((c.outH * c.outW) / 4);
  return DEPTHWISE.dispatch(env, 'conv', {
    overrides: {
      KH: op.kh, KW: op.kw, SH: op.strideH, SW: op.strideW, DH: op.dilations[0], DW: op.dilations[1],
      TRANSPOSED: c.transposed, ...fusedReluOverrides(op, c), ACCUMULATE: c.accumulate,
    },
    uniforms: {
      rows: c.rows, cols: c.cols, groups: c.groups, inH: c.inH, inW: c.inW, outH: c.outH, outW: c.outW, items: c.items,
      padT: op.pads[0], padL: op.pads[1],
      inOffset: c.input.offset, inStride: c.input.stride, outOffset: c.output.offset, outStride: c.output.stride,
      maskOffset: mask.offset, maskStride: mask.stride, maskDiv: Math.max(1, c.maskDiv),
    },
    buffers: { input: c.input.buffer, weights: c.weights, bias: c.bias, mask: mask.buffer, output: c.output.buffer },
    workgroups: DEPTHWISE.grid1d('conv', threads, env.limits.maxComputeWorkgroupsPerDimension),
    use, label: op.name, opType: op.onnxTypes.join('+'), flops,
    shapes: `${fmtShape([c.items, c.groups * c.rows, c.inH, c.inW])} → ${fmtShape([c.items, c.groups * c.cols, c.outH, c.outW])} k${op.kh}×${op.kw}/${op.strideH} g${op.group}`,
  });
}

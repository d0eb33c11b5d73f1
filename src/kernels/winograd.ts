/**
 * Winograd F(2×2, 3×3) for 3×3, stride-1 convolutions (the 'winograd' variant; shaders/winograd.wgsl):
 * input transform → 16 GEMMs (shaders/conv.wgsl, one weight matrix per transform point) → output
 * transform with bias and ReLU. 2.25× fewer multiplications than the direct convolution; on
 * SwiftShader, where GoogLeNet's forward is all GEMM time, that is what pays.
 *
 * The data gradient of such a layer is a 3×3, stride-1 convolution as well (the weights transposed
 * and rotated by 180°, pads 2 − pad), so it runs the same way, with the ReLU mask applied in the
 * input transform and the gradient accumulated in the output transform. The CPU family's fixed
 * rules choose it for every such layer; the GPU family's keep the tiled GEMM unless a plan (or
 * --tune) says otherwise.
 */
import code from '../../shaders/winograd.wgsl';
import type { ConvOp } from '../ops/conv.ts';
import type { BufferView, Dispatch, KernelEnv, KernelVariant } from '../gpu/dispatch.ts';
import { declareKernel, read, readWrite } from '../gpu/kernel.ts';
import { FUSED_RELU, fusedReluOverrides } from '../gpu/wgsl-library.ts';
import { fmtShape } from './types.ts';
import { type ConvShape, convLowering, winogradApplies } from './variants.ts';

export { gradientPads } from './variants.ts';

/** Transform points ξ of the 4×4 domain. */
export const POINTS = 16;

/** The input and output transforms (shaders/winograd.wgsl); the GEMMs between them are conv.ts's. */
export const WINOGRAD = declareKernel({
  name: 'winograd',
  body: code,
  uniforms: {
    channels: 'u32', // C (input transform) or K (output transform)
    inH: 'u32', inW: 'u32', outH: 'u32', outW: 'u32',
    tilesH: 'u32', tilesW: 'u32', // TH = ⌈outH / 2⌉, TW = ⌈outW / 2⌉
    t8: 'u32', // row length of V and M: items · TH · TW rounded up to a multiple of 8
    items: 'u32',
    padT: 'i32', padL: 'i32',
    inOffset: 'u32', inStride: 'u32', // the input view (x, or dy for the data gradient)
    outOffset: 'u32', outStride: 'u32', // the output view (y, or dx)
    maskOffset: 'u32', maskStride: 'u32',
    maskDiv: 'u32', // gradient item n masks with the forward image n / maskDiv
  },
  bindings: { input: read(), mask: read(), V: readWrite(), M: read(), bias: read(), output: readWrite() },
  entries: { inputTransform: ['input', 'mask', 'V'], outputTransform: ['M', 'bias', 'output'] },
  workgroupSize: [64, 1, 1],
  overrides: { RELU: false, RELU6: false, MASK: false, GUIDED: false, ACCUMULATE: false },
  libraries: [FUSED_RELU],
});

/** Whether the forward pass of `op` runs as Winograd F(2×2, 3×3) by the fixed rules of this kernel family. */
export function usesWinograd(op: Pick<ConvOp, 'kh' | 'kw' | 'strideH' | 'strideW' | 'dilations' | 'group'>, variant: KernelVariant): boolean {
  return variant === 'cpu' && winogradApplies(op, 'forward');
}

/**
 * Whether the data gradient of `op` runs as Winograd by the fixed rules: when the forward does, no pad
 * exceeds 2 and the data gradient has channels enough (else the gather runs: variants.ts GATHER_BELOW).
 */
export function usesWinogradBackward(op: ConvShape, variant: KernelVariant): boolean {
  return convLowering(op, variant, 'backward') === 'winograd';
}

const G = [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]];

/**
 * U[ξ][r][c] = (G · g · Gᵀ)[ξ], computed in float64 and rounded once; forward r = ci, c = co,
 * g = W[co, ci]; backward r = co, c = ci, g = W[co, ci] rotated by 180°. Columns padded to `cols`
 * with zeros: the 16 weight matrices of the GEMMs, in shaders/conv.wgsl's row layout.
 */
export function winogradWeights(op: ConvOp, cols: number, backward: boolean): Float32Array {
  const { cIn, cOut, weight } = op;
  const rows = backward ? cOut : cIn;
  const out = new Float32Array(POINTS * rows * cols);
  const gg = new Float64Array(12); // G · g, 4 × 3
  for (let co = 0; co < cOut; co++) {
    for (let ci = 0; ci < cIn; ci++) {
      const [r, c] = backward ? [co, ci] : [ci, co];
      const g = backward
        ? (ky: number, kx: number) => weight[((co * cIn + ci) * 3 + 2 - ky) * 3 + 2 - kx]
        : (ky: number, kx: number) => weight[((co * cIn + ci) * 3 + ky) * 3 + kx];
      for (let i = 0; i < 4; i++) for (let kx = 0; kx < 3; kx++) gg[i * 3 + kx] = G[i][0] * g(0, kx) + G[i][1] * g(1, kx) + G[i][2] * g(2, kx);
      for (let i = 0; i < 4; i++) {
        for (let j = 0; j < 4; j++) {
          const u = gg[i * 3] * G[j][0] + gg[i * 3 + 1] * G[j][1] + gg[i * 3 + 2] * G[j][2];
          out[((i * 4 + j) * rows + r) * cols + c] = u;
        }
      }
    }
  }
  return out;
}

/** The tiling of one Winograd convolution: TH × TW tiles of 2×2 outputs per item, rows of t8. */
export interface WinogradTiles {
  tilesH: number; tilesW: number;
  /** items · TH · TW rounded up to a multiple of 8: the row length of V and M. */
  t8: number;
}

export function winogradTiles(outH: number, outW: number, items: number): WinogradTiles {
  const tilesH = Math.ceil(outH / 2), tilesW = Math.ceil(outW / 2);
  return { tilesH, tilesW, t8: Math.ceil((items * tilesH * tilesW) / 8) * 8 };
}

/** One transform dispatch: geometry of the convolution it serves (input → output planes). */
export interface TransformCall {
  channels: number; inH: number; inW: number; outH: number; outW: number; items: number; tiles: WinogradTiles;
  pads: readonly number[]; input: BufferView; output: BufferView;
  /** Input transform: the ReLU mask (forward output y; gradient item n reads image n / maskDiv). */
  mask?: BufferView | null; maskDiv?: number;
  /** With the mask: guided backprop's ReLU backward (the gradient passes only where it is > 0 too). */
  guided?: boolean;
  /** Output transform: bias (padded), ReLU, accumulate into the output. */
  bias?: GPUBuffer; relu?: boolean; accumulate?: boolean;
}

/**
 * The input transform (x or dy view → V[ξ][c][t]) or the output transform (M[ξ][k][t] → y or dx
 * view); profiled as winograd.<direction>.<entry>.
 */
export async function transform(env: KernelEnv, op: ConvOp, entry: 'inputTransform' | 'outputTransform', c: TransformCall, direction: string): Promise<Dispatch> {
  const input = entry === 'inputTransform';
  const threads = c.items * c.channels * c.tiles.tilesH * c.tiles.tilesW;
  // Input: 2 passes of 16 two-term sums; output: 8 + 4 three-term sums (2 flops each) and the bias.
  const flopsPerThread = input ? 32 : 28;
  const shapes = input
    ? `${fmtShape([c.items, c.channels, c.inH, c.inW])} → V ${fmtShape([POINTS, c.channels, c.tiles.t8])}`
    : `M ${fmtShape([POINTS, c.channels, c.tiles.t8])} → ${fmtShape([c.items, c.channels, c.outH, c.outW])}`;
  const geometry = { channels: c.channels, tilesH: c.tiles.tilesH, tilesW: c.tiles.tilesW, t8: c.tiles.t8, items: c.items };
  const info = {
    use: direction, label: op.name, opType: op.onnxTypes.join('+'), flops: threads * flopsPerThread, shapes,
    workgroups: WINOGRAD.grid1d(entry, threads, env.limits.maxComputeWorkgroupsPerDimension),
  };
  if (input) {
    const mask = c.mask ?? { buffer: env.dummy, offset: 0, stride: 0 };
    return WINOGRAD.dispatch(env, 'inputTransform', {
      overrides: fusedReluOverrides(op, { mask: c.mask, guided: c.guided }),
      uniforms: {
        ...geometry, inH: c.inH, inW: c.inW, padT: c.pads[0], padL: c.pads[1], inOffset: c.input.offset, inStride: c.input.stride,
        maskOffset: mask.offset, maskStride: mask.stride, maskDiv: Math.max(1, c.maskDiv ?? 1),
      },
      buffers: { input: c.input.buffer, mask: mask.buffer, V: c.output.buffer },
      ...info,
    });
  }
  return WINOGRAD.dispatch(env, 'outputTransform', {
    overrides: { ...fusedReluOverrides(op, { relu: c.relu }), ACCUMULATE: !!c.accumulate },
    uniforms: { ...geometry, outH: c.outH, outW: c.outW, outOffset: c.output.offset, outStride: c.output.stride },
    buffers: { M: c.input.buffer, bias: c.bias!, output: c.output.buffer },
    ...info,
  });
}

/**
 * Winograd F(2×2, 3×3) for the forward pass of 3×3, stride-1 convolutions on the CPU variant
 * (shaders/winograd.wgsl): input transform → 16 GEMMs (shaders/conv.wgsl, one weight matrix per
 * transform point) → output transform with bias and ReLU. 2.25× fewer multiplications than the direct
 * convolution; on SwiftShader, where GoogLeNet's forward is all GEMM time, that is what pays.
 *
 * Only the forward pass uses it: the data gradient stays the direct transposed convolution, and the
 * GPU variant stays the tiled direct convolution (unmeasured on a GPU, so not switched).
 */
import code from '../../shaders/winograd.wgsl';
import type { ConvOp } from '../graph/ir.ts';
import type { BufferView, Dispatch, KernelEnv, KernelVariant } from '../gpu/dispatch.ts';
import { grid1d, Params } from '../gpu/dispatch.ts';
import { fmtShape } from './types.ts';

/** Transform points ξ of the 4×4 domain. */
export const POINTS = 16;

/** Whether the forward pass of `op` runs as Winograd F(2×2, 3×3) on this kernel variant. */
export function usesWinograd(op: Pick<ConvOp, 'kh' | 'kw' | 'strideH' | 'strideW'>, variant: KernelVariant): boolean {
  return variant === 'cpu' && op.kh === 3 && op.kw === 3 && op.strideH === 1 && op.strideW === 1;
}

const G = [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]];

/**
 * U[ξ][ci][co] = (G · W[co, ci] · Gᵀ)[ξ], computed in float64 and rounded once; columns (co) padded
 * to `cols` with zeros: the 16 weight matrices of the GEMMs, in shaders/conv.wgsl's row layout.
 */
export function winogradWeights(op: ConvOp, cols: number): Float32Array {
  const { cIn, cOut, weight } = op;
  const out = new Float32Array(POINTS * cIn * cols);
  const gg = new Float64Array(12); // G · g, 4 × 3
  for (let co = 0; co < cOut; co++) {
    for (let ci = 0; ci < cIn; ci++) {
      const g = (ky: number, kx: number) => weight[((co * cIn + ci) * 3 + ky) * 3 + kx];
      for (let i = 0; i < 4; i++) for (let kx = 0; kx < 3; kx++) gg[i * 3 + kx] = G[i][0] * g(0, kx) + G[i][1] * g(1, kx) + G[i][2] * g(2, kx);
      for (let i = 0; i < 4; i++) {
        for (let j = 0; j < 4; j++) {
          const u = gg[i * 3] * G[j][0] + gg[i * 3 + 1] * G[j][1] + gg[i * 3 + 2] * G[j][2];
          out[((i * 4 + j) * cIn + ci) * cols + co] = u;
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

interface TransformCall {
  channels: number; inH: number; inW: number; outH: number; outW: number; items: number; tiles: WinogradTiles;
  input: BufferView; output: BufferView; bias: GPUBuffer | null; relu: boolean;
}

function params(op: ConvOp, c: TransformCall): Params {
  return new Params()
    .u32(c.channels, c.inH, c.inW, c.outH, c.outW, c.tiles.tilesH, c.tiles.tilesW, c.tiles.t8, c.items)
    .i32(op.pads[0], op.pads[1])
    .u32(c.input.offset, c.input.stride, c.output.offset, c.output.stride, 0);
}

async function transform(env: KernelEnv, op: ConvOp, entry: 'inputTransform' | 'outputTransform', c: TransformCall, shapes: string): Promise<Dispatch> {
  const pipeline = await env.pipeline(code, entry, entry === 'outputTransform' ? { RELU: c.relu } : {});
  const threads = c.items * c.channels * c.tiles.tilesH * c.tiles.tilesW;
  // Input: 2 passes of 16 two-term sums; output: 8 + 4 three-term sums (2 flops each) and the bias.
  const flopsPerThread = entry === 'inputTransform' ? 32 : 28;
  return env.dispatch(pipeline, [env.uniform(params(op, c)), c.input.buffer, c.bias, c.output.buffer], grid1d(threads, 64), {
    kernel: `conv.winograd.${entry === 'inputTransform' ? 'input' : 'output'}`, label: op.name, opType: op.onnxTypes.join('+'),
    flops: threads * flopsPerThread, shapes,
  });
}

/** The input transform: x (view) → V[ξ][c][t]. */
export function inputTransform(env: KernelEnv, op: ConvOp, c: Omit<TransformCall, 'channels' | 'bias' | 'relu'>): Promise<Dispatch> {
  const shapes = `${fmtShape([c.items, op.cIn, c.inH, c.inW])} → V ${fmtShape([POINTS, op.cIn, c.tiles.t8])}`;
  return transform(env, op, 'inputTransform', { ...c, channels: op.cIn, bias: null, relu: false }, shapes);
}

/** The output transform: M[ξ][k][t] → y (view) with bias and ReLU. */
export function outputTransform(env: KernelEnv, op: ConvOp, c: Omit<TransformCall, 'channels'>): Promise<Dispatch> {
  const shapes = `M ${fmtShape([POINTS, op.cOut, c.tiles.t8])} → ${fmtShape([c.items, op.cOut, c.outH, c.outW])}`;
  return transform(env, op, 'outputTransform', { ...c, channels: op.cOut }, shapes);
}

/**
 * Convolution (and Gemm/MatMul as 1×1 convolutions): forward and data gradient, both in
 * shaders/conv.wgsl. The weights are laid out once per direction, at compile time:
 *   forward  Wt[(ci·KH + ky)·KW + kx][co]   backward  Wt[(co·KH + ky)·KW + kx][ci]
 * with the column count padded to a multiple of 16 (the kernel's channel block).
 *
 * Two kernel variants compute it (KernelEnv.variant): on a CPU (SwiftShader) conv.wgsl, a 16 × 8
 * register block per invocation and no workgroup memory; on a GPU conv_tiled.wgsl, 64 × 64 tiles
 * staged in workgroup memory, with split-K when a layer has too few tiles to fill the GPU.
 * The CPU variant has two more lowerings, both ending in conv.wgsl's GEMM: 3×3 stride-1 layers
 * as Winograd F(2×2, 3×3) (winograd.ts; forward and data gradient), and in the forward pass layers
 * with few input channels (conv1) as im2col (shaders/im2col.wgsl) + a pointwise GEMM.
 */
import code from '../../shaders/conv.wgsl';
import tiledCode from '../../shaders/conv_tiled.wgsl';
import im2colCode from '../../shaders/im2col.wgsl';
import type { ConvOp } from '../graph/ir.ts';
import type { BufferView, Dispatch, KernelEnv, KernelVariant } from '../gpu/dispatch.ts';
import { grid1d, Params } from '../gpu/dispatch.ts';
import type { BackwardArgs, ForwardArgs, OpKernel, OpShapes } from './types.ts';
import { chwOf, fmtShape } from './types.ts';
import { gradientPads, POINTS, transform, usesWinograd, usesWinogradBackward, winogradTiles, winogradWeights } from './winograd.ts';

const TN = 8; // positions per invocation
const TM = 16; // channels per invocation

const pad16 = (n: number) => Math.ceil(n / TM) * TM;

/** Wt[(r·KH + ky)·KW + kx][c] from W[co][ci][ky][kx]; forward: r = ci, c = co; backward: r = co, c = ci. */
export function layoutWeights(op: ConvOp, backward: boolean): Float32Array {
  const { cIn, cOut, kh, kw, weight } = op;
  const [rows, cols] = backward ? [cOut, cIn] : [cIn, cOut];
  const cols16 = pad16(cols);
  const out = new Float32Array(rows * kh * kw * cols16);
  for (let co = 0; co < cOut; co++) {
    for (let ci = 0; ci < cIn; ci++) {
      for (let k = 0; k < kh * kw; k++) {
        const v = weight[(co * cIn + ci) * kh * kw + k];
        const [r, c] = backward ? [co, ci] : [ci, co];
        out[(r * kh * kw + k) * cols16 + c] = v;
      }
    }
  }
  return out;
}

/** The convolution window a GEMM walks (a ConvOp is one; Winograd's GEMMs are pointwise). */
type Window = Pick<ConvOp, 'kh' | 'kw' | 'strideH' | 'strideW' | 'pads'>;
const POINTWISE: Window = { kh: 1, kw: 1, strideH: 1, strideW: 1, pads: [0, 0, 0, 0] };

interface GemmCall {
  window: Window;
  /** Batch item i uses weight matrix i (Winograd); shapes replaces the profile's default shape text. */
  weightsPerItem?: boolean;
  shapes?: string;
  rows: number; inH: number; inW: number; cols: number; outH: number; outW: number; items: number;
  input: BufferView; output: BufferView; mask: BufferView | null; maskDiv: number;
  relu: boolean; accumulate: boolean; transposed: boolean;
  weights: GPUBuffer; bias: GPUBuffer;
}

function workgroupShape(posBlocks: number): [number, number] {
  // Enough invocations along positions when there are many; along channels for the few-position GEMMs.
  if (posBlocks >= 16) return [16, 4];
  if (posBlocks >= 4) return [4, 16];
  return [1, 64];
}

function meta(op: ConvOp, c: GemmCall, kernel: string, flops: number) {
  return {
    kernel, label: op.name, opType: op.onnxTypes.join('+'), flops,
    shapes: c.shapes ?? `${fmtShape([c.items, c.rows, c.inH, c.inW])} → ${fmtShape([c.items, c.cols, c.outH, c.outW])} k${c.window.kh}×${c.window.kw}/${c.window.strideH}`,
  };
}

function params(c: GemmCall, mask: BufferView, chunksPerSplit = 0): Params {
  return new Params()
    .u32(c.rows, c.inH, c.inW, c.cols, c.outH, c.outW, c.items, pad16(c.cols) / 4)
    .i32(c.window.pads[0], c.window.pads[1])
    .u32(c.input.offset, c.input.stride, c.output.offset, c.output.stride, mask.offset, mask.stride, Math.max(1, c.maskDiv), chunksPerSplit, 0, 0);
}

/** The CPU variant (conv.wgsl): 16 channels × 8 positions per invocation. */
async function gemmRegisterBlocked(env: KernelEnv, op: ConvOp, c: GemmCall, kernel: string, flops: number): Promise<Dispatch[]> {
  const w = c.window;
  const pointwise = w.kh === 1 && w.kw === 1 && w.strideH === 1 && w.strideW === 1 && w.pads.every((p) => p === 0);
  const posBlocks = Math.ceil((c.items * c.outH * c.outW) / TN);
  const colBlocks = pad16(c.cols) / TM;
  const [wgx, wgy] = workgroupShape(posBlocks);
  const pipeline = await env.pipeline(code, 'main', {
    KH: w.kh, KW: w.kw, SH: w.strideH, SW: w.strideW, POINTWISE: pointwise, TRANSPOSED: c.transposed,
    RELU: c.relu, MASK: c.mask !== null, ACCUMULATE: c.accumulate, WEIGHTS_PER_ITEM: c.weightsPerItem ?? false, WG_X: wgx, WG_Y: wgy,
  });
  const mask = c.mask ?? { buffer: env.dummy, offset: 0, stride: 0 };
  return [env.dispatch(pipeline, [env.uniform(params(c, mask)), c.input.buffer, c.weights, c.bias, mask.buffer, c.output.buffer],
    [Math.ceil(posBlocks / wgx), Math.ceil(colBlocks / wgy), 1], meta(op, c, kernel, flops))];
}

/**
 * Whether the CPU variant's forward pass lays the windows out first (im2col): with few input
 * channels the direct kernel spends its time on window arithmetic (one tap's offsets serve only
 * C_in multiply-adds); GoogLeNet's conv1 (C_in 3, 7×7) ran at half the GEMM rate.
 */
export function usesIm2col(op: Pick<ConvOp, 'kh' | 'kw' | 'cIn'>, variant: KernelVariant): boolean {
  return variant === 'cpu' && op.kh * op.kw > 1 && op.cIn < 8;
}

/** Workgroups a GPU variant dispatch should reach before split-K stops paying (a few per compute unit). */
export const TARGET_WORKGROUPS = 256;

/** Split-K factor for a tiled GEMM: enough workgroups, but at least 4 chunks of 16 rows per split. */
export function splitK(tiles: number, chunks: number): { split: number; chunksPerSplit: number } {
  const want = Math.max(1, Math.min(Math.ceil(TARGET_WORKGROUPS / tiles), Math.floor(chunks / 4)));
  const chunksPerSplit = Math.ceil(chunks / want);
  return { split: Math.ceil(chunks / chunksPerSplit), chunksPerSplit };
}

/** The GPU variant (conv_tiled.wgsl): 64 × 64 tiles in workgroup memory, split-K for small layers. */
async function gemmTiled(env: KernelEnv, op: ConvOp, c: GemmCall, kernel: string, flops: number): Promise<Dispatch[]> {
  const posCount = c.items * c.outH * c.outW;
  const tiles: [number, number] = [Math.ceil(posCount / 64), Math.ceil(c.cols / 64)];
  const w = c.window;
  const chunks = Math.ceil((c.rows * w.kh * w.kw) / 16);
  const { split, chunksPerSplit } = splitK(tiles[0] * tiles[1], chunks);
  const constants = {
    KH: w.kh, KW: w.kw, SH: w.strideH, SW: w.strideW, TRANSPOSED: c.transposed,
    RELU: c.relu, MASK: c.mask !== null, ACCUMULATE: c.accumulate, SPLIT: split,
  };
  const mask = c.mask ?? { buffer: env.dummy, offset: 0, stride: 0 };
  const uniform = env.uniform(params(c, mask, chunksPerSplit));
  const part = split > 1 ? env.scratch(split * c.cols * posCount, `${op.name} split-K`) : env.dummyWritable;
  const main = await env.pipeline(tiledCode, 'main', constants);
  const out = [env.dispatch(main, [uniform, c.input.buffer, c.weights, c.bias, mask.buffer, c.output.buffer, part],
    [tiles[0], tiles[1], split], meta(op, c, split > 1 ? `${kernel}.splitk${split}` : kernel, flops))];
  if (split > 1) {
    const finish = await env.pipeline(tiledCode, 'finish', constants);
    out.push(env.dispatch(finish, [uniform, null, null, c.bias, null, c.output.buffer, part],
      [Math.ceil(posCount / 64), c.cols, 1], meta(op, c, `${kernel}.splitk-sum`, split * c.cols * posCount)));
  }
  return out;
}

function gemm(env: KernelEnv, op: ConvOp, c: GemmCall, kernel: string, flops: number): Promise<Dispatch[]> {
  return env.variant === 'gpu' ? gemmTiled(env, op, c, kernel, flops) : gemmRegisterBlocked(env, op, c, kernel, flops);
}

/** A Winograd convolution: GEMM rows (channels summed over) → cols, planes in → out. */
interface WinogradCall {
  rows: number; cols: number; inH: number; inW: number; outH: number; outW: number; items: number;
  pads: readonly number[]; input: BufferView; output: BufferView; mask: BufferView | null; maskDiv: number;
  /** U (winogradWeights); the bias of the output transform; zeros (pad16(cols)) for the GEMMs. */
  weights: GPUBuffer; bias: GPUBuffer; zeros: GPUBuffer; relu: boolean; accumulate: boolean;
}

/** Winograd F(2×2, 3×3) (winograd.ts): input transform, 16 GEMMs over the rows, output transform. */
async function winograd(env: KernelEnv, op: ConvOp, c: WinogradCall, kernel: string): Promise<Dispatch[]> {
  const tiles = winogradTiles(c.outH, c.outW, c.items);
  const v = env.scratch(POINTS * c.rows * tiles.t8, `${op.name} ${kernel} V`);
  const m = env.scratch(POINTS * c.cols * tiles.t8, `${op.name} ${kernel} M`);
  const geometry = { inH: c.inH, inW: c.inW, outH: c.outH, outW: c.outW, items: c.items, tiles, pads: c.pads };
  return [
    await transform(env, op, 'inputTransform', {
      ...geometry, channels: c.rows, input: c.input, output: { buffer: v, offset: 0, stride: 0 }, mask: c.mask, maskDiv: c.maskDiv,
    }, kernel),
    ...await gemmRegisterBlocked(env, op, {
      window: POINTWISE, weightsPerItem: true, shapes: `${POINTS} × (${c.cols}×${c.rows} · ${c.rows}×${tiles.t8})`,
      rows: c.rows, inH: 1, inW: tiles.t8, cols: c.cols, outH: 1, outW: tiles.t8, items: POINTS,
      input: { buffer: v, offset: 0, stride: c.rows * tiles.t8 }, output: { buffer: m, offset: 0, stride: c.cols * tiles.t8 },
      mask: null, maskDiv: 1, relu: false, accumulate: false, transposed: false,
      weights: c.weights, bias: c.zeros,
    }, `${kernel}.gemm`, 2 * POINTS * c.cols * c.rows * tiles.t8),
    await transform(env, op, 'outputTransform', {
      ...geometry, channels: c.cols, input: { buffer: m, offset: 0, stride: 0 }, output: c.output,
      bias: c.bias, relu: c.relu, accumulate: c.accumulate,
    }, kernel),
  ];
}

/**
 * The scratch buffers the data gradient of `op` makes for `items` items (floats each), without making
 * them: Winograd's V and M on the CPU variant, the split-K partial sums on the GPU variant.
 */
export function convBackwardScratch(op: ConvOp, shapes: OpShapes, items: number, variant: KernelVariant): { label: string; floats: number }[] {
  const [, inH, inW] = chwOf(shapes.inputs[0]);
  if (usesWinogradBackward(op, variant)) {
    const tiles = winogradTiles(inH, inW, items);
    return [
      { label: `${op.name} conv.winograd.backward V`, floats: POINTS * op.cOut * tiles.t8 },
      { label: `${op.name} conv.winograd.backward M`, floats: POINTS * op.cIn * tiles.t8 },
    ];
  }
  if (variant !== 'gpu') return [];
  const posCount = items * inH * inW;
  const { split } = splitK(Math.ceil(posCount / 64) * Math.ceil(op.cIn / 64), Math.ceil((op.cOut * op.kh * op.kw) / 16));
  return split > 1 ? [{ label: `${op.name} split-K`, floats: split * op.cIn * posCount }] : [];
}

export function convKernel(op: ConvOp, shapes: OpShapes): OpKernel {
  const [, inH, inW] = chwOf(shapes.inputs[0]);
  const [, outH, outW] = chwOf(shapes.output);
  const macsPerItem = op.cOut * outH * outW * op.cIn * op.kh * op.kw;
  const paddedBias = () => {
    const bias = new Float32Array(pad16(op.cOut));
    bias.set(op.bias);
    return bias;
  };
  // Made once per kernel, shared by every backward program compiled on the engine.
  let bwd: { weights: GPUBuffer; zeros: GPUBuffer } | undefined;

  /** im2col, then a pointwise GEMM over rows (ci, ky, kx): for few input channels on the CPU variant. */
  async function im2colGemm({ env, inputs, output, batch }: ForwardArgs): Promise<Dispatch[]> {
    const rows = op.cIn * op.kh * op.kw;
    const col = env.scratch(batch * rows * outH * outW, `${op.name} im2col`);
    const pipeline = await env.pipeline(im2colCode, 'main', { KH: op.kh, KW: op.kw, SH: op.strideH, SW: op.strideW });
    const p = new Params().u32(op.cIn, inH, inW, outH, outW, batch).i32(op.pads[0], op.pads[1]).u32(inputs[0].offset, inputs[0].stride, 0, 0);
    const shape = fmtShape([batch, rows, outH * outW]);
    return [
      env.dispatch(pipeline, [env.uniform(p), inputs[0].buffer, col], grid1d(batch * rows * outH * outW, 256, env.limits.maxComputeWorkgroupsPerDimension), {
        kernel: 'conv.im2col', label: op.name, opType: op.onnxTypes.join('+'), flops: 0,
        shapes: `${fmtShape([batch, op.cIn, inH, inW])} → ${shape} k${op.kh}×${op.kw}/${op.strideH}`,
      }),
      ...await gemmRegisterBlocked(env, op, {
        window: POINTWISE, shapes: `${shape} → ${fmtShape([batch, op.cOut, outH, outW])}`,
        rows, inH: outH, inW: outW, cols: op.cOut, outH, outW, items: batch,
        input: { buffer: col, offset: 0, stride: rows * outH * outW }, output, mask: null, maskDiv: 1,
        relu: op.relu, accumulate: false, transposed: false, weights: env.storage(layoutWeights(op, false)), bias: env.storage(paddedBias()),
      }, 'conv.im2col.gemm', 2 * macsPerItem * batch),
    ];
  }

  return {
    forward(args: ForwardArgs) {
      const { env, inputs, output, batch } = args;
      if (usesWinograd(op, env.variant)) {
        return winograd(env, op, {
          rows: op.cIn, cols: op.cOut, inH, inW, outH, outW, items: batch, pads: op.pads, input: inputs[0], output, mask: null, maskDiv: 1,
          weights: env.storage(winogradWeights(op, pad16(op.cOut), false)), bias: env.storage(paddedBias()),
          zeros: env.storage(new Float32Array(pad16(op.cOut))), relu: op.relu, accumulate: false,
        }, 'conv.winograd');
      }
      if (usesIm2col(op, env.variant) && batch * op.cIn * op.kh * op.kw * outH * outW * 4 <= env.device.limits.maxStorageBufferBindingSize) {
        return im2colGemm(args);
      }
      return gemm(env, op, {
        window: op, rows: op.cIn, inH, inW, cols: op.cOut, outH, outW, items: batch, input: inputs[0], output, mask: null, maskDiv: 1,
        relu: op.relu, accumulate: false, transposed: false, weights: env.storage(layoutWeights(op, false)), bias: env.storage(paddedBias()),
      }, 'conv.forward', 2 * macsPerItem * batch);
    },
    backward({ env, output, dy, dx, items, maskDiv }: BackwardArgs) {
      const target = dx[0];
      if (!target) return Promise.resolve([]);
      const winogradBackward = usesWinogradBackward(op, env.variant);
      bwd ??= {
        weights: env.storage(winogradBackward ? winogradWeights(op, pad16(op.cIn), true) : layoutWeights(op, true)),
        zeros: env.storage(new Float32Array(pad16(op.cIn))),
      };
      if (winogradBackward) {
        return winograd(env, op, {
          rows: op.cOut, cols: op.cIn, inH: outH, inW: outW, outH: inH, outW: inW, items, pads: gradientPads(op.pads),
          input: dy, output: target.view, mask: op.relu ? output : null, maskDiv,
          weights: bwd.weights, bias: bwd.zeros, zeros: bwd.zeros, relu: false, accumulate: target.accumulate,
        }, 'conv.winograd.backward');
      }
      return gemm(env, op, {
        window: op, rows: op.cOut, inH: outH, inW: outW, cols: op.cIn, outH: inH, outW: inW, items, input: dy, output: target.view,
        mask: op.relu ? output : null, maskDiv, relu: false, accumulate: target.accumulate, transposed: true,
        weights: bwd.weights, bias: bwd.zeros,
      }, 'conv.backward', 2 * macsPerItem * items);
    },
  };
}

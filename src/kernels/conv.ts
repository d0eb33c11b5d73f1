/**
 * The GEMM machinery of convolution (and Gemm/MatMul as 1×1 convolutions), forward and data
 * gradient, both in shaders/conv.wgsl; the conv op (src/ops/conv.ts) runs the variant chosen per layer
 * and direction (src/kernels/variants.ts: a plan, else the fixed rules). The weights are laid out once per direction, at compile time:
 *   forward  Wt[(ci·KH + ky)·KW + kx][co]   backward  Wt[(co·KH + ky)·KW + kx][ci]
 * with the column count padded to a multiple of 16 (the kernel's channel block).
 *
 * Two GEMM variants compute it: gemm-blocked, conv.wgsl (CONV), a 16 × 8 register block per
 * invocation and no workgroup memory (the CPU family's default: SwiftShader); gemm-tiled,
 * conv_tiled.wgsl (CONV_TILED), 64 × 64 tiles staged in workgroup memory, with split-K when a layer
 * has too few tiles to fill the GPU (the GPU family's default). Two more variants end in conv.wgsl's
 * GEMM: 3×3 stride-1 layers as Winograd F(2×2, 3×3) (winograd.ts; forward and data gradient), and
 * in the forward pass im2col (shaders/im2col.wgsl) + a pointwise GEMM.
 */
import code from '../../shaders/conv.wgsl';
import tiledCode from '../../shaders/conv_tiled.wgsl';
import im2colCode from '../../shaders/im2col.wgsl';
import type { ConvOp } from '../ops/conv.ts';
import type { BufferView, Dispatch, KernelEnv } from '../gpu/dispatch.ts';
import { declareKernel, read, readWrite } from '../gpu/kernel.ts';
import { FUSED_RELU, fusedReluOverrides, maskedLoad4 } from '../gpu/wgsl-library.ts';
import type { OpShapes } from './types.ts';
import { chwOf, fmtShape } from './types.ts';
import { type ConvShape, type ConvVariantName, convLowering, type Direction } from './variants.ts';
import { POINTS, transform, winogradTiles } from './winograd.ts';

// The fixed rules and their threshold live with the variant table (variants.ts); re-exported for their readers here.
export { convLowering, DIRECT_BELOW, usesIm2col } from './variants.ts';
export type { ConvShape } from './variants.ts';

/** The GEMM's view geometry, shared by conv.wgsl and conv_tiled.wgsl. */
const GEMM_UNIFORMS = {
  rows: 'u32', // input channels of this GEMM's input tensor (the r axis is rows × KH × KW)
  inH: 'u32', inW: 'u32',
  cols: 'u32', // output channels
  outH: 'u32', outW: 'u32',
  items: 'u32', // batch items (images, or images × classes for gradients)
  cols4: 'u32', // padded output channels / 4 = vec4 per weight row
  padT: 'i32', padL: 'i32',
  inOffset: 'u32', inStride: 'u32', // views: item i's values start at i · stride + offset
  outOffset: 'u32', outStride: 'u32',
  maskOffset: 'u32', maskStride: 'u32',
  maskDiv: 'u32', // gradient item i masks with the forward image i / maskDiv
} as const;

const WINDOW = { KH: 1, KW: 1, SH: 1, SW: 1, DH: 1, DW: 1 };
/** RELU, RELU6, MASK and GUIDED: the fused activation and its backward rule (FUSED_RELU, set by fusedReluOverrides). */
const MODES = { TRANSPOSED: false, RELU: false, RELU6: false, MASK: false, ACCUMULATE: false, GUIDED: false };

/** The CPU variant: a 16 × 8 register block per invocation (shaders/conv.wgsl). */
export const CONV = declareKernel({
  name: 'conv',
  body: code,
  uniforms: GEMM_UNIFORMS,
  bindings: { input: read(), weights: read('vec4<f32>'), bias: read('vec4<f32>'), mask: read(), output: readWrite() },
  entries: { gemm: ['input', 'weights', 'bias', 'mask', 'output'] },
  // TN positions × TM channels per invocation; the workgroup shape is chosen per layer (workgroupShape).
  constants: { TN: 8, TM: 16 },
  workgroupSize: [8, 8, 1],
  overrides: { ...WINDOW, ...MODES, POINTWISE: false, WEIGHTS_PER_ITEM: false, WG_X: 8, WG_Y: 8 },
  libraries: [FUSED_RELU, maskedLoad4('input')],
});

/** The GPU variant: TILE × TILE tiles in workgroup memory, split-K (shaders/conv_tiled.wgsl). */
export const CONV_TILED = declareKernel({
  name: 'conv_tiled',
  body: tiledCode,
  uniforms: { ...GEMM_UNIFORMS, chunksPerSplit: 'u32' /* chunks of CHUNK rows of r per split */ },
  bindings: {
    input: read(), weights: read('vec4<f32>'), bias: read(), mask: read(), output: readWrite(),
    partialOut: readWrite(), partial: read(),
  },
  entries: {
    gemm: ['input', 'weights', 'bias', 'mask', 'output', 'partialOut'],
    splitkSum: { bindings: ['bias', 'output', 'partial'], workgroupSize: [64, 1, 1] },
  },
  constants: { TILE: 64, CHUNK: 16 },
  workgroupSize: [16, 16, 1],
  overrides: { ...WINDOW, ...MODES, SPLIT: 1 },
  libraries: [FUSED_RELU],
});

/** im2col for layers with few input channels on the CPU variant (shaders/im2col.wgsl). */
export const IM2COL = declareKernel({
  name: 'im2col',
  body: im2colCode,
  uniforms: {
    channels: 'u32', inH: 'u32', inW: 'u32', outH: 'u32', outW: 'u32', items: 'u32', padT: 'i32', padL: 'i32',
    xOffset: 'u32', xStride: 'u32',
  },
  bindings: { x: read(), columns: readWrite() },
  entries: { unfold: ['x', 'columns'] },
  workgroupSize: [256, 1, 1],
  overrides: WINDOW,
});

const { TN, TM } = CONV.constants; // positions, channels per invocation
const { TILE, CHUNK } = CONV_TILED.constants;

/** Output channels padded to the channel block (the weights' and bias's row length). */
export const pad16 = (n: number) => Math.ceil(n / TM) * TM;

/**
 * Wt[g][(r·KH + ky)·KW + kx][c] from W[g·outPG + co][ci][ky][kx] (outPG = C_out/group, ci < C_in/group),
 * one matrix per group; forward: r = ci, c = co; backward: r = co, c = ci.
 */
export function layoutWeights(op: ConvOp, backward: boolean): Float32Array {
  const { kh, kw, weight, group } = op;
  const cIn = op.cIn / group, cOut = op.cOut / group; // per group
  const [rows, cols] = backward ? [cOut, cIn] : [cIn, cOut];
  const cols16 = pad16(cols);
  const out = new Float32Array(group * rows * kh * kw * cols16);
  for (let g = 0; g < group; g++) {
    const at = g * rows * kh * kw * cols16;
    for (let co = 0; co < cOut; co++) {
      for (let ci = 0; ci < cIn; ci++) {
        for (let k = 0; k < kh * kw; k++) {
          const v = weight[((g * cOut + co) * cIn + ci) * kh * kw + k];
          const [r, c] = backward ? [co, ci] : [ci, co];
          out[at + (r * kh * kw + k) * cols16 + c] = v;
        }
      }
    }
  }
  return out;
}

/** A per-channel vector (bias) laid out per group of `perGroup` channels, each padded to the 16-channel block. */
export function groupPadded(values: Float32Array, groups: number): Float32Array {
  const perGroup = values.length / groups;
  const out = new Float32Array(groups * pad16(perGroup));
  for (let g = 0; g < groups; g++) out.set(values.subarray(g * perGroup, (g + 1) * perGroup), g * pad16(perGroup));
  return out;
}

/**
 * The variant a layer runs in one direction on this environment: its resolved plan's
 * (KernelEnv.choices, made by the engine: src/kernels/variants.ts resolvePlan), else the fixed
 * rules of the environment's family (a kernel built outside an engine: benches, tests).
 */
export function chosenVariant(env: Pick<KernelEnv, 'variant' | 'choices'>, op: ConvShape & { name: string }, direction: Direction): ConvVariantName {
  return (env.choices.get(op.name)?.[direction] as ConvVariantName | undefined) ?? convLowering(op, env.variant, direction);
}

/** The convolution window a GEMM walks (a ConvOp is one; Winograd's GEMMs are pointwise). */
type Window = Pick<ConvOp, 'kh' | 'kw' | 'strideH' | 'strideW' | 'pads' | 'dilations'>;
export const POINTWISE: Window = { kh: 1, kw: 1, strideH: 1, strideW: 1, pads: [0, 0, 0, 0], dilations: [1, 1] };

interface GemmCall {
  window: Window;
  /** Batch item i uses weight matrix i (Winograd); shapes replaces the profile's default shape text. */
  weightsPerItem?: boolean;
  shapes?: string;
  /** Groups (grid z): rows and cols are per group, weights and bias laid out per group. Default 1. */
  groups?: number;
  rows: number; inH: number; inW: number; cols: number; outH: number; outW: number; items: number;
  input: BufferView; output: BufferView; mask: BufferView | null; maskDiv: number;
  /** With the mask: guided backprop's ReLU backward (the gradient passes only where it is > 0 too). */
  guided?: boolean;
  relu: boolean; accumulate: boolean; transposed: boolean;
  weights: GPUBuffer; bias: GPUBuffer;
}

function workgroupShape(posBlocks: number): [number, number] {
  // Enough invocations along positions when there are many; along channels for the few-position GEMMs.
  if (posBlocks >= 16) return [16, 4];
  if (posBlocks >= 4) return [4, 16];
  return [1, 64];
}

/** What a profile shows of a GEMM dispatch; `use` names what the GEMM serves (forward, winograd, ...). */
function info(op: ConvOp, c: GemmCall, use: string, flops: number, note = '') {
  return {
    use, label: op.name, opType: op.onnxTypes.join('+'), flops,
    shapes: (c.shapes ?? `${fmtShape([c.items, c.rows * (c.groups ?? 1), c.inH, c.inW])} → ${fmtShape([c.items, c.cols * (c.groups ?? 1), c.outH, c.outW])} k${c.window.kh}×${c.window.kw}/${c.window.strideH}${(c.groups ?? 1) > 1 ? ` g${c.groups}` : ''}`) + note,
  };
}

function uniforms(c: GemmCall, mask: BufferView) {
  return {
    rows: c.rows, inH: c.inH, inW: c.inW, cols: c.cols, outH: c.outH, outW: c.outW, items: c.items, cols4: pad16(c.cols) / 4,
    padT: c.window.pads[0], padL: c.window.pads[1], inOffset: c.input.offset, inStride: c.input.stride,
    outOffset: c.output.offset, outStride: c.output.stride, maskOffset: mask.offset, maskStride: mask.stride, maskDiv: Math.max(1, c.maskDiv),
  };
}

/** The CPU variant (conv.wgsl): TM channels × TN positions per invocation. */
export async function gemmRegisterBlocked(env: KernelEnv, op: ConvOp, c: GemmCall, use: string, flops: number): Promise<Dispatch[]> {
  const w = c.window;
  const pointwise = w.kh === 1 && w.kw === 1 && w.strideH === 1 && w.strideW === 1 && w.pads.every((p) => p === 0); // (dilation is moot for 1×1)
  const posBlocks = Math.ceil((c.items * c.outH * c.outW) / TN);
  const colBlocks = pad16(c.cols) / TM;
  const [wgx, wgy] = workgroupShape(posBlocks);
  const mask = c.mask ?? { buffer: env.dummy, offset: 0, stride: 0 };
  return [await CONV.dispatch(env, 'gemm', {
    overrides: {
      KH: w.kh, KW: w.kw, SH: w.strideH, SW: w.strideW, DH: w.dilations[0], DW: w.dilations[1], POINTWISE: pointwise, TRANSPOSED: c.transposed,
      ...fusedReluOverrides(op, c), ACCUMULATE: c.accumulate, WEIGHTS_PER_ITEM: c.weightsPerItem ?? false, WG_X: wgx, WG_Y: wgy,
    },
    uniforms: uniforms(c, mask),
    buffers: { input: c.input.buffer, weights: c.weights, bias: c.bias, mask: mask.buffer, output: c.output.buffer },
    workgroups: [Math.ceil(posBlocks / wgx), Math.ceil(colBlocks / wgy), c.groups ?? 1],
    ...info(op, c, use, flops),
  })];
}

/** Workgroups a GPU variant dispatch should reach before split-K stops paying (a few per compute unit). */
export const TARGET_WORKGROUPS = 256;

/** Split-K factor for a tiled GEMM: enough workgroups, but at least 4 chunks of CHUNK rows per split. */
export function splitK(tiles: number, chunks: number): { split: number; chunksPerSplit: number } {
  const want = Math.max(1, Math.min(Math.ceil(TARGET_WORKGROUPS / tiles), Math.floor(chunks / 4)));
  const chunksPerSplit = Math.ceil(chunks / want);
  return { split: Math.ceil(chunks / chunksPerSplit), chunksPerSplit };
}

/** The GPU variant (conv_tiled.wgsl): TILE × TILE tiles in workgroup memory, split-K for small layers. */
async function gemmTiled(env: KernelEnv, op: ConvOp, c: GemmCall, use: string, flops: number): Promise<Dispatch[]> {
  const posCount = c.items * c.outH * c.outW;
  const tiles: [number, number] = [Math.ceil(posCount / TILE), Math.ceil(c.cols / TILE)];
  const w = c.window;
  const chunks = Math.ceil((c.rows * w.kh * w.kw) / CHUNK);
  const groups = c.groups ?? 1;
  const { split, chunksPerSplit } = splitK(tiles[0] * tiles[1] * groups, chunks);
  const overrides = {
    KH: w.kh, KW: w.kw, SH: w.strideH, SW: w.strideW, DH: w.dilations[0], DW: w.dilations[1], TRANSPOSED: c.transposed,
    ...fusedReluOverrides(op, c), ACCUMULATE: c.accumulate, SPLIT: split,
  };
  const mask = c.mask ?? { buffer: env.dummy, offset: 0, stride: 0 };
  const values = { ...uniforms(c, mask), chunksPerSplit };
  const partial = split > 1 ? env.scratch(groups * split * c.cols * posCount, `${op.name} split-K`) : env.dummyWritable;
  const note = split > 1 ? ` split-K ${split}` : '';
  const out = [await CONV_TILED.dispatch(env, 'gemm', {
    overrides, uniforms: values,
    buffers: { input: c.input.buffer, weights: c.weights, bias: c.bias, mask: mask.buffer, output: c.output.buffer, partialOut: partial },
    workgroups: [tiles[0], tiles[1], groups * split], ...info(op, c, use, flops, note),
  })];
  if (split > 1) {
    out.push(await CONV_TILED.dispatch(env, 'splitkSum', {
      overrides, uniforms: values, buffers: { bias: c.bias, output: c.output.buffer, partial },
      workgroups: CONV_TILED.groups('splitkSum', [posCount, c.cols, groups]), ...info(op, c, use, groups * split * c.cols * posCount, note),
    }));
  }
  return out;
}

/** The GEMM of `variant` ('gemm-tiled' or 'gemm-blocked'); by default the environment family's. */
export function gemm(env: KernelEnv, op: ConvOp, c: GemmCall, use: string, flops: number,
  variant: 'gemm-blocked' | 'gemm-tiled' = env.variant === 'gpu' ? 'gemm-tiled' : 'gemm-blocked'): Promise<Dispatch[]> {
  return variant === 'gemm-tiled' ? gemmTiled(env, op, c, use, flops) : gemmRegisterBlocked(env, op, c, use, flops);
}

/** A Winograd convolution: GEMM rows (channels summed over) → cols, planes in → out. */
interface WinogradCall {
  rows: number; cols: number; inH: number; inW: number; outH: number; outW: number; items: number;
  pads: readonly number[]; input: BufferView; output: BufferView; mask: BufferView | null; maskDiv: number;
  /** With the mask: guided backprop's ReLU backward (the input transform drops dy ≤ 0 too). */
  guided?: boolean;
  /** U (winogradWeights); the bias of the output transform; zeros (pad16(cols)) for the GEMMs. */
  weights: GPUBuffer; bias: GPUBuffer; zeros: GPUBuffer; relu: boolean; accumulate: boolean;
}

/**
 * Winograd F(2×2, 3×3) (winograd.ts): input transform, 16 GEMMs over the rows, output transform.
 * Profiles: winograd.<direction>.inputTransform, conv.winograd[.backward].gemm, winograd.<direction>.outputTransform.
 */
export async function winograd(env: KernelEnv, op: ConvOp, c: WinogradCall, direction: 'forward' | 'backward'): Promise<Dispatch[]> {
  const tiles = winogradTiles(c.outH, c.outW, c.items);
  const scratch = direction === 'forward' ? 'conv.winograd' : 'conv.winograd.backward'; // convBackwardScratch names them alike
  const v = env.scratch(POINTS * c.rows * tiles.t8, `${op.name} ${scratch} V`);
  const m = env.scratch(POINTS * c.cols * tiles.t8, `${op.name} ${scratch} M`);
  const geometry = { inH: c.inH, inW: c.inW, outH: c.outH, outW: c.outW, items: c.items, tiles, pads: c.pads };
  return [
    await transform(env, op, 'inputTransform', {
      ...geometry, channels: c.rows, input: c.input, output: { buffer: v, offset: 0, stride: 0 }, mask: c.mask, maskDiv: c.maskDiv, guided: c.guided,
    }, direction),
    ...await gemmRegisterBlocked(env, op, {
      window: POINTWISE, weightsPerItem: true, shapes: `${POINTS} × (${c.cols}×${c.rows} · ${c.rows}×${tiles.t8})`,
      rows: c.rows, inH: 1, inW: tiles.t8, cols: c.cols, outH: 1, outW: tiles.t8, items: POINTS,
      input: { buffer: v, offset: 0, stride: c.rows * tiles.t8 }, output: { buffer: m, offset: 0, stride: c.cols * tiles.t8 },
      mask: null, maskDiv: 1, relu: false, accumulate: false, transposed: false,
      weights: c.weights, bias: c.zeros,
    }, direction === 'forward' ? 'winograd' : 'winograd.backward', 2 * POINTS * c.cols * c.rows * tiles.t8),
    await transform(env, op, 'outputTransform', {
      ...geometry, channels: c.cols, input: { buffer: m, offset: 0, stride: 0 }, output: c.output,
      bias: c.bias, relu: c.relu, accumulate: c.accumulate,
    }, direction),
  ];
}

/**
 * The scratch buffers the data gradient of `op` makes for `items` items (floats each), without making
 * them: Winograd's V and M, the tiled GEMM's split-K partial sums.
 */
export function convBackwardScratch(op: ConvOp, shapes: OpShapes, items: number, env: Pick<KernelEnv, 'variant' | 'choices'>): { label: string; floats: number }[] {
  const [, inH, inW] = chwOf(shapes.inputs[0]);
  const lowering = chosenVariant(env, op, 'backward');
  if (lowering === 'winograd') {
    const tiles = winogradTiles(inH, inW, items);
    return [
      { label: `${op.name} conv.winograd.backward V`, floats: POINTS * op.cOut * tiles.t8 },
      { label: `${op.name} conv.winograd.backward M`, floats: POINTS * op.cIn * tiles.t8 },
    ];
  }
  if (lowering !== 'gemm-tiled') return [];
  const posCount = items * inH * inW;
  const g = op.group;
  const { split } = splitK(Math.ceil(posCount / TILE) * Math.ceil(op.cIn / g / TILE) * g, Math.ceil(((op.cOut / g) * op.kh * op.kw) / CHUNK));
  return split > 1 ? [{ label: `${op.name} split-K`, floats: split * op.cIn * posCount }] : [];
}

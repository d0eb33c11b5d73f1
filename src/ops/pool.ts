/**
 * maxpool and avgpool: MaxPool (with dilations), AveragePool, GlobalAveragePool and GlobalMaxPool (a
 * window of the whole plane), and ReduceMean / ReduceMax over the spatial axes [2, 3] of a 4-D tensor
 * (global pools, keepdims or not), forward and backward, in shaders/pool.wgsl. The max-pool backward first recomputes each window's
 * arg-max from the forward input (once per image, into an index buffer made at compile time), then
 * gathers the incoming gradient per input value. No Relu fuses into them.
 */
import code from '../../shaders/pool.wgsl';
import type { OpBase } from '../graph/ir.ts';
import { windowCount } from '../graph/shapes.ts';
import type { Dispatch } from '../gpu/dispatch.ts';
import { foldPlanes } from '../gpu/dispatch.ts';
import { declareKernel, read, readWrite } from '../gpu/kernel.ts';
import type { BackwardArgs, ForwardArgs, OpKernel, OpShapes } from '../kernels/types.ts';
import { chwOf, fmtShape } from '../kernels/types.ts';
import { attrInt, attrInts } from '../onnx/model.ts';
import { checkInts, flag, list, need4d, nodeInput, spatialAttrs } from './attributes.ts';
import { lowerReduceMean } from './reduce.ts';
import { defineOp, type LowerContext, type OnnxLowering } from './spec.ts';

export interface PoolOp extends OpBase {
  kind: 'maxpool' | 'avgpool';
  kh: number; kw: number;
  strideH: number; strideW: number;
  pads: [number, number, number, number];
  /** MaxPool: tap (ky, kx) reads row oy·strideH − top + ky·dilations[0] (always [1, 1] for the average). */
  dilations: [number, number];
  /** AveragePool: whether padded positions count in the divisor (ONNX count_include_pad). */
  countIncludePad: boolean;
}

const POOL_ATTRIBUTES = ['auto_pad', 'ceil_mode', 'dilations', 'kernel_shape', 'pads', 'strides'];

/** MaxPool and AveragePool: a KH×KW window with strides, pads, ceil_mode. */
function lowerPool(kind: 'maxpool' | 'avgpool', attributes: string[]): OnnxLowering {
  return {
    inputs: [1, 1], outputs: kind === 'maxpool' ? [1, 2] : [1, 1], attributes: [...POOL_ATTRIBUTES, ...attributes],
    lower: (ctx) => {
      const { node } = ctx;
      const xName = nodeInput(ctx, 0, 'X');
      const x = need4d(ctx, xName);
      if (node.outputs.length > 1 && node.outputs[1]) ctx.fail(`the Indices output is not supported`);
      const kernel = attrInts(node, 'kernel_shape', undefined);
      if (!kernel || kernel.length !== 2) return ctx.fail(`kernel_shape must list 2 sizes, got ${list(kernel ?? [])}`);
      checkInts(ctx, 'kernel_shape', kernel, 2, 1);
      if (kind === 'maxpool' && flag(ctx, 'storage_order')) ctx.fail('storage_order = 1 is not supported');
      const { strides, pads, dilations } = spatialAttrs(ctx, x, [kernel[0], kernel[1]], true);
      if (kind === 'avgpool' && dilations.some((d) => d !== 1)) ctx.fail(`dilations [${dilations}] are not supported for AveragePool (only 1)`);
      const ceil = flag(ctx, 'ceil_mode');
      const countIncludePad = kind === 'avgpool' && flag(ctx, 'count_include_pad');
      const ho = windowCount(x[2], (kernel[0] - 1) * dilations[0] + 1, strides[0], pads[0], pads[2], ceil);
      const wo = windowCount(x[3], (kernel[1] - 1) * dilations[1] + 1, strides[1], pads[1], pads[3], ceil);
      const dilated = dilations.some((d) => d > 1) ? ` dilated by [${dilations}]` : '';
      if (ho <= 0 || wo <= 0) ctx.fail(`the ${kernel[0]}×${kernel[1]} window${dilated} does not fit the ${x[2]}×${x[3]} input (pads [${pads}])`);
      ctx.emit({
        kind, name: node.name, onnxTypes: [node.opType], inputs: [xName], output: node.outputs[0],
        kh: kernel[0], kw: kernel[1], strideH: strides[0], strideW: strides[1], pads, dilations, countIncludePad,
      }, [x[0], x[1], ho, wo]);
    },
  };
}

/** A pool whose window is the whole plane of input `xName`, with the output shape given. */
function globalPool(ctx: LowerContext, kind: 'maxpool' | 'avgpool', xName: string, x: number[], outShape: number[]): void {
  ctx.emit({
    kind, name: ctx.node.name, onnxTypes: [ctx.node.opType], inputs: [xName], output: ctx.node.outputs[0],
    kh: x[2], kw: x[3], strideH: 1, strideW: 1, pads: [0, 0, 0, 0], dilations: [1, 1], countIncludePad: false,
  }, outShape);
}

/** GlobalAveragePool and GlobalMaxPool: a pool whose window is the whole plane. */
function lowerGlobal(kind: 'maxpool' | 'avgpool'): OnnxLowering {
  return {
    inputs: [1, 1], outputs: [1, 1], attributes: [],
    lower: (ctx) => {
      const xName = nodeInput(ctx, 0, 'X');
      const x = need4d(ctx, xName);
      globalPool(ctx, kind, xName, x, [x[0], x[1], 1, 1]);
    },
  };
}

/**
 * ReduceMean and ReduceMax over the spatial axes [2, 3] (or [−2, −1]) of a 4-D tensor: a global pool,
 * [N, C, 1, 1] with keepdims (the default), [N, C] without. The axes are an attribute before opset 18
 * and an optional constant int64 input from 18 on. Other axes are refused here.
 */
function lowerReduce(kind: 'maxpool' | 'avgpool'): OnnxLowering {
  return {
    inputs: [1, 2], outputs: [1, 1], attributes: ['axes', 'keepdims', 'noop_with_empty_axes'],
    lower: (ctx) => {
      const { node } = ctx;
      const xName = nodeInput(ctx, 0, 'data');
      const rank = ctx.shape(xName).length;
      let axes: number[];
      if (ctx.opset >= 18) {
        if (attrInts(node, 'axes', undefined)) ctx.fail(`the axes must be input 1 from opset 18 on, not an attribute`);
        const axesName = node.inputs[1];
        if (axesName && !ctx.isConstant(axesName)) ctx.fail(`the axes '${axesName}' must be a constant (an initializer)`);
        axes = axesName ? ctx.ints(axesName) : [];
      } else {
        if (node.inputs[1]) ctx.fail(`the axes are an attribute before opset 18, not input 1 ('${node.inputs[1]}')`);
        axes = attrInts(node, 'axes', []) ?? [];
      }
      const keepdims = attrInt(node, 'keepdims', 1);
      if (keepdims !== 0 && keepdims !== 1) ctx.fail(`attribute 'keepdims' is ${keepdims}; expected 0 or 1`);
      const noop = flag(ctx, 'noop_with_empty_axes');
      const bad = axes.find((a) => a < -rank || a >= rank);
      if (bad !== undefined) ctx.fail(`axis ${bad} is out of range for a rank-${rank} input (expected ${-rank} … ${rank - 1})`);
      const norm = [...new Set(axes.map((a) => (a < 0 ? a + rank : a)))].sort((a, b) => a - b);
      const what = axes.length ? `axes ${list(axes)}` : noop ? 'no axes with noop_with_empty_axes = 1 (an identity)' : 'all axes (no axes given)';
      // Other axes of a mean (LayerNorm's decomposed form: the last axis, or channels): src/ops/reduce.ts.
      const spatial = rank === 4 && norm.length === 2 && norm[0] === 2 && norm[1] === 3;
      if (!spatial && kind === 'avgpool' && axes.length > 0) return lowerReduceMean(ctx, xName, norm, keepdims === 1);
      if (!spatial) {
        ctx.fail(`${node.opType} over ${what} of a rank-${rank} input is not supported: only over the spatial axes [2, 3] of a 4-D NCHW tensor (a global pool)`);
      }
      const x = ctx.shape(xName);
      globalPool(ctx, kind, xName, x, keepdims ? [x[0], x[1], 1, 1] : [x[0], x[1]]);
    },
  };
}

/** pool.wgsl's interface; the two kernels on it differ in MAX only. */
const pool = {
  body: code,
  uniforms: {
    channels: 'u32', inH: 'u32', inW: 'u32', outH: 'u32', outW: 'u32',
    items: 'u32', // forward: images; backward: gradient items (images × classes)
    padT: 'i32', padL: 'i32', padB: 'i32', padR: 'i32',
    xOffset: 'u32', xStride: 'u32', // forward input x (views: item i at i · stride + offset)
    yOffset: 'u32', yStride: 'u32', // forward output y
    dyOffset: 'u32', dyStride: 'u32',
    dxOffset: 'u32', dxStride: 'u32',
    maskDiv: 'u32', // gradient item i belongs to image i / maskDiv (argmax: images = ⌈items / maskDiv⌉)
  },
  bindings: {
    x: read(), y: readWrite(),
    indicesOut: readWrite('i32'), // argmax: each window's arg-max, per image
    dy: read(), indices: read('i32'), dx: readWrite(),
  },
  entries: { forward: ['x', 'y'], argmax: ['x', 'indicesOut'], backward: ['dy', 'indices', 'dx'] },
  // The workgroup shape is fitted to each plane (planeGrid); FOLD folds planes beyond the z limit into y.
  workgroupSize: [8, 8, 1],
  overrides: { KH: 1, KW: 1, SH: 1, SW: 1, DH: 1, DW: 1, COUNT_INCLUDE_PAD: false, ACCUMULATE: false, WG_X: 8, WG_Y: 8, WG_Z: 1, FOLD: false },
} as const;

export const MAXPOOL = declareKernel({ ...pool, name: 'maxpool', constants: { MAX: true } });
/** (Its argmax entry is the body's and never dispatched.) */
export const AVGPOOL = declareKernel({ ...pool, name: 'avgpool', constants: { MAX: false } });


/** A 64-invocation workgroup shape for planes of `w4` column blocks × `h` rows, and its grid. */
export function planeGrid(w4: number, h: number, planes: number, limit = 65535, what = 'pooling'): { wg: { WG_X: number; WG_Y: number; WG_Z: number; FOLD: boolean }; grid: [number, number, number] } {
  const pow2 = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)));
  const x = Math.min(pow2(w4), 8);
  const y = Math.min(pow2(h), 64 / x);
  const z = 64 / (x * y);
  // Many planes (K classes × channels in the backward pass) may exceed the dispatch limit along z.
  const { grid, folded } = foldPlanes([Math.ceil(w4 / x), Math.ceil(h / y), Math.ceil(planes / z)], limit, what);
  return { wg: { WG_X: x, WG_Y: y, WG_Z: z, FOLD: folded }, grid };
}

function poolKernel(op: PoolOp, shapes: OpShapes): OpKernel {
  const [c, inH, inW] = chwOf(shapes.inputs[0]);
  const [, outH, outW] = chwOf(shapes.output);
  const kernel = op.kind === 'maxpool' ? MAXPOOL : AVGPOOL;
  const overrides = (accumulate: boolean, wg: ReturnType<typeof planeGrid>['wg']) => ({
    KH: op.kh, KW: op.kw, SH: op.strideH, SW: op.strideW, DH: op.dilations[0], DW: op.dilations[1], COUNT_INCLUDE_PAD: op.countIncludePad, ACCUMULATE: accumulate, ...wg,
  });
  const geometry = { channels: c, inH, inW, outH, outW, padT: op.pads[0], padL: op.pads[1], padB: op.pads[2], padR: op.pads[3] };
  const info = (items: number, flops: number) => ({
    label: op.name, opType: op.onnxTypes.join('+'), flops,
    shapes: `${fmtShape([items, c, inH, inW])} → ${fmtShape([items, c, outH, outW])} k${op.kh}×${op.kw}/${op.strideH}`,
  });
  const windowFlops = op.kh * op.kw;
  let indices: GPUBuffer | undefined;
  return {
    async forward({ env, inputs, output, batch }: ForwardArgs) {
      const { wg, grid } = planeGrid(Math.ceil(outW / 4), outH, batch * c, env.limits.maxComputeWorkgroupsPerDimension, `${op.name} (${op.kind}.forward)`);
      const x = inputs[0];
      return [await kernel.dispatch(env, 'forward', {
        overrides: overrides(false, wg),
        uniforms: { ...geometry, items: batch, xOffset: x.offset, xStride: x.stride, yOffset: output.offset, yStride: output.stride },
        buffers: { x: x.buffer, y: output.buffer }, workgroups: grid,
        ...info(batch, batch * c * outH * outW * windowFlops),
      })];
    },
    async backward({ env, inputs, dy, dx, items, maskDiv }: BackwardArgs) {
      const t = dx[0];
      if (!t) return [];
      const out: Dispatch[] = [];
      const images = Math.ceil(items / maskDiv);
      if (op.kind === 'maxpool') {
        indices ??= env.scratch(images * c * outH * outW, `${op.name} arg-max`);
        const { wg, grid } = planeGrid(Math.ceil(outW / 4), outH, images * c, env.limits.maxComputeWorkgroupsPerDimension, `${op.name} (maxpool.argmax)`);
        const x = inputs[0];
        out.push(await kernel.dispatch(env, 'argmax', {
          overrides: overrides(false, wg),
          uniforms: { ...geometry, items, maskDiv, xOffset: x.offset, xStride: x.stride },
          buffers: { x: x.buffer, indicesOut: indices }, workgroups: grid,
          ...info(images, images * c * outH * outW * windowFlops),
        }));
      }
      const { wg, grid } = planeGrid(Math.ceil(inW / 4), inH, items * c, env.limits.maxComputeWorkgroupsPerDimension, `${op.name} (${op.kind}.backward)`);
      out.push(await kernel.dispatch(env, 'backward', {
        overrides: overrides(t.accumulate, wg),
        uniforms: { ...geometry, items, maskDiv, dyOffset: dy.offset, dyStride: dy.stride, dxOffset: t.view.offset, dxStride: t.view.stride },
        // The average pool never reads indices (MAX is false), but the binding is the entry point's.
        buffers: { dy: dy.buffer, indices: indices ?? env.dummy, dx: t.view.buffer }, workgroups: grid,
        ...info(items, items * c * inH * inW),
      }));
      return out;
    },
  };
}

export const maxpool = defineOp<PoolOp>({
  kind: 'maxpool',
  onnx: { MaxPool: lowerPool('maxpool', ['storage_order']), GlobalMaxPool: lowerGlobal('maxpool'), ReduceMax: lowerReduce('maxpool') },
  kernel: poolKernel, kernels: [MAXPOOL],
});

export const avgpool = defineOp<PoolOp>({
  kind: 'avgpool',
  onnx: { AveragePool: lowerPool('avgpool', ['count_include_pad']), GlobalAveragePool: lowerGlobal('avgpool'), ReduceMean: lowerReduce('avgpool') },
  kernel: poolKernel, kernels: [AVGPOOL],
});

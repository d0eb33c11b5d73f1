/**
 * maxpool and avgpool: MaxPool, AveragePool and GlobalAveragePool (an average over the whole plane),
 * forward and backward, in shaders/pool.wgsl. The max-pool backward first recomputes each window's
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
import { attrInts } from '../onnx/model.ts';
import { checkInts, flag, list, need4d, nodeInput, spatialAttrs } from './attributes.ts';
import { defineOp, type OnnxLowering } from './spec.ts';

export interface PoolOp extends OpBase {
  kind: 'maxpool' | 'avgpool';
  kh: number; kw: number;
  strideH: number; strideW: number;
  pads: [number, number, number, number];
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
      const { strides, pads } = spatialAttrs(ctx, x, [kernel[0], kernel[1]], true);
      const ceil = flag(ctx, 'ceil_mode');
      const countIncludePad = kind === 'avgpool' && flag(ctx, 'count_include_pad');
      const ho = windowCount(x[2], kernel[0], strides[0], pads[0], pads[2], ceil);
      const wo = windowCount(x[3], kernel[1], strides[1], pads[1], pads[3], ceil);
      if (ho <= 0 || wo <= 0) ctx.fail(`the ${kernel[0]}×${kernel[1]} window does not fit the ${x[2]}×${x[3]} input (pads [${pads}])`);
      ctx.emit({
        kind, name: node.name, onnxTypes: [node.opType], inputs: [xName], output: node.outputs[0],
        kh: kernel[0], kw: kernel[1], strideH: strides[0], strideW: strides[1], pads, countIncludePad,
      }, [x[0], x[1], ho, wo]);
    },
  };
}

/** GlobalAveragePool: an average pool whose window is the whole plane. */
const globalAveragePool: OnnxLowering = {
  inputs: [1, 1], outputs: [1, 1], attributes: [],
  lower: (ctx) => {
    const xName = nodeInput(ctx, 0, 'X');
    const x = need4d(ctx, xName);
    ctx.emit({
      kind: 'avgpool', name: ctx.node.name, onnxTypes: ['GlobalAveragePool'], inputs: [xName], output: ctx.node.outputs[0],
      kh: x[2], kw: x[3], strideH: 1, strideW: 1, pads: [0, 0, 0, 0], countIncludePad: false,
    }, [x[0], x[1], 1, 1]);
  },
};

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
  overrides: { KH: 1, KW: 1, SH: 1, SW: 1, COUNT_INCLUDE_PAD: false, ACCUMULATE: false, WG_X: 8, WG_Y: 8, WG_Z: 1, FOLD: false },
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
    KH: op.kh, KW: op.kw, SH: op.strideH, SW: op.strideW, COUNT_INCLUDE_PAD: op.countIncludePad, ACCUMULATE: accumulate, ...wg,
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
  kind: 'maxpool', onnx: { MaxPool: lowerPool('maxpool', ['storage_order']) }, kernel: poolKernel, kernels: [MAXPOOL],
});

export const avgpool = defineOp<PoolOp>({
  kind: 'avgpool',
  onnx: { AveragePool: lowerPool('avgpool', ['count_include_pad']), GlobalAveragePool: globalAveragePool },
  kernel: poolKernel, kernels: [AVGPOOL],
});

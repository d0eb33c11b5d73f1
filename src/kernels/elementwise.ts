/**
 * The element-wise kernel (shaders/elementwise.wgsl) that three ops share (src/ops/affine.ts,
 * relu.ts, copy.ts): the per-channel affine (an unfolded BatchNormalization, or an Add, Sub, Mul or
 * Div of a per-channel constant), Relu, and the copy of a Concat input that cannot be written in
 * place. Their backward passes are all one entry point,
 * `grad` (gradCall): the incoming gradient times the affine scale and/or the ReLU mask, written or
 * added to each input's gradient; it also adds a concat slice's share of the concat's gradient
 * (sliceGradient, for src/runtime/backward.ts).
 */
import code from '../../shaders/elementwise.wgsl';
import { perImage } from '../graph/ir.ts';
import type { BufferView, Dispatch, KernelEnv } from '../gpu/dispatch.ts';
import { declareKernel, read, readWrite, view } from '../gpu/kernel.ts';
import { ELEMENT, FUSED_RELU } from '../gpu/wgsl-library.ts';
import type { GradTarget, OpShapes } from './types.ts';
import { chwOf, fmtShape } from './types.ts';

export const ELEMENTWISE = declareKernel({
  name: 'elementwise',
  body: code,
  uniforms: {
    count: 'u32', // values per item
    items: 'u32',
    channels: 'u32', hw: 'u32', // value k is in channel (k / hw) % channels
    xOffset: 'u32', xStride: 'u32', // views: item i at i · stride + offset
    yOffset: 'u32', yStride: 'u32',
    dyOffset: 'u32', dyStride: 'u32',
    maskOffset: 'u32', maskStride: 'u32',
    maskDiv: 'u32', // gradient item i masks with the forward image i / maskDiv
    dxOffset: 'u32', dxStride: 'u32',
  },
  bindings: {
    x: read(), scale: read(), shift: read(), y: readWrite(),
    dy: read(), mask: read(), dx: readWrite(),
  },
  entries: {
    affine: ['x', 'scale', 'shift', 'y'],
    relu: ['x', 'y'],
    copy: ['x', 'y'],
    grad: ['dy', 'scale', 'mask', 'dx'],
  },
  workgroupSize: [256, 1, 1],
  // RELU, MASK, GUIDED: the fused ReLU and its backward rule (FUSED_RELU; RELU6 stays off: only a conv fuses a ReLU6).
  overrides: { RELU: false, RELU6: false, MASK: false, GUIDED: false, SCALE: false, ACCUMULATE: false },
  libraries: [ELEMENT, FUSED_RELU],
});

/** Geometry of an op's values: count per item, channels and plane size (for the per-channel scale). */
export function valueGeometry(shapes: OpShapes) {
  const [channels, h, w] = chwOf(shapes.output);
  return { count: channels * h * w, channels, hw: h * w };
}

/** What a profile shows of an element-wise dispatch over `items` items. */
export function profileInfo(shapes: OpShapes, label: string, opType: string, items: number) {
  const g = valueGeometry(shapes);
  return { label, opType, flops: g.count * items, shapes: fmtShape([items, ...shapes.output.slice(1)]) };
}

/** The backward of an element-wise op for one input: dx (+)= dy · scale · mask (guided: · (dy > 0) too). */
export function gradCall(env: KernelEnv, shapes: OpShapes, label: string, opType: string, dy: BufferView, t: GradTarget, items: number, maskDiv: number,
  mask: BufferView | null, scale?: GPUBuffer, guided = false): Promise<Dispatch> {
  const g = valueGeometry(shapes);
  const m = mask ?? { buffer: env.dummy, offset: 0, stride: 0 };
  return ELEMENTWISE.dispatch(env, 'grad', {
    overrides: { MASK: mask !== null, GUIDED: guided && mask !== null, SCALE: scale !== undefined, ACCUMULATE: t.accumulate },
    uniforms: { ...g, items, maskDiv, ...view('dy', dy), ...view('mask', m), ...view('dx', t.view) },
    buffers: { dy: dy.buffer, scale: scale ?? env.dummy, mask: m.buffer, dx: t.view.buffer },
    workgroups: ELEMENTWISE.grid1d('grad', g.count * items, env.limits.maxComputeWorkgroupsPerDimension),
    ...profileInfo(shapes, label, opType, items),
  });
}

/** A forward element-wise op whose only input is x (relu, copy). */
export function unary(env: KernelEnv, entry: 'relu' | 'copy', shapes: OpShapes, label: string, opType: string, x: BufferView, y: BufferView, items: number): Promise<Dispatch> {
  const g = valueGeometry(shapes);
  return ELEMENTWISE.dispatch(env, entry, {
    uniforms: { ...g, items, ...view('x', x), ...view('y', y) },
    buffers: { x: x.buffer, y: y.buffer },
    workgroups: ELEMENTWISE.grid1d(entry, g.count * items, env.limits.maxComputeWorkgroupsPerDimension),
    ...profileInfo(shapes, label, opType, items),
  });
}

/**
 * dx (+)= one in-place concat input's share of the concat's gradient (`from`: the slice of the
 * concat output's gradient), for a slice with a gradient buffer of its own (src/runtime/backward.ts).
 */
export function sliceGradient(env: KernelEnv, from: BufferView, t: GradTarget, shape: number[], items: number, label: string): Promise<Dispatch> {
  const count = perImage(shape);
  return ELEMENTWISE.dispatch(env, 'grad', {
    overrides: { MASK: false, SCALE: false, ACCUMULATE: t.accumulate },
    uniforms: { count, items, channels: 1, hw: count, maskDiv: 1, ...view('dy', from), ...view('mask', { offset: 0, stride: 0 }), ...view('dx', t.view) },
    buffers: { dy: from.buffer, scale: env.dummy, mask: env.dummy, dx: t.view.buffer },
    workgroups: ELEMENTWISE.grid1d('grad', count * items, env.limits.maxComputeWorkgroupsPerDimension),
    label: `${label}/slice`, opType: 'Concat', flops: count * items, shapes: shape.join('×'),
  });
}

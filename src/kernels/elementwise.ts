/**
 * Element-wise ops (shaders/elementwise.wgsl): Add, the per-channel affine (unfolded
 * BatchNormalization), Relu, and the copy of a Concat input that cannot be written in place. Their backward passes are all one kernel, `grad`: the incoming
 * gradient times the affine scale and/or the ReLU mask, written or added to each input's gradient.
 */
import code from '../../shaders/elementwise.wgsl';
import type { AddOp, AffineOp, CopyOp, ReluOp } from '../graph/ir.ts';
import type { BufferView, Dispatch, KernelEnv } from '../gpu/dispatch.ts';
import { declareKernel, read, readWrite, view } from '../gpu/kernel.ts';
import type { BackwardArgs, ForwardArgs, GradTarget, OpKernel, OpShapes } from './types.ts';
import { chwOf, fmtShape } from './types.ts';

export const ELEMENTWISE = declareKernel({
  name: 'elementwise',
  body: code,
  uniforms: {
    count: 'u32', // values per item
    items: 'u32',
    channels: 'u32', hw: 'u32', // value k is in channel (k / hw) % channels
    aOffset: 'u32', aStride: 'u32', // views: item i at i · stride + offset
    bOffset: 'u32', bStride: 'u32',
    xOffset: 'u32', xStride: 'u32',
    yOffset: 'u32', yStride: 'u32',
    dyOffset: 'u32', dyStride: 'u32',
    maskOffset: 'u32', maskStride: 'u32',
    maskDiv: 'u32', // gradient item i masks with the forward image i / maskDiv
    dxOffset: 'u32', dxStride: 'u32',
  },
  bindings: {
    a: read(), b: read(), x: read(), scale: read(), shift: read(), y: readWrite(),
    dy: read(), mask: read(), dx: readWrite(),
  },
  entries: {
    add: ['a', 'b', 'y'],
    affine: ['x', 'scale', 'shift', 'y'],
    relu: ['x', 'y'],
    copy: ['x', 'y'],
    grad: ['dy', 'scale', 'mask', 'dx'],
  },
  workgroupSize: [256, 1, 1],
  overrides: { RELU: false, MASK: false, SCALE: false, ACCUMULATE: false },
});

/** Geometry of an op's values: count per item, channels and plane size (for the per-channel scale). */
function geometry(shapes: OpShapes) {
  const [channels, h, w] = chwOf(shapes.output);
  return { count: channels * h * w, channels, hw: h * w };
}

function info(shapes: OpShapes, label: string, opType: string, items: number) {
  const g = geometry(shapes);
  return { label, opType, flops: g.count * items, shapes: fmtShape([items, ...shapes.output.slice(1)]) };
}

/** The backward of an element-wise op for one input: dx (+)= dy · scale · mask. */
function gradCall(env: KernelEnv, shapes: OpShapes, label: string, opType: string, dy: BufferView, t: GradTarget, items: number, maskDiv: number,
  mask: BufferView | null, scale?: GPUBuffer): Promise<Dispatch> {
  const g = geometry(shapes);
  const m = mask ?? { buffer: env.dummy, offset: 0, stride: 0 };
  return ELEMENTWISE.dispatch(env, 'grad', {
    overrides: { MASK: mask !== null, SCALE: scale !== undefined, ACCUMULATE: t.accumulate },
    uniforms: { ...g, items, maskDiv, ...view('dy', dy), ...view('mask', m), ...view('dx', t.view) },
    buffers: { dy: dy.buffer, scale: scale ?? env.dummy, mask: m.buffer, dx: t.view.buffer },
    workgroups: ELEMENTWISE.grid1d('grad', g.count * items, env.limits.maxComputeWorkgroupsPerDimension),
    ...info(shapes, label, opType, items),
  });
}

/** A forward element-wise op whose only input is x (relu, copy). */
function unary(env: KernelEnv, entry: 'relu' | 'copy', shapes: OpShapes, label: string, opType: string, x: BufferView, y: BufferView, items: number): Promise<Dispatch> {
  const g = geometry(shapes);
  return ELEMENTWISE.dispatch(env, entry, {
    uniforms: { ...g, items, ...view('x', x), ...view('y', y) },
    buffers: { x: x.buffer, y: y.buffer },
    workgroups: ELEMENTWISE.grid1d(entry, g.count * items, env.limits.maxComputeWorkgroupsPerDimension),
    ...info(shapes, label, opType, items),
  });
}

/**
 * dx (+)= one in-place concat input's share of the concat's gradient (`from`: the slice of the
 * concat output's gradient), for a slice with a gradient buffer of its own (src/runtime/backward.ts).
 */
export function sliceGradient(env: KernelEnv, from: BufferView, t: GradTarget, shape: number[], items: number, label: string): Promise<Dispatch> {
  const count = shape.slice(1).reduce((a, b) => a * b, 1);
  return ELEMENTWISE.dispatch(env, 'grad', {
    overrides: { MASK: false, SCALE: false, ACCUMULATE: t.accumulate },
    uniforms: { count, items, channels: 1, hw: count, maskDiv: 1, ...view('dy', from), ...view('mask', { offset: 0, stride: 0 }), ...view('dx', t.view) },
    buffers: { dy: from.buffer, scale: env.dummy, mask: env.dummy, dx: t.view.buffer },
    workgroups: ELEMENTWISE.grid1d('grad', count * items, env.limits.maxComputeWorkgroupsPerDimension),
    label: `${label}/slice`, opType: 'Concat', flops: count * items, shapes: shape.join('×'),
  });
}

export function addKernel(op: AddOp, shapes: OpShapes): OpKernel {
  const opType = op.onnxTypes.join('+');
  return {
    async forward({ env, inputs: [a, b], output, batch }: ForwardArgs) {
      const g = geometry(shapes);
      return [await ELEMENTWISE.dispatch(env, 'add', {
        overrides: { RELU: op.relu },
        uniforms: { ...g, items: batch, ...view('a', a), ...view('b', b), ...view('y', output) },
        buffers: { a: a.buffer, b: b.buffer, y: output.buffer },
        workgroups: ELEMENTWISE.grid1d('add', g.count * batch, env.limits.maxComputeWorkgroupsPerDimension),
        ...info(shapes, op.name, opType, batch),
      })];
    },
    async backward({ env, output, dy, dx, items, maskDiv }: BackwardArgs) {
      const out: Dispatch[] = [];
      for (const t of dx) if (t) out.push(await gradCall(env, shapes, op.name, opType, dy, t, items, maskDiv, op.relu ? output : null));
      return out;
    },
  };
}

export function affineKernel(op: AffineOp, shapes: OpShapes): OpKernel {
  const opType = op.onnxTypes.join('+');
  let buffers: { scale: GPUBuffer; shift: GPUBuffer } | undefined;
  const get = (env: KernelEnv) => (buffers ??= { scale: env.storage(op.scale), shift: env.storage(op.shift) });
  return {
    async forward({ env, inputs: [x], output, batch }: ForwardArgs) {
      const g = geometry(shapes);
      return [await ELEMENTWISE.dispatch(env, 'affine', {
        overrides: { RELU: op.relu },
        uniforms: { ...g, items: batch, ...view('x', x), ...view('y', output) },
        buffers: { x: x.buffer, ...get(env), y: output.buffer },
        workgroups: ELEMENTWISE.grid1d('affine', g.count * batch, env.limits.maxComputeWorkgroupsPerDimension),
        ...info(shapes, op.name, opType, batch),
      })];
    },
    async backward({ env, output, dy, dx, items, maskDiv }: BackwardArgs) {
      const t = dx[0];
      return t ? [await gradCall(env, shapes, op.name, opType, dy, t, items, maskDiv, op.relu ? output : null, get(env).scale)] : [];
    },
  };
}

export function reluKernel(op: ReluOp, shapes: OpShapes): OpKernel {
  return {
    async forward({ env, inputs, output, batch }: ForwardArgs) {
      return [await unary(env, 'relu', shapes, op.name, 'Relu', inputs[0], output, batch)];
    },
    async backward({ env, output, dy, dx, items, maskDiv }: BackwardArgs) {
      const t = dx[0];
      return t ? [await gradCall(env, shapes, op.name, 'Relu', dy, t, items, maskDiv, output)] : [];
    },
  };
}

export function copyKernel(op: CopyOp, shapes: OpShapes): OpKernel {
  const opType = op.onnxTypes.join('+');
  return {
    async forward({ env, inputs, output, batch }: ForwardArgs) {
      return [await unary(env, 'copy', shapes, op.name, opType, inputs[0], output, batch)];
    },
    async backward({ env, dy, dx, items, maskDiv }: BackwardArgs) {
      const t = dx[0];
      return t ? [await gradCall(env, shapes, op.name, opType, dy, t, items, maskDiv, null)] : [];
    },
  };
}

/**
 * Element-wise ops (shaders/elementwise.wgsl): Add, the per-channel affine (unfolded
 * BatchNormalization), Relu, and the copy of a Concat input that cannot be written in place. Their backward passes are all one kernel, `grad`: the incoming
 * gradient times the affine scale and/or the ReLU mask, written or added to each input's gradient.
 */
import code from '../../shaders/elementwise.wgsl';
import type { AddOp, AffineOp, CopyOp, ReluOp } from '../graph/ir.ts';
import type { BufferView, Dispatch, KernelEnv } from '../gpu/dispatch.ts';
import { grid1d, Params } from '../gpu/dispatch.ts';
import type { BackwardArgs, ForwardArgs, GradTarget, OpKernel, OpShapes } from './types.ts';
import { chwOf, fmtShape } from './types.ts';

const NONE = { offset: 0, stride: 0 };
type V = { offset: number; stride: number };

interface Call {
  entry: string;
  items: number;
  a: BufferView;
  b?: BufferView;
  c: BufferView;
  m?: V;
  scale?: GPUBuffer;
  shift?: GPUBuffer;
  constants: Record<string, boolean>;
  maskDiv?: number;
}

function elementwise(shapes: OpShapes, label: string, opType: string) {
  const [channels, h, w] = chwOf(shapes.output);
  const count = channels * h * w;
  return async (env: KernelEnv, call: Call): Promise<Dispatch> => {
    const pipeline = await env.pipeline(code, call.entry, call.constants);
    const b = call.b ?? { ...NONE, buffer: env.dummy };
    const m = call.m ?? NONE;
    const p = new Params().u32(count, call.items, channels, h * w, call.a.offset, call.a.stride, b.offset, b.stride,
      call.c.offset, call.c.stride, m.offset, m.stride, call.maskDiv ?? 1, 0, 0, 0);
    const bindings: Record<string, (GPUBuffer | null)[]> = {
      add: [env.uniform(p), call.a.buffer, b.buffer, null, null, call.c.buffer],
      affine: [env.uniform(p), call.a.buffer, null, call.scale!, call.shift!, call.c.buffer],
      grad: [env.uniform(p), call.a.buffer, b.buffer, call.scale ?? env.dummy, null, call.c.buffer],
    };
    const buffers = bindings[call.entry] ?? [env.uniform(p), call.a.buffer, null, null, null, call.c.buffer];
    return env.dispatch(pipeline, buffers, grid1d(count * call.items, 256, env.limits.maxComputeWorkgroupsPerDimension), {
      kernel: `elementwise.${call.entry}`, label, opType, flops: count * call.items, shapes: fmtShape([call.items, ...shapes.output.slice(1)]),
    });
  };
}

/** The backward of an element-wise op for one input: dx (+)= dy · scale · mask. */
function gradCall(run: ReturnType<typeof elementwise>, env: KernelEnv, dy: BufferView, t: GradTarget, items: number, maskDiv: number,
  mask: BufferView | null, scale?: GPUBuffer): Promise<Dispatch> {
  return run(env, {
    entry: 'grad', items, a: dy, b: mask ?? undefined, m: mask ?? undefined, c: t.view, scale, maskDiv,
    constants: { MASK: mask !== null, SCALE: scale !== undefined, ACCUMULATE: t.accumulate },
  });
}

export function addKernel(op: AddOp, shapes: OpShapes): OpKernel {
  const run = elementwise(shapes, op.name, op.onnxTypes.join('+'));
  return {
    async forward({ env, inputs, output, batch }: ForwardArgs) {
      return [await run(env, { entry: 'add', items: batch, a: inputs[0], b: inputs[1], c: output, constants: { RELU: op.relu } })];
    },
    async backward({ env, output, dy, dx, items, maskDiv }: BackwardArgs) {
      const out: Dispatch[] = [];
      for (const t of dx) if (t) out.push(await gradCall(run, env, dy, t, items, maskDiv, op.relu ? output : null));
      return out;
    },
  };
}

export function affineKernel(op: AffineOp, shapes: OpShapes): OpKernel {
  const run = elementwise(shapes, op.name, op.onnxTypes.join('+'));
  let buffers: { scale: GPUBuffer; shift: GPUBuffer } | undefined;
  const get = (env: KernelEnv) => (buffers ??= { scale: env.storage(op.scale), shift: env.storage(op.shift) });
  return {
    async forward({ env, inputs, output, batch }: ForwardArgs) {
      return [await run(env, { entry: 'affine', items: batch, a: inputs[0], c: output, ...get(env), constants: { RELU: op.relu } })];
    },
    async backward({ env, output, dy, dx, items, maskDiv }: BackwardArgs) {
      const t = dx[0];
      return t ? [await gradCall(run, env, dy, t, items, maskDiv, op.relu ? output : null, get(env).scale)] : [];
    },
  };
}

export function reluKernel(op: ReluOp, shapes: OpShapes): OpKernel {
  const run = elementwise(shapes, op.name, 'Relu');
  return {
    async forward({ env, inputs, output, batch }: ForwardArgs) {
      return [await run(env, { entry: 'relu', items: batch, a: inputs[0], c: output, constants: {} })];
    },
    async backward({ env, output, dy, dx, items, maskDiv }: BackwardArgs) {
      const t = dx[0];
      return t ? [await gradCall(run, env, dy, t, items, maskDiv, output)] : [];
    },
  };
}

export function copyKernel(op: CopyOp, shapes: OpShapes): OpKernel {
  const run = elementwise(shapes, op.name, op.onnxTypes.join('+'));
  return {
    async forward({ env, inputs, output, batch }: ForwardArgs) {
      return [await run(env, { entry: 'copy', items: batch, a: inputs[0], c: output, constants: {} })];
    },
    async backward({ env, dy, dx, items, maskDiv }: BackwardArgs) {
      const t = dx[0];
      return t ? [await gradCall(run, env, dy, t, items, maskDiv, null)] : [];
    },
  };
}

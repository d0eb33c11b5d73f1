/**
 * affine: y = x·scale[c] + shift[c] per channel: a BatchNormalization that could not be folded into
 * the preceding conv (graph/fuse.ts folds it when it can), or an Add, Sub, Mul or Div of a
 * per-channel constant (lowered in src/ops/binary.ts). A Relu fuses into it. Forward:
 * elementwise.wgsl `affine`; backward: `grad` (dy · scale, masked by the fused ReLU).
 */
import type { OpBase } from '../graph/ir.ts';
import type { KernelEnv } from '../gpu/dispatch.ts';
import { view } from '../gpu/kernel.ts';
import { ELEMENTWISE, gradCall, profileInfo, valueGeometry } from '../kernels/elementwise.ts';
import type { BackwardArgs, ForwardArgs, OpKernel, OpShapes } from '../kernels/types.ts';
import { attrFloat, attrInt } from '../onnx/model.ts';
import { flag, list, nodeInput } from './attributes.ts';
import { defineOp, type LowerContext } from './spec.ts';

export interface AffineOp extends OpBase {
  kind: 'affine';
  scale: Float32Array;
  shift: Float32Array;
  relu: boolean;
}

function lowerBatchNorm(ctx: LowerContext): void {
  const { node } = ctx;
  if (node.outputs.filter(Boolean).length > 1 || flag(ctx, 'training_mode')) ctx.fail('training-mode outputs (running mean/var) are not supported');
  if (attrInt(node, 'spatial', 1) !== 1) ctx.fail('spatial = 0 (statistics per activation, opset < 9) is not supported');
  const xName = nodeInput(ctx, 0, 'X');
  const x = ctx.shape(xName);
  if (x.length < 2) ctx.fail(`input '${xName}' has shape [${x}]; expected [N, C, …]`);
  const c = x[1];
  const [s, b, m, v] = [1, 2, 3, 4].map((i) => {
    const name = nodeInput(ctx, i, ['', 'scale', 'B', 'mean', 'var'][i]);
    const t = ctx.weight(name, c);
    if (t.dims.length !== 1) ctx.fail(`initializer '${name}' has shape ${list(t.dims)}; expected [${c}]`);
    return t.data;
  });
  const eps = attrFloat(node, 'epsilon', 1e-5);
  const scale = new Float32Array(c), shift = new Float32Array(c);
  for (let i = 0; i < c; i++) {
    // Folded in float64, rounded once: y = x·scale + shift.
    const k = s[i] / Math.sqrt(v[i] + eps);
    scale[i] = k;
    shift[i] = b[i] - m[i] * k;
  }
  ctx.emit({ kind: 'affine', name: node.name, onnxTypes: ['BatchNormalization'], inputs: [xName], output: node.outputs[0], scale, shift, relu: false }, x);
}

function affineKernel(op: AffineOp, shapes: OpShapes): OpKernel {
  const opType = op.onnxTypes.join('+');
  let buffers: { scale: GPUBuffer; shift: GPUBuffer } | undefined;
  const get = (env: KernelEnv) => (buffers ??= { scale: env.storage(op.scale), shift: env.storage(op.shift) });
  return {
    async forward({ env, inputs: [x], output, batch }: ForwardArgs) {
      const g = valueGeometry(shapes);
      return [await ELEMENTWISE.dispatch(env, 'affine', {
        overrides: { RELU: op.relu },
        uniforms: { ...g, items: batch, ...view('x', x), ...view('y', output) },
        buffers: { x: x.buffer, ...get(env), y: output.buffer },
        workgroups: ELEMENTWISE.grid1d('affine', g.count * batch, env.limits.maxComputeWorkgroupsPerDimension),
        ...profileInfo(shapes, op.name, opType, batch),
      })];
    },
    async backward({ env, output, dy, dx, items, maskDiv, guided }: BackwardArgs) {
      const t = dx[0];
      return t ? [await gradCall(env, shapes, op.name, opType, dy, t, items, maskDiv, op.relu ? output : null, get(env).scale, guided)] : [];
    },
  };
}

export const affine = defineOp<AffineOp>({
  kind: 'affine',
  onnx: {
    BatchNormalization: {
      inputs: [5, 5], outputs: [1, 5], attributes: ['consumed_inputs', 'epsilon', 'is_test', 'momentum', 'spatial', 'training_mode'],
      lower: lowerBatchNorm,
    },
  },
  kernel: affineKernel,
  fusesRelu: true,
  kernels: [ELEMENTWISE],
});

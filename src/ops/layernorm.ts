/**
 * layernorm: LayerNormalization (opset 17) over the axes from `axis` on, per row of each image:
 * ConvNeXt normalises the last axis of a channels-last [N, H, W, C] tensor. Forward and backward
 * (the full Jacobian-vector product with μ and σ recomputed from x): shaders/layernorm.wgsl.
 * (The decomposed form exporters emit for older opsets, ReduceMean → Sub → Pow → ReduceMean → Add →
 * Sqrt → Div, runs as those ops.)
 */
import code from '../../shaders/layernorm.wgsl';
import type { OpBase } from '../graph/ir.ts';
import { tensorElements } from '../graph/ir.ts';
import type { KernelEnv } from '../gpu/dispatch.ts';
import { declareKernel, read, readWrite, view } from '../gpu/kernel.ts';
import type { BackwardArgs, ForwardArgs, OpKernel, OpShapes } from '../kernels/types.ts';
import { fmtShape } from '../kernels/types.ts';
import { attrFloat, attrInt } from '../onnx/model.ts';
import { list, nodeInput } from './attributes.ts';
import { defineOp, type LowerContext } from './spec.ts';

export interface LayerNormOp extends OpBase {
  kind: 'layernorm';
  /** Values per row: the product of the normalised axes. */
  inner: number;
  epsilon: number;
  /** γ and β, one per value of a row. */
  scale: Float32Array;
  bias: Float32Array;
}

export const LAYERNORM = declareKernel({
  name: 'layernorm',
  body: code,
  uniforms: {
    rows: 'u32', inner: 'u32', items: 'u32', epsilon: 'f32',
    xOffset: 'u32', xStride: 'u32', yOffset: 'u32', yStride: 'u32',
    dyOffset: 'u32', dyStride: 'u32', dxOffset: 'u32', dxStride: 'u32',
    maskDiv: 'u32', // gradient item i reads the forward image i / maskDiv
  },
  bindings: { x: read(), scale: read(), bias: read(), y: readWrite(), dy: read(), dx: readWrite() },
  entries: { forward: ['x', 'scale', 'bias', 'y'], backward: ['x', 'scale', 'dy', 'dx'] },
  workgroupSize: [64, 1, 1],
  overrides: { ACCUMULATE: false },
});

function lowerLayerNorm(ctx: LowerContext): void {
  const { node } = ctx;
  const xName = nodeInput(ctx, 0, 'X');
  const x = ctx.shape(xName);
  const r = x.length;
  const a0 = attrInt(node, 'axis', -1);
  if (a0 < -r || a0 >= r) ctx.fail(`axis ${a0} is out of range for a rank-${r} input (expected ${-r} … ${r - 1})`);
  const axis = a0 < 0 ? a0 + r : a0;
  if (axis === 0) ctx.fail('normalising over the batch axis 0 is not supported (it mixes images)');
  const inner = tensorElements(x.slice(axis));
  // γ and β broadcast to the normalised axes [x[axis], …]: the engine takes one value per row value, or a scalar.
  const perValue = (name: string, what: string): Float32Array => {
    if (!ctx.isConstant(name)) ctx.fail(`the ${what} '${name}' must be a constant (an initializer)`);
    const t = ctx.weight(name);
    const ok = t.data.length === 1 || (t.data.length === inner && t.dims.length <= r - axis && t.dims.every((d, i) => d === x[r - t.dims.length + i]));
    if (!ok) ctx.fail(`the ${what} '${name}' has shape ${list(t.dims)}; expected [${x.slice(axis)}] (the normalised axes) or a scalar`);
    return t.data.length === inner ? t.data.slice() : new Float32Array(inner).fill(t.data[0]);
  };
  const scale = perValue(nodeInput(ctx, 1, 'Scale'), 'scale');
  const bias = node.inputs[2] ? perValue(node.inputs[2], 'bias') : new Float32Array(inner);
  const epsilon = attrFloat(node, 'epsilon', 1e-5);
  if (!(epsilon >= 0)) ctx.fail(`epsilon ${epsilon} must be ≥ 0`);
  ctx.emit({ kind: 'layernorm', name: node.name, onnxTypes: ['LayerNormalization'], inputs: [xName], output: node.outputs[0], inner, epsilon, scale, bias }, x);
}

function layerNormKernel(op: LayerNormOp, shapes: OpShapes): OpKernel {
  const rows = tensorElements(shapes.output.slice(1)) / op.inner;
  const opType = op.onnxTypes.join('+');
  let weights: { scale: GPUBuffer; bias: GPUBuffer } | undefined;
  const get = (env: KernelEnv) => (weights ??= { scale: env.storage(op.scale), bias: env.storage(op.bias) });
  const info = (items: number) => ({ label: op.name, opType, flops: 8 * items * rows * op.inner, shapes: `${fmtShape([items, ...shapes.output.slice(1)])} rows of ${op.inner}` });
  return {
    async forward({ env, inputs: [x], output, batch }: ForwardArgs) {
      return [await LAYERNORM.dispatch(env, 'forward', {
        uniforms: { rows, inner: op.inner, items: batch, epsilon: op.epsilon, ...view('x', x), ...view('y', output) },
        buffers: { x: x.buffer, ...get(env), y: output.buffer },
        workgroups: LAYERNORM.grid1d('forward', rows * batch, env.limits.maxComputeWorkgroupsPerDimension),
        ...info(batch),
      })];
    },
    async backward({ env, inputs: [x], dy, dx: [t], items, maskDiv }: BackwardArgs) {
      if (!t) return [];
      return [await LAYERNORM.dispatch(env, 'backward', {
        overrides: { ACCUMULATE: t.accumulate },
        uniforms: { rows, inner: op.inner, items, epsilon: op.epsilon, maskDiv, ...view('x', x), ...view('dy', dy), ...view('dx', t.view) },
        buffers: { x: x.buffer, scale: get(env).scale, dy: dy.buffer, dx: t.view.buffer },
        workgroups: LAYERNORM.grid1d('backward', rows * items, env.limits.maxComputeWorkgroupsPerDimension),
        ...info(items),
      })];
    },
  };
}

export const layernorm = defineOp<LayerNormOp>({
  kind: 'layernorm',
  onnx: {
    LayerNormalization: { inputs: [2, 3], outputs: [1, 3], attributes: ['axis', 'epsilon', 'stash_type'], lower: lowerLayerNorm },
  },
  kernel: layerNormKernel,
  kernels: [LAYERNORM],
});

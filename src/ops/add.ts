/**
 * add: the sum of two activations of one shape (ONNX Add). An Add of an activation and a
 * per-channel (or scalar) constant lowers to an affine op instead (src/ops/affine.ts). A Relu fuses
 * into it. Forward: elementwise.wgsl `add`; backward: `grad` (dy, masked by the fused ReLU) into
 * each input's gradient.
 */
import type { OpBase } from '../graph/ir.ts';
import { tensorElements } from '../graph/ir.ts';
import type { Dispatch } from '../gpu/dispatch.ts';
import { view } from '../gpu/kernel.ts';
import { ELEMENTWISE, gradCall, profileInfo, valueGeometry } from '../kernels/elementwise.ts';
import type { BackwardArgs, ForwardArgs, OpKernel, OpShapes } from '../kernels/types.ts';
import { attribute } from '../onnx/model.ts';
import { list, nodeInput } from './attributes.ts';
import { defineOp, type LowerContext } from './spec.ts';

export interface AddOp extends OpBase {
  kind: 'add';
  relu: boolean;
}

function lowerAdd(ctx: LowerContext): void {
  if (attribute(ctx.node, 'axis') !== undefined) ctx.fail(`the legacy 'axis' broadcast (opset < 7) is not supported`);
  const [aName, bName] = [nodeInput(ctx, 0, 'A'), nodeInput(ctx, 1, 'B')];
  const aConst = ctx.isConstant(aName), bConst = ctx.isConstant(bName);
  if (aConst && bConst) ctx.fail('both operands are constants (fold them before export)');
  if (!aConst && !bConst) {
    const a = ctx.shape(aName), b = ctx.shape(bName);
    if (a.join() !== b.join()) ctx.fail(`operands have shapes [${a}] and [${b}]; only equal shapes (or a per-channel constant) are supported`);
    ctx.emit({ kind: 'add', name: ctx.node.name, onnxTypes: ['Add'], inputs: [aName, bName], output: ctx.node.outputs[0], relu: false }, a);
    return;
  }
  const [xName, cName] = aConst ? [bName, aName] : [aName, bName];
  const x = ctx.shape(xName);
  if (x.length < 2) ctx.fail(`input '${xName}' has shape [${x}]; expected [N, C, …]`);
  const k = ctx.weight(cName);
  const n = tensorElements(k.dims);
  const r = k.dims.length;
  const c = x[1];
  // A constant broadcast per channel (numpy rules: dims aligned at the end, so the channel axis
  // of x is axis r − (rank − 1) of the constant: [C] on 2-D, [C, 1, 1] or [1, C, 1, 1] on 4-D), or a scalar.
  if (r > x.length) ctx.fail(`constant '${cName}' ${list(k.dims)} has more dimensions than '${xName}' [${x}]`);
  const channelAxis = r - (x.length - 1);
  const perChannel = n === c && channelAxis >= 0 && k.dims[channelAxis] === c;
  if (!(perChannel || n === 1)) ctx.fail(`constant '${cName}' ${list(k.dims)} does not broadcast per channel over [${x}]`);
  const shift = new Float32Array(c);
  for (let i = 0; i < c; i++) shift[i] = k.data[n === 1 ? 0 : i];
  ctx.emit({ kind: 'affine', name: ctx.node.name, onnxTypes: ['Add'], inputs: [xName], output: ctx.node.outputs[0], scale: new Float32Array(c).fill(1), shift, relu: false }, x);
}

function addKernel(op: AddOp, shapes: OpShapes): OpKernel {
  const opType = op.onnxTypes.join('+');
  return {
    async forward({ env, inputs: [a, b], output, batch }: ForwardArgs) {
      const g = valueGeometry(shapes);
      return [await ELEMENTWISE.dispatch(env, 'add', {
        overrides: { RELU: op.relu },
        uniforms: { ...g, items: batch, ...view('a', a), ...view('b', b), ...view('y', output) },
        buffers: { a: a.buffer, b: b.buffer, y: output.buffer },
        workgroups: ELEMENTWISE.grid1d('add', g.count * batch, env.limits.maxComputeWorkgroupsPerDimension),
        ...profileInfo(shapes, op.name, opType, batch),
      })];
    },
    async backward({ env, output, dy, dx, items, maskDiv, guided }: BackwardArgs) {
      const out: Dispatch[] = [];
      for (const t of dx) if (t) out.push(await gradCall(env, shapes, op.name, opType, dy, t, items, maskDiv, op.relu ? output : null, undefined, guided));
      return out;
    },
  };
}

export const add = defineOp<AddOp>({
  kind: 'add',
  onnx: { Add: { inputs: [2, 2], outputs: [1, 1], attributes: ['axis', 'broadcast', 'consumed_inputs'], lower: lowerAdd } },
  kernel: addKernel,
  fusesRelu: true,
  kernels: [ELEMENTWISE],
});

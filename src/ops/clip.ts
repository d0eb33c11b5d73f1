/**
 * clip: y = min(max(x, lo), hi) (ONNX Clip; ReLU6 is Clip(x, 0, 6)), forward and backward in
 * shaders/clip.wgsl. The gradient passes where lo ≤ x ≤ hi (PyTorch's clamp, bounds included).
 * The bounds: attributes min and max before opset 11 (Clip-1, Clip-6); from opset 11 the optional
 * inputs 'min' and 'max', which must be constants (float32 initializers of one value). A bound not
 * given is ±3.4028234663852886e38 (ONNX Clip-6's defaults: no clipping of finite values).
 * No Relu fuses into it.
 */
import code from '../../shaders/clip.wgsl';
import { type OpBase, perImage } from '../graph/ir.ts';
import { declareKernel, view } from '../gpu/kernel.ts';
import type { BackwardArgs, ForwardArgs, OpKernel, OpShapes } from '../kernels/types.ts';
import { UNARY_BINDINGS, UNARY_ENTRIES, UNARY_VIEWS } from '../kernels/unary.ts';
import { fmtShape } from '../kernels/types.ts';
import { attrFloat, attribute } from '../onnx/model.ts';
import { list, nodeInput } from './attributes.ts';
import { defineOp, type LowerContext } from './spec.ts';

export interface ClipOp extends OpBase {
  kind: 'clip';
  lo: number;
  hi: number;
}

export const CLIP = declareKernel({
  name: 'clip',
  body: code,
  uniforms: {
    count: 'u32', items: 'u32', // values per item, items
    lo: 'f32', hi: 'f32',
    ...UNARY_VIEWS,
  },
  bindings: UNARY_BINDINGS,
  entries: UNARY_ENTRIES,
  workgroupSize: [256, 1, 1],
  overrides: { ACCUMULATE: false },
});

/** The largest float32: Clip-6's default bounds. */
const FLT_MAX = 3.4028234663852886e38;

/** A bound from input i (opset ≥ 11): a float32 constant of one value, or the default when omitted. */
function boundInput(ctx: LowerContext, i: number, fallback: number): number {
  const name = ctx.node.inputs[i];
  if (!name) return fallback;
  // An activation is refused; a name nobody defines is a missing initializer (weight() says so).
  if (!ctx.isConstant(name) && ctx.hasActivation(name)) ctx.fail(`its ${i === 1 ? 'min' : 'max'} '${name}' must be a constant (a float32 initializer), not an activation`);
  const t = ctx.weight(name);
  if (t.data.length !== 1) ctx.fail(`its ${i === 1 ? 'min' : 'max'} '${name}' has shape ${list(t.dims)}; expected a scalar`);
  return t.data[0];
}

function lowerClip(ctx: LowerContext): void {
  const { node } = ctx;
  const xName = nodeInput(ctx, 0, 'input');
  let lo: number, hi: number;
  if (ctx.opset < 11) {
    if (node.inputs.length > 1) ctx.fail(`has ${node.inputs.length} inputs; before opset 11 (model opset ${ctx.opset}) min and max are attributes`);
    lo = attrFloat(node, 'min', -FLT_MAX);
    hi = attrFloat(node, 'max', FLT_MAX);
  } else {
    for (const a of ['min', 'max']) {
      if (attribute(node, a) !== undefined) ctx.fail(`attribute '${a}' is Clip's before opset 11; at opset ${ctx.opset} give min and max as inputs 1 and 2`);
    }
    lo = boundInput(ctx, 1, -FLT_MAX);
    hi = boundInput(ctx, 2, FLT_MAX);
  }
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) ctx.fail(`bounds [${lo}, ${hi}] are not finite`);
  ctx.emit({ kind: 'clip', name: node.name, onnxTypes: ['Clip'], inputs: [xName], output: node.outputs[0], lo, hi }, ctx.shape(xName));
}

function clipKernel(op: ClipOp, shapes: OpShapes): OpKernel {
  const count = perImage(shapes.output);
  const bounds = { lo: op.lo, hi: op.hi };
  const info = (items: number) => ({
    label: op.name, opType: 'Clip', flops: items * count * 2, shapes: `${fmtShape([items, ...shapes.output.slice(1)])} [${op.lo}, ${op.hi}]`,
  });
  return {
    async forward({ env, inputs: [x], output, batch }: ForwardArgs) {
      return [await CLIP.dispatch(env, 'forward', {
        uniforms: { count, items: batch, ...bounds, ...view('x', x), ...view('y', output) },
        buffers: { x: x.buffer, y: output.buffer },
        workgroups: CLIP.grid1d('forward', count * batch, env.limits.maxComputeWorkgroupsPerDimension),
        ...info(batch),
      })];
    },
    async backward({ env, inputs: [x], dy, dx, items, maskDiv }: BackwardArgs) {
      const t = dx[0];
      if (!t) return [];
      return [await CLIP.dispatch(env, 'backward', {
        overrides: { ACCUMULATE: t.accumulate },
        uniforms: { count, items, maskDiv, ...bounds, ...view('x', x), ...view('dy', dy), ...view('dx', t.view) },
        buffers: { x: x.buffer, dy: dy.buffer, dx: t.view.buffer },
        workgroups: CLIP.grid1d('backward', count * items, env.limits.maxComputeWorkgroupsPerDimension),
        ...info(items),
      })];
    },
  };
}

export const clip = defineOp<ClipOp>({
  kind: 'clip',
  onnx: { Clip: { inputs: [1, 3], outputs: [1, 1], attributes: ['consumed_inputs', 'max', 'min'], lower: lowerClip } },
  kernel: clipKernel,
  kernels: [CLIP],
});

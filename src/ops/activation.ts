/**
 * activation: y = f(x) element-wise, one kernel for the family (shaders/activation.wgsl: f, f', their
 * stable forms and PyTorch's gradients at kinks): Sigmoid, HardSigmoid, HardSwish, LeakyRelu, Tanh,
 * Elu, Softplus, Erf, Gelu (approximate 'none' or 'tanh'), Pow with a constant scalar exponent,
 * Sqrt, Reciprocal, Neg, Abs, Exp, Clip. The backward recomputes f'(x) from the forward input.
 * SiLU (x · Sigmoid(x)) and the Erf form of GELU (x · ½(1 + Erf(x/√2))) are these with the binary
 * ops (src/ops/binary.ts). No Relu fuses into it.
 *
 * Clip (y = min(max(x, lo), hi); ReLU6 is Clip(x, 0, 6)): the bounds are attributes min and max before
 * opset 11 (Clip-1, Clip-6), from opset 11 the optional inputs 'min' and 'max', which must be constants
 * (float32 initializers of one value); a bound not given is ±3.4028234663852886e38 (Clip-6's defaults:
 * no clipping of finite values). Its gradient passes strictly inside the bounds, lo < x < hi (PyTorch's
 * hardtanh, which nn.ReLU6 is, and the same rule as Relu's at 0). Guided backprop treats it as the
 * rectifier it is: the gradient passes only where it is > 0 too (GUIDED, set for Clip alone).
 *
 * Adding an activation: a case in `f` and `fGrad` of the shader, its FN constant there, and a row here.
 */
import code from '../../shaders/activation.wgsl';
import { type OpBase, perImage } from '../graph/ir.ts';
import { declareKernel, view } from '../gpu/kernel.ts';
import { ELEMENT } from '../gpu/wgsl-library.ts';
import type { BackwardArgs, ForwardArgs, OpKernel, OpShapes } from '../kernels/types.ts';
import { fmtShape } from '../kernels/types.ts';
import { UNARY_BINDINGS, UNARY_ENTRIES, UNARY_VIEWS } from '../kernels/unary.ts';
import { attrFloat, attrString, attribute } from '../onnx/model.ts';
import { list, nodeInput } from './attributes.ts';
import { defineOp, type LowerContext, type OnnxLowering } from './spec.ts';

/** Each function with its FN override (the constants at the top of shaders/activation.wgsl). */
const FN = {
  Sigmoid: 0, HardSigmoid: 1, HardSwish: 2, LeakyRelu: 3, Tanh: 4, Elu: 5, Softplus: 6, Erf: 7, Gelu: 8, GeluTanh: 9,
  Pow: 10, Sqrt: 11, Reciprocal: 12, Neg: 13, Abs: 14, Exp: 15, Clip: 16,
} as const;

export type ActivationFn = keyof typeof FN;

export interface ActivationOp extends OpBase {
  kind: 'activation';
  fn: ActivationFn;
  /** The parameters α and β (HardSigmoid's α and β, LeakyRelu's and Elu's α, Pow's exponent, Clip's lo and hi). */
  alpha: number;
  beta: number;
}

export const ACTIVATION = declareKernel({
  name: 'activation',
  body: code,
  uniforms: {
    count: 'u32', items: 'u32', // values per item, items
    alpha: 'f32', beta: 'f32',
    ...UNARY_VIEWS,
  },
  bindings: UNARY_BINDINGS,
  entries: UNARY_ENTRIES,
  workgroupSize: [256, 1, 1],
  overrides: { FN: 0, ACCUMULATE: false, GUIDED: false },
  libraries: [ELEMENT],
});

/** Pow's exponent: a float32 constant of one value. */
function exponent(ctx: LowerContext): number {
  const name = nodeInput(ctx, 1, 'Y');
  if (!ctx.isConstant(name) && ctx.hasActivation(name)) ctx.fail(`its exponent '${name}' must be a constant (a float32 initializer), not an activation`);
  const t = ctx.weight(name);
  if (t.data.length !== 1) ctx.fail(`its exponent '${name}' has shape ${list(t.dims)}; only a scalar exponent is supported`);
  return t.data[0];
}

/** A lowering row: the function and its parameters from the node. */
function row(attributes: string[], params: (ctx: LowerContext) => [ActivationFn, number, number], inputs: [number, number] = [1, 1]): OnnxLowering {
  return {
    inputs, outputs: [1, 1], attributes,
    lower: (ctx) => {
      const xName = nodeInput(ctx, 0, 'X');
      const [fn, alpha, beta] = params(ctx);
      if (!Number.isFinite(alpha) || !Number.isFinite(beta)) ctx.fail(`its parameters (${alpha}, ${beta}) are not finite`);
      ctx.emit({ kind: 'activation', name: ctx.node.name, onnxTypes: [ctx.node.opType], inputs: [xName], output: ctx.node.outputs[0], fn, alpha, beta }, ctx.shape(xName));
    },
  };
}

const plain = (fn: ActivationFn) => row(['consumed_inputs'], () => [fn, 0, 0]);

/** The largest float32: Clip-6's default bounds. */
const FLT_MAX = 3.4028234663852886e38;

/** A Clip bound from input i (opset ≥ 11): a float32 constant of one value, or the default when omitted. */
function boundInput(ctx: LowerContext, i: number, fallback: number): number {
  const name = ctx.node.inputs[i];
  if (!name) return fallback;
  // An activation is refused; a name nobody defines is a missing initializer (weight() says so).
  if (!ctx.isConstant(name) && ctx.hasActivation(name)) ctx.fail(`its ${i === 1 ? 'min' : 'max'} '${name}' must be a constant (a float32 initializer), not an activation`);
  const t = ctx.weight(name);
  if (t.data.length !== 1) ctx.fail(`its ${i === 1 ? 'min' : 'max'} '${name}' has shape ${list(t.dims)}; expected a scalar`);
  return t.data[0];
}

/** Clip's bounds [lo, hi]: attributes before opset 11, constant inputs from 11 on. */
function clipBounds(ctx: LowerContext): [ActivationFn, number, number] {
  const { node } = ctx;
  if (ctx.opset < 11) {
    if (node.inputs.length > 1) ctx.fail(`has ${node.inputs.length} inputs; before opset 11 (model opset ${ctx.opset}) min and max are attributes`);
    return ['Clip', attrFloat(node, 'min', -FLT_MAX), attrFloat(node, 'max', FLT_MAX)];
  }
  for (const a of ['min', 'max']) {
    if (attribute(node, a) !== undefined) ctx.fail(`attribute '${a}' is Clip's before opset 11; at opset ${ctx.opset} give min and max as inputs 1 and 2`);
  }
  return ['Clip', boundInput(ctx, 1, -FLT_MAX), boundInput(ctx, 2, FLT_MAX)];
}

/** A Clip(0, 6) (ReLU6), which fuses into a convolution before it (graph/fuse.ts) as its capped ReLU. */
export const isRelu6 = (op: ActivationOp): boolean => op.fn === 'Clip' && op.alpha === 0 && op.beta === 6;

function activationKernel(op: ActivationOp, shapes: OpShapes): OpKernel {
  const count = perImage(shapes.output);
  const params = { alpha: op.alpha, beta: op.beta };
  const overrides = { FN: FN[op.fn] };
  const bounds = op.fn === 'Clip' ? ` [${op.alpha}, ${op.beta}]` : '';
  const info = (items: number) => ({ label: op.name, opType: op.onnxTypes.join('+'), flops: items * count * 8, shapes: `${fmtShape([items, ...shapes.output.slice(1)])}${bounds}` });
  return {
    async forward({ env, inputs: [x], output, batch }: ForwardArgs) {
      return [await ACTIVATION.dispatch(env, 'forward', {
        overrides,
        uniforms: { count, items: batch, ...params, ...view('x', x), ...view('y', output) },
        buffers: { x: x.buffer, y: output.buffer },
        workgroups: ACTIVATION.grid1d('forward', count * batch, env.limits.maxComputeWorkgroupsPerDimension),
        ...info(batch),
      })];
    },
    async backward({ env, inputs: [x], dy, dx, items, maskDiv, guided }: BackwardArgs) {
      const t = dx[0];
      if (!t) return [];
      return [await ACTIVATION.dispatch(env, 'backward', {
        // Guided backprop acts at the rectifiers (Clip here; Relu is an op of its own): the other functions' pipelines stay as they are.
        overrides: { ...overrides, ACCUMULATE: t.accumulate, GUIDED: op.fn === 'Clip' && !!guided },
        uniforms: { count, items, maskDiv, ...params, ...view('x', x), ...view('dy', dy), ...view('dx', t.view) },
        buffers: { x: x.buffer, dy: dy.buffer, dx: t.view.buffer },
        workgroups: ACTIVATION.grid1d('backward', count * items, env.limits.maxComputeWorkgroupsPerDimension),
        ...info(items),
      })];
    },
  };
}

export const activation = defineOp<ActivationOp>({
  kind: 'activation',
  onnx: {
    Sigmoid: plain('Sigmoid'),
    HardSigmoid: row(['alpha', 'beta', 'consumed_inputs'], ({ node }) => ['HardSigmoid', attrFloat(node, 'alpha', 0.2), attrFloat(node, 'beta', 0.5)]),
    HardSwish: row([], () => ['HardSwish', 0, 0]),
    LeakyRelu: row(['alpha', 'consumed_inputs'], ({ node }) => ['LeakyRelu', attrFloat(node, 'alpha', 0.01), 0]),
    Tanh: plain('Tanh'),
    Elu: row(['alpha', 'consumed_inputs'], ({ node }) => ['Elu', attrFloat(node, 'alpha', 1), 0]),
    Softplus: row([], () => ['Softplus', 0, 0]),
    Erf: row([], () => ['Erf', 0, 0]),
    Gelu: row(['approximate'], (ctx) => {
      const a = attrString(ctx.node, 'approximate', 'none');
      if (a !== 'none' && a !== 'tanh') ctx.fail(`attribute 'approximate' is '${a}'; expected 'none' or 'tanh'`);
      return [a === 'tanh' ? 'GeluTanh' : 'Gelu', 0, 0];
    }),
    Pow: row([], (ctx) => ['Pow', exponent(ctx), 0], [2, 2]),
    Sqrt: plain('Sqrt'), Reciprocal: plain('Reciprocal'), Neg: plain('Neg'), Abs: plain('Abs'), Exp: plain('Exp'),
    Clip: row(['consumed_inputs', 'max', 'min'], clipBounds, [1, 3]),
  },
  kernel: activationKernel,
  kernels: [ACTIVATION],
});

/**
 * binary: element-wise ops of two operands with ONNX (numpy) broadcasting — Add, Sub, Mul, Div, Max,
 * Min, PRelu — and Sum of n operands; each operand an activation or a constant of any broadcastable
 * shape (the squeeze-and-excite product [N, C, 1, 1] × [N, C, H, W], a [W] constant, a scalar).
 * An op of one activation and a per-channel (or scalar) constant that keeps the activation's shape
 * lowers to an affine op instead (src/ops/affine.ts), which fusion can fold into a preceding conv:
 * x + c, x − c, c − x, x · c, x / c (as x · (1/c), 1/c rounded once).
 * A Relu fuses into it. Forward: binary.wgsl `forward` (a Sum's later inputs: `accumulate`); backward:
 * `backward` once per activation operand, each summing over the dimensions it was broadcast along.
 *
 * Gradients where f has a kink follow PyTorch: Max/Min give the whole gradient to the operand that
 * wins and half to each at a tie (torch.maximum); PRelu gives the slope's share at x = 0.
 * Operands are aligned at their last dimension; an activation must not be broadcast along the batch
 * (every activation has the batch as its first dimension), nor may a constant have a batch of its own.
 */
import code from '../../shaders/binary.wgsl';
import { InternalError } from '../errors.ts';
import { type OpBase, perImage } from '../graph/ir.ts';
import type { BufferView, KernelEnv } from '../gpu/dispatch.ts';
import { declareKernel, read, readWrite, view } from '../gpu/kernel.ts';
import { ELEMENT, FUSED_RELU } from '../gpu/wgsl-library.ts';
import { broadcastGeometry, broadcastShape, MAX_DIMS } from '../kernels/broadcast.ts';
import type { BackwardArgs, ForwardArgs, OpKernel, OpShapes } from '../kernels/types.ts';
import { fmtShape } from '../kernels/types.ts';
import { attribute } from '../onnx/model.ts';
import { list, nodeInput } from './attributes.ts';
import { defineOp, type LowerContext, type OnnxLowering } from './spec.ts';

export type BinaryFn = 'add' | 'sub' | 'mul' | 'div' | 'max' | 'min' | 'prelu';

/** The FN override of each function (the constants at the top of shaders/binary.wgsl). */
const FN: Record<BinaryFn, number> = { add: 0, sub: 1, mul: 2, div: 3, max: 4, min: 5, prelu: 6 };

/** An operand: input i of the op (an activation), or a constant (ONNX dims, aligned at the end). */
export type Operand = { input: number } | { constant: Float32Array; dims: number[] };

export interface BinaryOp extends OpBase {
  kind: 'binary';
  fn: BinaryFn;
  /** Two, or a Sum's n (fn 'add'). */
  operands: Operand[];
  relu: boolean;
}

const GEOMETRY = {
  n0: 'u32', n1: 'u32', n2: 'u32', n3: 'u32', n4: 'u32', // output sizes per image, innermost first
  a0: 'u32', a1: 'u32', a2: 'u32', a3: 'u32', a4: 'u32', // a's strides along them (0: broadcast)
  b0: 'u32', b1: 'u32', b2: 'u32', b3: 'u32', b4: 'u32',
} as const;

export const BINARY = declareKernel({
  name: 'binary',
  body: code,
  uniforms: {
    count: 'u32', xCount: 'u32', items: 'u32', // output values per item, values of x per item, items
    ...GEOMETRY,
    aOffset: 'u32', aStride: 'u32', bOffset: 'u32', bStride: 'u32', yOffset: 'u32', yStride: 'u32',
    dyOffset: 'u32', dyStride: 'u32', maskOffset: 'u32', maskStride: 'u32', dxOffset: 'u32', dxStride: 'u32',
    maskDiv: 'u32', // gradient item i reads the forward image i / maskDiv
  },
  bindings: { a: read(), b: read(), y: readWrite(), dy: read(), mask: read(), dx: readWrite() },
  entries: { forward: ['a', 'b', 'y'], accumulate: ['b', 'y'], backward: ['dy', 'a', 'b', 'mask', 'dx'] },
  workgroupSize: [256, 1, 1],
  // RELU, MASK, GUIDED: the fused ReLU and its backward rule (FUSED_RELU; RELU6 stays off: only a conv fuses a ReLU6).
  overrides: { FN: 0, DIMS: 1, RELU: false, RELU6: false, WRT: 0, REDUCE: false, MASK: false, GUIDED: false, ACCUMULATE: false },
  libraries: [ELEMENT, FUSED_RELU],
});

// ───────────────────────────── lowering ─────────────────────────────

/** What the lowering knows of one operand. */
type Read = { name: string; shape: number[]; constant?: Float32Array };

function readOperand(ctx: LowerContext, name: string): Read {
  if (ctx.isConstant(name)) {
    const t = ctx.weight(name);
    return { name, shape: t.dims, constant: t.data };
  }
  return { name, shape: ctx.shape(name) };
}

/** The output's shape, after checking the operands as the engine needs them (see the file comment). */
function outputShape(ctx: LowerContext, ops: Read[]): number[] {
  if (ops.every((o) => o.constant)) ctx.fail('every operand is a constant (fold them before export)');
  const out = broadcastShape(ops.map((o) => o.shape));
  if (typeof out === 'string') ctx.fail(`operands ${ops.map((o) => `'${o.name}' ${list(o.shape)}`).join(', ')} do not broadcast: ${out}`);
  const shape = out as number[];
  for (const o of ops) {
    if (o.constant) {
      if (o.shape.length === shape.length && o.shape[0] !== 1) ctx.fail(`constant '${o.name}' ${list(o.shape)} has a batch dimension of ${o.shape[0]}; expected 1 (one constant for every image)`);
    } else if (o.shape.length !== shape.length) {
      ctx.fail(`activation '${o.name}' ${list(o.shape)} would be broadcast to ${list(shape)}, a higher rank: its batch dimension would not be the result's, which is not supported`);
    } else if (o.shape[0] !== shape[0]) {
      ctx.fail(`activation '${o.name}' ${list(o.shape)} would be broadcast to ${list(shape)} along its batch dimension, which is not supported`);
    }
  }
  if (shape.length - 1 > MAX_DIMS) ctx.fail(`its output would have rank ${shape.length}; at most ${MAX_DIMS + 1} is supported`);
  return shape;
}

/** The operands as the op holds them: activations become inputs (in order), constants stay. */
function emitBinary(ctx: LowerContext, fn: BinaryFn, ops: Read[], shape: number[]): void {
  const inputs: string[] = [];
  const operands: Operand[] = ops.map((o) => (o.constant ? { constant: o.constant, dims: o.shape } : { input: inputs.push(o.name) - 1 }));
  ctx.emit({ kind: 'binary', name: ctx.node.name, onnxTypes: [ctx.node.opType], inputs, output: ctx.node.outputs[0], fn, operands, relu: false }, shape);
}

/**
 * x ∘ c as y = x · scale[ch] + shift[ch] (an affine op) when c is one value per channel of x (axis 1)
 * or a scalar, and the result keeps x's shape; false when it does not apply.
 */
function lowerAffine(ctx: LowerContext, fn: BinaryFn, x: Read, c: Read, constantFirst: boolean, shape: number[]): boolean {
  if (!['add', 'sub', 'mul', 'div'].includes(fn) || (fn === 'div' && constantFirst)) return false;
  if (shape.join() !== x.shape.join() || x.shape.length < 2) return false;
  const k = c.constant!;
  const r = c.shape.length;
  const channels = x.shape[1];
  // numpy alignment: the channel axis of x is axis r − (rank − 1) of the constant.
  const channelAxis = r - (x.shape.length - 1);
  const perChannel = k.length === channels && channelAxis >= 0 && c.shape[channelAxis] === channels;
  if (!perChannel && k.length !== 1) return false;
  const at = (i: number) => k[k.length === 1 ? 0 : i];
  const scale = new Float32Array(channels), shift = new Float32Array(channels);
  for (let i = 0; i < channels; i++) {
    // In float64, rounded once.
    const [s, t] = fn === 'add' ? [1, at(i)] : fn === 'sub' ? (constantFirst ? [-1, at(i)] : [1, -at(i)]) : fn === 'mul' ? [at(i), 0] : [1 / at(i), 0];
    scale[i] = s;
    shift[i] = t;
  }
  ctx.emit({ kind: 'affine', name: ctx.node.name, onnxTypes: [ctx.node.opType], inputs: [x.name], output: ctx.node.outputs[0], scale, shift, relu: false }, x.shape);
  return true;
}

/** Add, Sub, Mul, Div: two operands. */
function lowerArithmetic(fn: BinaryFn): OnnxLowering['lower'] {
  return (ctx) => {
    if (attribute(ctx.node, 'axis') !== undefined) ctx.fail(`the legacy 'axis' broadcast (opset < 7) is not supported`);
    const ops = [readOperand(ctx, nodeInput(ctx, 0, 'A')), readOperand(ctx, nodeInput(ctx, 1, 'B'))];
    const shape = outputShape(ctx, ops);
    const [a, b] = ops;
    if (a.constant && !b.constant && lowerAffine(ctx, fn, b, a, true, shape)) return;
    if (b.constant && !a.constant && lowerAffine(ctx, fn, a, b, false, shape)) return;
    emitBinary(ctx, fn, ops, shape);
  };
}

/** Sum (n ≥ 1 operands), Max and Min (one or two): one operand is the identity. */
function lowerVariadic(fn: BinaryFn, most: number): OnnxLowering['lower'] {
  return (ctx) => {
    const names = ctx.node.inputs.map((n, i) => n || nodeInput(ctx, i, `data_${i}`));
    if (names.length > most) ctx.fail(`has ${names.length} inputs; the engine supports ${fn} of at most ${most}`);
    const ops = names.map((n) => readOperand(ctx, n));
    const shape = outputShape(ctx, ops);
    if (ops.length === 1) ctx.alias(ctx.node.outputs[0], ops[0].name, shape);
    else emitBinary(ctx, fn, ops, shape);
  };
}

function lowerPRelu(ctx: LowerContext): void {
  const x = readOperand(ctx, nodeInput(ctx, 0, 'X'));
  const slopeName = nodeInput(ctx, 1, 'slope');
  if (!ctx.isConstant(slopeName) && ctx.hasActivation(slopeName)) ctx.fail(`its slope '${slopeName}' must be a constant (a float32 initializer), not an activation`);
  const slope = readOperand(ctx, slopeName);
  if (x.constant) ctx.fail(`its input '${x.name}' is a constant (fold it before export)`);
  const shape = outputShape(ctx, [x, slope]);
  if (shape.join() !== x.shape.join()) ctx.fail(`slope '${slope.name}' ${list(slope.shape)} does not broadcast to the input's shape ${list(x.shape)} (ONNX: unidirectional)`);
  emitBinary(ctx, 'prelu', [x, slope], shape);
}

// ───────────────────────────── kernel ─────────────────────────────

/** The uniforms of the geometry: sizes, and the strides of the operands the dispatch reads as a and b. */
function geometryUniforms(dims: number[], sa: number[], sb: number[]) {
  const pad = (v: number[], fill: number) => [...v, ...Array(MAX_DIMS - v.length).fill(fill)];
  const [n, a, b] = [pad(dims, 1), pad(sa, 0), pad(sb, 0)];
  return {
    n0: n[0], n1: n[1], n2: n[2], n3: n[3], n4: n[4],
    a0: a[0], a1: a[1], a2: a[2], a3: a[3], a4: a[4],
    b0: b[0], b1: b[1], b2: b[2], b3: b[3], b4: b[4],
  };
}

function binaryKernel(op: BinaryOp, shapes: OpShapes): OpKernel {
  const opType = op.onnxTypes.join('+');
  const out = shapes.output;
  const perImageDims = (o: Operand) => ('input' in o ? shapes.inputs[o.input].slice(1) : o.dims.slice(Math.max(0, o.dims.length - (out.length - 1))));
  const g = broadcastGeometry(out.slice(1), op.operands.map(perImageDims));
  const n = op.operands.length;
  if (n < 2 || (n > 2 && op.fn !== 'add')) throw new InternalError(`op '${op.name}': ${op.fn} of ${n} operands`);
  const constants = new Map<number, GPUBuffer>();
  const operandView = (env: KernelEnv, inputs: BufferView[], i: number): BufferView => {
    const o = op.operands[i];
    if ('input' in o) return inputs[o.input];
    if (!constants.has(i)) constants.set(i, env.storage(o.constant));
    return { buffer: constants.get(i)!, offset: 0, stride: 0 }; // every item reads the same constant
  };
  const info = (items: number) => ({ label: op.name, opType, flops: g.count * items * (n - 1), shapes: `${fmtShape([items, ...out.slice(1)])}` });
  const DIMS = g.dims.length;

  return {
    async forward({ env, inputs, output, batch }: ForwardArgs) {
      const [a, b] = [operandView(env, inputs, 0), operandView(env, inputs, 1)];
      const workgroups = BINARY.grid1d('forward', g.count * batch, env.limits.maxComputeWorkgroupsPerDimension);
      const dispatches = [await BINARY.dispatch(env, 'forward', {
        overrides: { FN: FN[op.fn], DIMS, RELU: op.relu && n === 2 },
        uniforms: { count: g.count, items: batch, ...geometryUniforms(g.dims, g.strides[0], g.strides[1]), ...view('a', a), ...view('b', b), ...view('y', output) },
        buffers: { a: a.buffer, b: b.buffer, y: output.buffer }, workgroups, ...info(batch),
      })];
      // Sum: y += each further operand (the ReLU after the last).
      for (let i = 2; i < n; i++) {
        const c = operandView(env, inputs, i);
        dispatches.push(await BINARY.dispatch(env, 'accumulate', {
          overrides: { DIMS, RELU: op.relu && i === n - 1 },
          uniforms: { count: g.count, items: batch, ...geometryUniforms(g.dims, g.strides[0], g.strides[i]), ...view('b', c), ...view('y', output) },
          buffers: { b: c.buffer, y: output.buffer }, workgroups, ...info(batch),
        }));
      }
      return dispatches;
    },
    async backward({ env, inputs, output, dy, dx, items, maskDiv, guided }: BackwardArgs) {
      const dispatches = [];
      for (let i = 0; i < n; i++) {
        const o = op.operands[i];
        const t = 'input' in o ? dx[o.input] : null;
        if (!t || !('input' in o)) continue;
        // Two operands: a and b as in the forward, x the i-th. A Sum's operand i alone (∂f/∂x = 1 reads no values).
        const [ia, ib] = n === 2 ? [0, 1] : [i, i];
        const a = operandView(env, inputs, ia), b = n === 2 ? operandView(env, inputs, ib) : { buffer: env.dummy, offset: 0, stride: 0 };
        const sb = n === 2 ? g.strides[ib] : g.strides[i].map(() => 0);
        const xCount = perImage(shapes.inputs[o.input]);
        const mask = op.relu ? output : { buffer: env.dummy, offset: 0, stride: 0 };
        dispatches.push(await BINARY.dispatch(env, 'backward', {
          overrides: {
            FN: FN[op.fn], DIMS, WRT: n === 2 ? i : 0, REDUCE: g.strides[i].includes(0),
            MASK: op.relu, GUIDED: op.relu && !!guided, ACCUMULATE: t.accumulate,
          },
          uniforms: {
            xCount, items, maskDiv, ...geometryUniforms(g.dims, g.strides[ia], sb),
            ...view('a', a), ...view('b', b), ...view('dy', dy), ...view('mask', mask), ...view('dx', t.view),
          },
          buffers: { dy: dy.buffer, a: a.buffer, b: b.buffer, mask: mask.buffer, dx: t.view.buffer },
          workgroups: BINARY.grid1d('backward', xCount * items, env.limits.maxComputeWorkgroupsPerDimension),
          ...info(items),
        }));
      }
      return dispatches;
    },
  };
}

const ARITHMETIC_ATTRIBUTES = ['axis', 'broadcast', 'consumed_inputs'];
const arithmetic = (fn: BinaryFn): OnnxLowering => ({ inputs: [2, 2], outputs: [1, 1], attributes: ARITHMETIC_ATTRIBUTES, lower: lowerArithmetic(fn) });

export const binary = defineOp<BinaryOp>({
  kind: 'binary',
  onnx: {
    Add: arithmetic('add'), Sub: arithmetic('sub'), Mul: arithmetic('mul'), Div: arithmetic('div'),
    Sum: { inputs: [1, Infinity], outputs: [1, 1], attributes: ['consumed_inputs'], lower: lowerVariadic('add', Infinity) },
    Max: { inputs: [1, Infinity], outputs: [1, 1], attributes: ['consumed_inputs'], lower: lowerVariadic('max', 2) },
    Min: { inputs: [1, Infinity], outputs: [1, 1], attributes: ['consumed_inputs'], lower: lowerVariadic('min', 2) },
    PRelu: { inputs: [2, 2], outputs: [1, 1], attributes: ['consumed_inputs'], lower: lowerPRelu },
  },
  kernel: binaryKernel,
  fusesRelu: true,
  kernels: [BINARY],
});

/**
 * Runs an OnnxModel node by node in float64 (runReference) and differentiates it in reverse mode
 * (gradientsReference). One table maps each op type to its attribute reading, forward and backward;
 * the math lives in ops.ts. Attributes are read here with local helpers, not src/'s, so that the
 * reference shares nothing with the engine but the OnnxModel type.
 */
import type { OnnxModel, OnnxNode } from '../../src/onnx/model.ts';
import * as ew from './elementwise.ts';
import * as layout from './layout.ts';
import * as op from './ops.ts';
import { fromOnnx, numel, reshape, tensor, zeros, type Tensor } from './tensor.ts';

// ───────────────────────────── attributes ─────────────────────────────

function attr(node: OnnxNode, name: string) {
  return node.attributes[name];
}
function int(node: OnnxNode, name: string, fallback: number): number {
  const a = attr(node, name);
  return a && (a.type === 'int' || a.type === 'float') ? a.value : fallback;
}
function float(node: OnnxNode, name: string, fallback: number): number {
  return int(node, name, fallback); // an ONNX float attribute, or an int written where a float was meant
}
function ints(node: OnnxNode, name: string, fallback: number[]): number[] {
  const a = attr(node, name);
  return a && a.type === 'ints' ? a.value : fallback;
}
function str(node: OnnxNode, name: string, fallback: string): string {
  const a = attr(node, name);
  return a && a.type === 'string' ? a.value : fallback;
}
function unsupported(node: OnnxNode, what: string): never {
  throw new Error(`reference: node '${node.name}' (${node.opType}): ${what} is not supported`);
}

/** Explicit pads, or the pads that auto_pad SAME_UPPER / SAME_LOWER / VALID stands for (kernel: the dilated extent). */
export function padsOf(node: OnnxNode, inHW: number[], kernel: number[], strides: number[]): op.Pads {
  const autoPad = str(node, 'auto_pad', 'NOTSET');
  if (autoPad === 'NOTSET') return ints(node, 'pads', [0, 0, 0, 0]) as op.Pads;
  if (autoPad === 'VALID') return [0, 0, 0, 0];
  const begin: number[] = [];
  const end: number[] = [];
  for (let i = 0; i < 2; i++) {
    const total = Math.max(0, (Math.ceil(inHW[i] / strides[i]) - 1) * strides[i] + kernel[i] - inHW[i]);
    const small = Math.floor(total / 2);
    begin.push(autoPad === 'SAME_UPPER' ? small : total - small); // SAME_UPPER puts the extra pad at the end
    end.push(total - begin[i]);
  }
  return [begin[0], begin[1], end[0], end[1]];
}

/** A window's extent along each axis with dilations: (k − 1)·d + 1. */
export const extent = (kernel: number[], dilations: number[]) => kernel.map((k, i) => (k - 1) * dilations[i] + 1);

function convParams(node: OnnxNode, x: Tensor, w: Tensor): op.ConvParams {
  if (x.shape.length !== 4) unsupported(node, `a ${x.shape.length}-D input`);
  const strides = ints(node, 'strides', [1, 1]) as [number, number];
  const dilations = ints(node, 'dilations', [1, 1]) as [number, number];
  return { strides, dilations, group: int(node, 'group', 1), pads: padsOf(node, x.shape.slice(2), extent(w.shape.slice(2), dilations), strides) };
}

function poolParams(node: OnnxNode, x: Tensor): op.PoolParams {
  if (x.shape.length !== 4) unsupported(node, `a ${x.shape.length}-D input`);
  const dilations = ints(node, 'dilations', [1, 1]) as [number, number];
  if (node.opType !== 'MaxPool' && dilations.some((d) => d !== 1)) unsupported(node, 'dilation ≠ 1');
  if (node.outputs.length > 1 && node.outputs[1] !== '') unsupported(node, 'the Indices output');
  const kernel = ints(node, 'kernel_shape', []) as [number, number];
  const strides = ints(node, 'strides', [1, 1]) as [number, number];
  return { kernel, strides, dilations, pads: padsOf(node, x.shape.slice(2), extent(kernel, dilations), strides), ceilMode: int(node, 'ceil_mode', 0) === 1 };
}

/**
 * ReduceMean's and ReduceMax's axes (normalised ≥ 0, sorted): the attribute before opset 18, the
 * optional int64 input 1 from 18 on; none means every axis (or no reduction with noop_with_empty_axes).
 */
export function reduceAxes(node: OnnxNode, ins: Tensor[], rank: number, opset: number): number[] {
  const given = opset >= 18 ? (ins[1] ? [...ins[1].data] : []) : ints(node, 'axes', []);
  if (given.length === 0 && int(node, 'noop_with_empty_axes', 0) === 1) unsupported(node, 'noop_with_empty_axes with no axes');
  const axes = given.length ? given.map((a) => (a + rank) % rank) : [...Array(rank).keys()];
  return [...new Set(axes)].sort((a, b) => a - b);
}
const keepDims = (node: OnnxNode) => int(node, 'keepdims', 1) === 1;

const lrnParams = (node: OnnxNode): op.LrnParams => ({
  size: int(node, 'size', 0), alpha: float(node, 'alpha', 1e-4), beta: float(node, 'beta', 0.75), bias: float(node, 'bias', 1),
});

const gemmParams = (node: OnnxNode): op.GemmParams => ({
  transA: int(node, 'transA', 0) === 1, transB: int(node, 'transB', 0) === 1, alpha: float(node, 'alpha', 1), beta: float(node, 'beta', 1),
});

const bnParams = (node: OnnxNode, ins: Tensor[]): op.BatchNormParams => ({
  scale: ins[1], bias: ins[2], mean: ins[3], variance: ins[4], epsilon: float(node, 'epsilon', 1e-5),
});

/** Softmax rows: ONNX < 13 flattens to [d0..d(axis−1)] × [d(axis)..] (axis 1 by default); ONNX ≥ 13 uses one axis (−1 by default). */
function softmaxInner(node: OnnxNode, x: Tensor, opset: number): number {
  const r = x.shape.length;
  const axis = (int(node, 'axis', opset < 13 ? 1 : -1) + r) % r;
  if (opset >= 13 && axis !== r - 1) unsupported(node, 'a softmax axis other than the last');
  return numel(x.shape.slice(axis));
}

const axisOf = (node: OnnxNode, rank: number, fallback: number): number => (int(node, 'axis', fallback) + rank) % rank;

/** Clip's bounds: attributes min/max before opset 11, optional inputs 1 and 2 from 11 on; ±∞ when absent. */
function clipBounds(node: OnnxNode, ins: Tensor[], opset: number): [number, number] {
  if (opset < 11) return [float(node, 'min', -Infinity), float(node, 'max', Infinity)];
  return [ins[1]?.data[0] ?? -Infinity, ins[2]?.data[0] ?? Infinity];
}

// ───────────────────────────── layout ops, LayerNormalization ─────────────────────────────

/** An int list given as constant input i (from `fromOpset` on) or as attribute `name` (before). */
function intsIn(node: OnnxNode, ins: Tensor[], i: number, name: string, opset: number, fromOpset: number): number[] | undefined {
  if (opset >= fromOpset) return ins[i] ? [...ins[i].data] : undefined;
  const a = attr(node, name);
  return a && a.type === 'ints' ? a.value : undefined;
}

const transposePerm = (n: OnnxNode, rank: number) => ints(n, 'perm', [...Array(rank).keys()].reverse());

/** Slice's per-axis geometry over every axis of x (unsliced axes whole). */
function sliceAxes(n: OnnxNode, ins: Tensor[], opset: number): layout.SliceAxis[] {
  const x = ins[0];
  const r = x.shape.length;
  const starts = intsIn(n, ins, 1, 'starts', opset, 10)!, ends = intsIn(n, ins, 2, 'ends', opset, 10)!;
  const axes = intsIn(n, ins, 3, 'axes', opset, 10) ?? starts.map((_, i) => i);
  const steps = (opset >= 10 ? intsIn(n, ins, 4, 'steps', opset, 10) : undefined) ?? starts.map(() => 1);
  const out = x.shape.map((d) => ({ start: 0, step: 1, count: d }));
  axes.forEach((a, i) => { out[(a + r) % r] = layout.sliceAxis(x.shape[(a + r) % r], starts[i], ends[i], steps[i]); });
  return out;
}

/** Split's parts along its axis: as slices of x. */
function splitParts(n: OnnxNode, ins: Tensor[], opset: number): layout.SliceAxis[][] {
  const x = ins[0];
  const r = x.shape.length;
  const axis = (int(n, 'axis', 0) + r) % r;
  const count = n.outputs.length;
  const d = x.shape[axis];
  const sizes = intsIn(n, ins, 1, 'split', opset, 13) ?? Array.from({ length: count }, (_, i) => Math.min(Math.ceil(d / count), d - i * Math.ceil(d / count)));
  let start = 0;
  return sizes.map((size) => {
    const axes = x.shape.map((e) => ({ start: 0, step: 1, count: e }));
    axes[axis] = { start, step: 1, count: size };
    start += size;
    return axes;
  });
}

/** Pad's full pads [begins…, ends…], mode and value. */
function padParams(n: OnnxNode, ins: Tensor[], opset: number): { pads: number[]; mode: layout.PadMode; value: number } {
  const r = ins[0].shape.length;
  let pads = intsIn(n, ins, 1, 'pads', opset, 11)!;
  if (opset >= 11 && ins[3]) {
    const axes = [...ins[3].data].map((a) => (a + r) % r);
    const full = new Array<number>(2 * r).fill(0);
    axes.forEach((a, i) => { full[a] = pads[i]; full[r + a] = pads[axes.length + i]; });
    pads = full;
  }
  const value = opset >= 11 ? (ins[2] ? ins[2].data[0] : 0) : float(n, 'value', 0);
  return { pads, mode: str(n, 'mode', 'constant') as layout.PadMode, value };
}

/** Squeeze's and Unsqueeze's axes (normalised against `rank`): attribute before opset 13, input 1 from 13 on. */
function squeezeAxes(n: OnnxNode, ins: Tensor[], opset: number, rank: number): number[] | undefined {
  return intsIn(n, ins, 1, 'axes', opset, 13)?.map((a) => (a + rank) % rank);
}

function squeezeShape(n: OnnxNode, ins: Tensor[], opset: number): number[] {
  const x = ins[0].shape;
  const axes = squeezeAxes(n, ins, opset, x.length);
  return x.filter((d, i) => (axes ? !axes.includes(i) : d !== 1));
}

function unsqueezeShape(n: OnnxNode, ins: Tensor[], opset: number): number[] {
  const x = ins[0].shape;
  const rank = x.length + (intsIn(n, ins, 1, 'axes', opset, 13)?.length ?? 0);
  const axes = squeezeAxes(n, ins, opset, rank)!;
  const out: number[] = [];
  let k = 0;
  for (let i = 0; i < rank; i++) out.push(axes.includes(i) ? 1 : x[k++]);
  return out;
}

const lnAxis = (n: OnnxNode, rank: number) => (int(n, 'axis', -1) + rank) % rank;

const LAYOUT_OPS: Record<string, OpDef> = {
  Transpose: {
    forward: (n, [x]) => [layout.transpose(x, transposePerm(n, x.shape.length))],
    backward: (n, [x], _y, dy) => [layout.transposeBackward(dy, x.shape, transposePerm(n, x.shape.length))],
  },
  Slice: {
    forward: (n, ins, opset) => [layout.slice(ins[0], sliceAxes(n, ins, opset))],
    backward: (n, ins, _y, dy, opset) => [layout.sliceBackward(dy, ins[0].shape, sliceAxes(n, ins, opset))],
  },
  Split: {
    forward: (n, ins, opset) => splitParts(n, ins, opset).map((axes) => layout.slice(ins[0], axes)),
    backward: (n, ins, _y, _dy, opset, dys) => {
      const dx = zeros(ins[0].shape);
      splitParts(n, ins, opset).forEach((axes, i) => {
        const part = dys[i];
        if (!part) return;
        const d = layout.sliceBackward(part, ins[0].shape, axes);
        for (let e = 0; e < dx.data.length; e++) dx.data[e] += d.data[e];
      });
      return [dx];
    },
  },
  Pad: {
    forward: (n, ins, opset) => {
      const p = padParams(n, ins, opset);
      return [layout.pad(ins[0], p.pads, p.mode, p.value)];
    },
    backward: (n, ins, _y, dy, opset) => {
      const p = padParams(n, ins, opset);
      return [layout.padBackward(dy, ins[0].shape, p.pads, p.mode)];
    },
  },
  Squeeze: {
    forward: (n, ins, opset) => [reshape(ins[0], squeezeShape(n, ins, opset))],
    backward: (_n, [x], _y, dy) => [op.viewBackward(dy, x.shape)],
  },
  Unsqueeze: {
    forward: (n, ins, opset) => [reshape(ins[0], unsqueezeShape(n, ins, opset))],
    backward: (_n, [x], _y, dy) => [op.viewBackward(dy, x.shape)],
  },
  LayerNormalization: {
    forward: (n, [x, scale, b]) => [layout.layerNorm(x, scale, b ?? null, lnAxis(n, x.shape.length), float(n, 'epsilon', 1e-5))],
    backward: (n, [x, scale], _y, dy) => [layout.layerNormBackward(dy, x, scale, lnAxis(n, x.shape.length), float(n, 'epsilon', 1e-5))],
  },
};

// ───────────────────────────── the op table ─────────────────────────────

interface OpDef {
  /** ins: the node's inputs (undefined where omitted); returns the outputs that matter (output 0). */
  forward(node: OnnxNode, ins: Tensor[], opset: number): Tensor[];
  /** The gradient for each input in `grads` (activation inputs only); undefined marks a constant input. */
  backward(node: OnnxNode, ins: Tensor[], y: Tensor, dy: Tensor, opset: number, dys: (Tensor | undefined)[]): (Tensor | undefined)[];
}

// ───────────────────────────── element-wise ops (elementwise.ts) ─────────────────────────────

/** A binary op of two activations or an activation and a constant (numpy broadcasting). */
const binaryOp = (type: string): OpDef => ({
  forward: (_n, [a, b]) => [ew.binary(ew.BINARY[type], a, b)],
  backward: (_n, [a, b], _y, dy) => ew.binaryBackward(ew.BINARY[type], dy, a, b),
});

/** An activation with its parameters (α, β) from the node: attributes, or Pow's constant exponent. */
const unaryOp = (type: string, params: (n: OnnxNode, ins: Tensor[]) => [number, number] = () => [0, 0]): OpDef => ({
  forward: (n, ins) => [ew.unary(ew.UNARY[type], ins[0], ...params(n, ins))],
  backward: (n, ins, _y, dy) => [ew.unaryBackward(ew.UNARY[type], dy, ins[0], ...params(n, ins))],
});

/** Gelu (opset 20): approximate 'none' (erf) or 'tanh'. */
const geluDef = (n: OnnxNode) => ew.UNARY[str(n, 'approximate', 'none') === 'tanh' ? 'GeluTanh' : 'Gelu'];

const ELEMENTWISE_OPS: Record<string, OpDef> = {
  Sub: binaryOp('Sub'), Mul: binaryOp('Mul'), Div: binaryOp('Div'), Max: binaryOp('Max'), Min: binaryOp('Min'), PRelu: binaryOp('PRelu'),
  Sum: { forward: (_n, xs) => [ew.sum(xs)], backward: (_n, xs, _y, dy) => ew.sumBackward(dy, xs.map((x) => x.shape)) },
  HardSigmoid: unaryOp('HardSigmoid', (n) => [float(n, 'alpha', 0.2), float(n, 'beta', 0.5)]),
  HardSwish: unaryOp('HardSwish'),
  LeakyRelu: unaryOp('LeakyRelu', (n) => [float(n, 'alpha', 0.01), 0]),
  Tanh: unaryOp('Tanh'),
  Elu: unaryOp('Elu', (n) => [float(n, 'alpha', 1), 0]),
  Softplus: unaryOp('Softplus'),
  Erf: unaryOp('Erf'),
  Gelu: {
    forward: (n, [x]) => [ew.unary(geluDef(n), x)],
    backward: (n, [x], _y, dy) => [ew.unaryBackward(geluDef(n), dy, x)],
  },
  Pow: unaryOp('Pow', (_n, ins) => [ins[1].data[0], 0]),
  Sqrt: unaryOp('Sqrt'), Reciprocal: unaryOp('Reciprocal'), Neg: unaryOp('Neg'), Abs: unaryOp('Abs'), Exp: unaryOp('Exp'),
};

const OPS: Record<string, OpDef> = {
  Conv: {
    forward: (n, [x, w, b]) => [op.conv(x, w, b ?? null, convParams(n, x, w))],
    backward: (n, [x, w], _y, dy) => [op.convBackward(dy, x.shape, w, convParams(n, x, w))],
  },
  MaxPool: {
    forward: (n, [x]) => [op.maxPool(x, poolParams(n, x))],
    backward: (n, [x], _y, dy) => [op.maxPoolBackward(dy, x, poolParams(n, x))],
  },
  AveragePool: {
    forward: (n, [x]) => [op.averagePool(x, poolParams(n, x), int(n, 'count_include_pad', 0) === 1)],
    backward: (n, [x], _y, dy) => [op.averagePoolBackward(dy, x.shape, poolParams(n, x), int(n, 'count_include_pad', 0) === 1)],
  },
  GlobalAveragePool: {
    forward: (_n, [x]) => [op.globalAveragePool(x)],
    backward: (_n, [x], _y, dy) => [op.globalAveragePoolBackward(dy, x.shape)],
  },
  GlobalMaxPool: {
    forward: (_n, [x]) => [op.globalMaxPool(x)],
    backward: (_n, [x], _y, dy) => [op.globalMaxPoolBackward(dy, x)],
  },
  ReduceMean: {
    forward: (n, ins, opset) => [op.reduceMean(ins[0], reduceAxes(n, ins, ins[0].shape.length, opset), keepDims(n))],
    backward: (n, ins, _y, dy, opset) => [op.reduceMeanBackward(dy, ins[0].shape, reduceAxes(n, ins, ins[0].shape.length, opset))],
  },
  ReduceMax: {
    forward: (n, ins, opset) => [op.reduceMax(ins[0], reduceAxes(n, ins, ins[0].shape.length, opset), keepDims(n))],
    backward: (n, ins, _y, dy, opset) => [op.reduceMaxBackward(dy, ins[0], reduceAxes(n, ins, ins[0].shape.length, opset))],
  },
  LRN: {
    forward: (n, [x]) => [op.lrn(x, lrnParams(n))],
    backward: (n, [x], _y, dy) => [op.lrnBackward(dy, x, lrnParams(n))],
  },
  Gemm: {
    forward: (n, [a, b, c]) => [op.gemm(a, b, c ?? null, gemmParams(n))],
    backward: (n, [a, b], _y, dy) => [op.gemmBackward(dy, a.shape, b, gemmParams(n))],
  },
  MatMul: {
    // [N, K] × [K, M], or an activation of higher rank times a matrix over its last axis (ConvNeXt).
    forward: (n, [a, b]) => {
      if (a.shape.length < 2 || b.shape.length !== 2) unsupported(n, 'MatMul but of an activation by a matrix');
      return [a.shape.length === 2 ? op.matmul(a, b) : layout.matmulLastAxis(a, b)];
    },
    backward: (_n, [a, b], _y, dy) => [a.shape.length === 2 ? op.matmulBackward(dy, a.shape, b) : layout.matmulLastAxisBackward(dy, a.shape, b)],
  },
  Add: {
    forward: (_n, [a, b]) => [op.add(a, b)],
    backward: (_n, [a, b], _y, dy) => op.addBackward(dy, a.shape, b.shape),
  },
  Relu: {
    forward: (_n, [x]) => [op.relu(x)],
    backward: (_n, [x], _y, dy) => [op.reluBackward(dy, x)],
  },
  Sigmoid: {
    forward: (_n, [x]) => [op.sigmoid(x)],
    backward: (_n, _ins, y, dy) => [op.sigmoidBackward(dy, y)],
  },
  Clip: {
    forward: (n, ins, opset) => [op.clip(ins[0], ...clipBounds(n, ins, opset))],
    backward: (n, ins, _y, dy, opset) => [op.clipBackward(dy, ins[0], ...clipBounds(n, ins, opset))],
  },
  Softmax: {
    forward: (n, [x], opset) => [op.softmax(x, softmaxInner(n, x, opset))],
    backward: (n, [x], y, dy, opset) => [op.softmaxBackward(dy, y, softmaxInner(n, x, opset))],
  },
  BatchNormalization: {
    forward: (n, ins) => [op.batchNorm(ins[0], bnParams(n, ins))],
    backward: (n, ins, _y, dy) => [op.batchNormBackward(dy, bnParams(n, ins))],
  },
  Concat: {
    forward: (n, xs) => [op.concat(xs, axisOf(n, xs[0].shape.length, 0))],
    backward: (n, xs, _y, dy) => op.concatBackward(dy, xs.map((x) => x.shape), axisOf(n, dy.shape.length, 0)),
  },
  ...LAYOUT_OPS,
  ...ELEMENTWISE_OPS,
  Flatten: {
    // Flatten's axis may equal the rank (giving [numel, 1]), so it is normalised by hand.
    forward: (n, [x]) => {
      const axis = int(n, 'axis', 1);
      return [reshape(x, op.flattenShape(x.shape, axis < 0 ? axis + x.shape.length : axis))];
    },
    backward: (_n, [x], _y, dy) => [op.viewBackward(dy, x.shape)],
  },
  Reshape: {
    forward: (n, [x, spec]) => [reshape(x, op.reshapeShape(x.shape, [...spec.data], int(n, 'allowzero', 0) === 1))],
    backward: (_n, [x], _y, dy) => [op.viewBackward(dy, x.shape)],
  },
  // Inference: Dropout is the identity (its optional mask output is not produced).
  Dropout: { forward: (_n, [x]) => [reshape(x, x.shape)], backward: (_n, [x], _y, dy) => [op.viewBackward(dy, x.shape)] },
  Identity: { forward: (_n, [x]) => [reshape(x, x.shape)], backward: (_n, [x], _y, dy) => [op.viewBackward(dy, x.shape)] },
};

/** A node's reference backward (for bounds that reuse it: the exact layout ops of test/helpers/magnitude.ts). */
export function referenceBackward(node: OnnxNode, ins: Tensor[], y: Tensor, dy: Tensor, opset: number, dys: (Tensor | undefined)[]): (Tensor | undefined)[] {
  return OPS[node.opType].backward(node, ins, y, dy, opset, dys);
}

/** The ONNX op types the reference runs. */
export const REFERENCE_OP_TYPES: readonly string[] = Object.keys(OPS);

/** Which inputs of a node carry activation gradients; the others (weights, shapes, BN statistics) are constants. */
function differentiableInputs(node: OnnxNode): number[] {
  if (['Add', 'Sub', 'Mul', 'Div', 'Max', 'Min', 'Sum'].includes(node.opType)) return node.inputs.map((_, i) => i);
  if (node.opType === 'Concat') return node.inputs.map((_, i) => i);
  return [0];
}

// ───────────────────────────── forward ─────────────────────────────

/**
 * Runs every node; returns all values by name, initializers (as float64) included. `replace` may
 * compute a node differently (returning its outputs), or return undefined to run the reference op.
 */
export function forwardValues(model: OnnxModel, inputs: Record<string, Tensor>,
  replace?: (node: OnnxNode, ins: Tensor[]) => Tensor[] | undefined): Map<string, Tensor> {
  const values = new Map<string, Tensor>();
  for (const [name, init] of model.initializers) values.set(name, fromOnnx(init));
  for (const info of model.inputs) {
    if (values.has(info.name)) continue;
    const given = inputs[info.name];
    if (!given) throw new Error(`reference: graph input '${info.name}' was not given`);
    info.shape.forEach((d, i) => {
      if (typeof d === 'number' && d !== given.shape[i]) throw new Error(`reference: input '${info.name}' has shape [${given.shape}], the graph says [${info.shape}]`);
    });
    values.set(info.name, given);
  }
  for (const node of model.nodes) {
    const def = OPS[node.opType];
    if (!def || (node.domain !== '' && node.domain !== 'ai.onnx')) unsupported(node, 'this op');
    const ins = nodeInputs(node, values);
    const outs = replace?.(node, ins) ?? def.forward(node, ins, model.opset);
    outs.forEach((t, i) => values.set(node.outputs[i], t));
  }
  return values;
}

function nodeInputs(node: OnnxNode, values: Map<string, Tensor>): Tensor[] {
  return node.inputs.map((name) => {
    if (name === '') return undefined as unknown as Tensor; // an omitted optional input (e.g. Conv's bias)
    const t = values.get(name);
    if (!t) throw new Error(`reference: node '${node.name}' needs '${name}', which no earlier node produced`);
    return t;
  });
}

/** Runs the graph in float64; returns every graph input and node output by name (or only those in `keep`). */
export function runReference(model: OnnxModel, inputs: Record<string, Tensor>, opts: { keep?: string[] } = {}): Record<string, Tensor> {
  const values = forwardValues(model, inputs);
  const names = opts.keep ?? [...Object.keys(inputs), ...model.nodes.flatMap((n) => n.outputs).filter((n) => values.has(n))];
  const out: Record<string, Tensor> = {};
  for (const name of names) {
    const t = values.get(name);
    if (!t) throw new Error(`reference: no tensor named '${name}'`);
    out[name] = t;
  }
  return out;
}

// ───────────────────────────── backward ─────────────────────────────

export interface GradientRequest {
  /** The tensor whose weighted sum is differentiated: y_k = Σ seeds[k] · score. */
  score: string;
  /** One seed per gradient (class) k, shaped like the score tensor (flat, row-major). */
  seeds: Float64Array[];
  /** Tensors to return ∂y_k/∂t for. */
  wrt: string[];
  /**
   * Guided backpropagation (Springenberg et al. 2015): every Relu passes a gradient only where both
   * its input and the incoming gradient are positive, g_in = g_out·[x > 0]·[g_out > 0]; a Clip (ReLU6
   * and the like) likewise, g_in = g_out·[lo < x < hi]·[g_out > 0] (the upper bound's zero kept).
   */
  guided?: boolean;
}

/**
 * Reverse-mode autodiff over the graph: for each seed k, ∂(Σ seed_k · score)/∂t for each t in wrt
 * (K tensors per name, shaped like t). Only the cone between the wrt tensors and the score is
 * walked; gradients of a tensor used by several nodes are summed.
 */
export function gradientsReference(model: OnnxModel, inputs: Record<string, Tensor>, req: GradientRequest): Record<string, Tensor[]> {
  return backwardReference(model, forwardValues(model, inputs), req);
}

/** The backward half of gradientsReference, on the values of an earlier forwardValues (one forward, several backwards). */
export function backwardReference(model: OnnxModel, values: Map<string, Tensor>, req: GradientRequest): Record<string, Tensor[]> {
  const score = values.get(req.score);
  if (!score) throw new Error(`reference: no tensor named '${req.score}'`);
  for (const name of req.wrt) if (!values.has(name)) throw new Error(`reference: no tensor named '${name}'`);

  // The cone: every tensor that depends on a wrt tensor. Gradients are needed for those only.
  const inCone = new Set(req.wrt);
  for (const node of model.nodes) {
    if (node.inputs.some((name) => inCone.has(name))) node.outputs.forEach((name) => inCone.add(name));
  }

  const result: Record<string, Tensor[]> = Object.fromEntries(req.wrt.map((name) => [name, [] as Tensor[]]));
  for (const seed of req.seeds) {
    if (seed.length !== score.data.length) throw new Error(`reference: a seed has ${seed.length} values, '${req.score}' has ${score.data.length}`);
    const grads = new Map<string, Tensor>([[req.score, tensor(score.shape, seed)]]);
    for (let i = model.nodes.length - 1; i >= 0; i--) {
      const node = model.nodes[i];
      // (Split has several outputs: an output no gradient reached contributes zeros.)
      const dys = node.outputs.map((o) => grads.get(o));
      if (!dys.some(Boolean) || !node.inputs.some((name) => inCone.has(name))) continue; // not between score and wrt
      const dy = dys[0] ?? zeros(values.get(node.outputs[0])!.shape);
      const ins = nodeInputs(node, values);
      const rectifier = node.opType === 'Relu' || node.opType === 'Clip';
      const dIns = req.guided && rectifier
        ? OPS[node.opType].backward(node, ins, values.get(node.outputs[0])!, tensor(dy.shape, dy.data.map((g) => Math.max(g, 0))), model.opset, dys)
        : OPS[node.opType].backward(node, ins, values.get(node.outputs[0])!, dy, model.opset, dys);
      const differentiable = differentiableInputs(node);
      node.inputs.forEach((name, j) => {
        if (!inCone.has(name)) return;
        if (!differentiable.includes(j)) unsupported(node, `a gradient through input ${j} ('${name}')`);
        const previous = grads.get(name);
        if (!previous) grads.set(name, dIns[j]!);
        else for (let e = 0; e < previous.data.length; e++) previous.data[e] += dIns[j]!.data[e]; // several consumers: sum
      });
    }
    // A wrt tensor no gradient reached does not influence the score: its gradient is zero.
    for (const name of req.wrt) result[name].push(grads.get(name) ?? tensor(values.get(name)!.shape));
  }
  return result;
}

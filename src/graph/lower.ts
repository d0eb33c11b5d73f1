/**
 * ONNX → Graph. One table maps each ONNX op type to its lowering; then fusion (fuse.ts) and the
 * storage plan (placement.ts). Shapes are inferred here, statically, from the graph input's shape.
 *
 * | ONNX op                 | lowering                                                     |
 * | ----------------------- | ------------------------------------------------------------ |
 * | Conv                    | conv (group 1, dilation 1)                                   |
 * | Gemm, MatMul            | conv 1×1 over [N, K, 1, 1] (alpha, beta folded into weights) |
 * | BatchNormalization      | affine; folded into the preceding conv when possible         |
 * | Relu                    | relu; fused into its producer (conv, add, affine) when possible |
 * | MaxPool, AveragePool    | maxpool, avgpool                                             |
 * | GlobalAveragePool       | avgpool with a window of the whole plane                     |
 * | LRN                     | lrn                                                          |
 * | Add                     | add (same shapes) or affine (plus a per-channel constant)    |
 * | Softmax                 | softmax over each image's values                             |
 * | Concat (axis 1)         | no op: inputs are channel slices of the output's storage     |
 * | Flatten, Reshape        | view (same storage, new shape)                               |
 * | Dropout, Identity       | view (inference: identity)                                   |
 */
import { GradcamError } from '../errors.ts';
import type { OnnxModel, OnnxNode, OnnxTensor, OnnxValueInfo } from '../onnx/model.ts';
import { attrFloat, attrInt, attrInts, attrString, attribute } from '../onnx/model.ts';
import { fuse } from './fuse.ts';
import type { Graph, Op } from './ir.ts';
import { aliasRoot, perImage, tensorElements } from './ir.ts';
import { place } from './placement.ts';
import { samePads, windowCount } from './shapes.ts';

export interface LowerOptions {
  /** Tensor names that must stay addressable (fusion will not hide them). */
  taps?: string[];
  /**
   * Batch size (default: the model's, 1 when symbolic). A model exported with a fixed batch is
   * re-batched: a Reshape's constant shape whose first entry is that fixed batch reads it as the batch.
   */
  batch?: number;
}

/** What the lowering of one node can use. */
export interface LowerContext {
  node: OnnxNode;
  opset: number;
  /** The batch fixed in the file's input shape, when the lowering runs at another batch (LowerOptions.batch). */
  rebatchedFrom?: number;
  /** Shape of an activation (graph input or an earlier node's output); throws if unknown. */
  shape(name: string): number[];
  /** True when the name is an initializer (a weight or constant). */
  isConstant(name: string): boolean;
  /** True when the name is the graph input or an earlier node's output. */
  hasActivation(name: string): boolean;
  /** A float32 initializer, checked against an expected element count when given. */
  weight(name: string, expectedElements?: number): OnnxTensor & { data: Float32Array };
  /** An int64 initializer as numbers. */
  ints(name: string): number[];
  emit(op: Op, outShape: number[]): void;
  /** The output is the input seen with another shape (no op). */
  alias(output: string, input: string, shape: number[]): void;
  fail(message: string): never;
}

type Lowering = (ctx: LowerContext) => void;

function nodeInput(ctx: LowerContext, i: number, what: string): string {
  const name = ctx.node.inputs[i];
  if (!name) ctx.fail(`input ${i} (${what}) is missing`);
  return name;
}

/** A list for a message: all of it, or the first few values of a long (corrupt) one. */
function list(values: readonly unknown[]): string {
  return values.length <= 8 ? `[${values.join()}]` : `[${values.slice(0, 6).join()},… (${values.length} values)]`;
}

/** An ints attribute of `count` values, each ≥ `min` (ONNX: strides, dilations, kernel ≥ 1; pads ≥ 0). */
function checkInts(ctx: LowerContext, name: string, values: number[], count: number, min: number): void {
  if (values.length !== count) ctx.fail(`attribute '${name}' has ${values.length} values ${list(values)}; expected ${count} for a 2-D op`);
  const bad = values.findIndex((v) => v < min);
  if (bad >= 0) ctx.fail(`attribute '${name}' ${list(values)} has ${values[bad]} at position ${bad}; expected ≥ ${min}`);
}

/** An int attribute that is a flag: 0 or 1. */
function flag(ctx: LowerContext, name: string): boolean {
  const v = attrInt(ctx.node, name, 0);
  if (v !== 0 && v !== 1) ctx.fail(`attribute '${name}' is ${v}; expected 0 or 1`);
  return v === 1;
}

/** Strides, dilations and pads of a 2-D convolution or pooling window, checked as ONNX's checker does. */
function spatialAttrs(ctx: LowerContext, x: number[], kernel: [number, number], pool: boolean) {
  const { node } = ctx;
  const strides = attrInts(node, 'strides', [1, 1])!;
  checkInts(ctx, 'strides', strides, 2, 1);
  const dil = attrInts(node, 'dilations', [1, 1])!;
  checkInts(ctx, 'dilations', dil, 2, 1);
  if (dil.some((d) => d !== 1)) ctx.fail(`dilations [${dil}] are not supported (only 1)`);
  const autoPad = attrString(node, 'auto_pad', 'NOTSET');
  let pads = attrInts(node, 'pads', [0, 0, 0, 0])!;
  if (pads.length !== 4) ctx.fail(`expected 4 pads [top, left, bottom, right], got ${list(pads)}`);
  checkInts(ctx, 'pads', pads, 4, 0);
  if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    const [t, b] = samePads(x[2], kernel[0], strides[0], autoPad === 'SAME_UPPER');
    const [l, r] = samePads(x[3], kernel[1], strides[1], autoPad === 'SAME_UPPER');
    pads = [t, l, b, r];
  } else if (autoPad === 'VALID') {
    pads = [0, 0, 0, 0];
  } else if (autoPad !== 'NOTSET') {
    ctx.fail(`auto_pad '${autoPad}' is not supported`);
  }
  // A pooling window that lies entirely in the padding has no value (ONNX: pads smaller than the kernel).
  if (pool && (pads[0] >= kernel[0] || pads[2] >= kernel[0] || pads[1] >= kernel[1] || pads[3] >= kernel[1])) {
    ctx.fail(`pads [${pads}] must be smaller than the ${kernel[0]}×${kernel[1]} window`);
  }
  return { strides: strides as [number, number], pads: pads as [number, number, number, number] };
}

function need4d(ctx: LowerContext, name: string): number[] {
  const s = ctx.shape(name);
  if (s.length !== 4) ctx.fail(`input '${name}' has shape [${s}]; expected a 4-D NCHW tensor`);
  return s;
}

/** An axis attribute in [-rank, rank + extra), normalised to ≥ 0 (Flatten allows axis = rank: extra 1). */
function axisAttr(ctx: LowerContext, fallback: number, rank: number, extra = 0): number {
  const axis = attrInt(ctx.node, 'axis', fallback);
  if (axis < -rank || axis >= rank + extra) ctx.fail(`axis ${axis} is out of range for a rank-${rank} input (expected ${-rank} … ${rank + extra - 1})`);
  return axis < 0 ? axis + rank : axis;
}

const lowerConv: Lowering = (ctx) => {
  const { node } = ctx;
  const xName = nodeInput(ctx, 0, 'X');
  const x = need4d(ctx, xName);
  const wName = nodeInput(ctx, 1, 'W');
  // An activation as weights is refused; a name nobody defines is a missing initializer (weight() says so).
  if (!ctx.isConstant(wName) && ctx.hasActivation(wName)) ctx.fail(`weights '${wName}' must be an initializer, not an activation`);
  const w = ctx.weight(wName);
  if (w.dims.length !== 4) ctx.fail(`weights '${wName}' have shape ${list(w.dims)}; expected [C_out, C_in, KH, KW]`);
  const [cOut, cInW, kh, kw] = w.dims;
  const kernel = attrInts(node, 'kernel_shape', undefined);
  if (kernel && (kernel.length !== 2 || kernel[0] !== kh || kernel[1] !== kw)) {
    ctx.fail(`kernel_shape ${list(kernel)} does not match the ${kh}×${kw} kernel of weights '${wName}' ${list(w.dims)}`);
  }
  const group = attrInt(node, 'group', 1);
  if (group < 1) ctx.fail(`group = ${group}; expected ≥ 1`);
  if (cInW * group !== x[1]) {
    ctx.fail(group === 1 ? `weights '${wName}' expect ${cInW} input channels, but '${xName}' has ${x[1]}`
      : `weights '${wName}' expect ${cInW} input channels per group, ${cInW * group} for group = ${group}, but '${xName}' has ${x[1]}`);
  }
  if (cOut % group !== 0) ctx.fail(`weights '${wName}' have ${cOut} output channels, not a multiple of group = ${group}`);
  if (group !== 1) ctx.fail(`group = ${group} is not supported yet (only group = 1)`);
  const { strides, pads } = spatialAttrs(ctx, x, [kh, kw], false);
  const bName = node.inputs[2];
  let bias = new Float32Array(cOut);
  if (bName) {
    const b = ctx.weight(bName, cOut);
    if (b.dims.length !== 1) ctx.fail(`bias '${bName}' has shape ${list(b.dims)}; expected [${cOut}]`);
    bias = b.data.slice();
  }
  const ho = windowCount(x[2], kh, strides[0], pads[0], pads[2]);
  const wo = windowCount(x[3], kw, strides[1], pads[1], pads[3]);
  if (ho <= 0 || wo <= 0) ctx.fail(`the ${kh}×${kw} kernel does not fit the ${x[2]}×${x[3]} input (pads [${pads}])`);
  ctx.emit({
    kind: 'conv', name: node.name, onnxTypes: ['Conv'], inputs: [xName], output: node.outputs[0],
    weight: w.data.slice(), bias, cIn: x[1], cOut, kh, kw, strideH: strides[0], strideW: strides[1], pads, relu: false,
  }, [x[0], cOut, ho, wo]);
};

/** Gemm and MatMul with a constant right operand: a 1×1 convolution over [N, K, 1, 1]. */
function lowerDense(ctx: LowerContext, transA: boolean, transB: boolean, alpha: number, beta: number, biasName: string | undefined) {
  const { node } = ctx;
  const aName = nodeInput(ctx, 0, 'A');
  const a = ctx.shape(aName);
  if (a.length !== 2) ctx.fail(`input '${aName}' has shape [${a}]; expected a 2-D matrix (Flatten or Reshape it first)`);
  const bName = nodeInput(ctx, 1, 'B');
  if (!ctx.isConstant(bName) && ctx.hasActivation(bName)) ctx.fail(`the second operand '${bName}' must be an initializer (a weight matrix); products of two activations are not supported`);
  const b = ctx.weight(bName);
  if (b.dims.length !== 2) ctx.fail(`weights '${bName}' have shape ${list(b.dims)}; expected a matrix`);
  // The batch is axis 0 of every activation; A stored [K, N] (transA) would put it on axis 1.
  if (transA) ctx.fail(`transA = 1 on an activation is not supported (the batch must be the first axis of A)`);
  const [n, k] = a;
  const [bk, m] = transB ? [b.dims[1], b.dims[0]] : [b.dims[0], b.dims[1]];
  if (bk !== k) ctx.fail(`weights '${bName}' ${list(b.dims)}${transB ? ' (transB)' : ''} need ${bk} input features, but '${node.inputs[0]}' has ${k}`);
  // Weight as [C_out = M, C_in = K, 1, 1], alpha folded in.
  const weight = new Float32Array(m * k);
  for (let i = 0; i < m; i++) for (let j = 0; j < k; j++) weight[i * k + j] = alpha * (transB ? b.data[i * k + j] : b.data[j * m + i]);
  const bias = new Float32Array(m);
  if (biasName) {
    const c = ctx.weight(biasName);
    const cn = tensorElements(c.dims);
    const r = c.dims.length;
    // C broadcasts to [N, M] (ONNX: unidirectionally); the engine takes one bias per output: a scalar,
    // [M], [1, M] (or [1], [1, 1]).
    const ok = r <= 2 && (cn === m || cn === 1) && (r === 0 || c.dims[r - 1] === m || c.dims[r - 1] === 1) && (r < 2 || c.dims[0] === 1);
    if (!ok) ctx.fail(`bias '${biasName}' has shape ${list(c.dims)}; expected [${m}], [1, ${m}] or a scalar`);
    if (cn === m) for (let i = 0; i < m; i++) bias[i] = beta * c.data[i];
    else bias.fill(beta * c.data[0]);
  }
  ctx.emit({
    kind: 'conv', name: node.name, onnxTypes: [node.opType], inputs: [aName], output: node.outputs[0],
    weight, bias, cIn: k, cOut: m, kh: 1, kw: 1, strideH: 1, strideW: 1, pads: [0, 0, 0, 0], relu: false,
  }, [n, m]);
}

function lowerPool(kind: 'maxpool' | 'avgpool'): Lowering {
  return (ctx) => {
    const { node } = ctx;
    const xName = nodeInput(ctx, 0, 'X');
    const x = need4d(ctx, xName);
    if (node.outputs.length > 1 && node.outputs[1]) ctx.fail(`the Indices output is not supported`);
    const kernel = attrInts(node, 'kernel_shape', undefined);
    if (!kernel || kernel.length !== 2) return ctx.fail(`kernel_shape must list 2 sizes, got ${list(kernel ?? [])}`);
    checkInts(ctx, 'kernel_shape', kernel, 2, 1);
    if (kind === 'maxpool' && flag(ctx, 'storage_order')) ctx.fail('storage_order = 1 is not supported');
    const { strides, pads } = spatialAttrs(ctx, x, [kernel[0], kernel[1]], true);
    const ceil = flag(ctx, 'ceil_mode');
    const countIncludePad = kind === 'avgpool' && flag(ctx, 'count_include_pad');
    const ho = windowCount(x[2], kernel[0], strides[0], pads[0], pads[2], ceil);
    const wo = windowCount(x[3], kernel[1], strides[1], pads[1], pads[3], ceil);
    if (ho <= 0 || wo <= 0) ctx.fail(`the ${kernel[0]}×${kernel[1]} window does not fit the ${x[2]}×${x[3]} input (pads [${pads}])`);
    ctx.emit({
      kind, name: node.name, onnxTypes: [node.opType], inputs: [xName], output: node.outputs[0],
      kh: kernel[0], kw: kernel[1], strideH: strides[0], strideW: strides[1], pads, countIncludePad,
    }, [x[0], x[1], ho, wo]);
  };
}

/**
 * One row of the lowering table: the lowering, and what ONNX's checker verifies of the node before
 * it (input and output counts, attribute names), across the opsets the engine reads.
 */
interface OpSpec {
  lower: Lowering;
  /** How many inputs the node may list, omitted optional ones ('') included: [min, max]. */
  inputs: [number, number];
  outputs: [number, number];
  /** The op's attributes in any opset; another name is refused ("unrecognized attribute"). */
  attributes: readonly string[];
}

const POOL_ATTRIBUTES = ['auto_pad', 'ceil_mode', 'dilations', 'kernel_shape', 'pads', 'strides'];

const LOWERINGS = new Map<string, OpSpec>([
  ['Conv', { inputs: [2, 3], outputs: [1, 1], attributes: ['auto_pad', 'dilations', 'group', 'kernel_shape', 'pads', 'strides'], lower: lowerConv }],
  ['Gemm', {
    inputs: [2, 3], outputs: [1, 1], attributes: ['alpha', 'beta', 'broadcast', 'transA', 'transB'],
    lower: (ctx) => lowerDense(ctx, flag(ctx, 'transA'), flag(ctx, 'transB'),
      attrFloat(ctx.node, 'alpha', 1), attrFloat(ctx.node, 'beta', 1), ctx.node.inputs[2] || undefined),
  }],
  ['MatMul', { inputs: [2, 2], outputs: [1, 1], attributes: [], lower: (ctx) => lowerDense(ctx, false, false, 1, 0, undefined) }],
  ['MaxPool', { inputs: [1, 1], outputs: [1, 2], attributes: [...POOL_ATTRIBUTES, 'storage_order'], lower: lowerPool('maxpool') }],
  ['AveragePool', { inputs: [1, 1], outputs: [1, 1], attributes: [...POOL_ATTRIBUTES, 'count_include_pad'], lower: lowerPool('avgpool') }],
  ['GlobalAveragePool', {
    inputs: [1, 1], outputs: [1, 1], attributes: [],
    lower: (ctx) => {
      const xName = nodeInput(ctx, 0, 'X');
      const x = need4d(ctx, xName);
      ctx.emit({
        kind: 'avgpool', name: ctx.node.name, onnxTypes: ['GlobalAveragePool'], inputs: [xName], output: ctx.node.outputs[0],
        kh: x[2], kw: x[3], strideH: 1, strideW: 1, pads: [0, 0, 0, 0], countIncludePad: false,
      }, [x[0], x[1], 1, 1]);
    },
  }],
  ['LRN', {
    inputs: [1, 1], outputs: [1, 1], attributes: ['alpha', 'beta', 'bias', 'size'],
    lower: (ctx) => {
      const xName = nodeInput(ctx, 0, 'X');
      const x = need4d(ctx, xName);
      const size = attrInt(ctx.node, 'size', 0);
      if (size < 1) ctx.fail(`attribute 'size' is required and must be ≥ 1, got ${size}`);
      ctx.emit({
        kind: 'lrn', name: ctx.node.name, onnxTypes: ['LRN'], inputs: [xName], output: ctx.node.outputs[0], size,
        alpha: attrFloat(ctx.node, 'alpha', 1e-4), beta: attrFloat(ctx.node, 'beta', 0.75), bias: attrFloat(ctx.node, 'bias', 1),
      }, x);
    },
  }],
  ['BatchNormalization', {
    inputs: [5, 5], outputs: [1, 5], attributes: ['consumed_inputs', 'epsilon', 'is_test', 'momentum', 'spatial', 'training_mode'],
    lower: (ctx) => {
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
    },
  }],
  ['Relu', {
    inputs: [1, 1], outputs: [1, 1], attributes: ['consumed_inputs'],
    lower: (ctx) => {
      const xName = nodeInput(ctx, 0, 'X');
      ctx.emit({ kind: 'relu', name: ctx.node.name, onnxTypes: ['Relu'], inputs: [xName], output: ctx.node.outputs[0] }, ctx.shape(xName));
    },
  }],
  ['Add', {
    inputs: [2, 2], outputs: [1, 1], attributes: ['axis', 'broadcast', 'consumed_inputs'],
    lower: (ctx) => {
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
    },
  }],
  ['Softmax', {
    inputs: [1, 1], outputs: [1, 1], attributes: ['axis'],
    lower: (ctx) => {
      const xName = nodeInput(ctx, 0, 'X');
      const x = ctx.shape(xName);
      const a = axisAttr(ctx, ctx.opset >= 13 ? -1 : 1, x.length);
      // Supported: a softmax over all of each image's values (2-D last axis; opset < 13 coerces to 2-D at axis 1).
      const ok = x.length === 2 ? a === 1 : ctx.opset < 13 ? a === 1 : false;
      if (!ok) ctx.fail(`softmax over axis ${attrInt(ctx.node, 'axis', a)} of [${x}] is not supported (only over each image's values)`);
      ctx.emit({ kind: 'softmax', name: ctx.node.name, onnxTypes: ['Softmax'], inputs: [xName], output: ctx.node.outputs[0] }, x);
    },
  }],
  ['Dropout', {
    inputs: [1, 3], outputs: [1, 2], attributes: ['consumed_inputs', 'is_test', 'ratio', 'seed'],
    lower: (ctx) => {
      const xName = nodeInput(ctx, 0, 'data');
      ctx.alias(ctx.node.outputs[0], xName, ctx.shape(xName));
    },
  }],
  ['Identity', {
    inputs: [1, 1], outputs: [1, 1], attributes: [],
    lower: (ctx) => {
      const xName = nodeInput(ctx, 0, 'input');
      ctx.alias(ctx.node.outputs[0], xName, ctx.shape(xName));
    },
  }],
  ['Flatten', {
    inputs: [1, 1], outputs: [1, 1], attributes: ['axis'],
    lower: (ctx) => {
      const xName = nodeInput(ctx, 0, 'input');
      const x = ctx.shape(xName);
      const axis = axisAttr(ctx, 1, x.length, 1);
      const shape = [tensorElements(x.slice(0, axis)), tensorElements(x.slice(axis))];
      if (shape[0] !== x[0]) ctx.fail(`flattening at axis ${axis} mixes the batch dimension into the features (only axis 1, or axis 0 with batch 1)`);
      ctx.alias(ctx.node.outputs[0], xName, shape);
    },
  }],
  ['Reshape', {
    inputs: [1, 2], outputs: [1, 1], attributes: ['allowzero', 'consumed_inputs', 'shape'],
    lower: (ctx) => {
      if (attribute(ctx.node, 'shape') !== undefined) ctx.fail(`the 'shape' attribute (Reshape-1, opset < 5) is not supported; give the shape as input 1`);
      const xName = nodeInput(ctx, 0, 'data');
      const x = ctx.shape(xName);
      const sName = nodeInput(ctx, 1, 'shape');
      if (!ctx.isConstant(sName)) ctx.fail(`the shape '${sName}' must be a constant (an int64 initializer)`);
      const req = ctx.ints(sName);
      const allowZero = flag(ctx, 'allowzero');
      req.forEach((d, i) => {
        if (d < -1) ctx.fail(`shape ${list(req)} has ${d} at position ${i}; expected -1, 0 or a positive size`);
        if (d === 0 && allowZero) ctx.fail(`shape ${list(req)} has a 0 at position ${i} with allowzero = 1: a tensor with no values`);
        if (d === 0 && i >= x.length) ctx.fail(`shape ${list(req)} copies dimension ${i} (a 0 there), which [${x}] does not have`);
      });
      const total = tensorElements(x);
      const shape = req.map((d, i) => (d === 0 ? x[i] : i === 0 && d === ctx.rebatchedFrom ? x[0] : d));
      const known = shape.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
      const minus = shape.filter((d) => d === -1).length;
      if (minus > 1) ctx.fail(`shape ${list(req)} has more than one -1`);
      if (minus === 1) shape[shape.indexOf(-1)] = total / known;
      if (tensorElements(shape) !== total || shape.some((d) => !Number.isInteger(d) || d <= 0)) {
        ctx.fail(`cannot reshape [${x}] (${total} values) to ${list(req)}`);
      }
      if (shape[0] !== x[0]) ctx.fail(`reshape [${x}] → ${list(shape)} changes the batch dimension, which is not supported`);
      ctx.alias(ctx.node.outputs[0], xName, shape);
    },
  }],
  ['Concat', {
    inputs: [1, Infinity], outputs: [1, 1], attributes: ['axis'],
    lower: (ctx) => {
      const { node } = ctx;
      const names = node.inputs.filter(Boolean);
      if (names.length === 0) ctx.fail('has no inputs; expected at least one');
      const shapes = names.map((n) => ctx.shape(n));
      const ref = shapes[0];
      const axis = axisAttr(ctx, 1, ref.length);
      if (axis !== 1) ctx.fail(`concatenation along axis ${axis} is not supported (only channels, axis 1)`);
      for (const [i, s] of shapes.entries()) {
        if (s.length !== ref.length || s.some((d, j) => j !== 1 && d !== ref[j])) {
          ctx.fail(`input '${names[i]}' has shape [${s}], which does not match [${ref}] outside the channel axis`);
        }
      }
      const out = [...ref];
      out[1] = shapes.reduce((a, s) => a + s[1], 0);
      // Recorded as a pseudo-op; placement.ts turns it into channel-slice views (or copies).
      ctx.emit({ kind: 'concat', name: node.name, onnxTypes: ['Concat'], inputs: names, output: node.outputs[0] }, out);
    },
  }],
]);

export const SUPPORTED_OPS = [...LOWERINGS.keys()].sort();

/**
 * The most float32 values one tensor may hold per image: 2^28 (1 GiB), beyond what a WebGPU device
 * binds as one storage buffer. (GoogLeNet's largest holds 802,816.) A model past it is refused at
 * lowering instead of failing in a GPU allocation.
 */
export const MAX_VALUES_PER_IMAGE = 2 ** 28;

/** Why a shape cannot be a tensor of the engine (undefined when it can). */
function badShape(shape: readonly number[]): string | undefined {
  // The kernels read [N, F], [N, C, L] and [N, C, H, W].
  if (shape.length < 2 || shape.length > 4) return `rank ${shape.length}; the engine's tensors have 2 to 4 dimensions`;
  const i = shape.findIndex((d) => !Number.isSafeInteger(d) || d < 1);
  if (i >= 0) return `dimension ${i} is ${shape[i]}; expected ≥ 1`;
  const values = perImage(shape);
  if (values > MAX_VALUES_PER_IMAGE) return `${values} values per image is more than the engine's limit of ${MAX_VALUES_PER_IMAGE} (1 GiB of float32)`;
  return undefined;
}

/** The graph input's shape: every dimension ≥ 1; a symbolic (or, with `batch`, any) batch dimension becomes the batch. */
function inputShapeOf(input: OnnxValueInfo, options: LowerOptions): number[] {
  const { name } = input;
  if (options.batch !== undefined && (!Number.isSafeInteger(options.batch) || options.batch < 1)) {
    throw new GradcamError(`batch ${options.batch} is not a batch size; expected an integer ≥ 1`);
  }
  if (input.shape.length !== 4) throw new GradcamError(`input '${name}' has shape ${list(input.shape)}; expected a 4-D NCHW image tensor`);
  const shape = input.shape.map((d, i) => {
    if (i === 0 && options.batch) return options.batch;
    if (typeof d === 'number') {
      if (!Number.isSafeInteger(d) || d < 1) throw new GradcamError(`dimension ${i} of input '${name}' is ${d}; expected ≥ 1`);
      return d;
    }
    if (i === 0) return 1;
    if (d === null) throw new GradcamError(`dimension ${i} of input '${name}' has no size (neither a value nor a name); only the batch may be unknown`);
    throw new GradcamError(`input '${name}' has a symbolic size '${d}' at axis ${i}; only the batch may be symbolic`);
  });
  const bad = badShape(shape);
  if (bad) throw new GradcamError(`input '${name}' has shape ${list(shape)}: ${bad}`);
  return shape;
}

/**
 * Lowers a decoded ONNX model to a Graph with a storage plan.
 *
 * Every node is checked as ONNX's checker (and shape inference) would before the engine relies on
 * it, with the node named: its input and output counts and attribute names, that it reads only
 * tensors defined before it and defines each tensor name once; then its lowering checks attribute
 * values (strides, dilations, kernel ≥ 1, pads ≥ 0, the window fits the padded input), weight shapes
 * against its inputs, and every tensor it makes has dimensions ≥ 1 (a zero-size tensor is refused
 * here, not left to crash a GPU driver later). Linear in the number of nodes: names are indexed in Maps.
 */
export function lower(model: OnnxModel, options: LowerOptions = {}): Graph {
  if (model.inputs.length === 0) throw new GradcamError('the model has no input (other than initializers); expected one image input');
  if (model.inputs.length !== 1) {
    throw new GradcamError(`the model has ${model.inputs.length} inputs (${model.inputs.map((i) => `'${i.name}'`).join(', ')}); expected one image input`);
  }
  if (model.outputs.length < 1) throw new GradcamError('the model declares no output');
  const inputInfo = model.inputs[0];
  if (!inputInfo.name) throw new GradcamError('the graph input has no name');
  if (inputInfo.elemType !== 'float32') throw new GradcamError(`input '${inputInfo.name}' has element type ${inputInfo.elemType}; expected float32`);
  const inputShape = inputShapeOf(inputInfo, options);
  const fileBatch = inputInfo.shape[0];
  const rebatchedFrom = typeof fileBatch === 'number' && fileBatch !== inputShape[0] ? fileBatch : undefined;

  const shapes = new Map<string, number[]>([[inputInfo.name, inputShape]]);
  const aliases = new Map<string, string>();
  const ops: Op[] = [];
  /** Op by output name (the producer of each op output, before fusion). */
  const producers = new Map<string, Op>();
  /** Outputs a node declares but the engine does not compute (Dropout's mask): name → the node. */
  const uncomputed = new Map<string, string>();
  const onnxOpCounts: Record<string, number> = Object.create(null);
  const root = (n: string): string => aliasRoot(aliases, n);
  const defined = (n: string) => shapes.has(n) || model.initializers.has(n) || uncomputed.has(n);

  for (const node of model.nodes) {
    onnxOpCounts[node.opType] = (onnxOpCounts[node.opType] ?? 0) + 1;
    const where = `node '${node.name}' (${node.opType})`;
    const fail = (message: string): never => {
      throw new GradcamError(`${where}: ${message}`);
    };
    if (node.domain && node.domain !== 'ai.onnx') fail(`domain '${node.domain}' is not supported (only the default ONNX domain)`);
    const spec = LOWERINGS.get(node.opType);
    if (!spec) {
      return fail(`${node.opType ? `op type ${node.opType} is not supported` : 'the node has no op type'}; supported ops: ${SUPPORTED_OPS.join(', ')}`);
    }
    const count = ([lo, hi]: [number, number]) => (lo === hi ? `${lo}` : hi === Infinity ? `at least ${lo}` : `${lo} to ${hi}`);
    if (node.inputs.length < spec.inputs[0] || node.inputs.length > spec.inputs[1]) {
      fail(`has ${node.inputs.length} inputs; expected ${count(spec.inputs)}`);
    }
    if (node.outputs.length < spec.outputs[0] || node.outputs.length > spec.outputs[1]) {
      fail(`has ${node.outputs.length} outputs; expected ${count(spec.outputs)}`);
    }
    if (!node.outputs[0]) fail('output 0 has no name');
    for (const key of Object.keys(node.attributes)) {
      if (!spec.attributes.includes(key)) {
        fail(`unrecognized attribute '${key}' (${node.opType} has ${spec.attributes.length ? spec.attributes.join(', ') : 'none'})`);
      }
    }
    // ONNX graphs are in single static assignment form: every tensor name is defined once.
    node.outputs.forEach((o, i) => {
      if (!o) return;
      if (defined(o) || node.outputs.indexOf(o) !== i) {
        fail(`output '${o}' is already defined (${o === inputInfo.name ? 'the graph input' : model.initializers.has(o) ? 'an initializer' : 'by an earlier output'}); every tensor name must be defined once`);
      }
    });
    const ctx: LowerContext = {
      node, opset: model.opset, fail, rebatchedFrom,
      shape(name) {
        const s = shapes.get(name);
        if (s) return s;
        if (model.initializers.has(name)) fail(`input '${name}' is a constant, but an activation is expected here`);
        const by = uncomputed.get(name);
        if (by !== undefined) fail(`reads '${name}', an output of node '${by}' that the engine does not compute`);
        return fail(`reads '${name}', which no earlier node produces and no initializer holds (a missing initializer?)`);
      },
      isConstant: (name) => model.initializers.has(name),
      hasActivation: (name) => shapes.has(name),
      weight(name, expected) {
        const t = model.initializers.get(name);
        if (!t) return fail(`reads '${name}', which no initializer holds (a missing initializer?)`);
        if (t.dataType !== 'float32') return fail(`initializer '${name}' is ${t.dataType}; expected float32`);
        if (t.dims.some((d) => d < 1)) fail(`initializer '${name}' has shape ${list(t.dims)}; a weight needs every dimension ≥ 1`);
        if (t.data.length !== tensorElements(t.dims)) fail(`initializer '${name}' holds ${t.data.length} values, but its shape ${list(t.dims)} needs ${tensorElements(t.dims)}`);
        if (expected !== undefined && t.data.length !== expected) fail(`initializer '${name}' has ${t.data.length} values ${list(t.dims)}; expected ${expected}`);
        return t as OnnxTensor & { data: Float32Array };
      },
      ints(name) {
        const t = model.initializers.get(name);
        if (!t) return fail(`reads '${name}', which no initializer holds (a missing initializer?)`);
        if (t.dataType !== 'int64') return fail(`initializer '${name}' is ${t.dataType}; expected int64`);
        if (t.dims.length !== 1) fail(`initializer '${name}' has shape ${list(t.dims)}; expected a 1-D list of sizes`);
        return Array.from(t.data as BigInt64Array, Number);
      },
      emit(op, outShape) {
        const bad = badShape(outShape);
        if (bad) fail(`its output '${op.output}' would have shape ${list(outShape)}: ${bad}`);
        ops.push(op);
        producers.set(op.output, op);
        shapes.set(op.output, outShape);
      },
      alias(output, input, shape) {
        ctx.shape(input);
        const bad = badShape(shape);
        if (bad) fail(`its output '${output}' would have shape ${list(shape)}: ${bad}`);
        aliases.set(output, root(input));
        shapes.set(output, shape);
      },
    };
    spec.lower(ctx);
    // Inputs the lowering did not read (Dropout's ratio...) must still be defined before the node.
    for (const i of node.inputs) if (i && !defined(i)) fail(`reads '${i}', which no earlier node produces and no initializer holds`);
    for (const o of node.outputs.slice(1)) if (o && !shapes.has(o)) uncomputed.set(o, node.name);
  }

  const outputName = model.outputs[0].name;
  if (!shapes.has(outputName)) throw new GradcamError(`output '${outputName}' is not produced by any node`);
  // The logits: the output, or the input of a final Softmax.
  const last = producers.get(root(outputName));
  const endsInSoftmax = last?.kind === 'softmax';
  // (The softmax's input name as the node wrote it: it may be an alias of the op that produced it.)
  const logits = endsInSoftmax ? last.inputs[0] : outputName;
  const logitShape = shapes.get(logits)!;
  if (logitShape.length !== 2 && !(logitShape.length === 4 && logitShape[2] === 1 && logitShape[3] === 1)) {
    throw new GradcamError(`output '${outputName}' has shape [${shapes.get(outputName)}]; expected class scores [N, classes]`);
  }

  const taps = new Set(options.taps ?? []);
  for (const t of taps) if (!shapes.has(t)) throw new GradcamError(`unknown tensor '${t}'`);
  const keep = new Set([...taps, outputName, logits].map(root));
  const fusedAway = fuse(ops, keep, aliases);
  const { tensors, storages, ops: placed, concats } = place(ops, shapes, aliases, inputInfo.name, fusedAway);
  return {
    opset: model.opset, batch: inputShape[0], input: { name: inputInfo.name, shape: inputShape },
    tensors, storages, ops: placed, output: outputName, logits, probabilities: endsInSoftmax ? outputName : undefined,
    aliases, concats, fusedAway, onnxOpCounts,
  };
}

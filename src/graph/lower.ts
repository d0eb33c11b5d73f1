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
import type { OnnxModel, OnnxNode, OnnxTensor } from '../onnx/model.ts';
import { attrFloat, attrInt, attrInts, attrString } from '../onnx/model.ts';
import { fuse } from './fuse.ts';
import type { Graph, Op } from './ir.ts';
import { tensorElements } from './ir.ts';
import { place } from './placement.ts';
import { samePads, windowCount } from './shapes.ts';

export interface LowerOptions {
  /** Tensor names that must stay addressable (fusion will not hide them). */
  taps?: string[];
  /** Batch size, for a model whose input has a symbolic batch dimension (default 1). */
  batch?: number;
}

/** What the lowering of one node can use. */
export interface LowerContext {
  node: OnnxNode;
  opset: number;
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

function spatialAttrs(ctx: LowerContext, x: number[], kernel: [number, number]) {
  const { node } = ctx;
  const strides = attrInts(node, 'strides', [1, 1])!;
  const dil = attrInts(node, 'dilations', [1, 1])!;
  if (dil.some((d) => d !== 1)) ctx.fail(`dilations [${dil}] are not supported (only 1)`);
  if (strides.length !== 2) ctx.fail(`expected 2 strides for a 2-D op, got [${strides}]`);
  const autoPad = attrString(node, 'auto_pad', 'NOTSET');
  let pads = attrInts(node, 'pads', [0, 0, 0, 0])!;
  if (pads.length !== 4) ctx.fail(`expected 4 pads [top, left, bottom, right], got [${pads}]`);
  if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    const [t, b] = samePads(x[2], kernel[0], strides[0], autoPad === 'SAME_UPPER');
    const [l, r] = samePads(x[3], kernel[1], strides[1], autoPad === 'SAME_UPPER');
    pads = [t, l, b, r];
  } else if (autoPad === 'VALID') {
    pads = [0, 0, 0, 0];
  } else if (autoPad !== 'NOTSET') {
    ctx.fail(`auto_pad '${autoPad}' is not supported`);
  }
  return { strides: strides as [number, number], pads: pads as [number, number, number, number] };
}

function need4d(ctx: LowerContext, name: string): number[] {
  const s = ctx.shape(name);
  if (s.length !== 4) ctx.fail(`input '${name}' has shape [${s}]; expected a 4-D NCHW tensor`);
  return s;
}

const lowerConv: Lowering = (ctx) => {
  const { node } = ctx;
  const xName = nodeInput(ctx, 0, 'X');
  const x = need4d(ctx, xName);
  const wName = nodeInput(ctx, 1, 'W');
  // An activation as weights is refused; a name nobody defines is a missing initializer (weight() says so).
  if (!ctx.isConstant(wName) && ctx.hasActivation(wName)) ctx.fail(`weights '${wName}' must be an initializer, not an activation`);
  const w = ctx.weight(wName);
  if (w.dims.length !== 4) ctx.fail(`weights '${wName}' have shape [${w.dims}]; expected [C_out, C_in, KH, KW]`);
  const [cOut, cInW, kh, kw] = w.dims;
  const group = attrInt(node, 'group', 1);
  if (group !== 1) ctx.fail(`group = ${group} is not supported yet (only group = 1)`);
  if (cInW !== x[1]) ctx.fail(`weights '${wName}' expect ${cInW} input channels, but '${xName}' has ${x[1]}`);
  const { strides, pads } = spatialAttrs(ctx, x, [kh, kw]);
  const bName = node.inputs[2];
  const bias = bName ? ctx.weight(bName, cOut).data.slice() : new Float32Array(cOut);
  const ho = windowCount(x[2], kh, strides[0], pads[0], pads[2]);
  const wo = windowCount(x[3], kw, strides[1], pads[1], pads[3]);
  if (ho <= 0 || wo <= 0) ctx.fail(`the ${kh}×${kw} kernel does not fit the ${x[2]}×${x[3]} input`);
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
  if (b.dims.length !== 2) ctx.fail(`weights '${bName}' have shape [${b.dims}]; expected a matrix`);
  // The batch is axis 0 of every activation; A stored [K, N] (transA) would put it on axis 1.
  if (transA) ctx.fail(`transA = 1 on an activation is not supported (the batch must be the first axis of A)`);
  const [n, k] = a;
  const [bk, m] = transB ? [b.dims[1], b.dims[0]] : [b.dims[0], b.dims[1]];
  if (bk !== k) ctx.fail(`weights '${bName}' [${b.dims}]${transB ? ' (transB)' : ''} need ${bk} input features, but '${node.inputs[0]}' has ${k}`);
  // Weight as [C_out = M, C_in = K, 1, 1], alpha folded in.
  const weight = new Float32Array(m * k);
  for (let i = 0; i < m; i++) for (let j = 0; j < k; j++) weight[i * k + j] = alpha * (transB ? b.data[i * k + j] : b.data[j * m + i]);
  const bias = new Float32Array(m);
  if (biasName) {
    const c = ctx.weight(biasName);
    const cn = tensorElements(c.dims);
    if (cn === m) for (let i = 0; i < m; i++) bias[i] = beta * c.data[i];
    else if (cn === 1) bias.fill(beta * c.data[0]);
    else ctx.fail(`bias '${biasName}' has shape [${c.dims}]; expected [${m}], [1, ${m}] or a scalar`);
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
    if (!kernel || kernel.length !== 2) return ctx.fail(`kernel_shape must list 2 sizes, got [${kernel ?? ''}]`);
    if (attrInt(node, 'storage_order', 0) !== 0) ctx.fail('storage_order = 1 is not supported');
    const { strides, pads } = spatialAttrs(ctx, x, [kernel[0], kernel[1]]);
    const ceil = attrInt(node, 'ceil_mode', 0) === 1;
    const ho = windowCount(x[2], kernel[0], strides[0], pads[0], pads[2], ceil);
    const wo = windowCount(x[3], kernel[1], strides[1], pads[1], pads[3], ceil);
    if (ho <= 0 || wo <= 0) ctx.fail(`the ${kernel[0]}×${kernel[1]} window does not fit the ${x[2]}×${x[3]} input`);
    ctx.emit({
      kind, name: node.name, onnxTypes: [node.opType], inputs: [xName], output: node.outputs[0],
      kh: kernel[0], kw: kernel[1], strideH: strides[0], strideW: strides[1], pads,
      countIncludePad: attrInt(node, 'count_include_pad', 0) === 1,
    }, [x[0], x[1], ho, wo]);
  };
}

const LOWERINGS: Record<string, Lowering> = {
  Conv: lowerConv,
  Gemm: (ctx) => lowerDense(ctx, attrInt(ctx.node, 'transA', 0) === 1, attrInt(ctx.node, 'transB', 0) === 1,
    attrFloat(ctx.node, 'alpha', 1), attrFloat(ctx.node, 'beta', 1), ctx.node.inputs[2] || undefined),
  MatMul: (ctx) => lowerDense(ctx, false, false, 1, 0, undefined),
  MaxPool: lowerPool('maxpool'),
  AveragePool: lowerPool('avgpool'),
  GlobalAveragePool: (ctx) => {
    const xName = nodeInput(ctx, 0, 'X');
    const x = need4d(ctx, xName);
    ctx.emit({
      kind: 'avgpool', name: ctx.node.name, onnxTypes: ['GlobalAveragePool'], inputs: [xName], output: ctx.node.outputs[0],
      kh: x[2], kw: x[3], strideH: 1, strideW: 1, pads: [0, 0, 0, 0], countIncludePad: false,
    }, [x[0], x[1], 1, 1]);
  },
  LRN: (ctx) => {
    const xName = nodeInput(ctx, 0, 'X');
    const x = need4d(ctx, xName);
    const size = attrInt(ctx.node, 'size', 0);
    if (size < 1) ctx.fail(`attribute 'size' is required and must be positive`);
    ctx.emit({
      kind: 'lrn', name: ctx.node.name, onnxTypes: ['LRN'], inputs: [xName], output: ctx.node.outputs[0], size,
      alpha: attrFloat(ctx.node, 'alpha', 1e-4), beta: attrFloat(ctx.node, 'beta', 0.75), bias: attrFloat(ctx.node, 'bias', 1),
    }, x);
  },
  BatchNormalization: (ctx) => {
    const { node } = ctx;
    if (node.outputs.filter(Boolean).length > 1) ctx.fail('training-mode outputs (running mean/var) are not supported');
    const xName = nodeInput(ctx, 0, 'X');
    const x = ctx.shape(xName);
    const c = x[1];
    const [s, b, m, v] = [1, 2, 3, 4].map((i) => ctx.weight(nodeInput(ctx, i, ['', 'scale', 'B', 'mean', 'var'][i]), c).data);
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
  Relu: (ctx) => {
    const xName = nodeInput(ctx, 0, 'X');
    ctx.emit({ kind: 'relu', name: ctx.node.name, onnxTypes: ['Relu'], inputs: [xName], output: ctx.node.outputs[0] }, ctx.shape(xName));
  },
  Add: (ctx) => {
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
    const k = ctx.weight(cName);
    const n = tensorElements(k.dims);
    const c = x[1];
    // A constant broadcast per channel: [C], [C,1,1], [1,C,1,1] on 4-D, [C] / [1,C] on 2-D, or a scalar.
    const perChannel = n === c && (x.length === 2 ? k.dims[k.dims.length - 1] === c : k.dims.length >= 3 && k.dims[k.dims.length - 3] === c);
    if (!(perChannel || n === 1)) ctx.fail(`constant '${cName}' [${k.dims}] does not broadcast per channel over [${x}]`);
    const shift = new Float32Array(c);
    for (let i = 0; i < c; i++) shift[i] = k.data[n === 1 ? 0 : i];
    ctx.emit({ kind: 'affine', name: ctx.node.name, onnxTypes: ['Add'], inputs: [xName], output: ctx.node.outputs[0], scale: new Float32Array(c).fill(1), shift, relu: false }, x);
  },
  Softmax: (ctx) => {
    const xName = nodeInput(ctx, 0, 'X');
    const x = ctx.shape(xName);
    const axis = attrInt(ctx.node, 'axis', ctx.opset >= 13 ? -1 : 1);
    const a = axis < 0 ? axis + x.length : axis;
    // Supported: a softmax over all of each image's values (2-D last axis; opset < 13 coerces to 2-D at axis 1).
    const ok = x.length === 2 ? a === 1 : ctx.opset < 13 ? a === 1 : false;
    if (!ok) ctx.fail(`softmax over axis ${axis} of [${x}] is not supported (only over each image's values)`);
    ctx.emit({ kind: 'softmax', name: ctx.node.name, onnxTypes: ['Softmax'], inputs: [xName], output: ctx.node.outputs[0] }, x);
  },
  Dropout: (ctx) => {
    const { node } = ctx;
    ctx.alias(node.outputs[0], nodeInput(ctx, 0, 'data'), ctx.shape(node.inputs[0]));
  },
  Identity: (ctx) => ctx.alias(ctx.node.outputs[0], nodeInput(ctx, 0, 'input'), ctx.shape(ctx.node.inputs[0])),
  Flatten: (ctx) => {
    const xName = nodeInput(ctx, 0, 'input');
    const x = ctx.shape(xName);
    let axis = attrInt(ctx.node, 'axis', 1);
    if (axis < 0) axis += x.length;
    const shape = [tensorElements(x.slice(0, axis)), tensorElements(x.slice(axis))];
    if (shape[0] !== x[0]) ctx.fail(`flattening at axis ${axis} mixes the batch dimension into the features (only axis 1, or axis 0 with batch 1)`);
    ctx.alias(ctx.node.outputs[0], xName, shape);
  },
  Reshape: (ctx) => {
    const xName = nodeInput(ctx, 0, 'data');
    const x = ctx.shape(xName);
    const sName = nodeInput(ctx, 1, 'shape');
    if (!ctx.isConstant(sName)) ctx.fail(`the shape '${sName}' must be a constant (an int64 initializer)`);
    const req = ctx.ints(sName);
    const total = tensorElements(x);
    const shape = req.map((d, i) => (d === 0 ? x[i] : d));
    const known = shape.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
    const minus = shape.filter((d) => d === -1).length;
    if (minus > 1) ctx.fail(`shape [${req}] has more than one -1`);
    if (minus === 1) shape[shape.indexOf(-1)] = total / known;
    if (tensorElements(shape) !== total || shape.some((d) => !Number.isInteger(d) || d <= 0)) {
      ctx.fail(`cannot reshape [${x}] (${total} values) to [${req}]`);
    }
    if (shape[0] !== x[0]) ctx.fail(`reshape [${x}] → [${shape}] changes the batch dimension, which is not supported`);
    ctx.alias(ctx.node.outputs[0], xName, shape);
  },
  Concat: (ctx) => {
    const { node } = ctx;
    const names = node.inputs.filter(Boolean);
    const shapes = names.map((n) => ctx.shape(n));
    let axis = attrInt(node, 'axis', 1);
    if (axis < 0) axis += shapes[0].length;
    if (axis !== 1) ctx.fail(`concatenation along axis ${axis} is not supported (only channels, axis 1)`);
    for (const [i, s] of shapes.entries()) {
      const ref = shapes[0];
      if (s.length !== ref.length || s.some((d, j) => j !== 1 && d !== ref[j])) {
        ctx.fail(`input '${names[i]}' has shape [${s}], which does not match [${ref}] outside the channel axis`);
      }
    }
    const out = [...shapes[0]];
    out[1] = shapes.reduce((a, s) => a + s[1], 0);
    // Recorded as a pseudo-op; placement.ts turns it into channel-slice views (or copies).
    ctx.emit({ kind: 'concat', name: node.name, onnxTypes: ['Concat'], inputs: names, output: node.outputs[0] }, out);
  },
};

export const SUPPORTED_OPS = Object.keys(LOWERINGS).sort();

/** Lowers a decoded ONNX model to a Graph with a storage plan. */
export function lower(model: OnnxModel, options: LowerOptions = {}): Graph {
  if (model.inputs.length !== 1) {
    throw new GradcamError(`the model has ${model.inputs.length} inputs (${model.inputs.map((i) => i.name).join(', ')}); expected one image input`);
  }
  if (model.outputs.length < 1) throw new GradcamError('the model declares no output');
  const inputInfo = model.inputs[0];
  if (inputInfo.elemType !== 'float32') throw new GradcamError(`input '${inputInfo.name}' has element type ${inputInfo.elemType}; expected float32`);
  const batch = options.batch ?? 1;
  const inputShape = inputInfo.shape.map((d, i) => {
    if (typeof d === 'number') return i === 0 && options.batch ? batch : d;
    if (i === 0) return batch;
    throw new GradcamError(`input '${inputInfo.name}' has a symbolic size '${d}' at axis ${i}; only the batch may be symbolic`);
  });
  if (inputShape.length !== 4) throw new GradcamError(`input '${inputInfo.name}' has shape [${inputInfo.shape}]; expected a 4-D NCHW image tensor`);

  const shapes = new Map<string, number[]>([[inputInfo.name, inputShape]]);
  const aliases = new Map<string, string>();
  const ops: Op[] = [];
  const onnxOpCounts: Record<string, number> = {};
  const root = (n: string): string => aliases.get(n) ?? n;

  for (const node of model.nodes) {
    onnxOpCounts[node.opType] = (onnxOpCounts[node.opType] ?? 0) + 1;
    const where = `node '${node.name}' (${node.opType})`;
    const fail = (message: string): never => {
      throw new GradcamError(`${where}: ${message}`);
    };
    if (node.domain && node.domain !== 'ai.onnx') fail(`domain '${node.domain}' is not supported (only the default ONNX domain)`);
    const lowering = LOWERINGS[node.opType];
    if (!lowering) fail(`op type ${node.opType} is not supported; supported ops: ${SUPPORTED_OPS.join(', ')}`);
    const ctx: LowerContext = {
      node, opset: model.opset, fail,
      shape(name) {
        const s = shapes.get(name);
        if (s) return s;
        if (model.initializers.has(name)) fail(`input '${name}' is a constant, but an activation is expected here`);
        return fail(`reads '${name}', which no earlier node produces and no initializer holds (a missing initializer?)`);
      },
      isConstant: (name) => model.initializers.has(name),
      hasActivation: (name) => shapes.has(name),
      weight(name, expected) {
        const t = model.initializers.get(name);
        if (!t) return fail(`reads '${name}', which no initializer holds (a missing initializer?)`);
        if (t.dataType !== 'float32') return fail(`initializer '${name}' is ${t.dataType}; expected float32`);
        if (expected !== undefined && t.data.length !== expected) fail(`initializer '${name}' has ${t.data.length} values [${t.dims}]; expected ${expected}`);
        return t as OnnxTensor & { data: Float32Array };
      },
      ints(name) {
        const t = model.initializers.get(name);
        if (!t) return fail(`reads '${name}', which no initializer holds (a missing initializer?)`);
        if (t.dataType !== 'int64') return fail(`initializer '${name}' is ${t.dataType}; expected int64`);
        return Array.from(t.data as BigInt64Array, Number);
      },
      emit(op, outShape) {
        ops.push(op);
        shapes.set(op.output, outShape);
      },
      alias(output, input, shape) {
        ctx.shape(input);
        aliases.set(output, root(input));
        shapes.set(output, shape);
      },
    };
    lowering(ctx);
  }

  const outputName = model.outputs[0].name;
  if (!shapes.has(outputName)) throw new GradcamError(`output '${outputName}' is not produced by any node`);
  // The logits: the output, or the input of a final Softmax.
  const outRoot = root(outputName);
  const last = ops.find((o) => o.output === outRoot);
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

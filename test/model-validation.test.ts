/**
 * What the engine accepts from an ONNX file (issue 10, the model side). Each test is a finding:
 * the code before the fix accepted an invalid model (exit 0 from `gradcam info`), rejected it in
 * JavaScript's own words ("shapes[0] is not iterable", "Invalid typed array length: -4",
 * "lowering is not a function"), or took quadratic time. Now every refusal is a GradcamError that
 * names the node (or tensor) and what ONNX's checker expects, and lowering is linear.
 *
 * Models are built in memory and, where the file matters, go through the bytes (encodeOnnx →
 * decodeOnnx) as `gradcam info` reads them. No GPU.
 */
import onnxProto from 'onnx-proto';
import { describe, expect, it } from 'vitest';
import { GradcamError } from '../src/errors.ts';
import { candidateLayers } from '../src/gradcam/layers.ts';
import { ancestors, descendants } from '../src/graph/deps.ts';
import { lower } from '../src/graph/lower.ts';
import { decodeOnnx } from '../src/onnx/decode.ts';
import type { OnnxAttribute, OnnxModel, OnnxNode, OnnxTensor } from '../src/onnx/model.ts';
import { encodeOnnx } from '../src/onnx/write.ts';
import { ensureGeneratedModel, generatedModelPath } from '../weights/generate/index.ts';
import { kernelCases } from './helpers/kernel-cases.ts';

const { onnx } = onnxProto;

const int = (value: number): OnnxAttribute => ({ type: 'int', value });
const ints = (...value: number[]): OnnxAttribute => ({ type: 'ints', value });

/** A float32 initializer with small deterministic values (dims as given, even invalid ones). */
function f32(name: string, dims: number[], count = dims.reduce((a, b) => a * b, 1)): OnnxTensor {
  return { name, dims, dataType: 'float32', data: Float32Array.from({ length: Math.max(count, 0) }, (_, i) => ((i * 7) % 11) / 11 - 0.5) };
}

function i64(name: string, values: number[]): OnnxTensor {
  return { name, dims: [values.length], dataType: 'int64', data: BigInt64Array.from(values.map(BigInt)) };
}

function node(opType: string, name: string, inputs: string[], outputs: string[], attributes: Record<string, OnnxAttribute> = {}): OnnxNode {
  return { name, opType, domain: '', inputs, outputs, attributes };
}

function model(o: { input?: [string, (number | string | null)[]]; nodes: OnnxNode[]; weights?: OnnxTensor[]; output: string; opset?: number }): OnnxModel {
  const [name, shape] = o.input ?? ['x', [1, 3, 8, 8]];
  return {
    irVersion: 7, opset: o.opset ?? 13, producerName: 'model-validation', graphName: 'g',
    inputs: [{ name, elemType: 'float32', shape }], outputs: [{ name: o.output, elemType: 'float32', shape: [] }],
    initializers: new Map((o.weights ?? []).map((w) => [w.name, w])), nodes: o.nodes,
  };
}

/** The model as `gradcam info` sees it: written to ONNX bytes and decoded. */
const fromFile = (m: OnnxModel) => decodeOnnx(encodeOnnx(m));

/** The GradcamError `fn` throws (fails the test if it throws anything else, or nothing). */
function refusal(fn: () => unknown): GradcamError {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  expect(thrown, 'expected a refusal').toBeInstanceOf(GradcamError);
  const message = (thrown as GradcamError).message;
  expect(message).not.toMatch(/is not (a function|iterable|defined)|Cannot read propert|undefined|NaN|Invalid typed array|Maximum call stack/);
  return thrown as GradcamError;
}

const refuses = (m: OnnxModel, message: RegExp) => expect(refusal(() => lower(fromFile(m))).message).toMatch(message);

/** x [1,3,8,8] → one Conv 'c' (weights w [4,3,3,3], bias b) with the given attributes. */
function conv(attributes: Record<string, OnnxAttribute>, wDims = [4, 3, 3, 3]): OnnxModel {
  return model({ nodes: [node('Conv', 'c', ['x', 'w', 'b'], ['y'], attributes)], weights: [f32('w', wDims), f32('b', [wDims[0]])], output: 'y' });
}

/** x [1,3,8,8] → one pooling node 'p'. */
const pool = (op: string, attributes: Record<string, OnnxAttribute>) => model({ nodes: [node(op, 'p', ['x'], ['y'], attributes)], output: 'y' });

/** A valid classifier: x → Conv 3×3 pad 1 → Relu → GlobalAveragePool → Flatten → Gemm (10 classes). */
function classifier(names: { x?: string; w?: string; relu?: string; fc?: string } = {}): OnnxModel {
  const x = names.x ?? 'x', w = names.w ?? 'w', relu = names.relu ?? 'r', fc = names.fc ?? 'fc_w';
  return model({
    input: [x, [1, 3, 8, 8]],
    nodes: [
      node('Conv', 'conv', [x, w, 'b'], ['c'], { kernel_shape: ints(3, 3), pads: ints(1, 1, 1, 1) }),
      node('Relu', 'relu', ['c'], [relu]),
      node('GlobalAveragePool', 'gap', [relu], ['g']),
      node('Flatten', 'flat', ['g'], ['f'], { axis: int(1) }),
      node('Gemm', 'fc', ['f', fc], ['logits'], { transB: int(1) }),
    ],
    weights: [f32(w, [4, 3, 3, 3]), f32('b', [4]), f32(fc, [10, 4])],
    output: 'logits',
  });
}

describe('attributes and shapes are checked at lowering, as ONNX\'s checker does, with the node named', () => {
  it('accepts the valid classifier (the baseline every case below breaks once)', () => {
    const g = lower(fromFile(classifier()));
    expect(g.tensors.get('logits')!.shape).toEqual([1, 10]);
  });

  it('Conv: strides [0, 0] (accepted before, with an infinite output size)', () => {
    refuses(conv({ strides: ints(0, 0) }), /^node 'c' \(Conv\): attribute 'strides' \[0,0\] has 0 at position 0; expected ≥ 1$/);
  });

  it('Conv: negative pads, dilations 0, a wrong number of strides, group 0, kernel_shape unlike the weights', () => {
    refuses(conv({ pads: ints(-1, 0, 0, 0) }), /^node 'c' \(Conv\): attribute 'pads' \[-1,0,0,0\] has -1 at position 0; expected ≥ 0$/);
    refuses(conv({ dilations: ints(0, 1) }), /^node 'c' \(Conv\): attribute 'dilations' \[0,1\] has 0 at position 0; expected ≥ 1$/);
    refuses(conv({ strides: ints(1, 1, 1) }), /^node 'c' \(Conv\): attribute 'strides' has 3 values \[1,1,1\]; expected 2/);
    refuses(conv({ group: int(0) }), /^node 'c' \(Conv\): group = 0; expected ≥ 1$/);
    refuses(conv({ kernel_shape: ints(5, 5) }), /^node 'c' \(Conv\): kernel_shape \[5,5\] does not match the 3×3 kernel of weights 'w'/);
  });

  it('Conv: weights with a negative dimension (accepted before when two were negative; "Invalid typed array length" with one)', () => {
    // [-4, -3, 1, 1] holds 12 values, which the raw data matched: C_out was -4.
    const m = model({ nodes: [node('Conv', 'c', ['x', 'w'], ['y'])], weights: [f32('w', [-4, -3, 1, 1], 12)], output: 'y' });
    expect(refusal(() => fromFile(m)).message).toBe("initializer 'w': dimension 0 of [-4,-3,1,1] is -4; expected ≥ 0");
  });

  it('Conv: weights of another input-channel count, a zero-size weight, a bias of the wrong length', () => {
    refuses(conv({}, [4, 2, 3, 3]), /^node 'c' \(Conv\): weights 'w' expect 2 input channels, but 'x' has 3$/);
    refuses(conv({}, [0, 3, 3, 3]), /^node 'c' \(Conv\): initializer 'w' has shape \[0,3,3,3\]; a weight needs every dimension ≥ 1$/);
    const bias = model({ nodes: [node('Conv', 'c', ['x', 'w', 'b'], ['y'])], weights: [f32('w', [4, 3, 3, 3]), f32('b', [2, 2])], output: 'y' });
    refuses(bias, /^node 'c' \(Conv\): bias 'b' has shape \[2,2\]; expected \[4\]$/);
  });

  it('Conv: a kernel larger than the padded input, and an output too large for any GPU', () => {
    refuses(conv({}, [4, 3, 9, 9]), /^node 'c' \(Conv\): the 9×9 kernel does not fit the 8×8 input/);
    refuses(conv({ pads: ints(2 ** 20, 2 ** 20, 2 ** 20, 2 ** 20) }), /^node 'c' \(Conv\): its output 'y' would have shape \[1,4,2097158,2097158\]: .* more than the engine's limit/);
  });

  it('MaxPool: kernel_shape [0, 0] (accepted before)', () => {
    refuses(pool('MaxPool', { kernel_shape: ints(0, 0) }), /^node 'p' \(MaxPool\): attribute 'kernel_shape' \[0,0\] has 0 at position 0; expected ≥ 1$/);
  });

  it('pooling: strides 0, pads as large as the window, a window larger than the input, flags other than 0/1', () => {
    refuses(pool('MaxPool', { kernel_shape: ints(2, 2), strides: ints(2, 0) }), /^node 'p' \(MaxPool\): attribute 'strides' \[2,0\] has 0 at position 1; expected ≥ 1$/);
    refuses(pool('AveragePool', { kernel_shape: ints(2, 2), pads: ints(2, 0, 0, 0) }), /^node 'p' \(AveragePool\): pads \[2,0,0,0\] must be smaller than the 2×2 window$/);
    refuses(pool('MaxPool', { kernel_shape: ints(9, 3) }), /^node 'p' \(MaxPool\): the 9×3 window does not fit the 8×8 input/);
    refuses(pool('MaxPool', { kernel_shape: ints(2, 2), ceil_mode: int(2) }), /^node 'p' \(MaxPool\): attribute 'ceil_mode' is 2; expected 0 or 1$/);
  });

  it('grouped and dilated Conv, dilated MaxPool and ReduceMean/ReduceMax over H, W are accepted; AveragePool dilations and ReduceMax over other axes are refused by name', () => {
    // x → Conv (group 3, dilation 2, SAME_UPPER) → MaxPool (dilations [2, 3]) → ReduceMean [2, 3] keepdims 0 → scores.
    const chain = model({
      nodes: [
        node('Conv', 'c', ['x', 'w', 'b'], ['y'], { group: int(3), dilations: ints(2, 2), auto_pad: { type: 'string', value: 'SAME_UPPER' } }),
        node('MaxPool', 'p', ['y'], ['m'], { kernel_shape: ints(3, 3), dilations: ints(2, 3) }),
        node('ReduceMean', 'r', ['m'], ['s'], { axes: ints(2, 3), keepdims: int(0) }),
      ],
      weights: [f32('w', [6, 1, 3, 3]), f32('b', [6])], output: 's',
    });
    const g = lower(fromFile(chain));
    expect(['y', 'm', 's'].map((t) => g.tensors.get(t)!.shape)).toEqual([[1, 6, 8, 8], [1, 6, 4, 2], [1, 6]]);
    refuses(conv({ group: int(2) }, [4, 1, 3, 3]), /^node 'c' \(Conv\): weights 'w' expect 1 input channels per group, 2 for group = 2, but 'x' has 3$/);
    refuses(conv({ group: int(3) }, [4, 1, 3, 3]), /^node 'c' \(Conv\): weights 'w' have 4 output channels, not a multiple of group = 3$/);
    refuses(conv({ dilations: ints(4, 4) }), /^node 'c' \(Conv\): the 3×3 kernel dilated by \[4,4\] does not fit the 8×8 input/);
    refuses(pool('AveragePool', { kernel_shape: ints(2, 2), dilations: ints(2, 2) }), /^node 'p' \(AveragePool\): dilations \[2,2\] are not supported for AveragePool \(only 1\)$/);
    const reduce = (op: string, attrs: Record<string, OnnxAttribute>, opset = 13, inputs = ['x'], weights: OnnxTensor[] = []) =>
      model({ nodes: [node(op, 'r', inputs, ['y'], attrs)], weights, output: 'y', opset });
    expect(lower(fromFile(reduce('ReduceMax', { keepdims: int(0) }, 18, ['x', 'axes'], [i64('axes', [-1, -2])]))).tensors.get('y')!.shape).toEqual([1, 3]);
    refuses(reduce('ReduceMax', { axes: ints(1) }), /^node 'r' \(ReduceMax\): ReduceMax over axes \[1\] of a rank-4 input is not supported: only over the spatial axes \[2, 3\] of a 4-D NCHW tensor \(a global pool\)$/);
    refuses(reduce('ReduceMax', {}), /^node 'r' \(ReduceMax\): ReduceMax over all axes \(no axes given\) of a rank-4 input is not supported/);
    refuses(reduce('ReduceMean', { axes: ints(2, 3) }, 18), /^node 'r' \(ReduceMean\): the axes must be input 1 from opset 18 on, not an attribute$/);
    refuses(reduce('ReduceMean', { axes: ints(2, 5) }), /^node 'r' \(ReduceMean\): axis 5 is out of range for a rank-4 input \(expected -4 … 3\)$/);
  });

  it('Gemm: a classifier with 0 outputs ([0, K] weights) is refused here, not in the GPU driver', () => {
    const m = classifier();
    m.initializers.set('fc_w', f32('fc_w', [0, 4]));
    refuses(m, /^node 'fc' \(Gemm\): initializer 'fc_w' has shape \[0,4\]; a weight needs every dimension ≥ 1$/);
  });

  it('Gemm: inner dimensions that disagree, a bias that does not broadcast per class, transB 2', () => {
    const k = classifier();
    k.initializers.set('fc_w', f32('fc_w', [10, 5]));
    refuses(k, /^node 'fc' \(Gemm\): weights 'fc_w' \[10,5\] \(transB\) need 5 input features, but 'f' has 4$/);
    const bias = classifier();
    bias.nodes[4].inputs.push('fc_b');
    bias.initializers.set('fc_b', f32('fc_b', [10, 1]));
    refuses(bias, /^node 'fc' \(Gemm\): bias 'fc_b' has shape \[10,1\]; expected \[10\], \[1, 10\] or a scalar$/);
    const trans = classifier();
    trans.nodes[4].attributes = { transB: int(2) };
    refuses(trans, /^node 'fc' \(Gemm\): attribute 'transB' is 2; expected 0 or 1$/);
  });

  it('Concat: no inputs (was "shapes[0] is not iterable"), inputs that disagree outside the axis, an axis out of range', () => {
    refuses(model({ nodes: [node('Concat', 'cat', [], ['y'], { axis: int(1) })], output: 'y' }), /^node 'cat' \(Concat\): has 0 inputs; expected at least 1$/);
    refuses(model({ nodes: [node('Concat', 'cat', [''], ['y'], { axis: int(1) })], output: 'y' }), /^node 'cat' \(Concat\): has no inputs; expected at least one$/);
    const pooled = model({
      nodes: [node('MaxPool', 'p', ['x'], ['p'], { kernel_shape: ints(2, 2), strides: ints(2, 2) }), node('Concat', 'cat', ['x', 'p'], ['y'], { axis: int(1) })],
      output: 'y',
    });
    refuses(pooled, /^node 'cat' \(Concat\): input 'p' has shape \[1,3,4,4\], which does not match \[1,3,8,8\] outside the channel axis$/);
    refuses(model({ nodes: [node('Concat', 'cat', ['x', 'x'], ['y'], { axis: int(4) })], output: 'y' }), /^node 'cat' \(Concat\): axis 4 is out of range for a rank-4 input \(expected -4 … 3\)$/);
  });

  it('LRN size 0, Softmax and Flatten axes out of range, Reshape to -2 or copying a dimension the input lacks', () => {
    refuses(model({ nodes: [node('LRN', 'n', ['x'], ['y'], { size: int(0) })], output: 'y' }), /^node 'n' \(LRN\): attribute 'size' is required and must be ≥ 1, got 0$/);
    refuses(model({ nodes: [node('Softmax', 's', ['x'], ['y'], { axis: int(7) })], output: 'y' }), /^node 's' \(Softmax\): axis 7 is out of range for a rank-4 input/);
    refuses(model({ nodes: [node('Flatten', 'f', ['x'], ['y'], { axis: int(5) })], output: 'y' }), /^node 'f' \(Flatten\): axis 5 is out of range for a rank-4 input \(expected -4 … 4\)$/);
    refuses(model({ nodes: [node('Reshape', 'r', ['x', 's'], ['y'])], weights: [i64('s', [1, -2, -96])], output: 'y' }), /^node 'r' \(Reshape\): shape \[1,-2,-96\] has -2 at position 1; expected -1, 0 or a positive size$/);
    refuses(model({ nodes: [node('Reshape', 'r', ['x', 's'], ['y'])], weights: [i64('s', [1, 3, 8, 8, 0])], output: 'y' }), /^node 'r' \(Reshape\): shape \[1,3,8,8,0\] copies dimension 4 \(a 0 there\), which \[1,3,8,8\] does not have$/);
  });

  it('BatchNormalization: statistics that are not [C], spatial = 0; Add: a constant of higher rank than its input', () => {
    const bn = (dims: number[], attributes: Record<string, OnnxAttribute> = {}) => model({
      nodes: [node('BatchNormalization', 'bn', ['x', 's', 'b', 'm', 'v'], ['y'], attributes)],
      weights: [f32('s', dims), f32('b', [3]), f32('m', [3]), f32('v', [3])], output: 'y',
    });
    refuses(bn([1, 3]), /^node 'bn' \(BatchNormalization\): initializer 's' has shape \[1,3\]; expected \[3\]$/);
    refuses(bn([3], { spatial: int(0) }), /^node 'bn' \(BatchNormalization\): spatial = 0 .* is not supported$/);
    refuses(model({ nodes: [node('Add', 'a', ['x', 'k'], ['y'])], weights: [f32('k', [1, 1, 1, 1, 1])], output: 'y' }),
      /^node 'a' \(Add\): activation 'x' \[1,3,8,8\] would be broadcast to \[1,1,3,8,8\], a higher rank: its batch dimension would not be the result's, which is not supported$/);
  });

  it('element-wise ops: operands that do not broadcast, a broadcast along the batch, more than two Max inputs, an activation as PRelu slope or Pow exponent, Gelu approximate', () => {
    const two = (op: string, a: [string, (number | string | null)[]], weights: OnnxTensor[], inputs: string[], opset = 13, attributes: Record<string, OnnxAttribute> = {}) =>
      model({ input: a, nodes: [node(op, 'e', inputs, ['y'], attributes)], weights, output: 'y', opset });
    refuses(two('Mul', ['x', [1, 3, 8, 8]], [f32('k', [5])], ['x', 'k']), /^node 'e' \(Mul\): operands 'x' \[1,3,8,8\], 'k' \[5\] do not broadcast: dimension 3 of the result would be both 8 and 5$/);
    refuses(two('Add', ['x', [2, 3, 8, 8]], [f32('k', [2, 3, 1, 1])], ['x', 'k']), /^node 'e' \(Add\): constant 'k' \[2,3,1,1\] has a batch dimension of 2; expected 1/);
    refuses(two('Max', ['x', [1, 3, 8, 8]], [], ['x', 'x', 'x']), /^node 'e' \(Max\): has 3 inputs; the engine supports max of at most 2$/);
    refuses(two('PRelu', ['x', [1, 3, 8, 8]], [], ['x', 'x']), /^node 'e' \(PRelu\): its slope 'x' must be a constant/);
    refuses(two('Pow', ['x', [1, 3, 8, 8]], [], ['x', 'x']), /^node 'e' \(Pow\): its exponent 'x' must be a constant/);
    refuses(two('Pow', ['x', [1, 3, 8, 8]], [f32('e', [3])], ['x', 'e']), /^node 'e' \(Pow\): its exponent 'e' has shape \[3\]; only a scalar exponent is supported$/);
    refuses(two('Gelu', ['x', [1, 3, 8, 8]], [], ['x'], 20, { approximate: { type: 'string', value: 'fast' } }), /^node 'e' \(Gelu\): attribute 'approximate' is 'fast'; expected 'none' or 'tanh'$/);
    // A per-channel constant stays an affine op (foldable into a conv); a [W] constant, or a constant divided by x, is a broadcast op.
    const kinds = (op: string, k: number[], inputs: string[]) => lower(fromFile(model({
      nodes: [node(op, 'e', inputs, ['e_out']), node('GlobalAveragePool', 'g', ['e_out'], ['y'])], weights: [f32('k', k)], output: 'y',
    }))).ops.map((o) => o.kind);
    expect(kinds('Mul', [3, 1, 1], ['x', 'k'])).toEqual(['affine', 'avgpool']);
    expect(kinds('Div', [3, 1, 1], ['k', 'x'])).toEqual(['binary', 'avgpool']);
    expect(kinds('Sub', [8], ['x', 'k'])).toEqual(['binary', 'avgpool']);
  });

  it('Clip: bounds as attributes before opset 11, as constant scalar inputs from 11 (either may be omitted), nothing else', () => {
    const scalar = (name: string, v: number): OnnxTensor => ({ name, dims: [], dataType: 'float32', data: Float32Array.of(v) });
    const clip = (opset: number, inputs: string[], attributes: Record<string, OnnxAttribute> = {}, weights: OnnxTensor[] = []) =>
      model({ opset, input: ['x', [1, 10, 1, 1]], nodes: [node('Clip', 'c', inputs, ['y'], attributes)], weights: [scalar('lo', -1), scalar('hi', 6), ...weights], output: 'y' });
    const f = (value: number): OnnxAttribute => ({ type: 'float', value });
    const bounds = (m: OnnxModel) => {
      const op = lower(fromFile(m)).ops.find((o) => o.kind === 'activation' && o.fn === 'Clip');
      return op?.kind === 'activation' ? [op.alpha, op.beta] : undefined;
    };
    const MAX = 3.4028234663852886e38; // float32's largest: Clip-6's defaults
    expect(bounds(clip(13, ['x', 'lo', 'hi']))).toEqual([-1, 6]);
    expect(bounds(clip(11, ['x', '', 'hi']))).toEqual([-MAX, 6]);
    expect(bounds(clip(13, ['x', 'lo']))).toEqual([-1, MAX]);
    expect(bounds(clip(10, ['x'], { min: f(0), max: f(6) }))).toEqual([0, 6]);
    expect(bounds(clip(6, ['x'], { max: f(0.5) }))).toEqual([-MAX, 0.5]);
    refuses(clip(13, ['x'], { min: f(0) }), /^node 'c' \(Clip\): attribute 'min' is Clip's before opset 11; at opset 13 give min and max as inputs 1 and 2$/);
    refuses(clip(10, ['x', 'lo', 'hi']), /^node 'c' \(Clip\): has 3 inputs; before opset 11 \(model opset 10\) min and max are attributes$/);
    refuses(clip(13, ['x', 'x']), /^node 'c' \(Clip\): its min 'x' must be a constant \(a float32 initializer\), not an activation$/);
    refuses(clip(13, ['x', 'lo', 'v'], {}, [f32('v', [2])]), /^node 'c' \(Clip\): its max 'v' has shape \[2\]; expected a scalar$/);
    refuses(clip(13, ['x', 'lo', 'nobody']), /^node 'c' \(Clip\): reads 'nobody', which no initializer holds/);
  });

  it('node structure: too many inputs, no output, an output defined twice, an unrecognized attribute, an input nobody defines', () => {
    refuses(model({ nodes: [node('Relu', 'r', ['x', 'x'], ['y'])], output: 'y' }), /^node 'r' \(Relu\): has 2 inputs; expected 1$/);
    refuses(model({ nodes: [node('Relu', 'r', ['x'], [])], output: 'y' }), /^node 'r' \(Relu\): has 0 outputs; expected 1$/);
    refuses(model({ nodes: [node('Relu', 'r', ['x'], [''])], output: 'y' }), /^node 'r' \(Relu\): output 0 has no name$/);
    refuses(model({ nodes: [node('Relu', 'r1', ['x'], ['y']), node('Relu', 'r2', ['x'], ['y'])], output: 'y' }),
      /^node 'r2' \(Relu\): output 'y' is already defined \(by an earlier output\); every tensor name must be defined once$/);
    refuses(model({ nodes: [node('Relu', 'r', ['x'], ['x'])], output: 'x' }), /^node 'r' \(Relu\): output 'x' is already defined \(the graph input\)/);
    refuses(conv({ strid: ints(2, 2) }), /^node 'c' \(Conv\): unrecognized attribute 'strid' \(Conv has auto_pad, dilations, group, kernel_shape, pads, strides\)$/);
    refuses(model({ nodes: [node('Dropout', 'd', ['x', 'nowhere'], ['y'])], output: 'y' }), /^node 'd' \(Dropout\): reads 'nowhere', which no earlier node produces and no initializer holds$/);
  });

  it('an attribute of the wrong type is a GradcamError naming the node (was a plain Error: a bug, to the CLI)', () => {
    refuses(conv({ strides: { type: 'string', value: '2' } }), /^node 'c' \(Conv\): attribute 'strides' should be a list of ints, got string$/);
    refuses(model({ nodes: [node('LRN', 'n', ['x'], ['y'], { size: { type: 'float', value: 5 } })], output: 'y' }), /^node 'n' \(LRN\): attribute 'size' should be an int, got float$/);
  });

  it('an empty op type, and a model with no input', () => {
    refuses(model({ nodes: [node('', 'n', ['x'], ['y'])], output: 'y' }), /^node 'n' \(\): the node has no op type; supported ops: [A-Za-z, ]*\bConv\b/);
    refuses({ ...classifier(), inputs: [] }, /^the model has no input \(other than initializers\); expected one image input$/);
  });

  it('the graph input: a channel dimension of 0, a negative one, one with no size; open height and width take the stated size', () => {
    const relu = (shape: (number | string | null)[]) => model({ input: ['x', shape], nodes: [node('Relu', 'r', ['x'], ['y'])], output: 'y' });
    refuses(relu([1, 0, 8, 8]), /^dimension 1 of input 'x' is 0; expected ≥ 1$/);
    refuses(relu([1, -3, 8, 8]), /^dimension 1 of input 'x' is -3; expected ≥ 1$/);
    refuses(relu([1, null, 8, 8]), /^dimension 1 of input 'x' has no size \(neither a value nor a name\); only the batch, height and width may be unknown$/);
    refuses(relu([1, 'C', 8, 8]), /^input 'x' has a symbolic size 'C' at axis 1 \(the channels of a NCHW input\); only the batch, height and width may be symbolic$/);
    // Height and width left open (0, no size, a dim_param): the default 224, or the size asked for; NHWC's are axes 1 and 2.
    const open = (shape: (number | string | null)[]) => {
      const m = classifier();
      m.inputs[0].shape = shape;
      return fromFile(m);
    };
    expect(lower(open([1, 3, 0, 8])).input.shape).toEqual([1, 3, 224, 8]);
    expect(lower(open([1, 3, null, 'W'])).input.shape).toEqual([1, 3, 224, 224]);
    expect(lower(open(['N', 3, 'H', 'W']), { inputSize: [32, 48] }).input.shape).toEqual([1, 3, 32, 48]);
    // An NHWC input's open axes are 1 and 2 (the channel axis 3 is 3); lowered as far as the Conv, which reads NCHW.
    expect(() => lower(open([1, 'H', 'W', 3]), { inputSize: [16, 20] })).toThrow(/^node 'conv' \(Conv\): weights 'w' expect 3 input channels, but 'x' has 16$/);
    refuses(relu([1, 3, 2 ** 20, 2 ** 20]), /^input 'x' has shape \[1,3,1048576,1048576\]: 3298534883328 values per image is more than the engine's limit/);
    // A symbolic batch is still the batch.
    const symbolic = classifier();
    symbolic.inputs[0].shape = ['N', 3, 8, 8];
    expect(lower(fromFile(symbolic)).batch).toBe(1);
    expect(lower(fromFile(symbolic), { batch: 3 }).batch).toBe(3);
  });

  it('tensors of rank other than 2 to 5 (rank 5 for channel shuffles; rank 5 was once accepted and misread by 4-D kernels)', () => {
    refuses(model({ nodes: [node('Reshape', 'r', ['x', 's'], ['y'])], weights: [i64('s', [1, 3, 2, 4, 2, 4])], output: 'y' }),
      /^node 'r' \(Reshape\): its output 'y' would have shape \[1,3,2,4,2,4\]: rank 6; the engine's tensors have 2 to 5 dimensions$/);
    // A 4-D op on a rank-5 tensor is refused by the op, with the node named.
    refuses(model({ nodes: [node('Reshape', 'r', ['x', 's'], ['y']), node('MaxPool', 'p', ['y'], ['z'], { kernel_shape: ints(2, 2) })], weights: [i64('s', [1, 3, 8, 4, 2])], output: 'z' }),
      /^node 'p' \(MaxPool\): input 'y' has shape \[1,3,8,4,2\]; expected a 4-D NCHW tensor$/);
    refuses(model({ input: ['x', [1, 1, 1, 1]], nodes: [node('Reshape', 'r', ['x', 's'], ['y'])], weights: [i64('s', [1])], output: 'y' }),
      /^node 'r' \(Reshape\): its output 'y' would have shape \[1\]: rank 1;/);
  });

  it('a long (corrupt) list is shortened in the message', () => {
    refuses(conv({ strides: ints(...Array.from({ length: 100 }, () => 1)) }), /^node 'c' \(Conv\): attribute 'strides' has 100 values \[1,1,1,1,1,1,… \(100 values\)\]; expected 2 for a 2-D op$/);
  });

  it('zero-size tensors are refused where a node reads them, with the node named', () => {
    refuses(model({ nodes: [node('Add', 'a', ['x', 'k'], ['y'])], weights: [f32('k', [0])], output: 'y' }), /^node 'a' \(Add\): initializer 'k' has shape \[0\]; a weight needs every dimension ≥ 1$/);
    refuses(model({ nodes: [node('Reshape', 'r', ['x', 's'], ['y'], { allowzero: int(1) })], weights: [i64('s', [1, 0])], output: 'y' }),
      /^node 'r' \(Reshape\): shape \[1,0\] has a 0 at position 1 with allowzero = 1/);
  });
});

describe('names from the file never reach Object\'s prototype', () => {
  it('op types __proto__, constructor, valueOf… are unsupported ops (was "lowering is not a function", a TypeError for valueOf)', () => {
    for (const op of ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf']) {
      refuses(model({ nodes: [node(op, 'n', ['x'], ['y'])], output: 'y' }), new RegExp(`^node 'n' \\(${op}\\): op type ${op} is not supported; supported ops: [A-Za-z, ]*\\bConv\\b`));
    }
  });

  it('an attribute named __proto__ or constructor is an unrecognized attribute, not a prototype', () => {
    for (const key of ['__proto__', 'constructor', 'valueOf']) {
      const m = conv({ [key]: int(1) });
      expect(Object.hasOwn(m.nodes[0].attributes, key)).toBe(true);
      const decoded = fromFile(m);
      expect(Object.getPrototypeOf(decoded.nodes[0].attributes)).toBe(null);
      refuses(m, new RegExp(`^node 'c' \\(Conv\\): unrecognized attribute '${key}'`));
    }
  });

  it('tensors named __proto__, constructor, toString are ordinary tensors', () => {
    const g = lower(fromFile(classifier({ x: 'constructor', w: '__proto__', relu: 'toString', fc: 'hasOwnProperty' })));
    expect(g.input.name).toBe('constructor');
    expect(g.tensors.get('toString')!.shape).toEqual([1, 4, 8, 8]);
    expect(candidateLayers(g).map((l) => l.name)).toEqual(['toString']);
  });

  it('a Constant node whose output is named __proto__ is an initializer like any other', () => {
    const m = classifier({ fc: '__proto__' });
    const w = m.initializers.get('__proto__')!;
    m.initializers.delete('__proto__');
    m.nodes.unshift(node('Constant', 'k', [], ['__proto__'], { value: { type: 'tensor', value: w } }));
    expect(lower(fromFile(m)).tensors.get('logits')!.shape).toEqual([1, 10]);
  });

  it('generated model __proto__ or constructor is unknown (was a TypeError, exit 3)', async () => {
    for (const name of ['__proto__', 'constructor']) {
      expect(refusal(() => generatedModelPath(name)).message).toBe(`unknown generated model '${name}'`);
      const err = await ensureGeneratedModel(name).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(GradcamError);
      expect((err as GradcamError).message).toBe(`unknown generated model '${name}'`);
    }
  });
});

describe('the decoder refuses malformed files in its own words', () => {
  it('an initializer listed twice, an attribute given twice', () => {
    const twice = classifier();
    const bytes = encodeOnnx({ ...twice, initializers: new Map([...twice.initializers, ['b2', f32('b', [4])]]) });
    expect(refusal(() => decodeOnnx(bytes)).message).toBe("initializer 'b' is listed twice; tensor names must be unique");
    // (A Record cannot hold one name twice: written with the protobuf classes.)
    const group = { name: 'group', type: onnx.AttributeProto.AttributeType.INT, i: 1 };
    const dup = onnx.ModelProto.encode({
      irVersion: 7, opsetImport: [{ domain: '', version: 13 }],
      graph: { name: 'g', node: [{ name: 'c', opType: 'Conv', input: ['x', 'w'], output: ['y'], attribute: [group, group] }] },
    }).finish();
    expect(refusal(() => decodeOnnx(dup)).message).toBe("node 'c' (Conv): attribute 'group' is given twice");
  });

  it('dims that overflow, or many with a 0 among huge ones (fuzz seed 1 case 34881: raw data read as dims, "need NaN")', () => {
    const tensor = (dims: number[]) => {
      const m = conv({});
      m.initializers.set('w', { ...f32('w', [4, 3, 3, 3]), dims });
      return encodeOnnx(m);
    };
    const many = [...Array.from({ length: 20 }, () => 2 ** 40), 0];
    expect(refusal(() => decodeOnnx(tensor(many))).message).toBe("initializer 'w': raw_data holds 432 bytes, but dims [1099511627776,1099511627776,1099511627776,1099511627776,1099511627776,1099511627776,… (21 dims)] need 0 (float32)");
    expect(refusal(() => decodeOnnx(tensor([2 ** 40, 2 ** 40]))).message).toBe("initializer 'w': dims [1099511627776,1099511627776] describe 1.2089258196146292e+24 values, more than any file holds");
  });

  it('messages nested deeper than the stack: a specific error, not "Maximum call stack size exceeded"', () => {
    // Field 15 of ModelProto (unknown) as wire type 3 (start group), 200,000 times: each opens a group.
    const bytes = new Uint8Array(200_000).fill((15 << 3) | 3);
    expect(refusal(() => decodeOnnx(bytes)).message).toMatch(/^not a readable ONNX model: the protobuf decoder stopped \(messages nested too deeply\)/);
  });
});

describe('fusion', () => {
  it('an Add after a Flatten of a convolution is not folded into the convolution\'s channels', () => {
    // conv [1, 2, 2, 2] → Flatten [1, 8] → Add a constant [8]: 8 "channels" over the conv's 2. Before
    // the fix, fusion folded scale/shift 0 and 1 into the conv's two channels and dropped the other 6.
    const m = model({
      input: ['x', [1, 3, 2, 2]],
      nodes: [
        node('Conv', 'c', ['x', 'w'], ['y']),
        node('Flatten', 'f', ['y'], ['yf'], { axis: int(1) }),
        node('Add', 'a', ['yf', 'k'], ['logits']),
      ],
      weights: [f32('w', [2, 3, 1, 1]), f32('k', [8])],
      output: 'logits',
    });
    const g = lower(fromFile(m));
    expect(g.ops.map((o) => `${o.kind}:${o.name}`)).toEqual(['conv:c', 'affine:a']);
    const affine = g.ops[1];
    expect(affine.kind === 'affine' && Array.from(affine.shift)).toEqual(Array.from(m.initializers.get('k')!.data as Float32Array));
  });

  it('still folds a BatchNormalization and a Relu into the convolution before them', () => {
    const m = model({
      nodes: [
        node('Conv', 'c', ['x', 'w'], ['y']),
        node('BatchNormalization', 'bn', ['y', 's', 'b', 'm', 'v'], ['z']),
        node('Relu', 'r', ['z'], ['a']),
        node('GlobalAveragePool', 'gap', ['a'], ['logits']),
      ],
      weights: [f32('w', [4, 3, 3, 3]), ...['s', 'b', 'm'].map((n) => f32(n, [4])), { ...f32('v', [4]), data: Float32Array.of(1, 2, 3, 4) }],
      output: 'logits',
    });
    const g = lower(fromFile(m));
    expect(g.ops.map((o) => o.name)).toEqual(['c+bn+r', 'gap']);
    expect([...g.fusedAway.keys()]).toEqual(['y', 'z']);
  });
});

describe('lowering is linear in the number of nodes', () => {
  // Before the fix, fuse.ts scanned every op for each op: `gradcam info` took 15 s at 20,000 Relu nodes,
  // 53 s at 40,000, and did not finish in 130 s at 80,000; this test took 117 s on main (past its 60 s
  // timeout). Now it takes about a second.
  it('an 80,000-node Relu chain: encode, decode, lower, candidate layers and the dependency walks', () => {
    const n = 80_000;
    const nodes = Array.from({ length: n }, (_, i) => node('Relu', `r${i}`, [i === 0 ? 'x' : `t${i - 1}`], [`t${i}`]));
    nodes.push(node('GlobalAveragePool', 'gap', [`t${n - 1}`], ['logits']));
    const m = model({ input: ['x', [1, 2, 2, 2]], nodes, output: 'logits' });
    const t0 = performance.now();
    const decoded = fromFile(m);
    const g = lower(decoded);
    expect(g.ops.length).toBe(n + 1);
    const layers = candidateLayers(g);
    expect(layers.length).toBe(n);
    expect(ancestors(g, 'logits').size).toBe(n + 2);
    expect(descendants(g, ['x']).size).toBe(n + 2);
    const seconds = (performance.now() - t0) / 1000;
    console.log(`80,000-node Relu chain: encode + decode + lower + layers + deps in ${seconds.toFixed(2)} s`);
    expect(seconds).toBeLessThan(20);
  }, 60_000);
});

describe('the checks accept every model the project builds', () => {
  it('every kernel test case still lowers', () => {
    for (const c of kernelCases()) {
      expect(() => lower(fromFile(c.model), { taps: c.taps }), c.name).not.toThrow();
    }
  });
});

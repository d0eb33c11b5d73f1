/**
 * Tests of the float64 CPU reference (test/reference/), the oracle that the GPU kernels and the
 * whole Grad-CAM are later judged against. It is judged here by two things it shares no code with:
 *   - forward: onnxruntime-node on the same ONNX bytes;
 *   - backward: central finite differences of the reference's own forward, in float64.
 */
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import type { OnnxAttribute, OnnxModel, OnnxTensor } from '../src/onnx/model.ts';
import { encodeOnnx } from '../src/onnx/write.ts';
import { SUPPORTED_OPS } from '../src/ops/index.ts';
import { gradcamReference, normalizeMinMax, upsampleBilinear } from './reference/gradcam.ts';
import { kernelCases } from './helpers/kernel-cases.ts';
import { ROUNDING_OP_TYPES } from './helpers/magnitude.ts';
import { gradientsReference, REFERENCE_OP_TYPES, runReference } from './reference/graph.ts';
import { buildModel, float, int, int64, ints, node, weight } from './reference/models.ts';
import * as ew from './reference/elementwise.ts';
import { maxPoolBackward } from './reference/ops.ts';
import { maxAbs, maxAbsDiff, numel, randomTensor, rng, tensor, type Tensor } from './reference/tensor.ts';

const random = rng(20240611);
const rand = (shape: number[], lo = -1, hi = 1) => randomTensor(shape, random, lo, hi);

/** Values that are all distinct (1/128 apart, exact in float32), shuffled: no ties inside a max-pool window. */
function distinct(shape: number[], lo = -1): Tensor {
  const n = numel(shape);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return tensor(shape, order.map((k) => lo + k / 128));
}

/** Values with |x| ≥ 0.05, so a finite-difference step never crosses ReLU's kink at 0. */
function awayFromZero(shape: number[]): Tensor {
  const t = rand(shape, 0.05, 1);
  for (let i = 0; i < t.data.length; i++) if (random() < 0.5) t.data[i] = -t.data[i];
  return t;
}

interface Case { name: string; model: OnnxModel; inputs: Record<string, Tensor>; ortRefuses?: string }

/** A one-node model y = op(inputs…, weights…). */
function opCase(name: string, op: string, inputs: Record<string, Tensor>, o: {
  weights?: OnnxTensor[]; attrs?: Record<string, OnnxAttribute>; opset?: number; nodeInputs?: string[];
} = {}): Case {
  const weights = o.weights ?? [];
  const nodeInputs = o.nodeInputs ?? [...Object.keys(inputs), ...weights.map((w) => w.name)];
  const model = buildModel({
    opset: o.opset,
    inputs: Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, t.shape])),
    weights,
    nodes: [node(op, nodeInputs, ['y'], o.attrs)],
    outputs: ['y'],
  });
  return { name, model, inputs };
}

const pool = (k: number[], s: number[], pads: number[], ceil: number, extra: Record<string, OnnxAttribute> = {}) =>
  ({ kernel_shape: ints(k), strides: ints(s), pads: ints(pads), ceil_mode: int(ceil), ...extra });

const CASES: Case[] = [
  // Conv: odd sizes, stride 2, asymmetric pads, 1×1 spatial, no bias, non-square kernels, GoogLeNet's 7×7/2.
  opCase('conv 3×3/2 pads [1,0,2,1], N=2', 'Conv', { x: rand([2, 3, 7, 5]) }, { weights: [weight('w', rand([5, 3, 3, 3])), weight('b', rand([5]))], attrs: { strides: ints([2, 2]), pads: ints([1, 0, 2, 1]) } }),
  opCase('conv 1×1 on 1×1 spatial, no bias', 'Conv', { x: rand([1, 5, 1, 1]) }, { weights: [weight('w', rand([3, 5, 1, 1]))] }),
  opCase('conv 5×3 strides [1,2] pads [2,1,0,2]', 'Conv', { x: rand([1, 3, 9, 11]) }, { weights: [weight('w', rand([6, 3, 5, 3])), weight('b', rand([6]))], attrs: { strides: ints([1, 2]), pads: ints([2, 1, 0, 2]) } }),
  opCase('conv 7×7/2 pads 3 (GoogLeNet conv1)', 'Conv', { x: rand([1, 3, 15, 13]) }, { weights: [weight('w', rand([4, 3, 7, 7])), weight('b', rand([4]))], attrs: { strides: ints([2, 2]), pads: ints([3, 3, 3, 3]) } }),
  // MaxPool: Caffe-style asymmetric pads, ceil_mode, padding that must never win (all inputs negative).
  opCase('maxpool 3/2 pads [0,0,1,1]', 'MaxPool', { x: distinct([1, 3, 9, 7]) }, { attrs: pool([3, 3], [2, 2], [0, 0, 1, 1], 0) }),
  opCase('maxpool 3/2 ceil_mode', 'MaxPool', { x: distinct([2, 3, 8, 10]) }, { attrs: pool([3, 3], [2, 2], [0, 0, 0, 0], 1) }),
  opCase('maxpool 3/1 pads 1, all negative', 'MaxPool', { x: distinct([1, 5, 6, 7], -3) }, { attrs: pool([3, 3], [1, 1], [1, 1, 1, 1], 0) }),
  opCase('maxpool 2/2 ceil_mode on 7×7 (torchvision maxpool4)', 'MaxPool', { x: distinct([1, 3, 7, 7]) }, { attrs: pool([2, 2], [2, 2], [0, 0, 0, 0], 1) }),
  opCase('maxpool 2/2 ceil_mode pads 1: last window starts in padding, dropped', 'MaxPool', { x: distinct([1, 2, 5, 5], -3) }, { attrs: pool([2, 2], [2, 2], [1, 1, 1, 1], 1) }),
  // AveragePool: count_include_pad both ways, with and without ceil_mode.
  ...[0, 1].flatMap((cip) => [
    opCase(`avgpool 3/2 pads [1,1,0,2] cip=${cip}`, 'AveragePool', { x: rand([1, 3, 7, 8]) }, { attrs: pool([3, 3], [2, 2], [1, 1, 0, 2], 0, { count_include_pad: int(cip) }) }),
    opCase(`avgpool 3/2 ceil_mode pads [1,0,1,0] cip=${cip}`, 'AveragePool', { x: rand([2, 3, 8, 9]) }, { attrs: pool([3, 3], [2, 2], [1, 0, 1, 0], 1, { count_include_pad: int(cip) }) }),
    opCase(`avgpool 2/2 ceil_mode no pads cip=${cip}`, 'AveragePool', { x: rand([1, 3, 5, 7]) }, { attrs: pool([2, 2], [2, 2], [0, 0, 0, 0], 1, { count_include_pad: int(cip) }) }),
  ]),
  opCase('avgpool 7/1 on 7×7 (GoogLeNet pool5)', 'AveragePool', { x: rand([1, 6, 7, 7]) }, { attrs: pool([7, 7], [1, 1], [0, 0, 0, 0], 0) }),
  opCase('global average pool', 'GlobalAveragePool', { x: rand([2, 5, 3, 7]) }),
  opCase('global average pool on 1×1', 'GlobalAveragePool', { x: rand([1, 3, 1, 1]) }),
  // LRN: GoogLeNet's parameters, and large alpha (so the nonlinear term matters) with odd and even sizes.
  opCase('LRN size 5 (GoogLeNet)', 'LRN', { x: rand([1, 7, 3, 5], -10, 10) }, { attrs: { size: int(5), alpha: float(1e-4), beta: float(0.75), bias: float(1) } }),
  opCase('LRN size 5, alpha 0.5', 'LRN', { x: rand([1, 7, 3, 5]) }, { attrs: { size: int(5), alpha: float(0.5), beta: float(0.75), bias: float(1) } }),
  // onnxruntime's CPU LRN refuses even sizes (lrn.h: size_ % 2 == 1); its forward is checked by hand below.
  { ...opCase('LRN size 4 (even)', 'LRN', { x: rand([2, 6, 4, 3]) }, { attrs: { size: int(4), alpha: float(0.8), beta: float(0.6), bias: float(2) } }), ortRefuses: 'even LRN size' },
  opCase('LRN size 3, 2 channels', 'LRN', { x: rand([1, 2, 1, 3]) }, { attrs: { size: int(3), alpha: float(0.9), beta: float(1.2), bias: float(0.5) } }),
  // Gemm / MatMul.
  opCase('gemm transB, C [N], alpha/beta', 'Gemm', { a: rand([3, 7]) }, { weights: [weight('b', rand([5, 7])), weight('c', rand([5]))], attrs: { transB: int(1), alpha: float(0.7), beta: float(1.3) } }),
  opCase('gemm transA, C [M,N]', 'Gemm', { a: rand([7, 3]) }, { weights: [weight('b', rand([7, 5])), weight('c', rand([3, 5]))], attrs: { transA: int(1) } }),
  opCase('gemm M=1, C [1,N] (GoogLeNet classifier)', 'Gemm', { a: rand([1, 9]) }, { weights: [weight('b', rand([6, 9])), weight('c', rand([1, 6]))], attrs: { transB: int(1) } }),
  opCase('gemm without C', 'Gemm', { a: rand([2, 4]) }, { weights: [weight('b', rand([4, 3]))] }),
  opCase('matmul', 'MatMul', { a: rand([3, 7]) }, { weights: [weight('b', rand([7, 4]))] }),
  // Add: two activations, and broadcast constants.
  opCase('add same shape', 'Add', { a: rand([2, 3, 4, 5]), b: rand([2, 3, 4, 5]) }),
  opCase('add broadcast [C,1,1]', 'Add', { x: rand([2, 3, 4, 5]) }, { weights: [weight('c', rand([3, 1, 1]))] }),
  opCase('add broadcast [W]', 'Add', { x: rand([1, 3, 2, 5]) }, { weights: [weight('c', rand([5]))] }),
  opCase('add, broadcast activation [1,3,1,1]', 'Add', { a: rand([2, 3, 4, 5]), b: rand([1, 3, 1, 1]) }),
  // Elementwise and shape ops.
  opCase('relu', 'Relu', { x: awayFromZero([2, 3, 5, 7]) }),
  opCase('sigmoid on ±8', 'Sigmoid', { x: rand([2, 3, 4, 5], -8, 8) }),
  // Clip: bounds as inputs (opset ≥ 11; scalars, either one omitted) and as attributes (opset < 11).
  opCase('clip opset 13, min and max inputs', 'Clip', { x: rand([2, 3, 4, 5], -2, 2) }, { weights: [weight('min', tensor([], [-0.5])), weight('max', tensor([], [0.75]))] }),
  opCase('clip opset 11, max input only', 'Clip', { x: rand([1, 3, 4, 5], -8, 8) }, { weights: [weight('max', tensor([], [6]))], nodeInputs: ['x', '', 'max'], opset: 11 }),
  opCase('clip opset 10, attributes min 0 max 6 (ReLU6)', 'Clip', { x: rand([1, 4, 3, 5], -8, 8) }, { attrs: { min: float(0), max: float(6) }, opset: 10 }),
  opCase('softmax opset 13, last axis', 'Softmax', { x: rand([3, 7], -5, 5) }),
  opCase('softmax opset 13, 3-D', 'Softmax', { x: rand([2, 3, 5], -5, 5) }),
  opCase('softmax opset 11, axis 1 on 4-D (flattened tail)', 'Softmax', { x: rand([2, 3, 2, 2], -5, 5) }, { opset: 11 }),
  opCase('batchnorm eps 1e-3', 'BatchNormalization', { x: rand([2, 5, 3, 3]) }, {
    weights: [weight('s', rand([5])), weight('b', rand([5])), weight('m', rand([5])), weight('v', rand([5], 0.1, 2))], attrs: { epsilon: float(1e-3) },
  }),
  opCase('concat axis 1', 'Concat', { a: rand([2, 3, 4, 5]), b: rand([2, 1, 4, 5]), c: rand([2, 5, 4, 5]) }, { attrs: { axis: int(1) } }),
  opCase('concat axis -1', 'Concat', { a: rand([2, 3, 2]), b: rand([2, 3, 5]) }, { attrs: { axis: int(-1) } }),
  opCase('flatten axis 1', 'Flatten', { x: rand([2, 3, 2, 2]) }),
  opCase('flatten axis 2', 'Flatten', { x: rand([2, 3, 2, 2]) }, { attrs: { axis: int(2) } }),
  opCase('reshape [0,-1]', 'Reshape', { x: rand([2, 3, 4, 1]) }, { weights: [int64('shape', [0, -1])] }),
  opCase('reshape [-1,3,2]', 'Reshape', { x: rand([2, 3, 4, 1]) }, { weights: [int64('shape', [-1, 3, 2])] }),
  opCase('dropout (inference)', 'Dropout', { x: rand([1, 7, 1, 1]) }),
  opCase('identity', 'Identity', { x: rand([3, 5]) }),
  ...elementwiseCases(),
  ...layoutCases(),
  ...groupedDilatedReduceCases(),
];

/**
 * Grouped, depthwise and dilated Conv, every auto_pad, dilated MaxPool, GlobalMaxPool, and ReduceMean /
 * ReduceMax over the spatial axes with the axes as attribute (opset < 18) and as input (18) (issue 18).
 */
function groupedDilatedReduceCases(): Case[] {
  const convW = (co: number, ci: number, k: number[]) => [weight('w', rand([co, ci, ...k])), weight('b', rand([co]))];
  const autoPad = (value: string): OnnxAttribute => ({ type: 'string', value });
  return [
    opCase('conv group 3 (C_in 6 → 9), 3×3/2 pads [1,0,2,1], N=2', 'Conv', { x: rand([2, 6, 7, 5]) }, { weights: convW(9, 2, [3, 3]), attrs: { group: int(3), strides: ints([2, 2]), pads: ints([1, 0, 2, 1]) } }),
    opCase('conv depthwise ×2 (group 4, C 4 → 8), 3×3 dilation 2 pads 2', 'Conv', { x: rand([1, 4, 6, 7]) }, { weights: convW(8, 1, [3, 3]), attrs: { group: int(4), dilations: ints([2, 2]), pads: ints([2, 2, 2, 2]) } }),
    // onnxruntime refuses dilations with SAME_* ("Dilation not supported for AutoPadType::SAME_UPPER"); ONNX
    // defines the pads from the dilated extent, as the engine does; checked by finite differences here and
    // against the float64 reference in the kernel tests.
    { ...opCase('conv dilations [2,1], auto_pad SAME_UPPER', 'Conv', { x: rand([1, 3, 7, 6]) }, { weights: convW(4, 3, [3, 3]), attrs: { dilations: ints([2, 1]), auto_pad: autoPad('SAME_UPPER') } }), ortRefuses: 'dilations with auto_pad SAME_*' },
    opCase('conv group 2, 2×2/2, auto_pad SAME_LOWER', 'Conv', { x: rand([1, 4, 7, 6]) }, { weights: convW(6, 2, [2, 2]), attrs: { group: int(2), strides: ints([2, 2]), auto_pad: autoPad('SAME_LOWER') } }),
    opCase('conv 3×2/2, auto_pad VALID', 'Conv', { x: rand([1, 3, 7, 6]) }, { weights: convW(5, 3, [3, 2]), attrs: { strides: ints([2, 2]), auto_pad: autoPad('VALID') } }),
    opCase('maxpool 3×3/1 dilations 2 pads 1', 'MaxPool', { x: distinct([1, 3, 8, 7]) }, { attrs: pool([3, 3], [1, 1], [1, 1, 1, 1], 0, { dilations: ints([2, 2]) }) }),
    opCase('maxpool 2×2/2 dilations [1,2] ceil_mode', 'MaxPool', { x: distinct([1, 2, 7, 8]) }, { attrs: pool([2, 2], [2, 2], [0, 0, 0, 0], 1, { dilations: ints([1, 2]) }) }),
    opCase('maxpool 3×3/2 auto_pad SAME_UPPER', 'MaxPool', { x: distinct([1, 2, 7, 8]) }, { attrs: { kernel_shape: ints([3, 3]), strides: ints([2, 2]), auto_pad: autoPad('SAME_UPPER') } }),
    opCase('maxpool 2×2/1 auto_pad SAME_LOWER', 'MaxPool', { x: distinct([1, 2, 5, 6]) }, { attrs: { kernel_shape: ints([2, 2]), auto_pad: autoPad('SAME_LOWER') } }),
    opCase('global max pool', 'GlobalMaxPool', { x: distinct([2, 3, 4, 5]) }),
    opCase('reduce mean axes [2,3] (attribute, opset 13), keepdims 1', 'ReduceMean', { x: rand([2, 3, 4, 5]) }, { attrs: { axes: ints([2, 3]) } }),
    opCase('reduce mean axes [-2,-1] (input, opset 18), keepdims 0', 'ReduceMean', { x: rand([2, 3, 4, 5]) }, { weights: [int64('axes', [-2, -1])], attrs: { keepdims: int(0) }, opset: 18 }),
    opCase('reduce max axes [2,3] (attribute, opset 13), keepdims 0', 'ReduceMax', { x: distinct([2, 3, 4, 5]) }, { attrs: { axes: ints([2, 3]), keepdims: int(0) } }),
    opCase('reduce max axes [3,2] (input, opset 18)', 'ReduceMax', { x: distinct([1, 3, 4, 5]) }, { weights: [int64('axes', [3, 2])], opset: 18 }),
    opCase('reduce mean axis 1 (any axes: the reference is general)', 'ReduceMean', { x: rand([2, 3, 4, 5]) }, { attrs: { axes: ints([1]) } }),
  ];
}

/**
 * Layout ops, LayerNormalization and MatMul over the last axis (issue 18): permutations up to rank 5,
 * slices with negative, clamped and negative-step indices, both Split forms, every Pad mode and form,
 * Squeeze/Unsqueeze by attribute and by input, concatenation along later axes.
 */
function layoutCases(): Case[] {
  const x4 = () => rand([2, 3, 4, 5]);
  /** Split into parts, concatenated back in another order (so that every output reaches y). */
  const splitCase = (name: string, opset: number, x: Tensor, axis: number, parts: number, o: { split?: number[]; numOutputs?: boolean; catAxis?: number }): Case => {
    const outs = Array.from({ length: parts }, (_, i) => `p${i}`);
    const weights = o.split && opset >= 13 ? [int64('split', o.split)] : [];
    const attrs: Record<string, OnnxAttribute> = { axis: int(axis) };
    if (o.split && opset < 13) attrs.split = ints(o.split);
    if (o.numOutputs) attrs.num_outputs = int(parts);
    const model = buildModel({
      opset, inputs: { x: x.shape }, weights,
      nodes: [node('Split', weights.length ? ['x', 'split'] : ['x'], outs, attrs), node('Concat', [...outs].reverse(), ['y'], { axis: int(o.catAxis ?? axis) })],
      outputs: ['y'],
    });
    return { name, model, inputs: { x } };
  };
  return [
    opCase('transpose [0,2,3,1] (NCHW → NHWC)', 'Transpose', { x: x4() }, { attrs: { perm: ints([0, 2, 3, 1]) } }),
    opCase('transpose [0,3,1,2] (NHWC → NCHW)', 'Transpose', { x: x4() }, { attrs: { perm: ints([0, 3, 1, 2]) } }),
    opCase('transpose rank 5 [0,2,1,3,4] (channel shuffle)', 'Transpose', { x: rand([2, 2, 3, 4, 5]) }, { attrs: { perm: ints([0, 2, 1, 3, 4]) } }),
    opCase('transpose rank 3, default perm (reversed)', 'Transpose', { x: rand([1, 3, 4]) }),
    opCase('slice opset 13: negative, clamped and negative-step indices', 'Slice', { x: rand([2, 5, 7, 6]) }, {
      weights: [int64('starts', [1, -1, -100]), int64('ends', [100, -8, 4]), int64('axes', [1, 2, -1]), int64('steps', [2, -2, 1])],
    }),
    opCase('slice opset 13: channels 2…4 (axes omitted: from axis 0)', 'Slice', { x: rand([2, 5, 3, 3]) }, {
      weights: [int64('starts', [0, 2]), int64('ends', [2, 5])],
    }),
    opCase('slice opset 9: attributes starts, ends, axes', 'Slice', { x: rand([1, 4, 6, 5]) }, {
      attrs: { starts: ints([1, -3]), ends: ints([3, 1000]), axes: ints([1, 3]) }, opset: 9,
    }),
    splitCase('split opset 13, split input [2, 3] on channels, concatenated back reversed', 13, rand([2, 5, 3, 4]), 1, 2, { split: [2, 3] }),
    splitCase('split opset 11, split attribute [1, 3, 2] on width', 11, rand([1, 3, 4, 6]), 3, 3, { split: [1, 3, 2] }),
    splitCase('split opset 13, equal halves of channels (ShuffleNet), concatenated on axis 1', 13, rand([2, 6, 3, 3]), 1, 2, {}),
    splitCase('split opset 18, num_outputs 3 of height 7 (3, 3, 1)', 18, rand([1, 2, 7, 3]), 2, 3, { numOutputs: true }),
    opCase('pad opset 13 constant 0.5, asymmetric, a negative pad crops', 'Pad', { x: x4() }, {
      weights: [int64('pads', [0, 1, 2, -1, 0, 0, 1, 3]), weight('value', tensor([], [0.5]))],
    }),
    opCase('pad opset 13 edge', 'Pad', { x: x4() }, { weights: [int64('pads', [0, 0, 2, 1, 0, 0, 1, 3])], attrs: { mode: { type: 'string', value: 'edge' } } }),
    opCase('pad opset 13 reflect', 'Pad', { x: x4() }, { weights: [int64('pads', [0, 0, 3, 1, 0, 0, 2, 4])], attrs: { mode: { type: 'string', value: 'reflect' } } }),
    opCase('pad opset 13 reflect on a 2×2 plane with pads 1', 'Pad', { x: rand([1, 2, 2, 2]) }, { weights: [int64('pads', [0, 0, 1, 1, 0, 0, 1, 1])], attrs: { mode: { type: 'string', value: 'reflect' } } }),
    opCase('pad opset 10: attributes pads and value', 'Pad', { x: x4() }, { attrs: { pads: ints([0, 0, 1, 0, 0, 0, 0, 2]), value: float(-2) }, opset: 10 }),
    opCase('pad opset 18: axes input [2, −1], edge', 'Pad', { x: x4() }, {
      weights: [int64('pads', [1, 2, 0, 1]), int64('axes', [2, -1])], nodeInputs: ['x', 'pads', '', 'axes'], attrs: { mode: { type: 'string', value: 'edge' } }, opset: 18,
    }),
    opCase('squeeze opset 13, axes input [2, 3]', 'Squeeze', { x: rand([2, 5, 1, 1]) }, { weights: [int64('axes', [2, 3])] }),
    opCase('squeeze opset 11, axes attribute [-1]', 'Squeeze', { x: rand([2, 5, 3, 1]) }, { attrs: { axes: ints([-1]) }, opset: 11 }),
    opCase('unsqueeze opset 13, axes input [1, -1]', 'Unsqueeze', { x: rand([2, 5, 3]) }, { weights: [int64('axes', [1, -1])] }),
    opCase('unsqueeze opset 11, axes attribute [2, 3]', 'Unsqueeze', { x: rand([2, 5]) }, { attrs: { axes: ints([2, 3]) }, opset: 11 }),
    opCase('concat axis 2', 'Concat', { a: rand([2, 3, 1, 5]), b: rand([2, 3, 4, 5]) }, { attrs: { axis: int(2) } }),
    opCase('concat axis 3 of three', 'Concat', { a: rand([1, 3, 4, 2]), b: rand([1, 3, 4, 5]), c: rand([1, 3, 4, 1]) }, { attrs: { axis: int(3) } }),
    opCase('concat axis 2 of rank 5', 'Concat', { a: rand([1, 2, 3, 2, 2]), b: rand([1, 2, 1, 2, 2]) }, { attrs: { axis: int(2) } }),
    opCase('layer norm opset 17 over the last axis of [N, H, W, C], eps 1e-6', 'LayerNormalization', { x: rand([2, 3, 4, 7], -2, 2) }, {
      weights: [weight('scale', rand([7], 0.5, 1.5)), weight('b', rand([7]))], attrs: { axis: int(-1), epsilon: float(1e-6) }, opset: 17,
    }),
    opCase('layer norm opset 17 from axis 1 (C, H, W), no bias', 'LayerNormalization', { x: rand([2, 3, 2, 2], -2, 2) }, {
      weights: [weight('scale', rand([3, 2, 2], 0.5, 1.5))], attrs: { axis: int(1) }, opset: 17,
    }),
    opCase('matmul [N, H, W, C] × [C, D] (ConvNeXt pointwise)', 'MatMul', { a: rand([2, 3, 4, 5]) }, { weights: [weight('b', rand([5, 6]))] }),
    opCase('reduce mean over the last axis of [N, H, W, C], keepdims 0', 'ReduceMean', { x: rand([2, 3, 4, 5]) }, { attrs: { axes: ints([-1]), keepdims: int(0) } }),
    opCase('reduce mean over the last axis (input, opset 18), keepdims 1', 'ReduceMean', { x: rand([2, 3, 4, 5]) }, { weights: [int64('axes', [3])], opset: 18 }),
  ];
}

/**
 * Element-wise ops with numpy broadcasting (two activations, an activation and a constant, the
 * squeeze-and-excite [N,C,1,1] × [N,C,H,W], [C,1,1], [1], [W]) and the activations (issue 18). Inputs
 * keep their distance from kinks (awayFromZero; HardSigmoid's and HardSwish's corners are at ±2.5, ±3,
 * which uniform values on a grid of 1/128 never hit within the 1e-6 step) and Max/Min operands apart.
 */
function elementwiseCases(): Case[] {
  const x4 = (lo = -1, hi = 1) => rand([2, 3, 4, 5], lo, hi);
  const scalarW = (name: string, v: number) => weight(name, tensor([], [v]));
  const act = (type: string, x: Tensor, attrs: Record<string, OnnxAttribute> = {}, opset?: number) => opCase(`${type} ${JSON.stringify(attrs).replace(/"/g, '')}`, type, { x }, { attrs, opset });
  return [
    opCase('sub, broadcast activation [N,C,1,1] from [N,C,H,W]', 'Sub', { a: x4(), b: rand([2, 3, 1, 1]) }),
    opCase('sub, constant [C,1,1] minus activation', 'Sub', { x: x4() }, { weights: [weight('c', rand([3, 1, 1]))], nodeInputs: ['c', 'x'] }),
    opCase('mul, squeeze-and-excite [N,C,1,1] × [N,C,H,W]', 'Mul', { s: rand([2, 3, 1, 1]), x: x4() }),
    opCase('mul by a constant [W]', 'Mul', { x: x4() }, { weights: [weight('c', rand([5]))] }),
    opCase('mul by a scalar constant [1]', 'Mul', { x: x4() }, { weights: [weight('c', rand([1]))] }),
    opCase('div of two activations, divisor broadcast [N,1,H,W], in [0.5, 2]', 'Div', { a: x4(), b: rand([2, 1, 4, 5], 0.5, 2) }),
    opCase('div of a constant [C,1,1] by an activation in [0.5, 2]', 'Div', { x: x4(0.5, 2) }, { weights: [weight('c', rand([3, 1, 1]))], nodeInputs: ['c', 'x'] }),
    opCase('max, broadcast [N,C,H,W] and [N,C,1,1] (distinct values)', 'Max', { a: distinct([2, 3, 4, 5]), b: tensor([2, 3, 1, 1], [0.3, -0.2, 0.1, 0.05, -0.35, 0.25].map((v) => v + 1 / 256)) }),
    opCase('min with a constant [C,1,1] (distinct values)', 'Min', { x: distinct([2, 3, 4, 5]) }, { weights: [weight('c', tensor([3, 1, 1], [0.1, -0.3, 0.2].map((v) => v + 1 / 256)))] }),
    opCase('sum of three: [N,C,H,W], [N,C,1,1], constant [W]', 'Sum', { a: x4(), b: rand([2, 3, 1, 1]) }, { weights: [weight('c', rand([5]))] }),
    opCase('prelu, slope per channel [C,1,1]', 'PRelu', { x: awayFromZero([2, 3, 4, 5]) }, { weights: [weight('slope', rand([3, 1, 1], 0, 0.5))] }),
    opCase('prelu, scalar slope [1]', 'PRelu', { x: awayFromZero([2, 3, 4, 5]) }, { weights: [weight('slope', tensor([1], [0.25]))] }),
    act('HardSigmoid', x4(-4, 4)),
    act('HardSigmoid', x4(-4, 4), { alpha: float(1 / 6), beta: float(0.5) }),
    act('HardSwish', x4(-5, 5), {}, 14),
    act('LeakyRelu', awayFromZero([2, 3, 4, 5]), { alpha: float(0.1) }),
    act('Tanh', x4(-5, 5)),
    act('Elu', awayFromZero([2, 3, 4, 5]), { alpha: float(1.3) }),
    act('Softplus', x4(-8, 8)),
    act('Erf', x4(-3, 3)),
    act('Gelu', x4(-4, 4), {}, 20),
    act('Gelu', x4(-4, 4), { approximate: { type: 'string', value: 'tanh' } }, 20),
    opCase('pow, exponent 2', 'Pow', { x: x4(-2, 2) }, { weights: [scalarW('e', 2)] }),
    opCase('pow, exponent 3 on negative inputs', 'Pow', { x: x4(-2, 2) }, { weights: [scalarW('e', 3)] }),
    opCase('pow, exponent -0.5 on positive inputs', 'Pow', { x: x4(0.5, 2) }, { weights: [scalarW('e', -0.5)] }),
    act('Sqrt', x4(0.25, 4)),
    act('Reciprocal', x4(0.5, 2)),
    act('Neg', x4()),
    act('Abs', awayFromZero([2, 3, 4, 5])),
    act('Exp', x4(-3, 3)),
  ];
}

async function runOrt(model: OnnxModel, inputs: Record<string, Tensor>, output: string): Promise<ort.Tensor> {
  // logSeverityLevel 3: errors only. ORT's bundled ONNX shape inference does not yet drop a ceil-mode
  // window that starts in the end padding (its kernel and PyTorch do) and warns about that case.
  const session = await ort.InferenceSession.create(encodeOnnx(model), { logSeverityLevel: 3 });
  const feeds = Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, new ort.Tensor('float32', Float32Array.from(t.data), t.shape)]));
  const result = (await session.run(feeds))[output];
  await session.release();
  return result;
}

/**
 * Central differences of L = Σ seed·y with respect to every element of every input, against the
 * reference's reverse mode. Step h = 1e-6·max|x|: truncation error is h²·|f'''| ≈ 1e-12 for the
 * smooth ops (zero for the piecewise-linear ones away from kinks, which the inputs avoid), rounding
 * error ≈ ε64·|L|/h ≈ 1e-10; so 1e-6 of the gradient's size leaves a wide margin, yet catches any
 * wrong term (a wrong index or coefficient shows as an O(1) relative error).
 */
function checkAgainstFiniteDifferences(model: OnnxModel, inputs: Record<string, Tensor>, output: string, seeds: Float64Array[]): void {
  const copies = Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, tensor(t.shape, t.data)]));
  const grads = gradientsReference(model, copies, { score: output, seeds, wrt: Object.keys(copies) });
  seeds.forEach((seed, k) => {
    const loss = () => {
      const y = runReference(model, copies, { keep: [output] })[output].data;
      let sum = 0;
      for (let i = 0; i < y.length; i++) sum += seed[i] * y[i];
      return sum;
    };
    for (const [name, x] of Object.entries(copies)) {
      const h = 1e-6 * Math.max(maxAbs(x.data), 1e-3);
      const fd = new Float64Array(x.data.length);
      for (let i = 0; i < x.data.length; i++) {
        const xi = x.data[i];
        x.data[i] = xi + h;
        const up = loss();
        x.data[i] = xi - h;
        const down = loss();
        x.data[i] = xi;
        fd[i] = (up - down) / (2 * h);
      }
      const analytic = grads[name][k].data;
      expect(analytic.length).toBe(x.data.length);
      expect(maxAbs(analytic), `${name}: the gradient should not be identically zero`).toBeGreaterThan(0);
      expect(maxAbsDiff(fd, analytic), `${name}, seed ${k}`).toBeLessThanOrEqual(1e-6 * maxAbs(analytic));
    }
  });
}

const randomSeed = (n: number) => Float64Array.from({ length: n }, () => 2 * random() - 1);

describe('reference forward agrees with onnxruntime-node', () => {
  // ORT computes in float32 from the same float32-exact inputs and weights. Its error is float32
  // rounding: per output ≈ √K·2⁻²⁴ relative to the terms' magnitudes for a K-term sum (K ≤ 147
  // here), a few ulps for exp/pow; 1e-5 of the output's largest magnitude bounds that with margin
  // while any indexing or semantic error (a wrong window, divisor or pad) shows as ≥ 1e-2.
  for (const c of CASES) {
    it.skipIf(c.ortRefuses !== undefined)(c.name, async () => {
      const expected = runReference(c.model, c.inputs, { keep: ['y'] }).y;
      const got = await runOrt(c.model, c.inputs, 'y');
      expect(got.dims).toEqual(expected.shape);
      expect(maxAbsDiff(got.data as Float32Array, expected.data)).toBeLessThanOrEqual(1e-5 * maxAbs(expected.data));
    });
  }
});

describe('reference backward agrees with finite differences', () => {
  for (const c of CASES) {
    it(c.name, () => {
      const y = runReference(c.model, c.inputs, { keep: ['y'] }).y;
      checkAgainstFiniteDifferences(c.model, c.inputs, 'y', [randomSeed(y.data.length)]);
    });
  }

  it('LRN with an even size sums channels c−1 … c+2 (ONNX: c − floor((size−1)/2) … c + ceil((size−1)/2))', () => {
    // size 4 over 4 channels of one pixel, x = [1, 2, 3, 4]: windows {0,1,2}, {0,1,2,3}, {1,2,3}, {2,3}.
    const x = tensor([1, 4, 1, 1], [1, 2, 3, 4]);
    const model = buildModel({ inputs: { x: [1, 4, 1, 1] }, nodes: [node('LRN', ['x'], ['y'], { size: int(4), alpha: float(0.4), beta: float(0.5), bias: float(1) })], outputs: ['y'] });
    const squareSums = [1 + 4 + 9, 1 + 4 + 9 + 16, 4 + 9 + 16, 9 + 16];
    const expected = squareSums.map((s, c) => (c + 1) / Math.sqrt(1 + (0.4 / 4) * s));
    expect(maxAbsDiff(runReference(model, { x }).y.data, expected)).toBeLessThanOrEqual(1e-15);
  });

  it('Max and Min at a tie give half of the gradient to each operand (PyTorch\'s maximum/minimum); PRelu, LeakyRelu, Abs, HardSwish at their kinks', () => {
    const a = tensor([1, 4], [1, 2, 3, 4]), b = tensor([1, 4], [1, 5, 3, 0]);
    const dy = tensor([1, 4], [8, 8, 8, 8]);
    const [da, db] = ew.binaryBackward(ew.BINARY.Max, dy, a, b);
    expect([...da.data, ...db.data]).toEqual([4, 0, 4, 8, 4, 8, 4, 0]);
    const [ma, mb] = ew.binaryBackward(ew.BINARY.Min, dy, a, b);
    expect([...ma.data, ...mb.data]).toEqual([4, 8, 4, 0, 4, 0, 4, 8]);
    // At x = 0: PRelu and LeakyRelu give the slope, Abs 0; HardSwish x/3 + ½ at ±3 (−½ and 1.5), 0 below −3.
    expect(ew.BINARY.PRelu.da(0, 0.25)).toBe(0.25);
    expect(ew.UNARY.LeakyRelu.df(0, 0.1, 0)).toBe(0.1);
    expect(ew.UNARY.Abs.df(0, 0, 0)).toBe(0);
    expect([-3.5, -3, 3, 3.5].map((x) => ew.UNARY.HardSwish.df(x, 0, 0))).toEqual([0, -0.5, 1.5, 1]);
    // HardSigmoid's gradient is α strictly inside (0, 1): 0 at the corners.
    expect([-3, 0, 3].map((x) => ew.UNARY.HardSigmoid.df(x, 1 / 6, 0.5))).toEqual([0, 1 / 6, 0]);
  });

  it('erf against tabulated values (Abramowitz and Stegun, table 7.1)', () => {
    for (const [x, v] of [[0.1, 0.1124629160], [0.5, 0.5204998778], [1, 0.8427007929], [2, 0.9953222650], [3, 0.9999779095]]) {
      expect(Math.abs(ew.erf(x) - v)).toBeLessThanOrEqual(1e-10);
      expect(Math.abs(ew.erf(-x) + v)).toBeLessThanOrEqual(1e-10);
    }
  });

  it('max-pool ties go to the first maximum in row-major order', () => {
    // One 3×3 window (stride 3) over a 1×1×3×4 input: the maximum 5 appears at (0,2) and (1,0).
    const x = tensor([1, 1, 3, 4], [1, 2, 5, 9, 5, 0, 3, 9, 4, 5, 1, 9]);
    const p = { kernel: [3, 3] as [number, number], strides: [3, 3] as [number, number], pads: [0, 0, 0, 0] as [number, number, number, number], ceilMode: false };
    const dx = maxPoolBackward(tensor([1, 1, 1, 1], [7]), x, p);
    expect([...dx.data]).toEqual([0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  });
});

describe('every op the engine supports is tested', () => {
  // Adding an op (docs/design.md) needs its reference, its rounding bound and a kernel case: a
  // missing one is named here, not discovered when a model using the op disagrees.
  const inKernelCases = new Set(kernelCases().flatMap((c) => c.model.nodes.map((n) => n.opType)));
  it.each(SUPPORTED_OPS)('%s', (type) => {
    expect(REFERENCE_OP_TYPES, 'a float64 reference (test/reference/graph.ts OPS)').toContain(type);
    expect(ROUNDING_OP_TYPES, 'a rounding bound (test/helpers/magnitude.ts ROUNDING)').toContain(type);
    expect([...inKernelCases], 'a kernel case (test/helpers/kernel-cases.ts)').toContain(type);
  });
});

describe('gradientsReference on a multi-branch graph', () => {
  // x → conv → t; t feeds three branches (1×1 conv, 3×3 conv + relu, max-pool), concatenated →
  // relu → global pool → flatten → gemm → logits → softmax. Gradients at t sum three consumers.
  const head = [node('Conv', ['x', 'w0', 'b0'], ['t'], { pads: ints([1, 1, 1, 1]) })];
  const tail = [
    node('Conv', ['t', 'w1'], ['b1']),
    node('Conv', ['t', 'w2', 'bias2'], ['b2pre'], { pads: ints([1, 1, 1, 1]) }),
    node('Relu', ['b2pre'], ['b2']),
    node('MaxPool', ['t'], ['b3'], pool([3, 3], [1, 1], [1, 1, 1, 1], 0)),
    node('Concat', ['b1', 'b2', 'b3'], ['cat'], { axis: int(1) }),
    node('Relu', ['cat'], ['catRelu']),
    node('GlobalAveragePool', ['catRelu'], ['gap']),
    node('Flatten', ['gap'], ['flat']),
    node('Gemm', ['flat', 'fc', 'fcb'], ['logits'], { transB: int(1) }),
    node('Softmax', ['logits'], ['prob']),
  ];
  const weights = [
    weight('w0', rand([3, 2, 3, 3])), weight('b0', rand([3])), weight('w1', rand([2, 3, 1, 1])),
    weight('w2', rand([3, 3, 3, 3])), weight('bias2', rand([3])), weight('fc', rand([4, 8])), weight('fcb', rand([4])),
  ];
  const full = buildModel({ inputs: { x: [1, 2, 5, 5] }, weights, nodes: [...head, ...tail], outputs: ['logits', 'prob'] });
  const x = rand([1, 2, 5, 5]);
  const seeds = [randomSeed(4), randomSeed(4)];

  it('no finite-difference step crosses a ReLU kink or reorders a max-pool window', () => {
    const v = runReference(full, { x });
    const gap = (t: Tensor) => Math.min(...[...t.data].map(Math.abs));
    // Steps move x by ≤ 1e-6, so every intermediate by ~1e-6: a margin of 1e-4 is safe.
    // (b2 = relu(b2pre) holds exact zeros, but they stay zero under the step since b2pre is far from 0.)
    for (const name of ['b2pre', 'b1', 'b3']) expect(gap(v[name]), name).toBeGreaterThan(1e-4);
    const sorted = [...v.t.data].sort((a, b) => a - b);
    expect(Math.min(...sorted.slice(1).map((s, i) => s - sorted[i]))).toBeGreaterThan(1e-4);
  });

  it('w.r.t. the graph input, from the logits and from the softmax', () => {
    checkAgainstFiniteDifferences(full, { x }, 'logits', seeds);
    checkAgainstFiniteDifferences(full, { x }, 'prob', seeds);
  });

  it('w.r.t. a tensor with three consumers (the tail differentiated at the same t)', () => {
    const t = runReference(full, { x }, { keep: ['t'] }).t;
    const tailModel = buildModel({ inputs: { t: t.shape }, weights, nodes: tail, outputs: ['logits'] });
    const fromFull = gradientsReference(full, { x }, { score: 'logits', seeds, wrt: ['t', 'x'] });
    const fromTail = gradientsReference(tailModel, { t }, { score: 'logits', seeds, wrt: ['t'] });
    expect(fromFull.t).toHaveLength(2);
    expect(fromFull.x).toHaveLength(2);
    for (let k = 0; k < 2; k++) expect(maxAbsDiff(fromFull.t[k].data, fromTail.t[k].data)).toBe(0);
    checkAgainstFiniteDifferences(tailModel, { t }, 'logits', seeds);
  });

  it("gradcam's softmax reduction equals differentiating the model's own Softmax output", () => {
    const cam = gradcamReference(full, x, { layer: 'cat', classes: [2, 0], reduction: 'softmax', logitsTensor: 'logits' });
    cam.classes.forEach(({ classIndex, alpha }) => {
      const seed = new Float64Array(4);
      seed[classIndex] = 1;
      const dA = gradientsReference(full, { x }, { score: 'prob', seeds: [seed], wrt: ['cat'] }).cat[0].data;
      const expected = Array.from({ length: 8 }, (_, ch) => dA.slice(ch * 25, ch * 25 + 25).reduce((a, b) => a + b, 0) / 25);
      expect(maxAbsDiff(alpha, expected)).toBeLessThanOrEqual(1e-12 * maxAbs(expected)); // float64, different summation order
    });
  });
});

describe('gradcamReference on a case solved by hand', () => {
  // A: 2 channels of 2×2; logits = W·flatten(A) + b, so ∂logit_c/∂A is row c of W and
  // α_c,k = mean of W[c] over channel k's four entries.
  const A = tensor([1, 2, 2, 2], [0.1, 0.2, 0.3, 0.4, /* channel 1 */ 0.1, 0, 0, 0.1]);
  const W = tensor([2, 8], [0.5, 1.5, 1, 1, 0, 1, -1, 0, /* class 1 */ -2, 0, -1, -1, 1, 3, 2, 2]); // α = [1, 0] and [−1, 2]
  const model = buildModel({
    inputs: { A: [1, 2, 2, 2] },
    weights: [weight('W', W), weight('bias', tensor([2], [0.5, -0.5]))],
    nodes: [node('Flatten', ['A'], ['f']), node('Gemm', ['f', 'W', 'bias'], ['logits'], { transB: int(1) })],
    outputs: ['logits'],
  });
  const close = (got: ArrayLike<number>, want: number[]) => expect(maxAbsDiff(got, want)).toBeLessThanOrEqual(1e-12);

  it("reduction 'logit'", () => {
    const cam = gradcamReference(model, A, { layer: 'A', classes: [0, 1], reduction: 'logit', logitsTensor: 'logits' });
    close(cam.logits, [1.55, -1.1]);
    const [c0, c1] = cam.classes;
    close(c0.alpha, [1, 0]);
    close(c0.preRelu.data, [0.1, 0.2, 0.3, 0.4]); // = A_0
    close(c0.map.data, [0.1, 0.2, 0.3, 0.4]);
    close(c1.alpha, [-1, 2]);
    close(c1.preRelu.data, [0.1, -0.2, -0.3, -0.2]); // = −A_0 + 2·A_1
    close(c1.map.data, [0.1, 0, 0, 0]);
    expect(c1.map.shape).toEqual([2, 2]);
    close([c0.score, c1.score], [1.55, -1.1]);
  });

  it("reduction 'softmax'", () => {
    // Two classes: ∂p_0/∂A = p_0·p_1·(W_0 − W_1), so α = p_0·p_1·([1,0] − [−1,2]) = p_0·p_1·[2, −2].
    const p0 = 1 / (1 + Math.exp(-(1.55 - -1.1)));
    const q = p0 * (1 - p0);
    const cam = gradcamReference(model, A, { layer: 'A', classes: [0, 1], reduction: 'softmax', logitsTensor: 'logits' });
    const [c0, c1] = cam.classes;
    close([c0.score, c1.score], [p0, 1 - p0]);
    close(c0.alpha, [2 * q, -2 * q]);
    close(c0.preRelu.data, [0, 0.4 * q, 0.6 * q, 0.6 * q]); // = q·(2·A_0 − 2·A_1)
    close(c0.map.data, [0, 0.4 * q, 0.6 * q, 0.6 * q]);
    close(c1.alpha, [-2 * q, 2 * q]);
    close(c1.map.data, [0, 0, 0, 0]);
  });
});

describe('upsampleBilinear and normalizeMinMax', () => {
  it('2×2 → 4×4 by hand (align_corners=false: source = (i + 0.5)/2 − 0.5, clamped)', () => {
    // Along each axis, outputs sit at sources −0.25→0 (clamped), 0.25, 0.75, 1.25→1 (clamped).
    const got = upsampleBilinear([0, 1, 2, 3], 2, 2, 4, 4);
    expect([...got]).toEqual([
      0, 0.25, 0.75, 1,
      0.5, 0.75, 1.25, 1.5,
      1.5, 1.75, 2.25, 2.5,
      2, 2.25, 2.75, 3,
    ]);
  });

  it('agrees with onnxruntime Resize (linear, half_pixel) on odd and GoogLeNet sizes', async () => {
    for (const [h, w, H, W] of [[3, 5, 11, 13], [7, 7, 224, 224], [1, 1, 3, 3]]) {
      const map = rand([1, 1, h, w]);
      // Built by hand: the reference has no Resize, so buildModel cannot infer the output shape.
      const model: OnnxModel = {
        irVersion: 7, opset: 13, producerName: 'reference-test', graphName: 'resize',
        inputs: [{ name: 'm', elemType: 'float32', shape: [1, 1, h, w] }],
        outputs: [{ name: 'y', elemType: 'float32', shape: [1, 1, H, W] }],
        initializers: new Map([['sizes', int64('sizes', [1, 1, H, W])]]),
        nodes: [node('Resize', ['m', '', '', 'sizes'], ['y'], { mode: { type: 'string', value: 'linear' }, coordinate_transformation_mode: { type: 'string', value: 'half_pixel' } })],
      };
      const got = await runOrt(model, { m: map }, 'y');
      // ORT interpolates in float32 with float32 source coordinates: a few ulps of the values.
      expect(maxAbsDiff(got.data as Float32Array, upsampleBilinear(map.data, h, w, H, W))).toBeLessThanOrEqual(1e-5 * maxAbs(map.data));
    }
  });

  it('min-max normalisation, and a constant map becomes zeros', () => {
    expect([...normalizeMinMax([2, 4, 3, 6])]).toEqual([0, 0.5, 0.25, 1]);
    expect([...normalizeMinMax([0.3, 0.3, 0.3])]).toEqual([0, 0, 0]);
  });
});

/**
 * Load-time folding of shape arithmetic (src/graph/fold.ts), on hand-built ONNX graphs. No GPU.
 *
 * The folded values are checked against onnxruntime-node, which evaluates the same nodes in the
 * same graph: int64 values must be equal exactly, float values bitwise (the folds do one IEEE
 * operation per value, rounded to float32 as ORT does). Then the graphs exporters write: the
 * torch.onnx flatten chain (Shape → Gather → Unsqueeze → Concat → Reshape) with Constant nodes for
 * weights, lowered at a fixed and at a dynamic batch: nothing of the chain becomes a GPU op.
 */
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { GradcamError } from '../src/errors.ts';
import { Constants, type Value } from '../src/graph/fold.ts';
import { lower } from '../src/graph/lower.ts';
import { decodeOnnx } from '../src/onnx/decode.ts';
import type { OnnxAttribute, OnnxModel, OnnxNode, OnnxTensor } from '../src/onnx/model.ts';
import { encodeOnnx } from '../src/onnx/write.ts';
import { float, GraphBuilder, int, ints } from '../weights/generate/builder.ts';

const I64_MAX = 2n ** 63n - 1n;
const i64 = (name: string, values: (number | bigint)[], dims = [values.length]): OnnxTensor => ({ name, dims, dataType: 'int64', data: BigInt64Array.from(values, (v) => BigInt(v)) });
const f32 = (name: string, values: number[], dims = [values.length]): OnnxTensor => ({ name, dims, dataType: 'float32', data: Float32Array.from(values) });
const node = (opType: string, inputs: string[], output: string, attributes: Record<string, OnnxAttribute> = {}): OnnxNode =>
  ({ name: `${opType}:${output}`, opType, domain: '', inputs, outputs: [output], attributes });
const tensorAttr = (t: OnnxTensor): OnnxAttribute => ({ type: 'tensor', value: t });

/** A graph of shape arithmetic on x [N, 3, 8, 6] with every fold the exporters use; its outputs are int64 or float32. */
function shapeMath(): { model: OnnxModel; outputs: string[] } {
  const nodes: OnnxNode[] = [
    node('Shape', ['x'], 's'),
    node('Gather', ['s', 'zero'], 'n', { axis: int(0) }), // a scalar: the batch
    node('Gather', ['s', 'hw_idx'], 'hw_g'), // [8, 6]
    node('Slice', ['s', 'two', 'big', 'axis0'], 'hw'), // [8, 6] (end = INT64_MAX: to the end)
    node('Slice', ['s', 'minus1', 'minus_big', 'axis0', 'minus1'], 'rev'), // reversed by step -1
    node('Shape', ['x'], 's_tail', { start: int(-2) }),
    node('Size', ['x'], 'numel'),
    node('Mul', ['hw', 'hw_g'], 'sq'),
    node('Div', ['neg7_7', 'two_m2'], 'trunc'), // [-7, 7] / [2, -2]: truncation toward zero
    node('Sub', ['hw', 'two'], 'hw_m2'),
    node('Add', ['n', 'hw'], 'n_plus_hw'), // a scalar broadcast over [2]
    node('Unsqueeze', ['n', 'axis0'], 'n1'),
    node('Concat', ['n1', 'minus1'], 'flat', { axis: int(0) }), // [N, -1]
    node('Range', ['zero_s', 'c', 'one_s'], 'range'),
    node('Gather', ['s', 'one_s'], 'c'), // (defined after its use above? no: reordered below)
    node('ConstantOfShape', ['hw'], 'sevens', { value: tensorAttr(i64('v', [7], [1])) }),
    node('ConstantOfShape', ['hw'], 'zeros_f'),
    node('Cast', ['hw'], 'hw_f', { to: int(1) }),
    node('Div', ['hw_f', 'three_f'], 'hw_third'), // float32 rounding
    node('Equal', ['hw', 'eight_five'], 'eq'),
    node('Where', ['eq', 'hw', 'zeros2'], 'where'),
    node('Cast', ['eq'], 'eq_i', { to: int(7) }),
    node('Cast', ['mixed_f'], 'trunc_cast', { to: int(7) }), // float → int64: toward zero
    node('Expand', ['col', 'hw_small'], 'expanded'),
    node('Squeeze', ['n1', 'axis0'], 'n_again'),
    node('Identity', ['flat'], 'flat_id'),
    node('Reshape', ['matrix', 'three_two'], 'reshaped'),
    node('Transpose', ['matrix'], 'transposed', { perm: ints(1, 0) }),
  ];
  // Range reads c, which the next node makes: put the Gather first (file order is topological).
  const ri = nodes.findIndex((n) => n.outputs[0] === 'range'), ci = nodes.findIndex((n) => n.outputs[0] === 'c');
  [nodes[ri], nodes[ci]] = [nodes[ci], nodes[ri]];
  const weights = [
    i64('zero', [0], []), i64('zero_s', [0], []), i64('one_s', [1], []), i64('hw_idx', [2, 3]), i64('two', [2]), i64('big', [I64_MAX]), i64('axis0', [0]),
    i64('minus1', [-1]), i64('minus_big', [-I64_MAX]), i64('neg7_7', [-7, 7]), i64('two_m2', [2, -2]), i64('eight_five', [8, 5]), i64('zeros2', [0, 0]),
    f32('three_f', [3]), f32('mixed_f', [2.7, -2.7, 0.5, -0.5]), i64('col', [1, 2], [2, 1]), i64('hw_small', [2, 3]),
    f32('matrix', [1, 2, 3, 4, 5, 6], [2, 3]), i64('three_two', [3, 2]),
  ];
  const outputs = ['s', 'n', 'hw_g', 'hw', 'rev', 's_tail', 'numel', 'sq', 'trunc', 'hw_m2', 'n_plus_hw', 'n1', 'flat', 'c', 'range', 'sevens', 'zeros_f',
    'hw_f', 'hw_third', 'where', 'eq_i', 'trunc_cast', 'expanded', 'n_again', 'flat_id', 'reshaped', 'transposed'];
  const model: OnnxModel = {
    irVersion: 8, opset: 15, producerName: 'fold-test', graphName: 'shape-math',
    inputs: [{ name: 'x', elemType: 'float32', shape: ['N', 3, 8, 6] }], outputs: [],
    initializers: new Map(weights.map((w) => [w.name, w])), nodes,
  };
  return { model, outputs };
}

/** Folds every node of a graph of constants and shapes, as lower.ts does (x has shape `xShape`). */
function foldAll(model: OnnxModel, xShape: number[]): Constants {
  const constants = new Constants(model.initializers);
  for (const n of model.nodes) {
    const env = {
      opset: model.opset,
      fail: (m: string): never => { throw new GradcamError(`node '${n.name}' (${n.opType}): ${m}`); },
      activation: (name: string) => (name === 'x' ? xShape : undefined),
      defined: (name: string) => name === 'x' || constants.has(name),
    };
    expect(constants.fold(n, env, false), n.name).toBe(true);
  }
  return constants;
}

const values = (v: Value) => (v.dataType === 'int64' ? Array.from(v.data as BigInt64Array) : Array.from(v.data as Float32Array));

describe('folded values equal onnxruntime-node\'s', () => {
  it('Shape, Size, Gather, Slice (INT64_MAX ends, negative steps), Unsqueeze, Squeeze, Concat, Range, ConstantOfShape, Cast, Add/Sub/Mul/Div, Equal, Where, Expand, Identity, Reshape, Transpose', async () => {
    const { model, outputs } = shapeMath();
    const xShape = [2, 3, 8, 6];
    const folded = foldAll(model, xShape);
    const types = new Map(outputs.map((o) => [o, folded.get(o)!.dataType]));
    // ORT evaluates the same graph with these as its outputs (bool values are compared through their int64 Cast).
    const withOutputs = { ...model, outputs: outputs.map((name) => ({ name, elemType: types.get(name)!, shape: [] })) };
    const session = await ort.InferenceSession.create(encodeOnnx(withOutputs));
    const result = await session.run({ x: new ort.Tensor('float32', new Float32Array(2 * 3 * 8 * 6), xShape) });
    for (const name of outputs) {
      const got = folded.get(name)!, want = result[name];
      expect([name, got.dims], name).toEqual([name, [...want.dims]]);
      const data = want.data as BigInt64Array | Float32Array;
      expect([name, values(got)], name).toEqual([name, data instanceof BigInt64Array ? Array.from(data) : Array.from(data)]);
    }
    // Spot checks of the semantics the comparison covers.
    expect(values(folded.get('flat')!)).toEqual([2n, -1n]);
    expect(values(folded.get('trunc')!)).toEqual([-3n, -3n]);
    expect(values(folded.get('rev')!)).toEqual([6n, 8n, 3n, 2n]);
    expect(values(folded.get('trunc_cast')!)).toEqual([2n, -2n, 0n, 0n]);
  });
});

describe('refusals name the node and what was expected', () => {
  const refusal = (nodes: OnnxNode[], weights: OnnxTensor[] = []) => {
    const m = shapeMath().model;
    const model = { ...m, nodes, initializers: new Map(weights.map((w) => [w.name, w])) };
    try {
      foldAll(model, [1, 3, 8, 6]);
    } catch (e) {
      expect(e).toBeInstanceOf(GradcamError);
      return (e as Error).message;
    }
    throw new Error('expected a refusal');
  };
  it('division by zero, an index out of range, a Cast to float16, a result over the size limit, types that differ', () => {
    expect(refusal([node('Div', ['a', 'z'], 'q')], [i64('a', [4]), i64('z', [0])])).toBe("node 'Div:q' (Div): integer division by zero");
    expect(refusal([node('Shape', ['x'], 's'), node('Gather', ['s', 'i'], 'g')], [i64('i', [4], [])]))
      .toBe("node 'Gather:g' (Gather): index 4 is out of range for axis 0 of size 4 (expected -4 … 3)");
    expect(refusal([node('Cast', ['a'], 'c', { to: int(10) })], [i64('a', [4])])).toMatch(/^node 'Cast:c' \(Cast\): Cast to type 10 is not supported in shape arithmetic/);
    expect(refusal([node('ConstantOfShape', ['s'], 'big')], [i64('s', [2 ** 20, 2 ** 20])]))
      .toBe("node 'ConstantOfShape:big' (ConstantOfShape): its result [1048576,1048576] would hold 1099511627776 values, more than the 16777216 that load-time folding computes");
    expect(refusal([node('Add', ['a', 'f'], 'y')], [i64('a', [4]), f32('f', [1])])).toBe("node 'Add:y' (Add): its inputs are int64 and float32; ONNX requires one type");
  });
});

/**
 * A torch.onnx-style classifier: Conv (weights from Constant nodes) → Relu → GlobalAveragePool →
 * flatten as Shape → Gather(0) → Unsqueeze → Concat([N, -1]) → Reshape → Gemm. The input's batch
 * is symbolic ('batch') or fixed.
 */
function torchFlatten(batch: number | string): OnnxModel {
  const b = new GraphBuilder();
  const x = b.input('input', [1, 3, 8, 8]);
  const weightNode = (name: string, t: OnnxTensor) => b.node('Constant', `/${name}/Constant`, [], name, { value: tensorAttr({ ...t, name }) });
  const w = weightNode('conv.weight', f32('', Array.from({ length: 4 * 3 * 9 }, (_, i) => ((i * 5) % 7) / 7 - 0.4), [4, 3, 3, 3]));
  let y = b.node('Conv', '/conv/Conv', [x, w], '/conv/Conv_output_0', { kernel_shape: ints(3, 3), pads: ints(1, 1, 1, 1) });
  y = b.node('Relu', '/relu/Relu', [y], '/relu/Relu_output_0');
  const gap = b.node('GlobalAveragePool', '/avgpool/GlobalAveragePool', [y], '/avgpool/GlobalAveragePool_output_0');
  const shape = b.node('Shape', '/Shape', [gap], '/Shape_output_0');
  const idx = b.node('Constant', '/Constant', [], '/Constant_output_0', { value: tensorAttr(i64('', [0], [])) });
  const n = b.node('Gather', '/Gather', [shape, idx], '/Gather_output_0', { axis: int(0) });
  const axes = b.node('Constant', '/Constant_1', [], '/Constant_1_output_0', { value_ints: ints(0) });
  const n1 = b.node('Unsqueeze', '/Unsqueeze', [n, axes], '/Unsqueeze_output_0');
  const minus = b.node('Constant', '/Constant_2', [], '/Constant_2_output_0', { value: tensorAttr(i64('', [-1])) });
  const target = b.node('Concat', '/Concat', [n1, minus], '/Concat_output_0', { axis: int(0) });
  const flat = b.node('Reshape', '/Reshape', [gap, target], '/Reshape_output_0');
  const fcw = weightNode('fc.weight', f32('', Array.from({ length: 10 * 4 }, (_, i) => ((i * 3) % 11) / 11 - 0.5), [10, 4]));
  const fcb = weightNode('fc.bias', f32('', Array.from({ length: 10 }, (_, i) => i / 10), [10]));
  const logits = b.node('Gemm', '/fc/Gemm', [flat, fcw, fcb], 'logits', { alpha: float(1), beta: float(1), transB: int(1) });
  b.output(logits, [1, 10]);
  const m = b.build({ opset: 13, irVersion: 8, producerName: 'pytorch', graphName: 'main_graph' });
  m.inputs[0].shape = [batch, 3, 8, 8];
  // Through the bytes, as a file is read: the Constant nodes become initializers in decode.
  return decodeOnnx(encodeOnnx(m));
}

describe('the torch.onnx flatten chain folds at load time: no GPU op for it', () => {
  it('fixed batch: the ops are the conv, the pool and the classifier; the Reshape is a view of the pool output', () => {
    const g = lower(torchFlatten(1));
    expect(g.ops.map((o) => `${o.kind}:${o.onnxTypes.join('+')}`)).toEqual(['conv:Conv+Relu', 'avgpool:GlobalAveragePool', 'conv:Gemm']);
    expect(g.tensors.get('/Reshape_output_0')!.shape).toEqual([1, 4]);
    expect(g.aliases.get('/Reshape_output_0')).toBe('/avgpool/GlobalAveragePool_output_0');
    expect(g.tensors.get('logits')!.shape).toEqual([1, 10]);
    // Folded tensors are constants, not tensors of the graph.
    expect(g.tensors.has('/Concat_output_0')).toBe(false);
  });

  it('dynamic batch: the Shape of the batch axis is the batch lowered for (1, then 4)', () => {
    const m = torchFlatten('batch');
    expect(lower(m).tensors.get('/Reshape_output_0')!.shape).toEqual([1, 4]);
    const g4 = lower(m, { batch: 4 });
    expect(g4.tensors.get('/Reshape_output_0')!.shape).toEqual([4, 4]);
    expect(g4.tensors.get('logits')!.shape).toEqual([4, 10]);
    expect(g4.ops.length).toBe(3);
  });

  it('a fold-only op on an activation is refused, naming the node', () => {
    const m = torchFlatten(1);
    const i = m.nodes.findIndex((n) => n.opType === 'Gather');
    m.nodes[i] = { ...m.nodes[i], inputs: ['/avgpool/GlobalAveragePool_output_0', '/Constant_output_0'] };
    expect(() => lower(m)).toThrow(/^node '\/Gather' \(Gather\): Gather is evaluated at load time, on constants and shapes only, but its input '\/avgpool\/GlobalAveragePool_output_0' is an activation computed on the GPU$/);
  });
});

/**
 * What the layout ops, LayerNormalization, MatMul over the last axis and ReduceMean over other axes
 * accept and refuse at lowering (issue 18): shapes as onnxruntime infers them, and a GradcamError
 * naming the node and what was expected for what the engine cannot do (move or slice the batch
 * axis, reflect pads as large as the axis, …). No GPU.
 */
import { describe, expect, it } from 'vitest';
import { GradcamError } from '../src/errors.ts';
import { lower } from '../src/graph/lower.ts';
import { decodeOnnx } from '../src/onnx/decode.ts';
import type { OnnxAttribute, OnnxModel, OnnxTensor } from '../src/onnx/model.ts';
import { encodeOnnx } from '../src/onnx/write.ts';
import { float, int, int64, ints, node, weight } from './reference/models.ts';
import { tensor } from './reference/tensor.ts';

/** x [1, 6, 5, 4] → one node (named after its output 'y') → y → Flatten → the scores; through ONNX bytes. */
function one(opType: string, inputs: string[], attrs: Record<string, OnnxAttribute> = {}, weights: OnnxTensor[] = [], opset = 13, shape = [1, 6, 5, 4], outs = ['y']): OnnxModel {
  return decodeOnnx(encodeOnnx({
    irVersion: 8, opset, producerName: 'layout-validation', graphName: 'g',
    inputs: [{ name: 'x', elemType: 'float32', shape }], outputs: [{ name: 'scores', elemType: 'float32', shape: [] }],
    initializers: new Map(weights.map((w) => [w.name, w])),
    nodes: [{ ...node(opType, inputs, outs, attrs), name: `${opType}_y` }, node('Flatten', ['y'], ['scores'])],
  }));
}

const shapeOf = (m: OnnxModel) => lower(m).tensors.get('y')!.shape;

function refuses(m: OnnxModel, pattern: RegExp): void {
  let thrown: unknown;
  try {
    lower(m);
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(GradcamError);
  expect((thrown as Error).message).toMatch(pattern);
}

const mode = (value: string): OnnxAttribute => ({ type: 'string', value });

describe('layout ops at lowering', () => {
  it('Transpose: any permutation that keeps the batch first; the identity is a view', () => {
    expect(shapeOf(one('Transpose', ['x'], { perm: ints([0, 2, 3, 1]) }))).toEqual([1, 5, 4, 6]);
    const g = lower(one('Transpose', ['x'], { perm: ints([0, 1, 2, 3]) }));
    expect(g.ops).toEqual([]);
    expect(g.aliases.get('y')).toBe('x');
    refuses(one('Transpose', ['x'], { perm: ints([1, 0, 2, 3]) }), /^node 'Transpose_y' \(Transpose\): perm \[1,0,2,3\] moves the batch axis 0/);
    refuses(one('Transpose', ['x'], { perm: ints([0, 2, 2, 1]) }), /perm \[0,2,2,1\] is not a permutation of the 4 axes of \[1,6,5,4\]/);
    refuses(one('Transpose', ['x']), /perm \[3,2,1,0\] moves the batch axis 0/); // the default reverses every axis
  });

  it('Slice: clamped, negative and negative-step indices; the batch axis whole; empty slices refused', () => {
    const w = (s: number[], e: number[], a: number[], st?: number[]) => [int64('s', s), int64('e', e), int64('a', a), ...(st ? [int64('st', st)] : [])];
    expect(shapeOf(one('Slice', ['x', 's', 'e', 'a', 'st'], {}, w([-1, 1], [-100, 100], [2, 1], [-2, 2])))).toEqual([1, 3, 3, 4]);
    expect(shapeOf(one('Slice', ['x', 's', 'e', 'a'], {}, w([0], [1000], [0])))).toEqual([1, 6, 5, 4]); // axis 0 whole: allowed
    refuses(one('Slice', ['x', 's', 'e', 'a'], {}, w([0, 2], [1, 3], [0, 1]), 13, [2, 6, 5, 4]), /slicing the batch axis 0 of \[2,6,5,4\] is not supported/);
    refuses(one('Slice', ['x', 's', 'e', 'a'], {}, w([3], [3], [1])), /the slice of axis 1 of \[1,6,5,4\] is empty/);
    refuses(one('Slice', ['x', 's', 'e', 'a', 'st'], {}, w([0], [3], [1], [0])), /steps \[0\] has a 0/);
    refuses(one('Slice', ['x', 's', 'e', 'a'], {}, w([0, 0], [1, 1], [2, -2])), /axis 2 is sliced twice/);
  });

  it('Split: sizes as input (13) or attribute (< 13), equal parts, num_outputs (18); sizes must cover the axis', () => {
    const split = (attrs: Record<string, OnnxAttribute>, ins: string[], weights: OnnxTensor[], opset: number) => one('Split', ins, attrs, weights, opset, [1, 6, 5, 4], ['y', 'z']);
    const g = lower(split({ axis: int(1) }, ['x', 'k'], [int64('k', [2, 4])], 13));
    expect([g.tensors.get('y')!.shape, g.tensors.get('z')!.shape]).toEqual([[1, 2, 5, 4], [1, 4, 5, 4]]);
    expect(lower(split({ axis: int(-1) }, ['x'], [], 13)).tensors.get('z')!.shape).toEqual([1, 6, 5, 2]);
    // Along channels the parts are views of x at offsets (no op); along the width, copies.
    const views = lower(split({ axis: int(1) }, ['x', 'k'], [int64('k', [2, 4])], 13));
    expect(views.ops.filter((o) => o.kind === 'layout')).toEqual([]);
    expect(['x', 'y', 'z'].map((t) => views.tensors.get(t)!).map((t) => [t.storage, t.offset])).toEqual([[0, 0], [0, 0], [0, 2 * 5 * 4]]);
    expect(lower(split({ axis: int(-1) }, ['x'], [], 13)).ops.map((o) => o.kind)).toEqual(['layout', 'layout']);
    // num_outputs 2 of 5 rows: ceil(5/2) = 3, then the remaining 2.
    expect(['y', 'z'].map((t) => lower(split({ axis: int(2), num_outputs: int(2) }, ['x'], [], 18)).tensors.get(t)!.shape)).toEqual([[1, 6, 3, 4], [1, 6, 2, 4]]);
    expect(lower(split({ axis: int(1), split: ints([5, 1]) }, ['x'], [], 11)).tensors.get('z')!.shape).toEqual([1, 1, 5, 4]);
    refuses(split({ axis: int(2) }, ['x'], [], 13), /^node 'Split_y' \(Split\): axis 2 of \[1,6,5,4\] \(5\) does not split into 2 equal parts/);
    refuses(split({ axis: int(1) }, ['x', 'k'], [int64('k', [2, 3])], 13), /split \[2,3\] does not cut axis 1 of \[1,6,5,4\] \(6\)/);
    refuses(split({ axis: int(0) }, ['x', 'k'], [int64('k', [1, 0])], 13), /split \[1,0\] does not cut axis 0/);
  });

  it('Pad: constant/edge/reflect, pads as input or attribute; the all-zero Pad is a view; the batch axis and too-large reflect pads refused', () => {
    expect(shapeOf(one('Pad', ['x', 'p'], { mode: mode('reflect') }, [int64('p', [0, 0, 4, 3, 0, 0, 4, 3])]))).toEqual([1, 6, 13, 10]);
    expect(shapeOf(one('Pad', ['x'], { pads: ints([0, 1, 0, 0, 0, 0, 2, 0]), value: float(1) }, [], 10))).toEqual([1, 7, 7, 4]);
    const zero = lower(one('Pad', ['x', 'p'], {}, [int64('p', [0, 0, 0, 0, 0, 0, 0, 0])]));
    expect(zero.ops).toEqual([]);
    expect(zero.aliases.get('y')).toBe('x');
    refuses(one('Pad', ['x', 'p'], { mode: mode('reflect') }, [int64('p', [0, 0, 5, 0, 0, 0, 0, 0])]), /reflect pads \[0,0,5,0,0,0,0,0\] must be smaller than axis 2 of \[1,6,5,4\] \(5\)/);
    refuses(one('Pad', ['x', 'p'], {}, [int64('p', [1, 0, 0, 0, 0, 0, 0, 0])]), /pad the batch axis 0, which is not supported/);
    refuses(one('Pad', ['x', 'p'], { mode: mode('wrap') }, [int64('p', [0, 0, 1, 1, 0, 0, 1, 1])], 19), /mode 'wrap' is not supported \(constant, edge, reflect\)/);
    refuses(one('Pad', ['x', 'p'], {}, [int64('p', [0, 0, -3, 0, 0, 0, -2, 0])]), /leave axis 2 of \[1,6,5,4\] empty/);
    refuses(one('Pad', ['x'], { pads: ints([0, 0, 1, 1, 0, 0, 1, 1]) }, [], 13), /attribute 'pads' is not allowed from opset 11 on \(it is input 1\)/);
  });

  it('Squeeze / Unsqueeze: size-1 axes only, never the batch axis', () => {
    expect(shapeOf(one('Unsqueeze', ['x', 'a'], {}, [int64('a', [-2])]))).toEqual([1, 6, 5, 1, 4]);
    expect(shapeOf(one('Unsqueeze', ['x'], { axes: ints([2]) }, [], 11))).toEqual([1, 6, 1, 5, 4]);
    refuses(one('Unsqueeze', ['x', 'a'], {}, [int64('a', [2, -1])]), /its output 'y' would have shape \[1,6,1,5,4,1\]: rank 6; the engine's tensors have 2 to 5 dimensions/);
    expect(shapeOf(one('Squeeze', ['x'], { axes: ints([2]) }, [], 11, [1, 6, 1, 4]))).toEqual([1, 6, 4]);
    refuses(one('Squeeze', ['x', 'a'], {}, [int64('a', [1])]), /axis 1 of \[1,6,5,4\] has size 6; only axes of size 1 can be squeezed/);
    refuses(one('Squeeze', ['x', 'a'], {}, [int64('a', [0])]), /squeezing the batch axis 0 is not supported/);
    refuses(one('Unsqueeze', ['x', 'a'], {}, [int64('a', [0])]), /inserting an axis before the batch \(axis 0\) is not supported/);
    expect(shapeOf(one('Squeeze', ['x'], {}, [], 13, [1, 6, 1, 1]))).toEqual([1, 6]); // no axes: every size-1 axis but the batch
  });

  it('Concat along a later axis is a copy op; along the batch refused', () => {
    const cat = (axis: number) => one('Concat', ['x', 'x'], { axis: int(axis) });
    const g = lower(cat(-1));
    expect(g.ops.map((o) => o.kind)).toEqual(['concatcopy']);
    expect(g.tensors.get('y')!.shape).toEqual([1, 6, 5, 8]);
    refuses(cat(0), /concatenation along the batch axis 0 is not supported/);
  });
});

describe('LayerNormalization, MatMul over the last axis, ReduceMean over other axes', () => {
  it('LayerNormalization: γ and β over the normalised axes (or scalars); axis 0 refused', () => {
    const ln = (axis: number, scale: number[], opset = 17) => one('LayerNormalization', ['x', 's'], { axis: int(axis) }, [weight('s', tensor(scale, new Array(scale.reduce((a, b) => a * b, 1)).fill(1)))], opset);
    expect(lower(ln(-1, [4])).ops.map((o) => o.kind)).toEqual(['layernorm']);
    expect(shapeOf(ln(2, [5, 4]))).toEqual([1, 6, 5, 4]);
    refuses(ln(-1, [5]), /the scale 's' has shape \[5\]; expected \[4\] \(the normalised axes\) or a scalar/);
    refuses(ln(0, [1]), /normalising over the batch axis 0 is not supported/);
  });

  it('MatMul of [N, H, W, C] by [C, D]; a mismatched C refused', () => {
    const mm = (dims: number[]) => one('MatMul', ['x', 'w'], {}, [weight('w', tensor(dims, new Array(dims[0] * dims[1]).fill(0.5)))]);
    const g = lower(mm([4, 7]));
    expect(g.ops.map((o) => o.kind)).toEqual(['matmul']);
    expect(g.tensors.get('y')!.shape).toEqual([1, 6, 5, 7]);
    refuses(mm([5, 7]), /weights 'w' \[5,7\] need 5 values on the last axis, but 'x' is \[1,6,5,4\]/);
  });

  it('ReduceMean over the last axis or the channels, keepdims or not; non-contiguous axes and the batch refused', () => {
    const rm = (axes: number[], keepdims = 1) => one('ReduceMean', ['x'], { axes: ints(axes), keepdims: int(keepdims) });
    expect(lower(rm([-1])).ops.map((o) => o.kind)).toEqual(['reducemean']);
    expect(shapeOf(rm([-1], 0))).toEqual([1, 6, 5]);
    expect(shapeOf(rm([1]))).toEqual([1, 1, 5, 4]);
    expect(shapeOf(rm([1, 2, 3], 0))).toEqual([1, 1]);
    refuses(rm([1, 3]), /ReduceMean over axes \[1,3\] of \[1,6,5,4\] is not supported: the axes must be contiguous/);
    refuses(rm([0, 1]), /would reduce the batch axis 0/);
  });
});

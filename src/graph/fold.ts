/**
 * Constant folding at load time: the shape arithmetic that exporters emit (torch.onnx's flatten is
 * `Shape → Gather(0) → Unsqueeze → Concat([N, -1]) → Reshape`; dynamic-batch exports build every
 * shape that way) and Constant-derived values are evaluated on the CPU while the graph is lowered,
 * so none of it reaches the GPU. lower.ts calls `Constants.fold` for each node, in file order,
 * before its lowering: a node folds when each input is a constant (an initializer, a Constant, an
 * earlier folded value) or, for Shape and Size, an activation (whose shape lowering has inferred
 * by then: shapes are static, so Shape is a constant at a given batch size). The graph is lowered
 * again per batch size, so a Shape of the batch axis is always the batch being compiled.
 *
 * Values keep their ONNX element type: int64 in a BigInt64Array (exact: sizes and indices never go
 * through a double), int32, bool, float32 and float64. Integer arithmetic is BigInt, wrapped to the
 * type's width as ONNX Runtime's C++ does; integer Div truncates toward zero (as ORT) and refuses a
 * division by zero. A folded float32 or int64 value is read by the lowerings exactly as an
 * initializer (Reshape's shape, Clip's bounds, a Mul's constant operand).
 */
import type { OnnxNode, OnnxTensor } from '../onnx/model.ts';
import { attribute, attrInt, attrInts } from '../onnx/model.ts';

export type ElemType = 'float32' | 'float64' | 'int64' | 'int32' | 'bool';
type Data = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;

/** A constant tensor: an initializer, or the value of a folded node. */
export interface Value {
  dims: number[];
  dataType: ElemType;
  data: Data;
}

/**
 * The most values one folded node may compute (16 Mi: 64 MB of float32). Shape arithmetic holds a
 * handful; the limit stops a corrupt ConstantOfShape or Expand from allocating gigabytes. Views
 * (Identity, Reshape, Squeeze, Unsqueeze) share their input's values and have no limit.
 */
export const MAX_FOLDED_VALUES = 2 ** 24;

/** ONNX TensorProto.DataType codes of the types a Cast may produce here. */
const CAST_TARGETS = new Map<number, ElemType>([[1, 'float32'], [6, 'int32'], [7, 'int64'], [9, 'bool'], [11, 'float64']]);

/** A float for a message: a non-number in words (not JavaScript's 'NaN'). */
const words = (x: number) => (Number.isNaN(x) ? 'not-a-number' : String(x));
const isInt = (t: ElemType) => t === 'int64' || t === 'int32';
const size = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);
const fmt = (v: readonly unknown[]) => (v.length <= 8 ? `[${v.join()}]` : `[${v.slice(0, 6).join()},… (${v.length} values)]`);

function alloc(type: ElemType, n: number): Data {
  switch (type) {
    case 'float32': return new Float32Array(n);
    case 'float64': return new Float64Array(n);
    case 'int64': return new BigInt64Array(n);
    case 'int32': return new Int32Array(n);
    case 'bool': return new Uint8Array(n);
  }
}

/** Element i as a BigInt (integer types) or a number (floats, bool). */
const read = (v: Value, i: number): bigint | number => v.data[i];
/** Element i of an integer value as a BigInt. */
const readInt = (v: Value, i: number): bigint => (v.dataType === 'int64' ? (v.data as BigInt64Array)[i] : BigInt(v.data[i] as number));

/** Stores x (a BigInt for integer types, else a number) at i, wrapped or rounded to the type. */
function write(out: Data, type: ElemType, i: number, x: bigint | number): void {
  if (type === 'int64') (out as BigInt64Array)[i] = BigInt.asIntN(64, x as bigint);
  else if (type === 'int32') (out as Int32Array)[i] = Number(BigInt.asIntN(32, x as bigint));
  else if (type === 'bool') (out as Uint8Array)[i] = x ? 1 : 0;
  else (out as Float32Array | Float64Array)[i] = x as number;
}

function strides(dims: readonly number[]): number[] {
  const s = new Array<number>(dims.length);
  let acc = 1;
  for (let i = dims.length - 1; i >= 0; i--) { s[i] = acc; acc *= dims[i]; }
  return s;
}

/** What a fold row can use. */
interface FoldContext {
  node: OnnxNode;
  opset: number;
  fail(message: string): never;
  /** Input i as a constant (fails when the node omits it). */
  value(i: number, what: string): Value;
  /** Input i when the node lists it. */
  optional(i: number): Value | undefined;
  /** The shape of input i: an activation's inferred shape or a constant's dims. */
  dimsOf(i: number): number[];
  /** A new value, after checking its size against MAX_FOLDED_VALUES. */
  make(dataType: ElemType, dims: number[]): Value;
}

interface FoldRow {
  inputs: [number, number];
  attributes: readonly string[];
  /** Folds even when an input is an activation (only its shape is read): Shape, Size. */
  readsShapeOnly?: boolean;
  run(f: FoldContext): Value;
}

/** An integer constant's values as BigInts, checked to be int64 or int32 and of rank ≤ 1. */
function ints(f: FoldContext, v: Value, what: string): bigint[] {
  if (!isInt(v.dataType)) f.fail(`${what} is ${v.dataType}; expected int64`);
  if (v.dims.length > 1) f.fail(`${what} has shape ${fmt(v.dims)}; expected a list`);
  return Array.from({ length: v.data.length }, (_, i) => readInt(v, i));
}

/** A small integer (an axis, a size) from a BigInt, checked to be safe. */
function small(f: FoldContext, x: bigint, what: string): number {
  if (x > BigInt(Number.MAX_SAFE_INTEGER) || x < -BigInt(Number.MAX_SAFE_INTEGER)) f.fail(`${what} ${x} is out of range`);
  return Number(x);
}

/** An axis in [-rank, rank), normalised to ≥ 0. */
function axisIn(f: FoldContext, axis: number, rank: number, what = 'axis'): number {
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) f.fail(`${what} ${axis} is out of range for rank ${rank} (expected ${-rank} … ${rank - 1})`);
  return axis < 0 ? axis + rank : axis;
}

/** numpy broadcasting of several shapes. */
function broadcast(f: FoldContext, shapes: number[][]): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: number[] = [];
  for (let k = 0; k < rank; k++) {
    let d = 1;
    for (const s of shapes) {
      const e = s[s.length - rank + k] ?? 1;
      if (e === 1) continue;
      if (d !== 1 && e !== d) f.fail(`shapes ${shapes.map((x) => fmt(x)).join(' and ')} do not broadcast (axis ${k}: ${d} and ${e})`);
      d = e;
    }
    out.push(d);
  }
  return out;
}

/** For each flat index of `to`, the flat index of the broadcast source `from`. */
function broadcastIndex(from: readonly number[], to: readonly number[]): (i: number) => number {
  const s = strides(from);
  const pad = to.length - from.length;
  const step = to.map((_, k) => (k < pad || from[k - pad] === 1 ? 0 : s[k - pad]));
  const outStrides = strides(to);
  return (i) => {
    let j = 0;
    for (let k = 0; k < to.length; k++) {
      const q = Math.floor(i / outStrides[k]) % to[k];
      j += q * step[k];
    }
    return j;
  };
}

/** An element-wise op over broadcast inputs of one type (checked). */
function elementwise(f: FoldContext, inputs: Value[], outType: ElemType, op: (...xs: (bigint | number)[]) => bigint | number): Value {
  const dims = broadcast(f, inputs.map((v) => v.dims));
  const out = f.make(outType, dims);
  const index = inputs.map((v) => broadcastIndex(v.dims, dims));
  const n = out.data.length;
  for (let i = 0; i < n; i++) write(out.data, outType, i, op(...inputs.map((v, k) => read(v, index[k](i)))));
  return out;
}

function sameType(f: FoldContext, a: Value, b: Value): void {
  if (a.dataType !== b.dataType) f.fail(`its inputs are ${a.dataType} and ${b.dataType}; ONNX requires one type`);
}

/** Add, Sub, Mul, Div on numbers of one type (integers as BigInt, exactly). */
function arithmetic(op: '+' | '-' | '*' | '/'): FoldRow {
  return {
    inputs: [2, 2], attributes: [],
    run(f: FoldContext) {
      const a = f.value(0, 'A'), b = f.value(1, 'B');
      sameType(f, a, b);
      if (a.dataType === 'bool') f.fail('its inputs are bool; expected numbers');
      if (isInt(a.dataType)) {
        const int = (x: bigint | number) => (typeof x === 'bigint' ? x : BigInt(x));
        return elementwise(f, [a, b], a.dataType, (x, y) => {
          const [p, q] = [int(x), int(y)];
          if (op === '+') return p + q;
          if (op === '-') return p - q;
          if (op === '*') return p * q;
          if (q === 0n) f.fail('integer division by zero');
          return p / q; // BigInt division truncates toward zero, as C++ (ONNX Runtime) does
        });
      }
      return elementwise(f, [a, b], a.dataType, (x, y) => {
        const [p, q] = [x as number, y as number];
        return op === '+' ? p + q : op === '-' ? p - q : op === '*' ? p * q : p / q;
      });
    },
  };
}

/** Copies `v`'s values picked by `source` (flat out index → flat in index) into a new value. */
function gather(f: FoldContext, v: Value, dims: number[], source: (i: number) => number): Value {
  const out = f.make(v.dataType, dims);
  const src = v.data as unknown as ArrayLike<unknown>, dst = out.data as unknown as unknown[];
  for (let i = 0; i < dst.length; i++) dst[i] = src[source(i)];
  return out;
}

/** The same values seen with other dims (no copy). */
const view = (v: Value, dims: number[]): Value => ({ dims, dataType: v.dataType, data: v.data });

/** Axes of Squeeze/Unsqueeze: an attribute before opset 13, an input from 13. */
function axesOf(f: FoldContext): number[] | undefined {
  if (f.opset < 13) return attrInts(f.node, 'axes', undefined);
  if (attribute(f.node, 'axes') !== undefined) f.fail(`attribute 'axes' is ${f.node.opType}'s before opset 13; at opset ${f.opset} give the axes as input 1`);
  const given = f.optional(1);
  return given && ints(f, given, `axes`).map((a) => small(f, a, 'axis'));
}

const ROWS: Record<string, FoldRow> = {
  Identity: { inputs: [1, 1], attributes: [], run: (f: FoldContext) => f.value(0, 'input') },

  Shape: {
    inputs: [1, 1], attributes: ['start', 'end'], readsShapeOnly: true,
    run(f: FoldContext) {
      const dims = f.dimsOf(0);
      const r = dims.length;
      const clamp = (x: number) => Math.min(Math.max(x < 0 ? x + r : x, 0), r);
      const start = clamp(attrInt(f.node, 'start', 0)), end = clamp(attrInt(f.node, 'end', r));
      const picked = dims.slice(start, Math.max(start, end));
      const out = f.make('int64', [picked.length]);
      picked.forEach((d, i) => write(out.data, 'int64', i, BigInt(d)));
      return out;
    },
  },

  Size: {
    inputs: [1, 1], attributes: [], readsShapeOnly: true,
    run(f: FoldContext) {
      const out = f.make('int64', []);
      write(out.data, 'int64', 0, BigInt(size(f.dimsOf(0))));
      return out;
    },
  },

  Gather: {
    inputs: [2, 2], attributes: ['axis'],
    run(f: FoldContext) {
      const data = f.value(0, 'data'), idx = f.value(1, 'indices');
      if (!isInt(idx.dataType)) f.fail(`its indices are ${idx.dataType}; expected int64 or int32`);
      if (data.dims.length === 0) f.fail('its data is a scalar; expected rank ≥ 1');
      const axis = axisIn(f, attrInt(f.node, 'axis', 0), data.dims.length);
      const d = data.dims[axis];
      const picks = Array.from({ length: idx.data.length }, (_, i) => {
        const k = readInt(idx, i);
        const j = k < 0n ? k + BigInt(d) : k;
        if (j < 0n || j >= BigInt(d)) f.fail(`index ${k} is out of range for axis ${axis} of size ${d} (expected ${-d} … ${d - 1})`);
        return Number(j);
      });
      const inner = size(data.dims.slice(axis + 1)), m = picks.length;
      const dims = [...data.dims.slice(0, axis), ...idx.dims, ...data.dims.slice(axis + 1)];
      return gather(f, data, dims, (i) => {
        const o = Math.floor(i / (m * inner)), j = Math.floor(i / inner) % m, r = i % inner;
        return (o * d + picks[j]) * inner + r;
      });
    },
  },

  Unsqueeze: {
    inputs: [1, 2], attributes: ['axes'],
    run(f: FoldContext) {
      const v = f.value(0, 'data');
      const axes = axesOf(f);
      if (!axes || axes.length === 0) f.fail('no axes given; Unsqueeze needs at least one');
      const rank = v.dims.length + axes.length;
      const at = new Set(axes.map((a) => axisIn(f, a, rank)));
      if (at.size !== axes.length) f.fail(`axes ${fmt(axes)} repeat an axis`);
      const rest = [...v.dims];
      return view(v, Array.from({ length: rank }, (_, k) => (at.has(k) ? 1 : rest.shift()!)));
    },
  },

  Squeeze: {
    inputs: [1, 2], attributes: ['axes'],
    run(f: FoldContext) {
      const v = f.value(0, 'data');
      const axes = axesOf(f);
      if (!axes) return view(v, v.dims.filter((d) => d !== 1));
      const at = new Set(axes.map((a) => axisIn(f, a, v.dims.length)));
      for (const a of at) if (v.dims[a] !== 1) f.fail(`axis ${a} of ${fmt(v.dims)} has size ${v.dims[a]}; only size-1 axes can be squeezed`);
      return view(v, v.dims.filter((_, k) => !at.has(k)));
    },
  },

  Concat: {
    inputs: [1, Infinity], attributes: ['axis'],
    run(f: FoldContext) {
      const vs = f.node.inputs.map((_, i) => f.value(i, `input ${i}`));
      const first = vs[0];
      const rank = first.dims.length;
      if (rank === 0) f.fail('its inputs are scalars; Concat needs rank ≥ 1');
      if (attribute(f.node, 'axis') === undefined) f.fail("attribute 'axis' is required");
      const axis = axisIn(f, attrInt(f.node, 'axis', 0), rank);
      for (const [i, v] of vs.entries()) {
        if (v.dataType !== first.dataType) f.fail(`input ${i} is ${v.dataType}, input 0 ${first.dataType}; ONNX requires one type`);
        if (v.dims.length !== rank || v.dims.some((d, k) => k !== axis && d !== first.dims[k])) {
          f.fail(`input ${i} has shape ${fmt(v.dims)}, which does not match ${fmt(first.dims)} outside axis ${axis}`);
        }
      }
      const dims = [...first.dims];
      dims[axis] = vs.reduce((a, v) => a + v.dims[axis], 0);
      const out = f.make(first.dataType, dims);
      const outer = size(dims.slice(0, axis)), inner = size(dims.slice(axis + 1));
      const dst = out.data as unknown as unknown[];
      let p = 0;
      for (let o = 0; o < outer; o++) {
        for (const v of vs) {
          const block = v.dims[axis] * inner, src = v.data as unknown as ArrayLike<unknown>;
          for (let i = 0; i < block; i++) dst[p++] = src[o * block + i];
        }
      }
      return out;
    },
  },

  ConstantOfShape: {
    inputs: [1, 1], attributes: ['value'],
    run(f: FoldContext) {
      const dims = ints(f, f.value(0, 'shape'), 'the shape').map((d) => {
        if (d < 0n) f.fail(`the shape has a negative size ${d}`);
        return small(f, d, 'size');
      });
      const a = attribute(f.node, 'value');
      let fill: Value = { dims: [1], dataType: 'float32', data: new Float32Array(1) };
      if (a !== undefined) {
        if (a.type !== 'tensor') f.fail(`attribute 'value' should be a tensor, got ${a.type}`);
        if (a.value.data.length !== 1) f.fail(`attribute 'value' holds ${a.value.data.length} values; expected one`);
        fill = a.value;
      }
      const out = f.make(fill.dataType, dims);
      (out.data as unknown as { fill(x: unknown): void }).fill(fill.data[0]);
      return out;
    },
  },

  Cast: {
    inputs: [1, 1], attributes: ['to', 'saturate'],
    run(f: FoldContext) {
      const v = f.value(0, 'input');
      const code = attrInt(f.node, 'to', -1);
      const to = CAST_TARGETS.get(code);
      if (!to) f.fail(`Cast to type ${code} is not supported in shape arithmetic (float, double, int32, int64, bool)`);
      const out = f.make(to, v.dims);
      for (let i = 0; i < v.data.length; i++) {
        const x = read(v, i);
        if (isInt(to) && typeof x === 'number') {
          if (!Number.isFinite(x)) f.fail(`cannot cast ${words(x)} to ${to}`);
          const t = BigInt(Math.trunc(x));
          if (BigInt.asIntN(to === 'int64' ? 64 : 32, t) !== t) f.fail(`${x} is out of range of ${to}`);
          write(out.data, to, i, t);
        } else if (isInt(to)) write(out.data, to, i, x);
        else write(out.data, to, i, to === 'bool' ? (x !== 0 && x !== 0n ? 1 : 0) : Number(x));
      }
      return out;
    },
  },

  Range: {
    inputs: [3, 3], attributes: [],
    run(f: FoldContext) {
      const [start, limit, delta] = [f.value(0, 'start'), f.value(1, 'limit'), f.value(2, 'delta')];
      for (const [i, v] of [start, limit, delta].entries()) {
        if (v.data.length !== 1) f.fail(`input ${i} has shape ${fmt(v.dims)}; expected a scalar`);
        if (v.dataType !== start.dataType) f.fail(`its inputs are ${start.dataType} and ${v.dataType}; ONNX requires one type`);
      }
      const type = start.dataType;
      if (type === 'bool') f.fail('its inputs are bool; expected numbers');
      if (isInt(type)) {
        const [s, l, d] = [readInt(start, 0), readInt(limit, 0), readInt(delta, 0)];
        if (d === 0n) f.fail('delta is 0');
        // ceil((l − s) / d) for BigInts of either sign.
        const q = (l - s) / d, r = (l - s) % d;
        const count = small(f, q + (r !== 0n && (r > 0n) === (d > 0n) ? 1n : 0n), 'count');
        const out = f.make(type, [Math.max(count, 0)]);
        for (let i = 0; i < out.data.length; i++) write(out.data, type, i, s + BigInt(i) * d);
        return out;
      }
      const [s, l, d] = [start.data[0], limit.data[0], delta.data[0]] as number[];
      if (d === 0 || !Number.isFinite(s) || !Number.isFinite(l) || !Number.isFinite(d)) f.fail(`cannot make a range from ${words(s)} to ${words(l)} by ${words(d)}`);
      const out = f.make(type, [Math.max(Math.ceil((l - s) / d), 0)]);
      for (let i = 0; i < out.data.length; i++) write(out.data, type, i, s + i * d);
      return out;
    },
  },

  Add: arithmetic('+'),
  Sub: arithmetic('-'),
  Mul: arithmetic('*'),
  Div: arithmetic('/'),

  Equal: {
    inputs: [2, 2], attributes: [],
    run(f: FoldContext) {
      const a = f.value(0, 'A'), b = f.value(1, 'B');
      sameType(f, a, b);
      return elementwise(f, [a, b], 'bool', (x, y) => (x === y ? 1 : 0));
    },
  },

  Where: {
    inputs: [3, 3], attributes: [],
    run(f: FoldContext) {
      const c = f.value(0, 'condition'), x = f.value(1, 'X'), y = f.value(2, 'Y');
      if (c.dataType !== 'bool') f.fail(`its condition is ${c.dataType}; expected bool`);
      sameType(f, x, y);
      return elementwise(f, [c, x, y], x.dataType, (k, p, q) => (k ? p : q));
    },
  },

  Expand: {
    inputs: [2, 2], attributes: [],
    run(f: FoldContext) {
      const v = f.value(0, 'input');
      const shape = ints(f, f.value(1, 'shape'), 'the shape').map((d) => {
        if (d < 0n) f.fail(`the shape has a negative size ${d}`);
        return small(f, d, 'size');
      });
      const dims = broadcast(f, [v.dims, shape]);
      return gather(f, v, dims, broadcastIndex(v.dims, dims));
    },
  },

  Slice: {
    inputs: [1, 5], attributes: ['starts', 'ends', 'axes'],
    run(f: FoldContext) {
      const v = f.value(0, 'data');
      const r = v.dims.length;
      let starts: bigint[], ends: bigint[], axes: bigint[] | undefined, steps: bigint[] | undefined;
      if (f.opset < 10) {
        if (f.node.inputs.length !== 1) f.fail(`has ${f.node.inputs.length} inputs; before opset 10 starts, ends and axes are attributes`);
        const list = (name: string) => attrInts(f.node, name, undefined)?.map(BigInt);
        starts = list('starts') ?? f.fail("attribute 'starts' is required");
        ends = list('ends') ?? f.fail("attribute 'ends' is required");
        axes = list('axes');
      } else {
        for (const name of ['starts', 'ends', 'axes']) if (attribute(f.node, name) !== undefined) f.fail(`attribute '${name}' is Slice's before opset 10; at opset ${f.opset} give it as an input`);
        if (f.node.inputs.length < 3) f.fail(`has ${f.node.inputs.length} inputs; expected data, starts and ends`);
        starts = ints(f, f.value(1, 'starts'), 'starts');
        ends = ints(f, f.value(2, 'ends'), 'ends');
        const a = f.optional(3), s = f.optional(4);
        axes = a && ints(f, a, 'axes');
        steps = s && ints(f, s, 'steps');
      }
      const n = starts.length;
      if (ends.length !== n || (axes && axes.length !== n) || (steps && steps.length !== n)) f.fail('starts, ends, axes and steps differ in length');
      const begin = v.dims.map(() => 0), step = v.dims.map(() => 1), dims = [...v.dims];
      const seen = new Set<number>();
      for (let i = 0; i < n; i++) {
        const axis = axisIn(f, small(f, axes ? axes[i] : BigInt(i), 'axis'), r);
        if (seen.has(axis)) f.fail(`axis ${axis} is sliced twice`);
        seen.add(axis);
        const d = BigInt(v.dims[axis]);
        const st = steps ? steps[i] : 1n;
        if (st === 0n) f.fail('a step is 0');
        let b = starts[i] < 0n ? starts[i] + d : starts[i];
        let e = ends[i] < 0n ? ends[i] + d : ends[i];
        const clamp = (x: bigint, lo: bigint, hi: bigint) => (x < lo ? lo : x > hi ? hi : x);
        if (st > 0n) { b = clamp(b, 0n, d); e = clamp(e, 0n, d); } else { b = clamp(b, 0n, d - 1n); e = clamp(e, -1n, d - 1n); }
        const span = e - b;
        const count = span === 0n || (span > 0n) !== (st > 0n) ? 0n : (span + st - (st > 0n ? 1n : -1n)) / st;
        begin[axis] = Number(b);
        step[axis] = small(f, st, 'step');
        dims[axis] = Number(count);
      }
      const inStrides = strides(v.dims), outStrides = strides(dims);
      return gather(f, v, dims, (i) => {
        let j = 0;
        for (let k = 0; k < r; k++) j += (begin[k] + (Math.floor(i / outStrides[k]) % dims[k]) * step[k]) * inStrides[k];
        return j;
      });
    },
  },

  Reshape: {
    inputs: [2, 2], attributes: ['allowzero'],
    run(f: FoldContext) {
      const v = f.value(0, 'data');
      const req = ints(f, f.value(1, 'shape'), 'the shape').map((d) => small(f, d, 'size'));
      const allowZero = attrInt(f.node, 'allowzero', 0) === 1;
      const dims = req.map((d, i) => {
        if (d < -1) f.fail(`shape ${fmt(req)} has ${d} at position ${i}; expected -1, 0 or a size`);
        if (d === 0 && !allowZero) {
          if (i >= v.dims.length) f.fail(`shape ${fmt(req)} copies dimension ${i} (a 0 there), which ${fmt(v.dims)} does not have`);
          return v.dims[i];
        }
        return d;
      });
      const minus = dims.filter((d) => d === -1).length;
      if (minus > 1) f.fail(`shape ${fmt(req)} has more than one -1`);
      const known = size(dims.filter((d) => d !== -1));
      if (minus === 1) dims[dims.indexOf(-1)] = known === 0 ? 0 : v.data.length / known;
      if (size(dims) !== v.data.length || dims.some((d) => !Number.isInteger(d))) f.fail(`cannot reshape ${fmt(v.dims)} (${v.data.length} values) to ${fmt(req)}`);
      return view(v, dims);
    },
  },

  Transpose: {
    inputs: [1, 1], attributes: ['perm'],
    run(f: FoldContext) {
      const v = f.value(0, 'data');
      const r = v.dims.length;
      const perm = attrInts(f.node, 'perm', undefined) ?? v.dims.map((_, k) => r - 1 - k);
      if (perm.length !== r || new Set(perm).size !== r || perm.some((p) => !Number.isInteger(p) || p < 0 || p >= r)) {
        f.fail(`perm ${fmt(perm)} is not a permutation of the ${r} axes`);
      }
      const inStrides = strides(v.dims);
      const dims = perm.map((p) => v.dims[p]);
      const outStrides = strides(dims);
      return gather(f, v, dims, (i) => {
        let j = 0;
        for (let k = 0; k < r; k++) j += (Math.floor(i / outStrides[k]) % dims[k]) * inStrides[perm[k]];
        return j;
      });
    },
  },
};

/** The op types folded at load time, sorted. */
export const FOLDED_OPS: readonly string[] = Object.keys(ROWS).sort();

/** The fold row of an op type (own names only: a type from a file never reaches Object's prototype). */
export function foldRow(opType: string): FoldRow | undefined {
  return Object.hasOwn(ROWS, opType) ? ROWS[opType] : undefined;
}

/** What `fold` needs from the lowering around it. */
export interface FoldEnv {
  opset: number;
  fail(message: string): never;
  /** An activation's inferred shape (undefined when the name is not one). */
  activation(name: string): number[] | undefined;
  /** True when the name is already defined (an activation, a constant, an uncomputed output). */
  defined(name: string): boolean;
}

/** The constants of a model while it is lowered: its initializers (and Constants), and folded values. */
export class Constants {
  private readonly folded = new Map<string, Value>();
  /** Folded tensor name → the node that made it (for messages). */
  readonly foldedBy = new Map<string, string>();

  constructor(private readonly initializers: ReadonlyMap<string, OnnxTensor>) {}

  has(name: string): boolean {
    return this.folded.has(name) || this.initializers.has(name);
  }

  get(name: string): Value | undefined {
    return this.folded.get(name) ?? this.initializers.get(name);
  }

  /** 'initializer' or 'constant' (a folded value), for messages. */
  what(name: string): string {
    return this.folded.has(name) ? 'constant' : 'initializer';
  }

  /** The value as the lowerings read an initializer (float32 and int64 only; undefined for other types). */
  tensor(name: string): OnnxTensor | undefined {
    const v = this.get(name);
    if (!v || (v.dataType !== 'float32' && v.dataType !== 'int64')) return undefined;
    return { name, dims: v.dims, dataType: v.dataType, data: v.data as Float32Array | BigInt64Array };
  }

  /**
   * Folds the node when it is shape arithmetic on known values: returns true when it did (its
   * outputs are now constants). Returns false when the node must run on the GPU (an op with a
   * lowering, reading an activation). Fails when the op type exists only as a fold and reads an
   * activation.
   */
  fold(node: OnnxNode, env: FoldEnv, lowered: boolean): boolean {
    const row = foldRow(node.opType);
    if (!row) return false;
    const inputs = node.inputs.filter((i) => i);
    // A node without named inputs is not shape arithmetic: the lowering (or the checks below) refuse it.
    if (inputs.length === 0 && lowered) return false;
    const known = (n: string) => this.has(n) || (row.readsShapeOnly === true && env.activation(n) !== undefined);
    const computed = inputs.find((n) => !known(n));
    if (computed !== undefined) {
      if (lowered) return false; // the op runs on the GPU
      if (env.activation(computed) !== undefined) {
        env.fail(`${node.opType} is evaluated at load time, on constants and shapes only, but its input '${computed}' is an activation computed on the GPU`);
      }
      env.fail(`reads '${computed}', which no earlier node produces and no initializer holds`);
    }
    const fail = env.fail;
    const count = ([lo, hi]: [number, number]) => (lo === hi ? `${lo}` : hi === Infinity ? `at least ${lo}` : `${lo} to ${hi}`);
    if (node.inputs.length < row.inputs[0] || node.inputs.length > row.inputs[1]) fail(`has ${node.inputs.length} inputs; expected ${count(row.inputs)}`);
    if (node.outputs.length !== 1 || !node.outputs[0]) fail(`has outputs ${fmt(node.outputs.map((o) => `'${o}'`))}; expected one named output`);
    for (const key of Object.keys(node.attributes)) {
      if (!row.attributes.includes(key)) fail(`unrecognized attribute '${key}' (${node.opType} has ${row.attributes.length ? row.attributes.join(', ') : 'none'})`);
    }
    const out = node.outputs[0];
    if (env.defined(out)) fail(`output '${out}' is already defined; every tensor name must be defined once`);
    const f: FoldContext = {
      node, opset: env.opset, fail,
      value: (i, what) => {
        const name = node.inputs[i];
        if (!name) fail(`input ${i} (${what}) is missing`);
        return this.get(name) ?? fail(`input ${i} ('${name}') is not a constant`);
      },
      optional: (i) => (node.inputs[i] ? this.get(node.inputs[i]) : undefined),
      dimsOf: (i) => env.activation(node.inputs[i]) ?? this.get(node.inputs[i])!.dims,
      make: (dataType, dims) => {
        const n = size(dims);
        if (!(n <= MAX_FOLDED_VALUES)) fail(`its result ${fmt(dims)} would hold ${n} values, more than the ${MAX_FOLDED_VALUES} that load-time folding computes`);
        return { dims, dataType, data: alloc(dataType, n) };
      },
    };
    this.folded.set(out, row.run(f));
    this.foldedBy.set(out, node.name);
    return true;
  }
}

/**
 * layout: an output read from its input through a map of the per-image axes (shaders/layout.wgsl):
 * Transpose (any permutation that keeps the batch first), Slice (starts, ends, axes, steps; negative
 * and out-of-range indices clamped as ONNX says), each output of a Split (a slice), and Pad
 * (constant, edge, reflect; negative pads crop). Forward: `gather`, one invocation per output value;
 * backward: `scatter`, the gather's transpose, one invocation per input value (zeros where no output
 * reads it: a slice's unread values, so the backward of a slice "scatters into zeros").
 * concatcopy: a Concat along an axis other than 1 (axis 1 is zero-copy: graph/placement.ts): each
 * input gathered into its region of the output; backward gathers each input's region of dy.
 * A Transpose with the identity permutation, a full Slice and an all-zero Pad (exporters put one
 * before an AveragePool) are views instead (no op).
 */
import code from '../../shaders/layout.wgsl';
import type { OpBase } from '../graph/ir.ts';
import { tensorElements } from '../graph/ir.ts';
import type { BufferView, Dispatch, KernelEnv } from '../gpu/dispatch.ts';
import { declareKernel, read, readWrite } from '../gpu/kernel.ts';
import type { BackwardArgs, ForwardArgs, OpKernel, OpShapes } from '../kernels/types.ts';
import { fmtShape } from '../kernels/types.ts';
import { attrFloat, attrInt, attrInts, attrString, attribute } from '../onnx/model.ts';
import { list, nodeInput } from './attributes.ts';
import { defineOp, type LowerContext } from './spec.ts';

const MODES = { none: 0, constant: 1, edge: 2, reflect: 3 } as const;
type Mode = keyof typeof MODES;

/** Output axis d (per image, batch excluded) reads input axis `from`, at start + o·step. */
export interface AxisMap { from: number; start: number; step: number }

export interface LayoutOp extends OpBase {
  kind: 'layout';
  /** One per per-image output axis (output axis d + 1 of the full shape). */
  axes: AxisMap[];
  /** What a read outside the input gives: never happens (none), the pad value, the edge, the mirror. */
  mode: Mode;
  value: number;
}

export interface ConcatCopyOp extends OpBase {
  kind: 'concatcopy';
  /** The concatenation axis (of the full shape; ≥ 2). */
  axis: number;
}

export const LAYOUT = declareKernel({
  name: 'layout',
  body: code,
  uniforms: {
    outCount: 'u32', inCount: 'u32', // values per item of the gather's output and input
    items: 'u32',
    value: 'f32', // MODE_CONSTANT's pad value
    srcOffset: 'u32', srcStride: 'u32', // views: item i at i · stride + offset
    dstOffset: 'u32', dstStride: 'u32',
  },
  bindings: { geo: read('i32'), src: read(), dst: readWrite() },
  entries: { gather: ['geo', 'src', 'dst'], scatter: ['geo', 'src', 'dst'], fill: ['dst'] },
  workgroupSize: [256, 1, 1],
  overrides: { MODE: 0, ACCUMULATE: false },
  // (MODE none and constant both give the pad value outside the input; none never reads outside.)
  constants: { MODE_EDGE: MODES.edge, MODE_REFLECT: MODES.reflect },
});

/** Per-image axes the kernel handles (MAX_RANK − 1: shaders/layout.wgsl AXES). */
const AXES = 4;

/** Row-major strides of a per-image shape. */
function strides(dims: readonly number[]): number[] {
  const s = new Array<number>(dims.length);
  let k = 1;
  for (let d = dims.length - 1; d >= 0; d--) {
    s[d] = k;
    k *= dims[d];
  }
  return s;
}

/**
 * The kernel's geometry (shaders/layout.wgsl: 6 values per output axis, padded in front to 4 axes)
 * for output dims `outDims` reading input dims `inDims` through `axes`; `ys` the output's strides
 * (default: its own row-major strides).
 */
function geometry(inDims: readonly number[], outDims: readonly number[], axes: readonly AxisMap[], ys = strides(outDims)): Int32Array {
  const xs = strides(inDims);
  const geo = new Int32Array(6 * AXES);
  const pad = AXES - outDims.length;
  for (let d = 0; d < AXES; d++) {
    const j = d - pad;
    geo.set(j < 0 ? [1, 1, 0, 1, 1, 0] : [outDims[j], xs[axes[j].from], axes[j].start, axes[j].step, inDims[axes[j].from], ys[j]], 6 * d);
  }
  return geo;
}

const identity = (dims: readonly number[]): AxisMap[] => dims.map((_, d) => ({ from: d, start: 0, step: 1 }));

interface Call {
  env: KernelEnv; entry: 'gather' | 'scatter'; geo: GPUBuffer; mode: Mode; value: number; accumulate: boolean;
  inCount: number; outCount: number; items: number; src: BufferView; dst: BufferView; dstOffset?: number; srcOffset?: number;
  label: string; opType: string; shapes: string;
}

function dispatch(c: Call): Promise<Dispatch> {
  const threads = (c.entry === 'gather' ? c.outCount : c.inCount) * c.items;
  return LAYOUT.dispatch(c.env, c.entry, {
    overrides: { MODE: MODES[c.mode], ACCUMULATE: c.accumulate },
    uniforms: {
      outCount: c.outCount, inCount: c.inCount, items: c.items, value: c.value,
      srcOffset: c.src.offset + (c.srcOffset ?? 0), srcStride: c.src.stride, dstOffset: c.dst.offset + (c.dstOffset ?? 0), dstStride: c.dst.stride,
    },
    buffers: { geo: c.geo, src: c.src.buffer, dst: c.dst.buffer },
    workgroups: LAYOUT.grid1d(c.entry, threads, c.env.limits.maxComputeWorkgroupsPerDimension),
    label: c.label, opType: c.opType, flops: 0, shapes: c.shapes,
  });
}

/** dst = 0 for `count` values of each of `items` items (layout.wgsl `fill`). */
export function zeroFill(env: KernelEnv, dst: BufferView, count: number, items: number, label: string): Promise<Dispatch> {
  return LAYOUT.dispatch(env, 'fill', {
    uniforms: { inCount: count, items, value: 0, dstOffset: dst.offset, dstStride: dst.stride },
    buffers: { dst: dst.buffer },
    workgroups: LAYOUT.grid1d('fill', count * items, env.limits.maxComputeWorkgroupsPerDimension),
    label, opType: 'Split', flops: 0, shapes: fmtShape([items, count]),
  });
}

function layoutKernel(op: LayoutOp, shapes: OpShapes): OpKernel {
  const inDims = shapes.inputs[0].slice(1), outDims = shapes.output.slice(1);
  const opType = op.onnxTypes.join('+');
  let geo: GPUBuffer | undefined;
  const common = (env: KernelEnv) => ({
    env, geo: (geo ??= env.storage(new Uint32Array(geometry(inDims, outDims, op.axes).buffer))), mode: op.mode, value: op.value,
    inCount: tensorElements(inDims), outCount: tensorElements(outDims), label: op.name, opType,
  });
  return {
    async forward({ env, inputs: [x], output, batch }: ForwardArgs) {
      const shape = `${fmtShape([batch, ...inDims])} → ${fmtShape([batch, ...outDims])}`;
      return [await dispatch({ ...common(env), entry: 'gather', accumulate: false, items: batch, src: x, dst: output, shapes: shape })];
    },
    async backward({ env, dy, dx: [t], items }: BackwardArgs) {
      if (!t) return [];
      const shape = `${fmtShape([items, ...outDims])} → ${fmtShape([items, ...inDims])}`;
      return [await dispatch({ ...common(env), entry: 'scatter', accumulate: t.accumulate, items, src: dy, dst: t.view, shapes: shape })];
    },
  };
}

function concatCopyKernel(op: ConcatCopyOp, shapes: OpShapes): OpKernel {
  const outDims = shapes.output.slice(1);
  const outStrides = strides(outDims);
  const a = op.axis - 1;
  const opType = op.onnxTypes.join('+');
  // Input j starts at offset_j along the axis: at offset_j · stride in the output.
  const parts = shapes.inputs.map((s, j) => ({
    dims: s.slice(1), offset: shapes.inputs.slice(0, j).reduce((sum, p) => sum + p[op.axis], 0) * outStrides[a],
  }));
  let geos: { forward: GPUBuffer; backward: GPUBuffer }[] | undefined;
  const buffers = (env: KernelEnv) => (geos ??= parts.map(({ dims }) => ({
    // Forward: the input's values into the output's region (output strides); backward: dy's region back.
    forward: env.storage(new Uint32Array(geometry(dims, dims, identity(dims), outStrides).buffer)),
    backward: env.storage(new Uint32Array(geometry(outDims, dims, identity(dims)).buffer)),
  })));
  const call = (env: KernelEnv, j: number, items: number) => ({
    env, entry: 'gather' as const, mode: 'none' as const, value: 0, inCount: tensorElements(parts[j].dims), outCount: tensorElements(parts[j].dims),
    items, label: `${op.name}/input${j}`, opType, shapes: `${fmtShape([items, ...parts[j].dims])} ↔ ${fmtShape([items, ...outDims])} axis ${op.axis}`,
  });
  return {
    async forward({ env, inputs, output, batch }: ForwardArgs) {
      const g = buffers(env);
      return Promise.all(inputs.map((x, j) => dispatch({ ...call(env, j, batch), geo: g[j].forward, accumulate: false, src: x, dst: output, dstOffset: parts[j].offset })));
    },
    async backward({ env, dy, dx, items }: BackwardArgs) {
      const g = buffers(env);
      const out: Dispatch[] = [];
      // In order: an input listed twice accumulates its second share onto its first.
      for (const [j, t] of dx.entries()) {
        if (t) out.push(await dispatch({ ...call(env, j, items), geo: g[j].backward, accumulate: t.accumulate, src: dy, srcOffset: parts[j].offset, dst: t.view }));
      }
      return out;
    },
  };
}

// ───────────────────────────── lowerings ─────────────────────────────

/** An int64 list given as constant input `i` (newer opsets) or as attribute `attr` (older ones); undefined when neither. */
function intsOf(ctx: LowerContext, i: number, attr: string, inputFromOpset: number): number[] | undefined {
  const given = ctx.node.inputs[i];
  if (ctx.opset >= inputFromOpset) {
    if (attribute(ctx.node, attr) !== undefined) ctx.fail(`attribute '${attr}' is not allowed from opset ${inputFromOpset} on (it is input ${i})`);
    if (!given) return undefined;
    if (!ctx.isConstant(given)) ctx.fail(`input ${i} ('${given}', the ${attr}) must be a constant (an int64 initializer)`);
    return ctx.ints(given);
  }
  if (given) ctx.fail(`has input ${i} ('${given}'); before opset ${inputFromOpset} the ${attr} are an attribute`);
  return attrInts(ctx.node, attr, undefined);
}

/** An axis in [−rank, rank) normalised to ≥ 0; axis 0, the batch, is refused unless `batchOk`. */
function axisOf(ctx: LowerContext, a: number, rank: number, what: string): number {
  if (!Number.isInteger(a) || a < -rank || a >= rank) ctx.fail(`${what} ${a} is out of range for a rank-${rank} input (expected ${-rank} … ${rank - 1})`);
  return a < 0 ? a + rank : a;
}

/** Emits a layout op, or a view when it reads every value in place. */
function emitLayout(ctx: LowerContext, onnxType: string, xName: string, output: string, axes: AxisMap[], mode: Mode, value: number, outShape: number[]): void {
  const x = ctx.shape(xName);
  const isView = outShape.every((d, i) => d === x[i]) && axes.every((m, d) => m.from === d && m.start === 0 && m.step === 1);
  if (isView) return ctx.alias(output, xName, outShape);
  if (outShape.length > 1 + AXES) ctx.fail(`rank ${outShape.length} is more than the layout kernel's ${1 + AXES}`);
  ctx.emit({ kind: 'layout', name: ctx.node.name, onnxTypes: [onnxType], inputs: [xName], output, axes, mode, value }, outShape);
}

function lowerTranspose(ctx: LowerContext): void {
  const xName = nodeInput(ctx, 0, 'data');
  const x = ctx.shape(xName);
  const r = x.length;
  const perm = attrInts(ctx.node, 'perm', undefined) ?? x.map((_, i) => r - 1 - i);
  if (perm.length !== r || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) ctx.fail(`perm ${list(perm)} is not a permutation of the ${r} axes of [${x}]`);
  if (perm[0] !== 0) ctx.fail(`perm ${list(perm)} moves the batch axis 0 (the engine keeps the batch first)`);
  const axes = perm.slice(1).map((p) => ({ from: p - 1, start: 0, step: 1 }));
  emitLayout(ctx, 'Transpose', xName, ctx.node.outputs[0], axes, 'none', 0, perm.map((p) => x[p]));
}

/** ONNX Slice's clamping of one axis: the first index, the step, the count. */
function sliceAxis(dim: number, start: number, end: number, step: number): { start: number; count: number } {
  const norm = (v: number) => (v < 0 ? v + dim : v);
  let s = norm(start), e = norm(end);
  if (step > 0) {
    s = Math.min(Math.max(s, 0), dim);
    e = Math.min(Math.max(e, 0), dim);
  } else {
    s = Math.min(Math.max(s, 0), dim - 1);
    e = Math.min(Math.max(e, -1), dim - 1);
  }
  return { start: s, count: Math.max(0, Math.ceil((e - s) / step)) };
}

/** A slice of x: per full axis [start, step, count] (the batch axis whole). */
function emitSlice(ctx: LowerContext, onnxType: string, xName: string, output: string, per: { start: number; step: number; count: number }[]): void {
  const x = ctx.shape(xName);
  if (per[0].start !== 0 || per[0].step !== 1 || per[0].count !== x[0]) ctx.fail(`slicing the batch axis 0 of [${x}] is not supported`);
  const empty = per.findIndex((p) => p.count < 1);
  if (empty >= 0) ctx.fail(`the slice of axis ${empty} of [${x}] is empty; the engine needs every dimension ≥ 1`);
  // One axis narrowed with step 1, every axis before it of size 1 per image (a channel slice): a
  // contiguous block of each image, so a view at an offset (Graph.aliasOffsets), no copy.
  const narrowed = per.map((p, a) => (p.start !== 0 || p.step !== 1 || p.count !== x[a] ? a : -1)).filter((a) => a >= 0);
  if (narrowed.length === 1 && per[narrowed[0]].step === 1 && x.slice(1, narrowed[0]).every((d) => d === 1)) {
    const a = narrowed[0];
    return ctx.alias(output, xName, per.map((p) => p.count), per[a].start * tensorElements(x.slice(a + 1)));
  }
  emitLayout(ctx, onnxType, xName, output, per.slice(1).map((p, d) => ({ from: d, start: p.start, step: p.step })), 'none', 0, per.map((p) => p.count));
}

function lowerSlice(ctx: LowerContext): void {
  const xName = nodeInput(ctx, 0, 'data');
  const x = ctx.shape(xName);
  const r = x.length;
  const starts = intsOf(ctx, 1, 'starts', 10), ends = intsOf(ctx, 2, 'ends', 10);
  if (!starts || !ends) ctx.fail('starts and ends are required');
  const axes = intsOf(ctx, 3, 'axes', 10) ?? starts.map((_, i) => i);
  const steps = (ctx.opset >= 10 ? intsOf(ctx, 4, 'steps', 10) : undefined) ?? starts.map(() => 1);
  if (ends.length !== starts.length || axes.length !== starts.length || steps.length !== starts.length) {
    ctx.fail(`starts ${list(starts)}, ends ${list(ends)}, axes ${list(axes)} and steps ${list(steps)} must have one value per sliced axis`);
  }
  const per = x.map((d) => ({ start: 0, step: 1, count: d }));
  const seen = new Set<number>();
  axes.forEach((a0, i) => {
    const a = axisOf(ctx, a0, r, 'axis');
    if (seen.has(a)) ctx.fail(`axis ${a} is sliced twice (axes ${list(axes)})`);
    seen.add(a);
    if (steps[i] === 0) ctx.fail(`steps ${list(steps)} has a 0; a step must not be 0`);
    per[a] = { ...sliceAxis(x[a], starts[i], ends[i], steps[i]), step: steps[i] };
  });
  emitSlice(ctx, 'Slice', xName, ctx.node.outputs[0], per);
}

function lowerSplit(ctx: LowerContext): void {
  const { node } = ctx;
  const xName = nodeInput(ctx, 0, 'input');
  const x = ctx.shape(xName);
  const axis = axisOf(ctx, attrInt(node, 'axis', 0), x.length, 'axis');
  const outputs = node.outputs;
  let sizes = intsOf(ctx, 1, 'split', 13);
  const numOutputs = attribute(node, 'num_outputs') !== undefined ? attrInt(node, 'num_outputs', 0) : undefined;
  if (sizes && numOutputs !== undefined) ctx.fail(`give either the split sizes or num_outputs, not both`);
  if (numOutputs !== undefined && numOutputs !== outputs.length) ctx.fail(`num_outputs = ${numOutputs}, but the node has ${outputs.length} outputs`);
  if (!sizes) {
    // Equal parts; with num_outputs (opset 18) the last may be smaller: ceil(d / n) each.
    const n = outputs.length, d = x[axis];
    if (numOutputs === undefined && d % n !== 0) ctx.fail(`axis ${axis} of [${x}] (${d}) does not split into ${n} equal parts; give the sizes`);
    const each = Math.ceil(d / n);
    sizes = outputs.map((_, i) => Math.min(each, d - i * each));
  }
  if (sizes.length !== outputs.length) ctx.fail(`split ${list(sizes)} has ${sizes.length} sizes for ${outputs.length} outputs`);
  if (sizes.some((s) => s < 1) || sizes.reduce((a, b) => a + b, 0) !== x[axis]) ctx.fail(`split ${list(sizes)} does not cut axis ${axis} of [${x}] (${x[axis]}) into parts ≥ 1`);
  let start = 0;
  sizes.forEach((size, i) => {
    if (!outputs[i]) ctx.fail(`output ${i} has no name`);
    const per = x.map((d) => ({ start: 0, step: 1, count: d }));
    per[axis] = { start, step: 1, count: size };
    start += size;
    emitSlice(ctx, 'Split', xName, outputs[i], per);
  });
}

function lowerPad(ctx: LowerContext): void {
  const { node } = ctx;
  const xName = nodeInput(ctx, 0, 'data');
  const x = ctx.shape(xName);
  const r = x.length;
  const mode = attrString(node, 'mode', 'constant');
  if (mode !== 'constant' && mode !== 'edge' && mode !== 'reflect') ctx.fail(`mode '${mode}' is not supported (constant, edge, reflect)`);
  let pads = intsOf(ctx, 1, 'pads', 11);
  if (!pads) ctx.fail('the pads are required');
  let value = 0;
  if (ctx.opset >= 11) {
    const v = node.inputs[2];
    if (v) {
      if (!ctx.isConstant(v)) ctx.fail(`the constant_value '${v}' must be a constant (an initializer)`);
      const t = ctx.weight(v);
      if (t.data.length !== 1) ctx.fail(`the constant_value '${v}' has ${t.data.length} values; expected a scalar`);
      value = t.data[0];
    }
  } else {
    value = attrFloat(node, 'value', 0);
  }
  // Opset 18: pads for the listed axes only.
  const axesName = node.inputs[3];
  if (axesName) {
    if (!ctx.isConstant(axesName)) ctx.fail(`the axes '${axesName}' must be a constant (an int64 initializer)`);
    const axes = ctx.ints(axesName).map((a) => axisOf(ctx, a, r, 'axis'));
    if (pads.length !== 2 * axes.length) ctx.fail(`pads ${list(pads)} need 2 values per axis of ${list(axes)}`);
    const full = new Array<number>(2 * r).fill(0);
    axes.forEach((a, i) => { full[a] = pads![i]; full[r + a] = pads![axes.length + i]; });
    pads = full;
  }
  if (pads.length !== 2 * r) ctx.fail(`pads ${list(pads)} has ${pads.length} values; expected 2 per axis of [${x}] (${2 * r})`);
  if (pads[0] !== 0 || pads[r] !== 0) ctx.fail(`pads ${list(pads)} pad the batch axis 0, which is not supported`);
  const out = x.map((d, a) => d + pads![a] + pads![r + a]);
  const bad = out.findIndex((d) => d < 1);
  if (bad >= 0) ctx.fail(`pads ${list(pads)} leave axis ${bad} of [${x}] empty`);
  if (mode === 'reflect') {
    x.forEach((d, a) => {
      if (pads![a] >= d || pads![r + a] >= d) ctx.fail(`reflect pads ${list(pads)} must be smaller than axis ${a} of [${x}] (${d})`);
    });
  }
  const axes = x.slice(1).map((_, d) => ({ from: d, start: -pads![d + 1], step: 1 }));
  emitLayout(ctx, 'Pad', xName, node.outputs[0], axes, mode, value, out);
}

export const layout = defineOp<LayoutOp>({
  kind: 'layout',
  onnx: {
    Transpose: { inputs: [1, 1], outputs: [1, 1], attributes: ['perm'], lower: lowerTranspose },
    Slice: { inputs: [1, 5], outputs: [1, 1], attributes: ['axes', 'ends', 'starts'], lower: lowerSlice },
    Split: { inputs: [1, 2], outputs: [1, Infinity], attributes: ['axis', 'num_outputs', 'split'], lower: lowerSplit },
    Pad: { inputs: [1, 4], outputs: [1, 1], attributes: ['mode', 'pads', 'value'], lower: lowerPad },
  },
  kernel: layoutKernel,
  kernels: [LAYOUT],
});

export const concatcopy = defineOp<ConcatCopyOp>({ kind: 'concatcopy', kernel: concatCopyKernel, kernels: [LAYOUT] });

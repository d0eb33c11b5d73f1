/**
 * Reading and checking a node's inputs and attributes, for the lowerings of src/ops/*.ts: each check
 * fails with the node named (LowerContext.fail) and says what was expected.
 */
import { attrInt, attrInts, attrString } from '../onnx/model.ts';
import { samePads } from '../graph/shapes.ts';
import type { LowerContext } from './spec.ts';

/** Input i of the node (its name); fails when the node omits it. */
export function nodeInput(ctx: LowerContext, i: number, what: string): string {
  const name = ctx.node.inputs[i];
  if (!name) ctx.fail(`input ${i} (${what}) is missing`);
  return name;
}

/** A list for a message: all of it, or the first few values of a long (corrupt) one. */
export function list(values: readonly unknown[]): string {
  return values.length <= 8 ? `[${values.join()}]` : `[${values.slice(0, 6).join()},… (${values.length} values)]`;
}

/** An ints attribute of `count` values, each ≥ `min` (ONNX: strides, dilations, kernel ≥ 1; pads ≥ 0). */
export function checkInts(ctx: LowerContext, name: string, values: number[], count: number, min: number): void {
  if (values.length !== count) ctx.fail(`attribute '${name}' has ${values.length} values ${list(values)}; expected ${count} for a 2-D op`);
  const bad = values.findIndex((v) => v < min);
  if (bad >= 0) ctx.fail(`attribute '${name}' ${list(values)} has ${values[bad]} at position ${bad}; expected ≥ ${min}`);
}

/** An int attribute that is a flag: 0 or 1. */
export function flag(ctx: LowerContext, name: string): boolean {
  const v = attrInt(ctx.node, name, 0);
  if (v !== 0 && v !== 1) ctx.fail(`attribute '${name}' is ${v}; expected 0 or 1`);
  return v === 1;
}

/**
 * Strides, dilations and pads of a 2-D convolution or pooling window, checked as ONNX's checker does;
 * auto_pad SAME_* pads for the dilated window ((k − 1)·d + 1), as ONNX computes them.
 */
export function spatialAttrs(ctx: LowerContext, x: number[], kernel: [number, number], pool: boolean) {
  const { node } = ctx;
  const strides = attrInts(node, 'strides', [1, 1])!;
  checkInts(ctx, 'strides', strides, 2, 1);
  const dil = attrInts(node, 'dilations', [1, 1])!;
  checkInts(ctx, 'dilations', dil, 2, 1);
  const extent = [0, 1].map((i) => (kernel[i] - 1) * dil[i] + 1);
  const autoPad = attrString(node, 'auto_pad', 'NOTSET');
  let pads = attrInts(node, 'pads', [0, 0, 0, 0])!;
  if (pads.length !== 4) ctx.fail(`expected 4 pads [top, left, bottom, right], got ${list(pads)}`);
  checkInts(ctx, 'pads', pads, 4, 0);
  if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    const [t, b] = samePads(x[2], extent[0], strides[0], autoPad === 'SAME_UPPER');
    const [l, r] = samePads(x[3], extent[1], strides[1], autoPad === 'SAME_UPPER');
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
  return { strides: strides as [number, number], pads: pads as [number, number, number, number], dilations: dil as [number, number] };
}

export function need4d(ctx: LowerContext, name: string): number[] {
  const s = ctx.shape(name);
  if (s.length !== 4) ctx.fail(`input '${name}' has shape [${s}]; expected a 4-D NCHW tensor`);
  return s;
}

/** An axis attribute in [-rank, rank + extra), normalised to ≥ 0 (Flatten allows axis = rank: extra 1). */
export function axisAttr(ctx: LowerContext, fallback: number, rank: number, extra = 0): number {
  const axis = attrInt(ctx.node, 'axis', fallback);
  if (axis < -rank || axis >= rank + extra) ctx.fail(`axis ${axis} is out of range for a rank-${rank} input (expected ${-rank} … ${rank + extra - 1})`);
  return axis < 0 ? axis + rank : axis;
}

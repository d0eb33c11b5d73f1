/**
 * The contract between the runtime and the ops (src/ops/). Each op (src/ops/conv.ts, pool.ts, ...)
 * builds, side by side, the dispatches of its forward pass and of its backward pass (the gradient
 * with respect to its input activations only: Grad-CAM never needs weight gradients).
 */
import { chwOfShape } from '../graph/ir.ts';
import type { BufferView, Dispatch, KernelEnv } from '../gpu/dispatch.ts';

export interface ForwardArgs {
  env: KernelEnv;
  inputs: BufferView[];
  output: BufferView;
  /** Images in the batch. */
  batch: number;
}

/** Where one input's gradient goes; `accumulate` adds to what an earlier consumer wrote there. */
export interface GradTarget {
  view: BufferView;
  accumulate: boolean;
}

export interface BackwardArgs {
  env: KernelEnv;
  /** The op's forward inputs and output (activations, per image), for masks and recomputation. */
  inputs: BufferView[];
  output: BufferView;
  /** Gradient of the op's output, per item. */
  dy: BufferView;
  /** Gradient targets per input; null for an input outside the backward cone. */
  dx: (GradTarget | null)[];
  /** Gradient items: images × classes. */
  items: number;
  /** Gradient item i belongs to forward image i / maskDiv (= the number of classes K). */
  maskDiv: number;
  /** Guided backprop: every ReLU's backward passes the gradient only where it is > 0 too (GUIDED). */
  guided?: boolean;
}

export interface OpKernel {
  forward(args: ForwardArgs): Promise<Dispatch[]>;
  backward(args: BackwardArgs): Promise<Dispatch[]>;
}

/** Shapes of an op's inputs and output (batch first, rank 2 to 5: src/graph/ir.ts TensorInfo). */
export interface OpShapes {
  inputs: number[][];
  output: number[];
}

/**
 * [C, H, W] of a shape: axis 1, the axes between, the last axis ([N, F] is [N, F, 1, 1]; rank 5
 * [N, a, b, c, d] is [a, b·c, d]), so that C·H·W is the values per image at every rank. Ops that
 * need a real [N, C, H, W] check the rank at lowering (need4d).
 */
export function chwOf(shape: number[]): [number, number, number] {
  return chwOfShape(shape);
}

export function fmtShape(s: number[]): string {
  return s.join('×');
}

/**
 * The engine's typed graph: ONNX lowered to the few op kinds the kernels implement (src/ops/), with
 * static shapes and a storage plan.
 *
 * Storage plan. Every activation lives in a *storage* (one GPU buffer at run time) holding
 * `perImage` float32 values per image, images one after another (float32, each tensor row-major:
 * NCHW, or whatever axis order its shape has after a Transpose). A tensor is a
 * *view* of a storage: its values for image n start at `n * perImage + offset` and are contiguous.
 * A Concat along channels is therefore free: its inputs are views into the concat output's storage
 * at increasing offsets, and each producer writes its channel slice directly. Dropout, Identity,
 * Flatten and Reshape are views too (same storage, same offset, another shape). The backward pass
 * uses the same plan for gradients, with K·N items instead of N images.
 */
import { InternalError } from '../errors.ts';
import type { Op } from '../ops/index.ts';

export type { Op };

export interface Storage {
  id: number;
  /** float32 values per image (the batch stride). */
  perImage: number;
  /** The tensor the storage was made for (for labels and error messages). */
  label: string;
}

export interface TensorInfo {
  /** The ONNX tensor name. Several names can share one TensorInfo object's view (aliases). */
  name: string;
  /**
   * Full shape, batch first, rank 2 to 5: [N, F], [N, C, H, W], channels-last [N, H, W, C] (after a
   * Transpose: the shape says nothing of the layout; axis 1 is not always channels), or rank 5
   * ([N, g, C/g, H, W] in a channel shuffle). Values are row-major (contiguous) per image.
   */
  shape: number[];
  storage: number;
  /** Offset in float32 values from the start of the image's block in the storage. */
  offset: number;
  /**
   * A tensor the engine made up, not in the ONNX model (a Concat input's copy, the probabilities
   * added for the softmax score): never offered as a Grad-CAM layer. Set where it is created.
   */
  synthetic?: boolean;
}

/**
 * What every op has. Each op kind's own type (ConvOp, PoolOp, ...) extends it in its spec file,
 * src/ops/<op>.ts; `Op` is their union (src/ops/index.ts).
 */
export interface OpBase {
  kind: string;
  /** The ONNX node name this op came from (several for fused ops: 'conv1/7x7_s2+conv1/relu_7x7'). */
  name: string;
  /** ONNX op types folded into this op, for the profile ('Conv+Relu'). */
  onnxTypes: string[];
  inputs: string[];
  output: string;
}

/** A Concat after placement (in forward order). */
export interface ConcatInfo {
  name: string;
  output: string;
  /**
   * The slices of the output's storage, one per node input: the input itself when its producer writes
   * it in place, else the output of the copy op that copies it there.
   */
  slices: string[];
}

export interface Graph {
  opset: number;
  batch: number;
  /** The graph input (its name and full shape). */
  input: { name: string; shape: number[] };
  /** Every addressable tensor by ONNX name (aliases map to the same storage and offset). */
  tensors: Map<string, TensorInfo>;
  storages: Storage[];
  ops: Op[];
  /** The model's output tensor name (as listed in the ONNX graph). */
  output: string;
  /** The pre-softmax class scores: the output itself, or, for a model ending in Softmax, its input. */
  logits: string;
  /** The softmax output when the model ends in Softmax. */
  probabilities?: string;
  /** Alias name → the tensor it is a view of (Reshape, Flatten, Dropout, Identity outputs). */
  aliases: Map<string, string>;
  /**
   * Aliases that are a contiguous part of their root, by name: values per image from the root's start
   * (a Split or Slice along channels). Their root is never a concat slice written in place, and its
   * gradient is zero-filled before the backward pass, every writer adding (src/runtime/backward.ts).
   */
  aliasOffsets: Map<string, number>;
  /** Concats, as placed: `inPlace` inputs are slices of the output's storage written by their producers. */
  concats: ConcatInfo[];
  /** Tensor names hidden by fusion (name → the fused op that swallowed it). */
  fusedAway: Map<string, string>;
  /** ONNX op counts of the source model. */
  onnxOpCounts: Record<string, number>;
  /**
   * The axes of H and W of each tensor whose layout is known (by ONNX name; layout.ts): [2, 3] for
   * NCHW, [1, 2] for channels-last. Grad-CAM's feature layers are the NCHW ones.
   */
  spatial: ReadonlyMap<string, readonly [number, number]>;
}

export function tensorElements(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Values per image of a tensor (all dims but the batch), from its info or its shape. */
export function perImage(t: { readonly shape: readonly number[] } | readonly number[]): number {
  return tensorElements(('shape' in t ? t.shape : t).slice(1));
}

/**
 * The tensor a name is a view of: the root of an alias (a Reshape, Flatten, Dropout or Identity
 * output), else the name itself. Aliases point at their root directly (lowering resolves chains).
 */
export function aliasRoot(aliases: ReadonlyMap<string, string>, name: string): string {
  return aliases.get(name) ?? name;
}

/**
 * [C, H, W] of a tensor of any rank: axis 1, the axes between, the last axis ([N, F] is [N, F, 1, 1];
 * [N, C, L] is [N, C, L, 1]; rank 5 [N, a, b, c, d] is [a, b·c, d]). C·H·W is always its values per image.
 */
export function chw(t: TensorInfo): [number, number, number] {
  return chwOfShape(t.shape, t.name);
}

/** chw() of a shape. */
export function chwOfShape(s: readonly number[], name = 'a tensor'): [number, number, number] {
  if (s.length === 2) return [s[1], 1, 1];
  if (s.length === 3) return [s[1], s[2], 1];
  if (s.length >= 4) return [s[1], tensorElements(s.slice(2, -1)), s[s.length - 1]];
  throw new InternalError(`${name} has shape [${s}]; expected rank 2 or more (lowering refuses others)`);
}

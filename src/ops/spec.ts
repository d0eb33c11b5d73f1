/**
 * What an op is to the engine: one `OpSpec` per graph op kind, in one file under src/ops/, holding
 * side by side
 *   - its IR type (an interface extending OpBase with its own `kind`),
 *   - its ONNX lowerings (the rows of the lowering table: ONNX op type → input/output counts,
 *     attribute names, the lowering that emits the op),
 *   - its forward and backward dispatches (`kernel`: an OpKernel, src/kernels/types.ts), and the
 *     declared WGSL kernels they use (`kernels`: for ALL_KERNELS and the declaration test),
 *   - whether a following Relu fuses into it (`fusesRelu`: the op then has a `relu` flag), and a
 *     ReLU6 (`fusesRelu6`: a `relu6` flag too).
 * src/ops/index.ts lists every spec once (OPS); the lowering table and the Op union are made from it.
 * The float64 reference and the rounding bound of each ONNX op type live in the tests
 * (test/reference/graph.ts, test/helpers/magnitude.ts).
 */
import type { AnyKernel } from '../gpu/kernel.ts';
import type { Op, OpBase } from '../graph/ir.ts';
import type { OpKernel, OpShapes } from '../kernels/types.ts';
import type { OnnxNode, OnnxTensor } from '../onnx/model.ts';

/** What the lowering of one node can use (made by graph/lower.ts for each node). */
export interface LowerContext {
  node: OnnxNode;
  opset: number;
  /** The batch fixed in the file's input shape, when the lowering runs at another batch (LowerOptions.batch). */
  rebatchedFrom?: number;
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
  /** Records the op with its output's shape. */
  emit(op: Op, outShape: number[]): void;
  /**
   * The output is the input seen with another shape (no op); with `offset`, a contiguous part of each
   * image's values that starts `offset` values in (a channel slice: Graph.aliasOffsets).
   */
  alias(output: string, input: string, shape: number[], offset?: number): void;
  fail(message: string): never;
}

/**
 * One row of the lowering table: the lowering, and what ONNX's checker verifies of the node before
 * it (input and output counts, attribute names), across the opsets the engine reads.
 */
export interface OnnxLowering {
  /** How many inputs the node may list, omitted optional ones ('') included: [min, max]. */
  inputs: [number, number];
  outputs: [number, number];
  /** The op's attributes in any opset; another name is refused ("unrecognized attribute"). */
  attributes: readonly string[];
  lower(ctx: LowerContext): void;
}

export interface OpSpec<O extends OpBase = OpBase> {
  kind: O['kind'];
  /** ONNX op type → its lowering (usually to this kind; Add lowers to `add` or `affine`). */
  onnx?: Readonly<Record<string, OnnxLowering>>;
  /** The forward and backward dispatches of one op of this kind (made at compile time). */
  kernel(op: O, shapes: OpShapes): OpKernel;
  /** A Relu right after the op becomes its `relu` flag (graph/fuse.ts); the op type has `relu: boolean`. */
  fusesRelu?: boolean;
  /** A ReLU6 (Clip(0, 6)) right after the op becomes its `relu` and `relu6` flags (its kernels take FUSED_RELU). */
  fusesRelu6?: boolean;
  /** The declared WGSL kernels its dispatches use (in ALL_KERNELS: test/kernel-declarations.test.ts checks each). */
  kernels?: readonly AnyKernel[];
}

/** An op spec, typed by its IR interface. */
export function defineOp<O extends OpBase>(spec: OpSpec<O>): OpSpec<O> {
  return spec;
}

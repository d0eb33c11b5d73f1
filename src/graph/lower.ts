/**
 * ONNX → Graph. Each node is checked and lowered by its row of the lowering table (src/ops/index.ts:
 * ONNX op type → the lowering in its op's file, src/ops/<op>.ts); then fusion (fuse.ts) and the
 * storage plan (placement.ts). Shapes are inferred here, statically, from the graph input's shape.
 */
import { GradcamError } from '../errors.ts';
import type { OnnxModel, OnnxTensor, OnnxValueInfo } from '../onnx/model.ts';
import { DEFAULT_SIZE, inputLayout, type Layout } from '../image/recipes.ts';
import { list } from '../ops/attributes.ts';
import { LOWERINGS, SUPPORTED_OPS } from '../ops/index.ts';
import type { LowerContext } from '../ops/spec.ts';
import { Constants } from './fold.ts';
import { fuse } from './fuse.ts';
import { spatialAxes } from './layout.ts';
import type { Graph, Op } from './ir.ts';
import { aliasRoot, perImage, tensorElements } from './ir.ts';
import { place } from './placement.ts';
import { checkSupported } from './support.ts';

export interface LowerOptions {
  /** Tensor names that must stay addressable (fusion will not hide them). */
  taps?: string[];
  /**
   * Batch size (default: the model's, 1 when symbolic). A model exported with a fixed batch is
   * re-batched: a Reshape's constant shape whose first entry is that fixed batch reads it as the batch.
   */
  batch?: number;
  /**
   * [H, W] for an input whose height and width the file leaves open (dim_param, 0 or unknown):
   * the recipe's size or the user's; default DEFAULT_SIZE (224 × 224).
   */
  inputSize?: [number, number];
  /** The input's layout when the recipe states it (which axes are height and width); default: from the shape. */
  layout?: Layout;
}

/**
 * The most float32 values one tensor may hold per image: 2^28 (1 GiB), beyond what a WebGPU device
 * binds as one storage buffer. (GoogLeNet's largest holds 802,816.) A model past it is refused at
 * lowering instead of failing in a GPU allocation.
 */
export const MAX_VALUES_PER_IMAGE = 2 ** 28;

/** The highest tensor rank the engine reads, batch included (the layout kernel's index math: shaders/layout.wgsl). */
export const MAX_RANK = 5;

/** Why a shape cannot be a tensor of the engine (undefined when it can). */
function badShape(shape: readonly number[]): string | undefined {
  // Rank 2 to 5: [N, F] … [N, C, H, W], channels-last [N, H, W, C], and the rank-5 views of a channel
  // shuffle ([N, g, C/g, H, W]). Kernels that need [N, C, H, W] check it at lowering (need4d);
  // element-wise and layout kernels are rank-generic.
  if (shape.length < 2 || shape.length > MAX_RANK) return `rank ${shape.length}; the engine's tensors have 2 to ${MAX_RANK} dimensions`;
  const i = shape.findIndex((d) => !Number.isSafeInteger(d) || d < 1);
  if (i >= 0) return `dimension ${i} is ${shape[i]}; expected ≥ 1`;
  const values = perImage(shape);
  if (values > MAX_VALUES_PER_IMAGE) return `${values} values per image is more than the engine's limit of ${MAX_VALUES_PER_IMAGE} (1 GiB of float32)`;
  return undefined;
}

/** The graph input's shape: every dimension ≥ 1; a symbolic (or, with `batch`, any) batch dimension becomes the batch. */
function inputShapeOf(input: OnnxValueInfo, options: LowerOptions): number[] {
  const { name } = input;
  if (options.batch !== undefined && (!Number.isSafeInteger(options.batch) || options.batch < 1)) {
    throw new GradcamError(`batch ${options.batch} is not a batch size; expected an integer ≥ 1`);
  }
  if (input.shape.length !== 4) throw new GradcamError(`input '${name}' has shape ${list(input.shape)}; expected a 4-D NCHW image tensor`);
  // The spatial axes (NCHW: 2, 3; NHWC: 1, 2) may be left open: they take the stated size.
  const layout = inputLayout(input.shape, options.layout);
  const spatial = layout === 'NHWC' ? [1, 2] : [2, 3];
  const size = options.inputSize ?? DEFAULT_SIZE;
  const shape = input.shape.map((d, i) => {
    if (i === 0 && options.batch) return options.batch;
    if (spatial.includes(i) && (typeof d !== 'number' || d === 0)) return size[spatial.indexOf(i)];
    if (typeof d === 'number') {
      if (!Number.isSafeInteger(d) || d < 1) throw new GradcamError(`dimension ${i} of input '${name}' is ${d}; expected ≥ 1`);
      return d;
    }
    if (i === 0) return 1;
    if (d === null) throw new GradcamError(`dimension ${i} of input '${name}' has no size (neither a value nor a name); only the batch, height and width may be unknown`);
    throw new GradcamError(`input '${name}' has a symbolic size '${d}' at axis ${i} (the channels of a ${layout} input); only the batch, height and width may be symbolic`);
  });
  const bad = badShape(shape);
  if (bad) throw new GradcamError(`input '${name}' has shape ${list(shape)}: ${bad}`);
  return shape;
}

/**
 * Lowers a decoded ONNX model to a Graph with a storage plan.
 *
 * Every node is checked as ONNX's checker (and shape inference) would before the engine relies on
 * it, with the node named: its input and output counts and attribute names, that it reads only
 * tensors defined before it and defines each tensor name once; then its lowering checks attribute
 * values (strides, dilations, kernel ≥ 1, pads ≥ 0, the window fits the padded input), weight shapes
 * against its inputs, and every tensor it makes has dimensions ≥ 1 (a zero-size tensor is refused
 * here, not left to crash a GPU driver later). Linear in the number of nodes: names are indexed in Maps.
 */
export function lower(model: OnnxModel, options: LowerOptions = {}): Graph {
  if (model.inputs.length === 0) throw new GradcamError('the model has no input (other than initializers); expected one image input');
  if (model.inputs.length !== 1) {
    throw new GradcamError(`the model has ${model.inputs.length} inputs (${model.inputs.map((i) => `'${i.name}'`).join(', ')}); expected one image input`);
  }
  if (model.outputs.length < 1) throw new GradcamError('the model declares no output');
  // Every op type the model uses that the engine lacks, named at once (before any node is lowered).
  checkSupported(model);
  const inputInfo = model.inputs[0];
  if (!inputInfo.name) throw new GradcamError('the graph input has no name');
  if (inputInfo.elemType !== 'float32') throw new GradcamError(`input '${inputInfo.name}' has element type ${inputInfo.elemType}; expected float32`);
  const inputShape = inputShapeOf(inputInfo, options);
  const fileBatch = inputInfo.shape[0];
  const rebatchedFrom = typeof fileBatch === 'number' && fileBatch !== inputShape[0] ? fileBatch : undefined;

  const shapes = new Map<string, number[]>([[inputInfo.name, inputShape]]);
  const aliases = new Map<string, string>();
  const aliasOffsets = new Map<string, number>();
  const ops: Op[] = [];
  /** Op by output name (the producer of each op output, before fusion). */
  const producers = new Map<string, Op>();
  /** Outputs a node declares but the engine does not compute (Dropout's mask): name → the node. */
  const uncomputed = new Map<string, string>();
  const onnxOpCounts: Record<string, number> = Object.create(null);
  const root = (n: string): string => aliasRoot(aliases, n);
  /** Initializers, Constants and the values of folded nodes (fold.ts). */
  const constants = new Constants(model.initializers);
  const defined = (n: string) => shapes.has(n) || constants.has(n) || uncomputed.has(n);

  for (const node of model.nodes) {
    onnxOpCounts[node.opType] = (onnxOpCounts[node.opType] ?? 0) + 1;
    const where = `node '${node.name}' (${node.opType})`;
    const fail = (message: string): never => {
      throw new GradcamError(`${where}: ${message}`);
    };
    if (node.domain && node.domain !== 'ai.onnx') fail(`domain '${node.domain}' is not supported (only the default ONNX domain)`);
    // Shape arithmetic on constants and static shapes is evaluated now, never on the GPU (fold.ts).
    const foldEnv = { opset: model.opset, fail, activation: (n: string) => shapes.get(n), defined };
    if (constants.fold(node, foldEnv, LOWERINGS.has(node.opType))) continue;
    const spec = LOWERINGS.get(node.opType);
    if (!spec) {
      return fail(`${node.opType ? `op type ${node.opType} is not supported` : 'the node has no op type'}; supported ops: ${SUPPORTED_OPS.join(', ')}`);
    }
    const count = ([lo, hi]: [number, number]) => (lo === hi ? `${lo}` : hi === Infinity ? `at least ${lo}` : `${lo} to ${hi}`);
    if (node.inputs.length < spec.inputs[0] || node.inputs.length > spec.inputs[1]) {
      fail(`has ${node.inputs.length} inputs; expected ${count(spec.inputs)}`);
    }
    if (node.outputs.length < spec.outputs[0] || node.outputs.length > spec.outputs[1]) {
      fail(`has ${node.outputs.length} outputs; expected ${count(spec.outputs)}`);
    }
    if (!node.outputs[0]) fail('output 0 has no name');
    for (const key of Object.keys(node.attributes)) {
      if (!spec.attributes.includes(key)) {
        fail(`unrecognized attribute '${key}' (${node.opType} has ${spec.attributes.length ? spec.attributes.join(', ') : 'none'})`);
      }
    }
    // ONNX graphs are in single static assignment form: every tensor name is defined once.
    node.outputs.forEach((o, i) => {
      if (!o) return;
      if (defined(o) || node.outputs.indexOf(o) !== i) {
        fail(`output '${o}' is already defined (${o === inputInfo.name ? 'the graph input' : constants.has(o) ? `an ${constants.what(o)}` : 'by an earlier output'}); every tensor name must be defined once`);
      }
    });
    const ctx: LowerContext = {
      node, opset: model.opset, fail, rebatchedFrom,
      shape(name) {
        const s = shapes.get(name);
        if (s) return s;
        if (constants.has(name)) fail(`input '${name}' is a constant, but an activation is expected here`);
        const by = uncomputed.get(name);
        if (by !== undefined) fail(`reads '${name}', an output of node '${by}' that the engine does not compute`);
        return fail(`reads '${name}', which no earlier node produces and no initializer holds (a missing initializer?)`);
      },
      isConstant: (name) => constants.has(name),
      hasActivation: (name) => shapes.has(name),
      weight(name, expected) {
        const v = constants.get(name);
        if (!v) return fail(`reads '${name}', which no initializer holds (a missing initializer?)`);
        const what = `${constants.what(name)} '${name}'`;
        if (v.dataType !== 'float32') return fail(`${what} is ${v.dataType}; expected float32`);
        const t = constants.tensor(name)!;
        if (t.dims.some((d) => d < 1)) fail(`${what} has shape ${list(t.dims)}; a weight needs every dimension ≥ 1`);
        if (t.data.length !== tensorElements(t.dims)) fail(`${what} holds ${t.data.length} values, but its shape ${list(t.dims)} needs ${tensorElements(t.dims)}`);
        if (expected !== undefined && t.data.length !== expected) fail(`${what} has ${t.data.length} values ${list(t.dims)}; expected ${expected}`);
        return t as OnnxTensor & { data: Float32Array };
      },
      ints(name) {
        const v = constants.get(name);
        if (!v) return fail(`reads '${name}', which no initializer holds (a missing initializer?)`);
        const what = `${constants.what(name)} '${name}'`;
        if (v.dataType !== 'int64') return fail(`${what} is ${v.dataType}; expected int64`);
        if (v.dims.length !== 1) fail(`${what} has shape ${list(v.dims)}; expected a 1-D list of sizes`);
        return Array.from(v.data as BigInt64Array, Number);
      },
      emit(op, outShape) {
        const bad = badShape(outShape);
        if (bad) fail(`its output '${op.output}' would have shape ${list(outShape)}: ${bad}`);
        ops.push(op);
        producers.set(op.output, op);
        shapes.set(op.output, outShape);
      },
      alias(output, input, shape, offset = 0) {
        ctx.shape(input);
        const bad = badShape(shape);
        if (bad) fail(`its output '${output}' would have shape ${list(shape)}: ${bad}`);
        aliases.set(output, root(input));
        const at = (aliasOffsets.get(input) ?? 0) + offset; // offsets from the root
        if (at) aliasOffsets.set(output, at);
        shapes.set(output, shape);
      },
    };
    spec.lower(ctx);
    // Inputs the lowering did not read (Dropout's ratio...) must still be defined before the node.
    for (const i of node.inputs) if (i && !defined(i)) fail(`reads '${i}', which no earlier node produces and no initializer holds`);
    for (const o of node.outputs.slice(1)) if (o && !shapes.has(o)) uncomputed.set(o, node.name);
  }

  const outputName = model.outputs[0].name;
  if (constants.has(outputName)) throw new GradcamError(`output '${outputName}' is a constant (it does not depend on the input); expected class scores computed from the input`);
  if (!shapes.has(outputName)) throw new GradcamError(`output '${outputName}' is not produced by any node`);
  // The logits: the output, or the input of a final Softmax.
  const last = producers.get(root(outputName));
  const endsInSoftmax = last?.kind === 'softmax';
  // (The softmax's input name as the node wrote it: it may be an alias of the op that produced it.)
  const logits = endsInSoftmax ? last.inputs[0] : outputName;
  const logitShape = shapes.get(logits)!;
  if (logitShape.length !== 2 && !(logitShape.length === 4 && logitShape[2] === 1 && logitShape[3] === 1)) {
    throw new GradcamError(`output '${outputName}' has shape [${shapes.get(outputName)}]; expected class scores [N, classes]`);
  }

  const taps = new Set(options.taps ?? []);
  for (const t of taps) if (!shapes.has(t)) throw new GradcamError(`unknown tensor '${t}'`);
  const keep = new Set([...taps, outputName, logits].map(root));
  const spatial = spatialAxes(model.nodes, shapes, inputInfo.name);
  const fusedAway = fuse(ops, keep, aliases, aliasOffsets);
  const { tensors, storages, ops: placed, concats } = place(ops, shapes, aliases, aliasOffsets, inputInfo.name, fusedAway);
  return {
    opset: model.opset, batch: inputShape[0], input: { name: inputInfo.name, shape: inputShape },
    tensors, storages, ops: placed, output: outputName, logits, probabilities: endsInSoftmax ? outputName : undefined,
    aliases, aliasOffsets, concats, fusedAway, onnxOpCounts, spatial,
  };
}

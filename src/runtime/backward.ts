/**
 * The targeted backward pass: from the score tensor (one-hot seeds, K classes per image) down to the
 * requested feature tensors, through the cone of ops between them only, gradients with respect to
 * activations only.
 *
 * Gradient storage mirrors the forward storage plan: a gradient buffer per forward storage that holds
 * a tensor of the cone, K·N items long, and each tensor's gradient at the tensor's own offset. A
 * Concat's gradient therefore splits for free: each in-place input's gradient is its channel slice of
 * the output's gradient. Ops run in reverse order; where a tensor feeds several consumers the first
 * writes its gradient and the others add to it (a fixed order, no atomics). An in-place Concat input
 * that also feeds other ops gets a gradient buffer of its own, into which its slice is added.
 */
import { InternalError } from '../errors.ts';
import { backwardCone } from '../graph/cone.ts';
import { ancestors, descendants, rootOf } from '../graph/deps.ts';
import { type Graph, type Op, perImage } from '../graph/ir.ts';
import type { BufferView, Dispatch, KernelEnv } from '../gpu/dispatch.ts';
import { sliceGradient } from '../kernels/elementwise.ts';
import { zeroFill } from '../ops/layout.ts';
import type { GradTarget, OpKernel } from '../kernels/types.ts';

export interface BackwardRequest {
  /** The score tensor (seeded one-hot): the logits or the probabilities, [N, classes]. */
  score: string;
  /** Feature tensors whose gradients are wanted. */
  features: string[];
  /** Classes per image (the gradient batch is N·K). */
  classesPerImage: number;
  /** Guided backprop: every ReLU's backward also drops negative gradients (BackwardArgs.guided). */
  guided?: boolean;
}

export interface BackwardProgram {
  items: number;
  /** Gradient of the score tensor (written by the seed kernel before `dispatches`). */
  scoreGrad: BufferView;
  /** Gradients of the feature tensors, by the requested name. */
  featureGrads: Map<string, BufferView>;
  dispatches: Dispatch[];
  /** The ops of the cone, in forward order (for reports and tests). */
  cone: Op[];
  /** The gradients written, in backward order (for naming where non-finite values appear). */
  trail: GradientStep[];
}

export interface GradientStep {
  /** The tensor whose gradient is written, and the node whose backward writes it. */
  tensor: string;
  node: string;
  view: BufferView;
  perItem: number;
}

interface Compiled {
  graph: Graph;
  env: KernelEnv;
  kernels: Map<Op, OpKernel>;
  view(name: string): BufferView;
}

/** Which tensors carry a gradient, and where their gradients live (shared by compile and sizing). */
export interface GradientPlan {
  cone: Op[];
  /** A tensor needs a gradient when it lies between the features and the score. */
  needs(t: string): boolean;
  /** In-place concat slice (root) → the concat output (root) whose gradient holds its gradient. */
  container: Map<string, string>;
  /** Slices (roots) that get a gradient buffer of their own. */
  ownBuffer: Set<string>;
}

export function gradientPlan(graph: Graph, score: string, features: string[]): GradientPlan {
  const root = (n: string) => rootOf(graph, n);
  const cone = backwardCone(graph, score, features);
  const down = descendants(graph, features);
  const up = ancestors(graph, score);
  const needs = (t: string) => down.has(root(t)) && up.has(root(t));
  // Concat slices: their gradient is their part of the concat output's gradient...
  const container = new Map<string, string>();
  for (const cat of graph.concats) for (const sl of cat.slices) container.set(root(sl), root(cat.output));
  // ...in place, unless an op of the cone also reads the slice: then it gets a buffer of its own,
  // to which its part of the output's gradient is added.
  const readInCone = (t: string) => cone.some((o) => o.inputs.some((i) => root(i) === t));
  const ownBuffer = new Set([...container.keys()].filter((t) => needs(t) && readInCone(t)));
  return { cone, needs, container, ownBuffer };
}

/**
 * The gradient buffers a backward pass for `req` may make (floats each; at most these, a few may
 * turn out unused), without making any: for checking a request against the device's limits first.
 */
export function gradientBuffers(graph: Graph, req: BackwardRequest, plan = gradientPlan(graph, req.score, req.features)): { label: string; floats: number }[] {
  const { needs, ownBuffer } = plan;
  const items = graph.batch * req.classesPerImage;
  const root = (n: string) => rootOf(graph, n);
  const storages = new Set<number>();
  const own = new Map<string, number>();
  for (const [name, t] of graph.tensors) {
    if (!(needs(name) || name === req.score || req.features.includes(name))) continue;
    if (ownBuffer.has(root(name))) own.set(root(name), perImage(t) * items);
    else storages.add(t.storage);
  }
  return [
    ...[...storages].map((id) => ({ label: `grad ${graph.storages[id].label}`, floats: graph.storages[id].perImage * items })),
    ...[...own].map(([r, floats]) => ({ label: `grad ${r}`, floats })),
  ];
}

export async function compileBackward(c: Compiled, req: BackwardRequest): Promise<BackwardProgram> {
  const { graph, env } = c;
  const root = (n: string) => rootOf(graph, n);
  const items = graph.batch * req.classesPerImage;
  const { cone, needs, container, ownBuffer } = gradientPlan(graph, req.score, req.features);

  const storageGrads = new Map<number, GPUBuffer>();
  const ownGrads = new Map<string, GPUBuffer>();
  const gradView = (name: string): BufferView => {
    const t = graph.tensors.get(name)!;
    const r = root(name);
    if (ownBuffer.has(r)) {
      const per = perImage(t);
      if (!ownGrads.has(r)) ownGrads.set(r, env.scratch(per * items, `grad ${r}`));
      return { buffer: ownGrads.get(r)!, offset: 0, stride: per };
    }
    const stride = graph.storages[t.storage].perImage;
    if (!storageGrads.has(t.storage)) storageGrads.set(t.storage, env.scratch(stride * items, `grad ${graph.storages[t.storage].label}`));
    return { buffer: storageGrads.get(t.storage)!, offset: t.offset, stride };
  };

  // Gradients written so far (the score's by the seed); an in-place slice is written with its container.
  const written = new Set<string>([root(req.score)]);
  const isWritten = (t: string): boolean => written.has(t) || (!ownBuffer.has(t) && container.has(t) && isWritten(container.get(t)!));
  /** Each gradient written, in the order the backward pass writes them (for diagnosis). */
  const trail: GradientStep[] = [];
  let node = '';
  const target = (name: string): GradTarget => {
    const r = root(name);
    const t = { view: gradView(name), accumulate: isWritten(r) };
    written.add(r);
    const info = graph.tensors.get(name)!;
    trail.push({ tensor: name, node, view: t.view, perItem: perImage(info) });
    return t;
  };
  const dispatches: Dispatch[] = [];
  // A tensor read through channel slices (a Split or Slice as views: Graph.aliasOffsets) gets its
  // gradient in parts, from each slice's consumers, and none for a part nobody reads: it is
  // zero-filled first, and every writer adds.
  for (const r of new Set([...graph.aliasOffsets.keys()].map(root))) {
    if (!needs(r) || isWritten(r)) continue;
    node = `${r}/zero`;
    dispatches.push(await zeroFill(env, gradView(r), perImage(graph.tensors.get(r)!), items, `${r}/zero`));
    written.add(r);
  }
  const addSlice = async (t: string) => {
    node = `${t}/slice`;
    const out = container.get(t)!;
    if (!isWritten(out)) return;
    const info = graph.tensors.get(t)!;
    const from: BufferView = { buffer: gradView(out).buffer, offset: info.offset, stride: graph.storages[info.storage].perImage };
    dispatches.push(await sliceGrad(env, from, target(t), info.shape, items, t));
  };

  for (const op of [...cone].reverse()) {
    // The output's gradient is complete here: every consumer comes later in forward order.
    if (ownBuffer.has(op.output)) await addSlice(op.output);
    if (!isWritten(op.output)) continue; // reached only through paths that carry no gradient
    node = op.name;
    const dx = op.inputs.map((i) => (needs(i) ? target(i) : null));
    dispatches.push(...await c.kernels.get(op)!.backward({
      env, inputs: op.inputs.map(c.view), output: c.view(op.output), dy: gradView(op.output), dx, items, maskDiv: req.classesPerImage, guided: req.guided,
    }));
  }
  for (const f of req.features) {
    if (ownBuffer.has(root(f)) && !written.has(root(f))) await addSlice(root(f));
    if (!isWritten(root(f))) throw new InternalError(`no gradient reached layer '${f}'`);
  }
  return {
    items, scoreGrad: gradView(req.score), cone, dispatches, trail,
    featureGrads: new Map(req.features.map((f) => [f, gradView(f)])),
  };
}

/** dst (+)= the slice (one in-place concat input's share of the concat's gradient). */
function sliceGrad(env: KernelEnv, from: BufferView, t: GradTarget, shape: number[], items: number, label: string): Promise<Dispatch> {
  return sliceGradient(env, from, t, shape, items, label);
}

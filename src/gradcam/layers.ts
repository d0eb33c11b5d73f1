/**
 * Feature-layer choice, for any CNN:
 *   - candidates: NCHW tensors with more than one spatial position that the score depends on
 *     (the layout follows the graph, src/graph/layout.ts: a channels-last tensor, [N, H, W, C] or
 *     [N, 1, 1, C], is never one: Grad-CAM reads a layer as [C, h·w]);
 *   - `auto`: the last candidate in forward order, i.e. the last tensor with spatial extent before
 *     global pooling (MATLAB's gradCAM rule);
 *   - `all`: the stage outputs, i.e. at each spatial resolution the last candidate that every path
 *     from the input to the score goes through (a ResNet's layer1 … layer4 outputs, not the first
 *     conv of the next stage's downsampling block, which the shortcut bypasses); where the model
 *     has inception blocks (a Concat of at least three parallel branches, each in no other Concat:
 *     GoogLeNet's and Inception v3's, not DenseNet's running concatenations), their outputs
 *     instead: they end its stages (GoogLeNet's 28, 14 and 7 stages end in one), and the stem's
 *     112×112 and 56×56 outputs would take the backward pass of `all` from inception_3a down to
 *     conv1, through conv2's 3×3 at 56×56;
 *   - names: an exact tensor name; a torchvision module path (`layer4`, `layer4.1`, `features.18`)
 *     against torch.onnx's scoped names (`/layer4/layer4.1/relu_1/Relu_output_0`): the last
 *     candidate whose name starts with `/layer4/layer4.1/`; a block name (`inception_4e`): a path
 *     component of a candidate's name, ignoring `_`, `.`, `-` and case, block outputs first.
 */
import { GradcamError } from '../errors.ts';
import { ancestors, descendants, parentMap, rootOf } from '../graph/deps.ts';
import type { Graph } from '../graph/ir.ts';
import { hasSpatialExtent } from '../graph/layout.ts';

export interface LayerInfo {
  name: string;
  shape: number[];
  /** An inception block output (a Concat of ≥ 3 parallel branches). */
  block: boolean;
  /** A stage output: the last tensor at its spatial resolution that every input-to-score path goes through. */
  stage: boolean;
}

/**
 * Forward order of the tensors (by root): the input, then op outputs in op order, each Concat output
 * right after the last of its slices is written (nested concats too). Linear.
 */
function forwardOrder(graph: Graph): Map<string, number> {
  const root = (n: string) => rootOf(graph, n);
  const order = new Map<string, number>();
  const waiting = new Map<string, number[]>();
  const missing = graph.concats.map((c, i) => {
    const slices = new Set(c.slices.map(root));
    for (const s of slices) waiting.set(s, [...(waiting.get(s) ?? []), i]);
    return slices.size;
  });
  const place = (t: string) => {
    const stack = [t];
    while (stack.length) {
      const x = stack.pop()!;
      if (order.has(x)) continue;
      order.set(x, order.size);
      for (const i of waiting.get(x) ?? []) if (--missing[i] === 0) stack.push(root(graph.concats[i].output));
    }
  };
  place(root(graph.input.name));
  for (const op of graph.ops) place(root(op.output));
  for (const c of graph.concats) place(root(c.output)); // (a concat of the input alone)
  return order;
}

/**
 * The tensors (roots) that every path from the input to `score` goes through. In a topological
 * order of the tensors on such paths, t is one exactly when no edge jumps over it (an edge u → w
 * with u before t and w after it would be a path around t).
 */
function cutTensors(graph: Graph, score: string, order: Map<string, number>): Set<string> {
  const up = ancestors(graph, score);
  const down = descendants(graph, [graph.input.name]);
  const onPath = [...up].filter((t) => down.has(t) && order.has(t)).sort((a, b) => order.get(a)! - order.get(b)!);
  const on = new Set(onPath);
  const reach = new Map<string, number>();
  for (const [t, parents] of parentMap(graph)) {
    if (!on.has(t)) continue;
    for (const p of parents) if (on.has(p)) reach.set(p, Math.max(reach.get(p) ?? -1, order.get(t)!));
  }
  const cuts = new Set<string>();
  let furthest = -1;
  for (const t of onPath) {
    if (furthest <= order.get(t)!) cuts.add(t);
    furthest = Math.max(furthest, reach.get(t) ?? -1);
  }
  return cuts;
}

/** Candidate feature layers in forward order: NCHW tensors with H·W > 1 that the score depends on. */
export function candidateLayers(graph: Graph, score: string = graph.logits): LayerInfo[] {
  const root = (n: string) => rootOf(graph, n);
  const order = forwardOrder(graph);
  const up = ancestors(graph, score);
  const at = (name: string) => (order.get(root(name)) ?? 0) + (name === root(name) ? 0 : 0.5);
  const found = [...graph.tensors.values()]
    .filter((t) => !t.synthetic && t.name !== graph.input.name && hasSpatialExtent(t.shape, graph.spatial.get(t.name)) && up.has(root(t.name)))
    .sort((a, b) => at(a.name) - at(b.name));
  // Inception blocks: every slice written in place (a tensor in another concat, or twice in this
  // one, is copied: DenseNet's concatenations), at least three of them.
  const blocks = new Set(graph.concats
    .filter((c) => c.slices.length >= 3 && c.slices.every((s) => !graph.tensors.get(s)?.synthetic))
    .map((c) => root(c.output)));
  // Stages: the last cut tensor at each resolution (one name per tensor: its first, the producer's).
  const cuts = cutTensors(graph, score, order);
  const lastAt = new Map<string, string>();
  const named = new Set<string>();
  for (const t of found) {
    const r = root(t.name);
    if (named.has(r)) continue;
    named.add(r);
    if (cuts.has(r)) lastAt.set(`${t.shape[2]}×${t.shape[3]}`, t.name);
  }
  const stages = new Set(lastAt.values());
  return found.map((t) => ({ name: t.name, shape: t.shape, block: blocks.has(root(t.name)) && t.name === root(t.name), stage: stages.has(t.name) }));
}

const norm = (s: string) => s.toLowerCase().replace(/[_.\-]/g, '');

/** The name prefix of a torchvision module path in torch.onnx's scoped names: 'layer4.1' → '/layer4/layer4.1/'. */
export function modulePrefix(path: string): string {
  if (path.startsWith('/')) return `${path.replace(/\/+$/, '')}/`;
  const parts = path.split('.');
  return `/${parts.map((_, i) => parts.slice(0, i + 1).join('.')).join('/')}/`;
}

/** The top-level modules of torch.onnx-style names among the candidates ('conv1', 'layer1', …), in forward order. */
function modules(candidates: LayerInfo[]): string[] {
  return [...new Set(candidates.filter((c) => c.name.startsWith('/') && c.name.indexOf('/', 1) > 0).map((c) => c.name.slice(1, c.name.indexOf('/', 1))))];
}

/** The layers `all` explains, in forward order: the inception block outputs where there are any, else the stage outputs. */
export function allLayers(candidates: readonly LayerInfo[]): LayerInfo[] {
  const blocks = candidates.filter((c) => c.block);
  return blocks.length ? blocks : candidates.filter((c) => c.stage);
}

/** Resolves a layer request ('auto', 'all', tensor names, module paths, block names) to tensor names. */
export function resolveLayers(graph: Graph, requests: string[], score: string = graph.logits): string[] {
  const candidates = candidateLayers(graph, score);
  if (candidates.length === 0) throw new GradcamError('the model has no tensor with spatial extent that the score depends on: nothing to explain');
  const all = allLayers(candidates);
  const out: string[] = [];
  const list = (items: LayerInfo[]) => items.map((c) => c.name).join(', ');
  for (const req of requests.length ? requests : ['auto']) {
    if (req === 'auto') out.push(candidates[candidates.length - 1].name);
    else if (req === 'all') out.push(...all.map((c) => c.name));
    else if ((graph.tensors.has(req) && !graph.tensors.get(req)!.synthetic) || graph.fusedAway.has(req)) out.push(req);
    else {
      const prefix = modulePrefix(req);
      const inModule = candidates.filter((c) => c.name.startsWith(prefix));
      if (inModule.length) {
        out.push(inModule[inModule.length - 1].name);
        continue;
      }
      // A module whose tensors (or nodes: '/fc/Gemm' writes 'logits') exist, none with spatial extent.
      if ([...graph.tensors.keys()].some((t) => t.startsWith(prefix)) || graph.ops.some((o) => o.name.split('+').some((n) => n.startsWith(prefix)))) {
        throw new GradcamError(`layer '${req}': module ${prefix} has no tensor with spatial extent that the score depends on`,
          `Modules with feature layers: ${modules(candidates).join(', ') || '(none)'}. \`gradcam info\` lists every candidate.`);
      }
      const q = norm(req);
      const matches = (items: LayerInfo[]) => items.filter((c) => c.name.split('/').some((part) => norm(part) === q));
      const blocks = candidates.filter((c) => c.block);
      const found = matches(blocks).length ? matches(blocks) : matches(candidates);
      if (found.length === 1) out.push(found[0].name);
      else if (found.length > 1) throw new GradcamError(`layer '${req}' is ambiguous: it matches ${list(found)}`, 'Give one of these tensor names.');
      else {
        const mods = modules(candidates);
        throw new GradcamError(`unknown layer '${req}'`,
          `${mods.length ? `Modules: ${mods.join(', ')} (and their sub-modules, e.g. ${mods[mods.length - 1]}.0). ` : ''}`
          + `Stage or block outputs ('all'): ${list(all) || '(none)'}. Other candidates: ${list(candidates.filter((c) => !all.includes(c)).slice(-8))} … (\`gradcam info\` lists all).`);
      }
    }
  }
  return [...new Set(out)];
}

/**
 * Feature-layer choice: the candidates (tensors with spatial extent that the score depends on), the
 * automatic choice (the last one before global pooling, as MATLAB's gradCAM picks), `all` (every
 * block output: Concat outputs), and names: an exact tensor name, or a block name (`inception_4e`)
 * that resolves to that block's Concat output.
 */
import { GradcamError } from '../errors.ts';
import { ancestors, rootOf } from '../graph/deps.ts';
import type { Graph } from '../graph/ir.ts';

export interface LayerInfo {
  name: string;
  shape: number[];
  /** True for a block output (a Concat output). */
  block: boolean;
}

/** Position of each tensor in forward order (a Concat output comes right after its last input). */
function positions(graph: Graph): Map<string, number> {
  const root = (n: string) => rootOf(graph, n);
  const pos = new Map<string, number>([[graph.input.name, -1]]);
  graph.ops.forEach((o, i) => pos.set(o.output, i));
  for (const c of graph.concats) pos.set(c.output, Math.max(...c.slices.map((i) => pos.get(root(i)) ?? -1)) + 0.5);
  for (const [alias, r] of graph.aliases) pos.set(alias, (pos.get(r) ?? -1) + 0.25);
  return pos;
}

/** Candidate feature layers in forward order: 4-D tensors with H·W > 1 that the score depends on. */
export function candidateLayers(graph: Graph, score: string = graph.logits): LayerInfo[] {
  const pos = positions(graph);
  const up = ancestors(graph, score);
  const blocks = new Set(graph.concats.map((c) => c.output));
  return [...graph.tensors.values()]
    .filter((t) => !t.synthetic && t.shape.length === 4 && t.shape[2] * t.shape[3] > 1 && t.name !== graph.input.name && up.has(rootOf(graph, t.name)))
    .sort((a, b) => (pos.get(a.name) ?? 0) - (pos.get(b.name) ?? 0))
    .map((t) => ({ name: t.name, shape: t.shape, block: blocks.has(t.name) }));
}

const norm = (s: string) => s.toLowerCase().replace(/[_.\-]/g, '');

/** Resolves a layer request ('auto', 'all', tensor names, block names) to tensor names. */
export function resolveLayers(graph: Graph, requests: string[], score: string = graph.logits): string[] {
  const candidates = candidateLayers(graph, score);
  if (candidates.length === 0) throw new GradcamError('the model has no tensor with spatial extent that the score depends on: nothing to explain');
  const blocks = candidates.filter((c) => c.block);
  const out: string[] = [];
  const list = (items: LayerInfo[]) => items.map((c) => c.name).join(', ');
  for (const req of requests.length ? requests : ['auto']) {
    if (req === 'auto') out.push(candidates[candidates.length - 1].name);
    else if (req === 'all') out.push(...(blocks.length ? blocks : candidates).map((c) => c.name));
    else if ((graph.tensors.has(req) && !graph.tensors.get(req)!.synthetic) || graph.fusedAway.has(req)) out.push(req);
    else {
      const q = norm(req);
      const matches = (items: LayerInfo[]) => items.filter((c) => c.name.split('/').some((part) => norm(part) === q));
      const found = matches(blocks).length ? matches(blocks) : matches(candidates);
      if (found.length === 1) out.push(found[0].name);
      else if (found.length > 1) throw new GradcamError(`layer '${req}' is ambiguous: it matches ${list(found)}`, 'Give one of these tensor names.');
      else {
        throw new GradcamError(`unknown layer '${req}'`,
          `Block outputs: ${list(blocks) || '(none)'}. Other candidates: ${list(candidates.filter((c) => !c.block).slice(-8))} … (\`gradcam info\` lists all).`);
      }
    }
  }
  return [...new Set(out)];
}

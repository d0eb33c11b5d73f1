/**
 * Dependencies between tensors (by root name: aliases are their root), with Concat edges: a Concat
 * output depends on its slices, which are written by ops (in place) or by copy ops.
 */
import type { Graph } from './ir.ts';

export function rootOf(graph: Graph, name: string): string {
  return graph.aliases.get(name) ?? name;
}

/** Each tensor's direct inputs: an op's inputs, or a Concat's slices. */
export function parentMap(graph: Graph): Map<string, string[]> {
  const root = (n: string) => rootOf(graph, n);
  const parents = new Map<string, string[]>(graph.ops.map((o) => [o.output, o.inputs.map(root)]));
  for (const c of graph.concats) parents.set(c.output, c.slices.map(root));
  return parents;
}

/** The tensors `from` depends on, itself included. */
export function ancestors(graph: Graph, from: string): Set<string> {
  const parents = parentMap(graph);
  const seen = new Set<string>();
  const stack = [rootOf(graph, from)];
  while (stack.length) {
    const t = stack.pop()!;
    if (seen.has(t)) continue;
    seen.add(t);
    for (const p of parents.get(t) ?? []) stack.push(p);
  }
  return seen;
}

/** The tensors that depend on any of `from`, those included. */
export function descendants(graph: Graph, from: string[]): Set<string> {
  const parents = parentMap(graph);
  const down = new Set(from.map((f) => rootOf(graph, f)));
  // Fixpoint over the (small) graph: concat outputs are not ordered among the ops.
  for (let changed = true; changed;) {
    changed = false;
    for (const [t, ps] of parents) {
      if (!down.has(t) && ps.some((p) => down.has(p))) {
        down.add(t);
        changed = true;
      }
    }
  }
  return down;
}

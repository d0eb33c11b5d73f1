/**
 * Dependencies between tensors (by root name: aliases are their root), with Concat edges: a Concat
 * output depends on its slices, which are written by ops (in place) or by copy ops.
 */
import { aliasRoot, type Graph } from './ir.ts';

/** The tensor `name` is a view of, in `graph` (aliasRoot). */
export function rootOf(graph: Graph, name: string): string {
  return aliasRoot(graph.aliases, name);
}

/** Each tensor's direct inputs: an op's inputs, or a Concat's slices. */
export function parentMap(graph: Graph): Map<string, string[]> {
  const root = (n: string) => rootOf(graph, n);
  const parents = new Map<string, string[]>(graph.ops.map((o) => [o.output, o.inputs.map(root)]));
  for (const c of graph.concats) parents.set(c.output, c.slices.map(root));
  return parents;
}

/** The tensors `from` depends on, itself included (an iterative walk: no recursion, linear). */
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

/** The tensors that depend on any of `from`, those included (a walk down a child index: linear). */
export function descendants(graph: Graph, from: string[]): Set<string> {
  const children = new Map<string, string[]>();
  for (const [t, ps] of parentMap(graph)) {
    for (const p of ps) {
      const list = children.get(p);
      if (list) list.push(t);
      else children.set(p, [t]);
    }
  }
  const down = new Set<string>();
  const stack = from.map((f) => rootOf(graph, f));
  while (stack.length) {
    const t = stack.pop()!;
    if (down.has(t)) continue;
    down.add(t);
    for (const c of children.get(t) ?? []) stack.push(c);
  }
  return down;
}

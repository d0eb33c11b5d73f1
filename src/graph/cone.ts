/**
 * The backward cone: the ops on some path from a requested feature tensor to the score tensor, by
 * dependencies that include Concat edges (deps.ts). The backward pass runs these ops only; a
 * request is checked against the cone before any GPU work (src/gradcam/request.ts).
 */
import { GradcamError } from '../errors.ts';
import { ancestors, descendants, rootOf } from './deps.ts';
import type { Graph, Op } from './ir.ts';

/**
 * The ops on some path from one of `features` to `score`, in forward order. Throws for a feature that
 * the score does not depend on, or that depends on the score.
 */
export function backwardCone(graph: Graph, score: string, features: string[]): Op[] {
  const up = ancestors(graph, score);
  const after = descendants(graph, [score]);
  for (const f of features) {
    if (after.has(rootOf(graph, f))) {
      throw new GradcamError(`layer '${f}' comes after the reduction layer '${score}' (or is it): Grad-CAM needs a feature layer that the score depends on`);
    }
    if (!up.has(rootOf(graph, f))) throw new GradcamError(`layer '${f}' has no path to the score '${score}': the score does not depend on it`);
  }
  const down = descendants(graph, features);
  return graph.ops.filter((o) => up.has(o.output) && o.inputs.some((i) => down.has(rootOf(graph, i))));
}

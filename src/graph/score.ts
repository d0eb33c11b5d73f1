/**
 * The softmax score. Grad-CAM's 'softmax' reduction differentiates the probability, which a model
 * whose output is logits does not compute: `withSoftmaxScore` returns a new graph (the given one is
 * left as it is) with a softmax op after the logits, whose output, a synthetic tensor in a storage
 * of its own after the graph's, is the new graph's `probabilities`. The engine's forward program
 * stays the model's; a Grad-CAM program compiles the added op (src/gradcam/program.ts).
 */
import { InternalError } from '../errors.ts';
import type { SoftmaxOp } from '../ops/softmax.ts';
import { type Graph, perImage } from './ir.ts';

/** The name of the probabilities a softmax score adds (a synthetic tensor: never offered as a layer). */
export const SOFTMAX_SCORE = 'gradcam::probabilities';

export function withSoftmaxScore(graph: Graph): { graph: Graph; op: SoftmaxOp } {
  if (graph.probabilities) throw new InternalError(`the model has probabilities ('${graph.probabilities}'): no softmax to add`);
  const logits = graph.tensors.get(graph.logits);
  if (!logits) throw new InternalError(`the logits '${graph.logits}' have no placement`);
  const op: SoftmaxOp = { kind: 'softmax', name: 'gradcam/softmax', onnxTypes: ['Softmax'], inputs: [graph.logits], output: SOFTMAX_SCORE };
  const storage = graph.storages.length;
  return {
    op,
    graph: {
      ...graph,
      ops: [...graph.ops, op],
      storages: [...graph.storages, { id: storage, perImage: perImage(logits), label: SOFTMAX_SCORE }],
      tensors: new Map([...graph.tensors, [SOFTMAX_SCORE, { name: SOFTMAX_SCORE, shape: logits.shape, storage, offset: 0, synthetic: true }]]),
      probabilities: SOFTMAX_SCORE,
    },
  };
}

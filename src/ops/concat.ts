/**
 * concat: Concat along axis 1 (channels; for a channels-last or rank-5 tensor still a contiguous block
 * of each image). It exists only between lowering and graph/placement.ts, which
 * makes its inputs channel slices of its output's storage (written in place by their producers, or
 * by a copy op): no kernel runs for it, and its gradient splits for free (src/runtime/backward.ts).
 * Along another axis a Concat lowers to `concatcopy` (src/ops/layout.ts).
 */
import { InternalError } from '../errors.ts';
import type { OpBase } from '../graph/ir.ts';
import { axisAttr } from './attributes.ts';
import { defineOp, type LowerContext } from './spec.ts';

export interface ConcatOp extends OpBase { kind: 'concat' }

function lowerConcat(ctx: LowerContext): void {
  const { node } = ctx;
  const names = node.inputs.filter(Boolean);
  if (names.length === 0) ctx.fail('has no inputs; expected at least one');
  const shapes = names.map((n) => ctx.shape(n));
  const ref = shapes[0];
  const axis = axisAttr(ctx, 1, ref.length);
  if (axis === 0) ctx.fail('concatenation along the batch axis 0 is not supported');
  for (const [i, s] of shapes.entries()) {
    if (s.length !== ref.length || s.some((d, j) => j !== axis && d !== ref[j])) {
      ctx.fail(`input '${names[i]}' has shape [${s}], which does not match [${ref}] outside ${axis === 1 ? 'the channel axis' : `axis ${axis}`}`);
    }
  }
  const out = [...ref];
  out[axis] = shapes.reduce((a, s) => a + s[axis], 0);
  const op = { name: node.name, onnxTypes: ['Concat'], inputs: names, output: node.outputs[0] };
  // Along axis 1 each input is a contiguous block of every image: a pseudo-op that placement.ts turns
  // into slice views (or copies). Along a later axis the inputs interleave: copied (src/ops/layout.ts).
  if (axis === 1) ctx.emit({ kind: 'concat', ...op }, out);
  else ctx.emit({ kind: 'concatcopy', axis, ...op }, out);
}

export const concat = defineOp<ConcatOp>({
  kind: 'concat',
  onnx: { Concat: { inputs: [1, Infinity], outputs: [1, 1], attributes: ['axis'], lower: lowerConcat } },
  kernel: (op) => {
    throw new InternalError(`concat '${op.name}' should have been placed as views`);
  },
});

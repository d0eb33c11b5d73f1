/**
 * concat: Concat along channels. It exists only between lowering and graph/placement.ts, which
 * makes its inputs channel slices of its output's storage (written in place by their producers, or
 * by a copy op): no kernel runs for it, and its gradient splits for free (src/runtime/backward.ts).
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
  if (axis !== 1) ctx.fail(`concatenation along axis ${axis} is not supported (only channels, axis 1)`);
  for (const [i, s] of shapes.entries()) {
    if (s.length !== ref.length || s.some((d, j) => j !== 1 && d !== ref[j])) {
      ctx.fail(`input '${names[i]}' has shape [${s}], which does not match [${ref}] outside the channel axis`);
    }
  }
  const out = [...ref];
  out[1] = shapes.reduce((a, s) => a + s[1], 0);
  // Recorded as a pseudo-op; placement.ts turns it into channel-slice views (or copies).
  ctx.emit({ kind: 'concat', name: node.name, onnxTypes: ['Concat'], inputs: names, output: node.outputs[0] }, out);
}

export const concat = defineOp<ConcatOp>({
  kind: 'concat',
  onnx: { Concat: { inputs: [1, Infinity], outputs: [1, 1], attributes: ['axis'], lower: lowerConcat } },
  kernel: (op) => {
    throw new InternalError(`concat '${op.name}' should have been placed as views`);
  },
});

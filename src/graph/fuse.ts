/**
 * Fusion on the lowered op list, in place:
 *  - an affine op (BatchNormalization, or Add of a per-channel constant) right after a convolution is
 *    folded into the convolution's weights and bias;
 *  - a Relu right after a conv, add or affine op becomes that op's `relu` flag.
 * A fusion happens only when the intermediate tensor has that one consumer and is not kept (a graph
 * output, the logits, or a tensor asked for as a tap): fusion never hides a tensor someone needs.
 * Returns the tensor names fusion hid, each with the fused op that swallowed it.
 */
import type { Op } from './ir.ts';

export function fuse(ops: Op[], keep: Set<string>, aliases: Map<string, string>): Map<string, string> {
  const fusedAway = new Map<string, string>();
  const root = (n: string) => aliases.get(n) ?? n;
  // Ops read tensors by the names the ONNX nodes used; an alias (Reshape, Dropout...) reads its root.
  const consumers = (t: string) => ops.reduce((n, o) => n + o.inputs.filter((i) => root(i) === t).length, 0);
  const hasKeptAlias = (t: string) => [...aliases].some(([a, r]) => r === t && keep.has(a));
  const hide = (t: string, by: string) => {
    fusedAway.set(t, by);
    for (const [a, r] of [...aliases]) if (r === t) { fusedAway.set(a, by); aliases.delete(a); }
  };

  for (let i = 0; i < ops.length; i++) {
    const op = ops[i];
    if (op.kind !== 'affine' && op.kind !== 'relu') continue;
    const t = root(op.inputs[0]);
    const producer = ops.find((o) => o.output === t);
    if (!producer || keep.has(t) || hasKeptAlias(t) || consumers(t) !== 1) continue;
    if (op.kind === 'affine') {
      if (producer.kind !== 'conv' || producer.relu) continue;
      const k = producer.cIn * producer.kh * producer.kw;
      for (let c = 0; c < producer.cOut; c++) {
        for (let j = 0; j < k; j++) producer.weight[c * k + j] *= op.scale[c];
        producer.bias[c] = producer.bias[c] * op.scale[c] + op.shift[c];
      }
    } else {
      if (producer.kind !== 'conv' && producer.kind !== 'add' && producer.kind !== 'affine') continue;
      if (producer.relu) continue;
      producer.relu = true;
    }
    producer.output = op.output;
    producer.name = `${producer.name}+${op.name}`;
    producer.onnxTypes.push(...op.onnxTypes);
    hide(t, producer.name);
    ops.splice(i, 1);
    i--;
  }
  return fusedAway;
}

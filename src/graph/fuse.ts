/**
 * Fusion on the lowered op list, in place:
 *  - an affine op (BatchNormalization, or Add of a per-channel constant) right after a convolution is
 *    folded into the convolution's weights and bias;
 *  - a Relu right after an op whose spec says `fusesRelu` (conv, add, affine) becomes its `relu` flag;
 *  - a ReLU6 (Clip(0, 6), an activation op) right after an op whose spec says `fusesRelu6` (conv)
 *    becomes its `relu` and `relu6` flags (the convolution kernels' FUSED_RELU: src/gpu/wgsl-library.ts).
 *    Its gradient rule from the fused output y, 0 < y < 6, is the Clip's own (strict bounds), so fusing
 *    it changes no value.
 * A fusion happens only when the intermediate tensor has that one consumer and is not kept (a graph
 * output, the logits, or a tensor asked for as a tap): fusion never hides a tensor someone needs.
 * An affine folds only over the convolution's own channels: one that reads the convolution's output
 * through a Reshape or Flatten with other channels ([N, C·H·W]) stays an op.
 * Returns the tensor names fusion hid, each with the fused op that swallowed it.
 *
 * Linear in the number of ops: producers, consumer counts and aliases are indexed once.
 */
import { isRelu6 } from '../ops/activation.ts';
import { opSpec } from '../ops/index.ts';
import { aliasRoot, type Op } from './ir.ts';

export function fuse(ops: Op[], keep: Set<string>, aliases: Map<string, string>, aliasOffsets: Map<string, number> = new Map()): Map<string, string> {
  const fusedAway = new Map<string, string>();
  const root = (n: string) => aliasRoot(aliases, n);
  const producers = new Map<string, Op>();
  for (const o of ops) producers.set(o.output, o);
  // Ops read tensors by the names the ONNX nodes used; an alias (Reshape, Dropout...) reads its root.
  const consumers = new Map<string, number>();
  for (const o of ops) for (const i of o.inputs) consumers.set(root(i), (consumers.get(root(i)) ?? 0) + 1);
  const aliasesOf = new Map<string, string[]>();
  for (const [a, r] of aliases) {
    const list = aliasesOf.get(r);
    if (list) list.push(a);
    else aliasesOf.set(r, [a]);
  }
  const hasKeptAlias = (t: string) => (aliasesOf.get(t) ?? []).some((a) => keep.has(a));
  const hide = (t: string, by: string) => {
    fusedAway.set(t, by);
    for (const a of aliasesOf.get(t) ?? []) {
      fusedAway.set(a, by);
      aliases.delete(a);
      aliasOffsets.delete(a);
    }
    aliasesOf.delete(t);
  };

  const removed = new Set<Op>();
  for (const op of ops) {
    const relu6 = op.kind === 'activation' && isRelu6(op);
    if (op.kind !== 'affine' && op.kind !== 'relu' && !relu6) continue;
    if (aliasOffsets.has(op.inputs[0])) continue; // it reads a part of its producer's output (a channel slice)
    const t = root(op.inputs[0]);
    const producer = producers.get(t);
    if (!producer || keep.has(t) || hasKeptAlias(t) || consumers.get(t) !== 1) continue;
    if (op.kind === 'affine') {
      if (producer.kind !== 'conv' || producer.relu || op.scale.length !== producer.cOut) continue;
      const k = producer.weight.length / producer.cOut; // (C_in/group)·KH·KW weights per output channel
      for (let c = 0; c < producer.cOut; c++) {
        for (let j = 0; j < k; j++) producer.weight[c * k + j] *= op.scale[c];
        producer.bias[c] = producer.bias[c] * op.scale[c] + op.shift[c];
      }
    } else if (relu6) {
      if (!opSpec(producer.kind).fusesRelu6 || producer.kind !== 'conv' || producer.relu) continue;
      producer.relu = true;
      producer.relu6 = true;
    } else {
      if (!opSpec(producer.kind).fusesRelu || !('relu' in producer) || producer.relu) continue;
      producer.relu = true;
    }
    producers.delete(t);
    producer.output = op.output;
    producers.set(op.output, producer);
    producer.name = `${producer.name}+${op.name}`;
    producer.onnxTypes.push(...op.onnxTypes);
    hide(t, producer.name);
    removed.add(op);
  }
  if (removed.size > 0) {
    let w = 0;
    for (const op of ops) if (!removed.has(op)) ops[w++] = op;
    ops.length = w;
  }
  return fusedAway;
}

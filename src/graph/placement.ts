/**
 * The storage plan: which storage (GPU buffer) and offset every tensor lives at.
 *
 * Each op output gets a storage of its own, except Concat inputs: a Concat's output gets one storage
 * and each input becomes the channel slice of it at its offset, written in place by its producer
 * (zero-copy concat). Nested concats compose. An input that cannot be written in place (the graph
 * input, a tensor listed more than once among the concats' inputs) is copied into its slice by a
 * copy op instead. Aliases (Reshape, Flatten, Dropout, Identity) share their root's place; a channel slice
 * of a Split or Slice (Graph.aliasOffsets) starts its offset further in.
 */
import type { ConcatInfo, Op, Storage, TensorInfo } from './ir.ts';
import { aliasRoot, perImage } from './ir.ts';

interface Place { storage: number; offset: number }

export function place(
  ops: Op[], shapes: Map<string, number[]>, aliases: Map<string, string>, aliasOffsets: Map<string, number>, inputName: string, fusedAway: Map<string, string>,
): { tensors: Map<string, TensorInfo>; storages: Storage[]; ops: Op[]; concats: ConcatInfo[] } {
  const storages: Storage[] = [];
  const places = new Map<string, Place>();
  const valuesPerImage = (name: string) => perImage(shapes.get(name)!);
  const newStorage = (name: string): Place => {
    storages.push({ id: storages.length, perImage: valuesPerImage(name), label: name });
    return { storage: storages.length - 1, offset: 0 };
  };
  const producedByOp = new Set(ops.map((o) => o.output));
  const root = (n: string) => aliasRoot(aliases, n);
  // A tensor listed more than once among all concats' inputs keeps its own storage and is copied
  // into each slice: written in place into one slice, a copy into another would read and write
  // one buffer (which WebGPU forbids in one dispatch).
  const uses = new Map<string, number>();
  for (const op of ops) if (op.kind === 'concat') for (const i of op.inputs) uses.set(root(i), (uses.get(root(i)) ?? 0) + 1);
  // A tensor with parts viewed at offsets (a channel split) keeps its own storage: its gradient is
  // zero-filled and added to (src/runtime/backward.ts), which a concat's gradient would overwrite.
  const sliced = new Set([...aliasOffsets.keys()].map(root));
  const copiesAfter = new Map<Op, Op[]>();
  /** Tensors placement makes up (the copies into concat slices). */
  const synthetic = new Set<string>();
  const concats: ConcatInfo[] = [];

  // Concats from last to first, so an outer concat places its inputs (possibly inner concats) first.
  for (const op of [...ops].reverse()) {
    if (op.kind !== 'concat') continue;
    const out = places.get(op.output) ?? newStorage(op.output);
    places.set(op.output, out);
    let offset = out.offset;
    const copies: Op[] = [];
    const slices: string[] = [];
    concats.push({ name: op.name, output: op.output, slices });
    op.inputs.forEach((name, i) => {
      const slice = { storage: out.storage, offset };
      offset += valuesPerImage(name);
      // An alias (e.g. Identity) in front of the concat places its root.
      const t = root(name);
      const inPlace = producedByOp.has(t) && !places.has(t) && uses.get(t) === 1 && !sliced.has(t) && !aliasOffsets.has(name);
      if (inPlace) {
        places.set(t, slice);
        slices.push(t);
        return;
      }
      const copyName = `${op.output}::input${i}`;
      synthetic.add(copyName);
      shapes.set(copyName, shapes.get(name)!);
      places.set(copyName, slice);
      slices.push(copyName);
      copies.push({ kind: 'copy', name: `${op.name}/copy${i}`, onnxTypes: ['Concat'], inputs: [name], output: copyName });
    });
    copiesAfter.set(op, copies);
  }

  const finalOps: Op[] = [];
  for (const op of ops) {
    if (op.kind === 'concat') finalOps.push(...copiesAfter.get(op)!);
    else finalOps.push(op);
  }
  for (const name of [inputName, ...finalOps.map((o) => o.output)]) {
    if (!places.has(name)) places.set(name, newStorage(name));
  }

  const tensors = new Map<string, TensorInfo>();
  for (const [name, shape] of shapes) {
    if (fusedAway.has(name)) continue;
    const p = places.get(root(name));
    if (!p) continue; // an intermediate hidden by fusion
    tensors.set(name, { name, shape, storage: p.storage, offset: p.offset + (aliasOffsets.get(name) ?? 0), ...(synthetic.has(name) && { synthetic: true }) });
  }
  return { tensors, storages, ops: finalOps, concats: concats.reverse() };
}

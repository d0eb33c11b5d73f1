/**
 * Which ONNX op types the engine reads, and the refusal of a model that uses others: once, before
 * lowering, with every missing op type and the first node of each named (a user porting a model
 * learns the whole list at once, not one op per attempt).
 */
import { UnsupportedModelError, type UnsupportedOp } from '../errors.ts';
import type { OnnxModel, OnnxNode } from '../onnx/model.ts';
import { LOWERINGS, OPS } from '../ops/index.ts';
import { VIEWS } from '../ops/views.ts';
import { FOLDED_OPS, foldRow } from './fold.ts';

/** An op type the engine reads, and what it becomes. */
export interface SupportedOp {
  opType: string;
  /** The graph op kinds it lowers to ('conv'; 'view' for Reshape and friends), empty when it is only folded. */
  kinds: string[];
  /** Evaluated at load time when its inputs are constants or shapes (fold.ts). */
  folded: boolean;
}

/** Every op type the engine reads (lowered to a GPU op or a view, or folded at load time), sorted. */
export function supportedOps(): SupportedOp[] {
  const kinds = new Map<string, string[]>();
  for (const spec of OPS) for (const type of Object.keys(spec.onnx ?? {})) kinds.set(type, [...(kinds.get(type) ?? []), spec.kind]);
  for (const type of Object.keys(VIEWS)) kinds.set(type, [...(kinds.get(type) ?? []), 'view']);
  const types = [...new Set([...LOWERINGS.keys(), ...FOLDED_OPS])].sort();
  return types.map((opType) => ({ opType, kinds: kinds.get(opType) ?? [], folded: foldRow(opType) !== undefined }));
}

/** The op type names of supportedOps(). */
export const SUPPORTED_OP_TYPES: readonly string[] = supportedOps().map((o) => o.opType);

const isDefaultDomain = (domain: string) => !domain || domain === 'ai.onnx';

/** The op types of the model that the engine does not read, in the order of their first node. */
export function unsupportedOps(model: OnnxModel): UnsupportedOp[] {
  return [...missingOps(model).values()].map((m) => m.op);
}

function missingOps(model: OnnxModel): Map<string, { op: UnsupportedOp; node: OnnxNode }> {
  const missing = new Map<string, { op: UnsupportedOp; node: OnnxNode }>();
  for (const node of model.nodes) {
    const known = isDefaultDomain(node.domain) && (LOWERINGS.has(node.opType) || foldRow(node.opType) !== undefined);
    if (known) continue;
    const opType = isDefaultDomain(node.domain) ? node.opType : `${node.domain}:${node.opType}`;
    const seen = missing.get(opType);
    if (seen) seen.op.nodes++;
    else missing.set(opType, { op: { opType, firstNode: node.name, nodes: 1 }, node });
  }
  return missing;
}

/** Refuses the model when it uses op types the engine does not read: one error naming all of them. */
export function checkSupported(model: OnnxModel): void {
  const found = [...missingOps(model).values()];
  if (found.length === 0) return;
  const missing = found.map((m) => m.op);
  const supported = `supported ops: ${SUPPORTED_OP_TYPES.join(', ')}`;
  const hint = 'The engine implements these op types only (gradcam info --ops lists them). Re-export the model with supported ops, or ask for the missing ones.';
  const more = (m: UnsupportedOp) => (m.nodes > 1 ? ` and ${m.nodes - 1} more node${m.nodes > 2 ? 's' : ''}` : '');
  const type = (m: UnsupportedOp) => (m.opType ? `op type ${m.opType}` : 'the node has no op type');
  if (missing.length === 1) {
    // One missing type: the message names its first node as every other lowering error does.
    const [{ op: m, node }] = found;
    const why = !isDefaultDomain(node.domain) ? `domain '${node.domain}' is not supported (only the default ONNX domain)` : m.opType ? `${type(m)} is not supported` : type(m);
    throw new UnsupportedModelError(`node '${m.firstNode}' (${node.opType})${more(m)}: ${why}; ${supported}`, missing, hint);
  }
  const each = missing.map((m) => `${m.opType || '(no op type)'} (node '${m.firstNode}'${more(m)})`);
  throw new UnsupportedModelError(`the model uses ${missing.length} op types the engine does not support: ${each.join(', ')}; ${supported}`, missing, hint);
}

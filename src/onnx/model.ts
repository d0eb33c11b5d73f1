/**
 * The plain, protobuf-free view of an ONNX file that the rest of the engine works with.
 * `decode.ts` produces it from bytes; `write.ts` turns one back into bytes (for the models the
 * project generates itself).
 */

/** The element types the engine reads: float32 for weights and activations, int64 for shapes. */
export type OnnxDataType = 'float32' | 'int64';

export interface OnnxTensor {
  name: string;
  dims: number[];
  dataType: OnnxDataType;
  /** float32 tensors: Float32Array; int64 tensors: BigInt64Array (shape values, exact). */
  data: Float32Array | BigInt64Array;
}

export type OnnxAttribute =
  | { type: 'int'; value: number }
  | { type: 'float'; value: number }
  | { type: 'ints'; value: number[] }
  | { type: 'floats'; value: number[] }
  | { type: 'string'; value: string }
  | { type: 'tensor'; value: OnnxTensor };

export interface OnnxNode {
  /** The node's name; may be empty in the file, then `decode` names it `<opType>_<index>`. */
  name: string;
  opType: string;
  /** '' or 'ai.onnx' for the default domain. */
  domain: string;
  /** Input tensor names; '' marks an omitted optional input. */
  inputs: string[];
  outputs: string[];
  attributes: Record<string, OnnxAttribute>;
}

/** A graph input or output. A dimension is a number, a symbolic name, or null when unknown. */
export interface OnnxValueInfo {
  name: string;
  elemType: OnnxDataType | string;
  shape: (number | string | null)[];
}

export interface OnnxModel {
  irVersion: number;
  /** The opset version of the default ('' / 'ai.onnx') domain, read from the file. */
  opset: number;
  producerName: string;
  graphName: string;
  /** Real inputs only: an input listed in the graph that also has an initializer is a weight. */
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  /** Weights and constants, by tensor name (Constant nodes are folded in here too). */
  initializers: Map<string, OnnxTensor>;
  /** Nodes in the file's (topological) order, Constant nodes removed. */
  nodes: OnnxNode[];
}

export function attrInt(node: OnnxNode, name: string, fallback: number): number {
  const a = node.attributes[name];
  if (a === undefined) return fallback;
  if (a.type !== 'int') throw new Error(`node '${node.name}' (${node.opType}): attribute '${name}' should be an int, got ${a.type}`);
  return a.value;
}

export function attrFloat(node: OnnxNode, name: string, fallback: number): number {
  const a = node.attributes[name];
  if (a === undefined) return fallback;
  if (a.type !== 'float' && a.type !== 'int') throw new Error(`node '${node.name}' (${node.opType}): attribute '${name}' should be a float, got ${a.type}`);
  return a.value;
}

export function attrInts(node: OnnxNode, name: string, fallback: number[] | undefined): number[] | undefined {
  const a = node.attributes[name];
  if (a === undefined) return fallback;
  if (a.type !== 'ints') throw new Error(`node '${node.name}' (${node.opType}): attribute '${name}' should be a list of ints, got ${a.type}`);
  return a.value;
}

export function attrString(node: OnnxNode, name: string, fallback: string): string {
  const a = node.attributes[name];
  if (a === undefined) return fallback;
  if (a.type !== 'string') throw new Error(`node '${node.name}' (${node.opType}): attribute '${name}' should be a string, got ${a.type}`);
  return a.value;
}

export function tensorSize(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

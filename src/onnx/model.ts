/**
 * The plain, protobuf-free view of an ONNX file that the rest of the engine works with.
 * `decode.ts` produces it from bytes; `write.ts` turns one back into bytes (for the models the
 * project generates itself).
 */
import { GradcamError } from '../errors.ts';

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
  /** By name. `decode` makes it without a prototype; read it with `attribute()` (own names only). */
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
  /** The model's metadata_props (key → value); read for a recipe and labels (src/image/recipes.ts, src/gradcam/labels.ts). */
  metadata?: Record<string, string>;
}

/**
 * An attribute by name, read only from the node's own table: a name from a file ('__proto__',
 * 'constructor') never reaches Object's prototype.
 */
export function attribute(node: OnnxNode, name: string): OnnxAttribute | undefined {
  return Object.hasOwn(node.attributes, name) ? node.attributes[name] : undefined;
}

function wrongType(node: OnnxNode, name: string, expected: string, got: string): never {
  throw new GradcamError(`node '${node.name}' (${node.opType}): attribute '${name}' should be ${expected}, got ${got}`);
}

export function attrInt(node: OnnxNode, name: string, fallback: number): number {
  const a = attribute(node, name);
  if (a === undefined) return fallback;
  if (a.type !== 'int') wrongType(node, name, 'an int', a.type);
  return a.value;
}

export function attrFloat(node: OnnxNode, name: string, fallback: number): number {
  const a = attribute(node, name);
  if (a === undefined) return fallback;
  if (a.type !== 'float' && a.type !== 'int') wrongType(node, name, 'a float', a.type);
  return a.value;
}

export function attrInts(node: OnnxNode, name: string, fallback: number[] | undefined): number[] | undefined {
  const a = attribute(node, name);
  if (a === undefined) return fallback;
  if (a.type !== 'ints') wrongType(node, name, 'a list of ints', a.type);
  return a.value;
}

export function attrString(node: OnnxNode, name: string, fallback: string): string {
  const a = attribute(node, name);
  if (a === undefined) return fallback;
  if (a.type !== 'string') wrongType(node, name, 'a string', a.type);
  return a.value;
}

export function tensorSize(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/**
 * ONNX bytes → OnnxModel, on the protobuf classes of `onnx-proto`.
 *
 * Reads the opset from the file, initializers from raw_data or the typed fields (float32, and int64
 * for shapes), folds Constant nodes into the initializers, and drops graph inputs that have an
 * initializer (older exports, the Model Zoo's GoogLeNet among them, list every weight as an input).
 * Anything the engine cannot read (external data, other element types) is refused with an error that
 * names the tensor or node.
 */
import onnxProto from 'onnx-proto';
import { GradcamError } from '../errors.ts';
import type { OnnxAttribute, OnnxModel, OnnxNode, OnnxTensor, OnnxValueInfo } from './model.ts';
import { tensorSize } from './model.ts';

const { onnx } = onnxProto;
type Long = { toNumber(): number };

const DATA_TYPE_NAMES = new Map<number, string>([
  [1, 'float32'], [2, 'uint8'], [3, 'int8'], [4, 'uint16'], [5, 'int16'], [6, 'int32'], [7, 'int64'], [8, 'string'],
  [9, 'bool'], [10, 'float16'], [11, 'float64'], [12, 'uint32'], [13, 'uint64'], [14, 'complex64'],
  [15, 'complex128'], [16, 'bfloat16'],
]);
const typeName = (t: number | null | undefined) => DATA_TYPE_NAMES.get(t ?? 0) ?? `unknown (${t ?? 0})`;

function num(v: number | Long | null | undefined): number {
  if (v === null || v === undefined) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}

/** Dims for a message: all of them, or the first few of a long (corrupt) list. */
function fmtDims(dims: readonly number[]): string {
  return dims.length <= 8 ? `[${dims}]` : `[${dims.slice(0, 6)},… (${dims.length} dims)]`;
}

function decodeTensor(t: onnxProto.onnx.ITensorProto, where: string): OnnxTensor {
  const name = t.name ?? '';
  const dims = (t.dims ?? []).map(num);
  const what = `${where} '${name}'`;
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL || (t.externalData?.length ?? 0) > 0) {
    throw new GradcamError(`${what} keeps its data in an external file, which is not supported`,
      'Re-save the model with all tensors inside the .onnx file (onnx.save_model(m, path, save_as_external_data=False)).');
  }
  // ONNX's checker: every dimension of a tensor is ≥ 0. (A 0 is legal ONNX; lowering refuses it where
  // a node reads the tensor.) Checked before any allocation: a negative count is not a length.
  const shown = fmtDims(dims);
  dims.forEach((d, i) => {
    if (d < 0) throw new GradcamError(`${what}: dimension ${i} of ${shown} is ${d}; expected ≥ 0`);
    if (!Number.isSafeInteger(d)) throw new GradcamError(`${what}: dimension ${i} of ${shown} is ${d}, too large to be a size`);
  });
  const count = dims.includes(0) ? 0 : tensorSize(dims);
  if (!Number.isSafeInteger(count)) throw new GradcamError(`${what}: dims ${shown} describe ${count} values, more than any file holds`);
  const raw = t.rawData && t.rawData.length > 0 ? t.rawData : undefined;
  if (t.dataType === onnx.TensorProto.DataType.FLOAT) {
    let data: Float32Array;
    if (raw) {
      if (raw.length !== count * 4) throw new GradcamError(`${what}: raw_data holds ${raw.length} bytes, but dims ${shown} need ${count * 4} (float32)`);
      data = new Float32Array(count);
      new Uint8Array(data.buffer).set(raw);
    } else {
      const f = t.floatData ?? [];
      if (f.length !== count) throw new GradcamError(`${what}: float_data holds ${f.length} values, but dims ${shown} need ${count}`);
      data = Float32Array.from(f);
    }
    return { name, dims, dataType: 'float32', data };
  }
  if (t.dataType === onnx.TensorProto.DataType.INT64) {
    let data: BigInt64Array;
    if (raw) {
      if (raw.length !== count * 8) throw new GradcamError(`${what}: raw_data holds ${raw.length} bytes, but dims ${shown} need ${count * 8} (int64)`);
      data = new BigInt64Array(count);
      new Uint8Array(data.buffer).set(raw);
    } else {
      const f = t.int64Data ?? [];
      if (f.length !== count) throw new GradcamError(`${what}: int64_data holds ${f.length} values, but dims ${shown} need ${count}`);
      data = BigInt64Array.from(f.map((v) => (typeof v === 'number' ? BigInt(v) : BigInt(String(v)))));  // exact: a Long as its digits
    }
    return { name, dims, dataType: 'int64', data };
  }
  throw new GradcamError(`${what} has element type ${typeName(t.dataType)}; only float32 (and int64 for shapes) are supported`);
}

function decodeAttribute(a: onnxProto.onnx.IAttributeProto, node: string): OnnxAttribute {
  const T = onnx.AttributeProto.AttributeType;
  switch (a.type) {
    case T.INT: return { type: 'int', value: num(a.i) };
    case T.FLOAT: return { type: 'float', value: a.f ?? 0 };
    case T.INTS: return { type: 'ints', value: (a.ints ?? []).map(num) };
    case T.FLOATS: return { type: 'floats', value: [...(a.floats ?? [])] };
    case T.STRING: return { type: 'string', value: new TextDecoder().decode(a.s ?? new Uint8Array()) };
    case T.TENSOR: return { type: 'tensor', value: decodeTensor(a.t ?? {}, `attribute '${a.name}' of node '${node}': tensor`) };
    default:
      throw new GradcamError(`node '${node}': attribute '${a.name}' has a type (${a.type}) the engine does not read`);
  }
}

function decodeValueInfo(v: onnxProto.onnx.IValueInfoProto): OnnxValueInfo {
  const tt = v.type?.tensorType;
  const elem = tt?.elemType ?? 0;
  // A dimension is its dim_value when the file sets one (0 and negative values included: lowering
  // refuses them by name), else its dim_param, else unknown.
  const shape = (tt?.shape?.dim ?? []).map((d) =>
    d.dimValue !== null && d.dimValue !== undefined ? num(d.dimValue) : d.dimParam ? d.dimParam : null);
  return { name: v.name ?? '', elemType: typeName(elem), shape };
}

/**
 * The protobuf decoder's reason, in its own words ('index out of range: …', 'invalid wire type …'),
 * except where the JavaScript engine stopped it: messages or groups nested so deeply that the
 * (recursive) decoder ran out of stack.
 */
function decoderMessage(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  if (/call stack/i.test(message)) return 'messages nested too deeply';
  if (/^(index out of range|invalid wire type|invalid varint|illegal|missing required)/.test(message)) return message;
  return 'malformed protobuf';
}

const INT64_MAX = 2n ** 63n - 1n;
const clampInt64 = (v: bigint) => (v > INT64_MAX ? INT64_MAX : v < -INT64_MAX - 1n ? -INT64_MAX - 1n : v);

/**
 * A Constant node's value: its 'value' tensor, or value_int(s) (int64) / value_float(s) (float32),
 * the scalar and list forms of opset 12 that exporters use for shape arithmetic.
 */
function constantValue(attributes: Record<string, OnnxAttribute>, node: string): OnnxTensor {
  const keys = Object.keys(attributes);
  const refuse = (why: string): never => {
    throw new GradcamError(`node '${node}' (Constant): ${why}; expected one of value (a float32 or int64 tensor), value_int, value_ints, value_float, value_floats`);
  };
  if (keys.length !== 1) refuse(keys.length ? `it has ${keys.length} attributes (${keys.join(', ')})` : 'it has no value');
  const a = attributes[keys[0]];
  const tensor = (dataType: 'int64' | 'float32', dims: number[], values: number[]): OnnxTensor => ({
    // An int attribute above 2^53 was read as the nearest double (INT64_MAX, a Slice's "to the end",
    // reads as 2^63): clamped to int64, not wrapped to a negative value.
    name: '', dims, dataType, data: dataType === 'int64' ? BigInt64Array.from(values, (v) => BigInt.asIntN(64, clampInt64(BigInt(v)))) : Float32Array.from(values),
  });
  switch (keys[0]) {
    case 'value': if (a.type === 'tensor') return a.value; break;
    case 'value_int': if (a.type === 'int') return tensor('int64', [], [a.value]); break;
    case 'value_ints': if (a.type === 'ints') return tensor('int64', [a.value.length], a.value); break;
    case 'value_float': if (a.type === 'float') return tensor('float32', [], [a.value]); break;
    case 'value_floats': if (a.type === 'floats') return tensor('float32', [a.value.length], a.value); break;
    default: refuse(`attribute '${keys[0]}' is not supported`);
  }
  return refuse(`attribute '${keys[0]}' has type ${a.type}`);
}

/** Decodes ONNX bytes. Throws GradcamError for anything that is not a model the engine can read. */
export function decodeOnnx(bytes: Uint8Array): OnnxModel {
  let proto: onnxProto.onnx.ModelProto;
  try {
    proto = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new GradcamError(`not a readable ONNX model: the protobuf decoder stopped (${decoderMessage(e)}); the file is truncated, corrupt, or not ONNX`,
      'Check that the file is a complete .onnx model (compare its size and SHA-256 with the source).');
  }
  const graph = proto.graph;
  if (!graph || (graph.node ?? []).length === 0) {
    throw new GradcamError('not an ONNX model: the file decodes, but holds no graph with nodes (is it truncated, or another kind of file?)');
  }
  const defaultOpset = (proto.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx');
  if (!defaultOpset) throw new GradcamError('the model declares no opset for the default ONNX domain (opset_import is empty)');
  const opset = num(defaultOpset.version);

  // Tables keyed by names from the file are Maps, or objects without a prototype read through
  // Object.hasOwn: '__proto__' or 'constructor' is a name like any other.
  const initializers = new Map<string, OnnxTensor>();
  for (const t of graph.initializer ?? []) {
    const tensor = decodeTensor(t, 'initializer');
    if (initializers.has(tensor.name)) throw new GradcamError(`initializer '${tensor.name}' is listed twice; tensor names must be unique`);
    initializers.set(tensor.name, tensor);
  }

  const nodes: OnnxNode[] = [];
  (graph.node ?? []).forEach((n, i) => {
    const opType = n.opType ?? '';
    const name = n.name || `${opType}_${i}`;
    const attributes: Record<string, OnnxAttribute> = Object.create(null);
    for (const a of n.attribute ?? []) {
      const key = a.name ?? '';
      if (!key) throw new GradcamError(`node '${name}' (${opType}): an attribute has no name`);
      if (Object.hasOwn(attributes, key)) throw new GradcamError(`node '${name}' (${opType}): attribute '${key}' is given twice`);
      attributes[key] = decodeAttribute(a, name);
    }
    const node: OnnxNode = { name, opType, domain: n.domain ?? '', inputs: [...(n.input ?? [])], outputs: [...(n.output ?? [])], attributes };
    if (opType === 'Constant' && (node.domain === '' || node.domain === 'ai.onnx')) {
      const value = constantValue(attributes, name);
      const out = node.outputs[0];
      if (!out || node.outputs.length !== 1) throw new GradcamError(`node '${name}' (Constant): expected one named output, got [${node.outputs.map((o) => `'${o}'`).join(', ')}]`);
      if (initializers.has(out)) throw new GradcamError(`node '${name}' (Constant): its output '${out}' is already an initializer or another Constant's output; tensor names must be unique`);
      initializers.set(out, { ...value, name: out });
      return;
    }
    nodes.push(node);
  });

  const inputs = (graph.input ?? []).filter((v) => !initializers.has(v.name ?? '')).map(decodeValueInfo);
  const outputs = (graph.output ?? []).map(decodeValueInfo);
  return {
    irVersion: num(proto.irVersion), opset, producerName: proto.producerName ?? '', graphName: graph.name ?? '',
    inputs, outputs, initializers, nodes, metadata: decodeMetadata(proto.metadataProps ?? []),
  };
}

/** metadata_props as a table (a key given twice keeps its last value; own keys only, no prototype). */
function decodeMetadata(props: onnxProto.onnx.IStringStringEntryProto[]): Record<string, string> {
  const table: Record<string, string> = Object.create(null);
  for (const p of props) if (p.key) table[p.key] = p.value ?? '';
  return table;
}

/**
 * Fuzzing of what `gradcam info` does with a file (decode, lower, candidate layers: no GPU) on
 * mutated ONNX models.
 *
 *   npm run fuzz -- [--cases N] [--seed S] [--from I] [--budget-ms MS] [--json]
 *   npm run fuzz -- --seed S --case I [--write FILE]      (one case again: its outcome, its bytes)
 *   --hang-ms MS (default 10,000): when the watchdog stops a case; --hang-case I: case I never returns
 *   (checks the watchdog); --models A,B: only these seed models (the cases then differ from a full run's)
 *
 * Each case takes one seed model (two small ones that have every op of the lowering table, and the
 * three generated GoogLeNets) and applies one to three mutations, chosen by a PRNG seeded with
 * (seed, case index), so a case is reproduced from those two numbers alone:
 *  - on the protobuf tree (parsed with the ONNX schema, written back with correct lengths): field
 *    numbers and wire types of tags, varint values (dims, strides, pads, types, …), names and op
 *    types (including '__proto__' and friends), deleted, duplicated, moved and swapped fields,
 *    float values, truncated raw data;
 *  - on the bytes: flips, truncations, insertions, deletions (mostly outside the weights' raw data,
 *    so that they hit structure).
 * A case passes when the model is accepted or refused with a GradcamError whose message is not a
 * JavaScript engine's own ("is not a function", "Cannot read properties", "Invalid typed array
 * length", "Maximum call stack size exceeded", …), within the time budget (2 s; a slow case is timed
 * twice, as a virtual CPU can stall). Cases run in a worker thread under a watchdog: a case that
 * does not return within 10 s, twice, is reported (seed and index) and the run goes on in a new
 * worker. Exit 1 when any case fails.
 *
 * The test suite runs a CI-sized run of this script (test/fuzz.test.ts).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { featureLayers } from '../src/cli/info.ts';
import { GradcamError } from '../src/errors.ts';
import { resolveLayers } from '../src/gradcam/layers.ts';
import { lower } from '../src/graph/lower.ts';
import { guessRecipe } from '../src/image/recipes.ts';
import { decodeOnnx } from '../src/onnx/decode.ts';
import type { OnnxModel } from '../src/onnx/model.ts';
import { encodeOnnx } from '../src/onnx/write.ts';
import { float, GraphBuilder, int, ints } from '../weights/generate/builder.ts';
import { generatedModelPath, generateModelBytes } from '../weights/generate/index.ts';
import { Rng } from '../weights/generate/random.ts';

// ───────────────────────────── what `gradcam info` does ─────────────────────────────

/** A message written by the JavaScript engine rather than by the project. */
export const INTERNAL_MESSAGE =
  /is not (a function|iterable|defined|a constructor)|Cannot (read|set) propert|\bundefined\b|\bNaN\b|Invalid (typed )?array|Maximum call stack|out of memory|allocation failed|RangeError|TypeError|ReferenceError|SyntaxError|\[object Object\]/;

/**
 * What src/cli/info.ts's `run` computes from a model file, in-process from its bytes: decode (as
 * readModelFile), the op counts and header lines, lower, the lowered summary, the feature layers
 * (its own `featureLayers`), the default layer, the recipe, the logits' shape, the column width
 * and the JSON document. Returns the number of lowered ops and feature layers; `reached.decoded`
 * says whether the decoder read the file (a refusal after it came from lowering).
 */
export function infoInProcess(bytes: Uint8Array, reached = { decoded: false }): { ops: number; layers: number } {
  const model = decodeOnnx(bytes);
  reached.decoded = true;
  const onnxOps: Record<string, number> = {};
  for (const n of model.nodes) onnxOps[n.opType] = (onnxOps[n.opType] ?? 0) + 1;
  const fmtShape = (s: readonly (number | string | null)[]) => `[${s.map((d) => d ?? '?').join(', ')}]`;
  const lines = [...model.inputs, ...model.outputs].map((v) => `${v.name}  ${v.elemType} ${fmtShape(v.shape)}`);
  const graph = lower(model);
  const kinds: Record<string, number> = {};
  for (const op of graph.ops) kinds[op.onnxTypes.join('+')] = (kinds[op.onnxTypes.join('+')] ?? 0) + 1;
  const bytesPerImage = graph.storages.reduce((a, s) => a + s.perImage * 4, 0);
  const layers = featureLayers(model, graph);
  const [auto] = layers.length ? resolveLayers(graph, ['auto']) : [];
  const recipe = guessRecipe(graph.input.name, Object.keys(graph.onnxOpCounts));
  const logitShape = graph.tensors.get(graph.logits)!.shape;
  lines.push(`${graph.logits} ${fmtShape(logitShape)}`, `${(bytesPerImage / 1e6).toFixed(1)} MB`);
  const width = Math.max(...layers.map((l) => l.name.length), 4);
  for (const l of layers) lines.push(`${l.name.padEnd(width)}  ${l.shape.slice(1).join('×')}  ${l.producer}${l.name === auto ? '  (default)' : ''}`);
  JSON.stringify({ inputs: model.inputs, outputs: model.outputs, onnxOps, kinds, recipe: recipe.name, featureLayers: layers, defaultLayer: auto ?? null, lines });
  return { ops: graph.ops.length, layers: layers.length };
}

export type Outcome =
  | { kind: 'ok'; ms: number }
  | { kind: 'refused'; stage: 'decode' | 'lower'; message: string; ms: number }
  | { kind: 'failed'; why: 'crash' | 'internal message' | 'slow' | 'hang'; message: string; ms: number };

/** Runs one model through `infoInProcess` and judges the outcome. */
export function judge(bytes: Uint8Array, budgetMs: number): Outcome {
  const t0 = performance.now();
  let outcome: Outcome;
  const reached = { decoded: false };
  try {
    infoInProcess(bytes, reached);
    outcome = { kind: 'ok', ms: 0 };
  } catch (e) {
    if (!(e instanceof GradcamError)) {
      const err = e as Error;
      const where = (err?.stack ?? '').split('\n').slice(1, 4).map((l) => l.trim()).join(' | ');
      outcome = { kind: 'failed', why: 'crash', message: `${err?.name ?? 'throw'}: ${err?.message ?? String(e)} (${where})`, ms: 0 };
    } else if (INTERNAL_MESSAGE.test(e.message)) {
      outcome = { kind: 'failed', why: 'internal message', message: e.message, ms: 0 };
    } else {
      outcome = { kind: 'refused', stage: reached.decoded ? 'lower' : 'decode', message: e.message, ms: 0 };
    }
  }
  outcome.ms = performance.now() - t0;
  if (outcome.kind !== 'failed' && outcome.ms > budgetMs) {
    return { kind: 'failed', why: 'slow', message: `took ${outcome.ms.toFixed(0)} ms (budget ${budgetMs} ms)`, ms: outcome.ms };
  }
  return outcome;
}

// ───────────────────────────── seed models ─────────────────────────────

/** A small zoo-style model (opset 12) with Conv, Relu, MaxPool, LRN, Concat, AveragePool, Dropout, Reshape, Gemm, Softmax. */
function miniZoo(): OnnxModel {
  const r = new Rng(7);
  const b = new GraphBuilder();
  const w = (name: string, dims: number[]) => b.weight(name, dims, r.normals(dims.reduce((a, c) => a * c, 1), 0, 0.2));
  const conv = (name: string, x: string, dims: number[], attrs: Parameters<GraphBuilder['node']>[4] = {}) => {
    const y = b.node('Conv', name, [x, w(`${name}_w`, dims), w(`${name}_b`, [dims[0]])], `${name}_1`, { kernel_shape: ints(dims[2], dims[3]), ...attrs });
    return b.node('Relu', `${name}_relu`, [y], `${name}_2`);
  };
  let x = b.input('data_0', [1, 3, 32, 32]);
  x = conv('conv1', x, [8, 3, 5, 5], { strides: ints(2, 2), pads: ints(2, 2, 2, 2) });
  x = b.node('MaxPool', 'pool1', [x], 'pool1_1', { kernel_shape: ints(3, 3), strides: ints(2, 2), pads: ints(0, 0, 1, 1) });
  x = b.node('LRN', 'norm1', [x], 'norm1_1', { size: int(5), alpha: float(1e-4), beta: float(0.75), bias: float(1) });
  x = conv('conv2', x, [8, 8, 1, 1]);
  const b1 = conv('inc/1x1', x, [4, 8, 1, 1]);
  const b2 = conv('inc/3x3', conv('inc/3x3_reduce', x, [4, 8, 1, 1]), [6, 4, 3, 3], { pads: ints(1, 1, 1, 1) });
  const b3 = conv('inc/pool_proj', b.node('MaxPool', 'inc/pool', [x], 'inc/pool_1', { kernel_shape: ints(3, 3), pads: ints(1, 1, 1, 1) }), [2, 8, 1, 1]);
  x = b.node('Concat', 'inc/output', [b1, b2, b3], 'inc/output_1', { axis: int(1) });
  x = b.node('AveragePool', 'pool5', [x], 'pool5_1', { kernel_shape: ints(2, 2), strides: ints(2, 2), ceil_mode: int(1), count_include_pad: int(0) });
  x = b.node('Dropout', 'drop', [x], 'pool5_2');
  x = b.node('Reshape', 'flat', [x, b.int64('flat_shape', [1, -1])], 'flat_1');
  x = b.node('Gemm', 'fc', [x, w('fc_w', [10, 192]), w('fc_b', [10])], 'fc_1', { alpha: float(1), beta: float(1), transA: int(0), transB: int(1) });
  x = b.node('Softmax', 'prob', [x], 'prob_1', { axis: int(1) });
  b.output(x, [1, 10]);
  return b.build({ opset: 12, irVersion: 7, producerName: 'fuzz', graphName: 'mini-zoo' });
}

/**
 * A small torchvision-style model (opset 13) with BatchNormalization, auto_pad, Add, Identity, GlobalAveragePool, Flatten, MatMul,
 * and a flatten chain of shape arithmetic (Shape, Gather, Constant, Unsqueeze, Cast, Concat → Reshape) folded at load time.
 */
function miniTorch(): OnnxModel {
  const r = new Rng(8);
  const b = new GraphBuilder();
  const w = (name: string, dims: number[], lo = -0.3, hi = 0.3) => b.weight(name, dims, r.uniforms(dims.reduce((a, c) => a * c, 1), lo, hi));
  let x = b.input('x', [1, 3, 24, 24]);
  x = b.node('Conv', '/conv1/Conv', [x, w('conv1.w', [8, 3, 3, 3])], '/conv1/Conv_output_0', { strides: ints(2, 2), auto_pad: { type: 'string', value: 'SAME_UPPER' } });
  x = b.node('BatchNormalization', '/bn1/BatchNormalization', [x, w('bn1.s', [8]), w('bn1.b', [8]), w('bn1.m', [8]), w('bn1.v', [8], 0.5, 1.5)], '/bn1/out', { epsilon: float(1e-3), momentum: float(0.9) });
  x = b.node('Relu', '/relu1', [x], '/relu1/out');
  const p = b.node('MaxPool', '/pool1', [x], '/pool1/out', { kernel_shape: ints(2, 2), strides: ints(2, 2), ceil_mode: int(1) });
  const c = b.node('Conv', '/conv2/Conv', [p, w('conv2.w', [8, 8, 3, 3]), w('conv2.b', [8])], '/conv2/out', { kernel_shape: ints(3, 3), pads: ints(1, 1, 1, 1), dilations: ints(1, 1), group: int(1) });
  x = b.node('Add', '/add', [c, p], '/add/out');
  x = b.node('Relu', '/relu2', [x], '/relu2/out');
  x = b.node('Add', '/bias', [x, w('bias.c', [8, 1, 1])], '/bias/out');
  const i = b.node('Identity', '/id', [x], '/id/out');
  const m = b.node('MaxPool', '/pool2', [p], '/pool2/out', { kernel_shape: ints(3, 3), pads: ints(1, 1, 1, 1), auto_pad: { type: 'string', value: 'NOTSET' } });
  x = b.node('Concat', '/cat', [i, m], '/cat/out', { axis: int(-3) });
  x = b.node('GlobalAveragePool', '/gap', [x], '/gap/out');
  // torch.onnx's flatten as shape arithmetic, folded at load time (src/graph/fold.ts).
  const n = b.node('Gather', '/Gather', [b.node('Shape', '/Shape', [x], '/Shape/out'), b.node('Constant', '/Constant_0', [], '/Constant_0/out', { value_int: int(0) })], '/Gather/out', { axis: int(0) });
  const axes = b.node('Constant', '/Constant', [], '/Constant/out', { value_ints: ints(0) });
  const n1 = b.node('Cast', '/Cast', [b.node('Unsqueeze', '/Unsqueeze', [n, axes], '/Unsqueeze/out')], '/Cast/out', { to: int(7) });
  const target = b.node('Concat', '/Concat', [n1, b.int64('minus_one', [-1])], '/Concat/out', { axis: int(0) });
  x = b.node('Reshape', '/reshape', [x, target], '/reshape/out');
  x = b.node('Flatten', '/flatten', [x], '/flatten/out', { axis: int(1) });
  x = b.node('MatMul', '/fc/MatMul', [x, w('fc.w', [16, 10])], '/fc/MatMul_out');
  x = b.node('Add', '/fc/Add', [x, w('fc.b', [10])], 'logits');
  b.output(x, [1, 10]);
  return b.build({ opset: 13, irVersion: 8, producerName: 'fuzz', graphName: 'mini-torch' });
}

interface SeedModel { name: string; bytes: Uint8Array; weight: number }

const SEED_MODELS: { name: string; build: () => Uint8Array; weight: number }[] = [
  { name: 'mini-zoo', build: () => encodeOnnx(miniZoo()), weight: 45 },
  { name: 'mini-torch', build: () => encodeOnnx(miniTorch()), weight: 45 },
  ...['googlenet-known-answer', 'googlenet-zoo-seeded', 'googlenet-torchvision-seeded'].map((name) => ({ name, build: () => generatedBytes(name), weight: 10 / 3 })),
];

/**
 * A generated GoogLeNet: the file that `gradcam generate NAME` (ensureGeneratedModel) wrote from
 * the same generator, when it is there (reading the three takes ~0.2 CPU-s, generating them ~2),
 * else generated here.
 */
function generatedBytes(name: string): Uint8Array {
  const path = generatedModelPath(name);
  return existsSync(path) ? readFileSync(path) : generateModelBytes(name);
}
export const SEED_MODEL_NAMES = SEED_MODELS.map((m) => m.name);

/**
 * The seed models and how often each is drawn: mostly the small ones, whose bytes are mostly
 * structure. `only` (--models): these alone (a run checking the watchdog needs no GoogLeNet); the
 * cases then differ from a run with every seed model.
 */
export function seedModels(only?: readonly string[]): SeedModel[] {
  for (const name of only ?? []) if (!SEED_MODEL_NAMES.includes(name)) throw new Error(`fuzz: unknown seed model '${name}' (known: ${SEED_MODEL_NAMES.join(', ')})`);
  // A plain Uint8Array, not the Node Buffer that protobufjs's encoder returns: Buffer's slice() is a
  // view, so mutateBytes' `bytes.slice()` flipped bytes of the seed itself, and every later case of
  // the worker mutated a damaged seed (a case then depended on the cases before it, and
  // `--case I` did not reproduce it).
  return SEED_MODELS.filter((m) => !only || only.includes(m.name)).map((m) => ({ name: m.name, bytes: new Uint8Array(m.build()), weight: m.weight }));
}

// ───────────────────────────── protobuf wire format ─────────────────────────────

/** A field as read from the wire: its number, wire type and value (a varint, fixed bytes, a payload). */
interface Field {
  num: number;
  wire: number;
  /** Replaces the tag's bytes (a mutated field number or wire type), the value stays as it was. */
  tag?: number[];
  varint?: bigint;
  /** Fixed32/fixed64 bytes, or an opaque length-delimited payload. */
  raw?: Uint8Array;
  /** A parsed sub-message, and its message type. */
  msg?: Field[];
  type?: string;
  /** A packed list of varints (dims, ints, int64_data). */
  packed?: bigint[];
}

type Child = { msg: string } | 'packed' | 'string' | 'bytes';

/** The parts of onnx.proto the mutations care about: which field is which sub-message or list. */
const SCHEMA: Record<string, Record<number, Child>> = {
  ModelProto: { 2: 'string', 3: 'string', 4: 'string', 6: 'string', 7: { msg: 'GraphProto' }, 8: { msg: 'OperatorSetIdProto' }, 14: { msg: 'StringStringEntryProto' } },
  GraphProto: { 1: { msg: 'NodeProto' }, 2: 'string', 5: { msg: 'TensorProto' }, 10: 'string', 11: { msg: 'ValueInfoProto' }, 12: { msg: 'ValueInfoProto' }, 13: { msg: 'ValueInfoProto' } },
  NodeProto: { 1: 'string', 2: 'string', 3: 'string', 4: 'string', 5: { msg: 'AttributeProto' }, 6: 'string', 7: 'string' },
  AttributeProto: { 1: 'string', 4: 'string', 5: { msg: 'TensorProto' }, 6: { msg: 'GraphProto' }, 8: 'packed', 10: { msg: 'TensorProto' }, 11: { msg: 'GraphProto' }, 13: 'string' },
  TensorProto: { 1: 'packed', 5: 'packed', 7: 'packed', 8: 'string', 9: 'bytes', 12: 'string', 13: { msg: 'StringStringEntryProto' } },
  ValueInfoProto: { 1: 'string', 2: { msg: 'TypeProto' }, 3: 'string' },
  TypeProto: { 1: { msg: 'TypeProtoTensor' } },
  TypeProtoTensor: { 2: { msg: 'TensorShapeProto' } },
  TensorShapeProto: { 1: { msg: 'Dimension' } },
  Dimension: { 2: 'string', 3: 'string' },
  OperatorSetIdProto: { 1: 'string' },
  StringStringEntryProto: { 1: 'string', 2: 'string' },
};

class WireError extends Error {}

function readVarint(b: Uint8Array, p: number, end: number): [bigint, number] {
  let v = 0n, shift = 0n;
  for (let i = 0; i < 10; i++) {
    if (p >= end) throw new WireError('truncated varint');
    const c = b[p++];
    v |= BigInt(c & 0x7f) << shift;
    if (!(c & 0x80)) return [v, p];
    shift += 7n;
  }
  throw new WireError('varint too long');
}

function parseMessage(b: Uint8Array, start: number, end: number, type: string): Field[] {
  const fields: Field[] = [];
  const schema = SCHEMA[type] ?? {};
  let p = start;
  while (p < end) {
    const [tag, afterTag] = readVarint(b, p, end);
    const num = Number(tag >> 3n), wire = Number(tag & 7n);
    p = afterTag;
    if (num === 0) throw new WireError('field 0');
    if (wire === 0) {
      const [v, q] = readVarint(b, p, end);
      fields.push({ num, wire, varint: v });
      p = q;
    } else if (wire === 1 || wire === 5) {
      const n = wire === 1 ? 8 : 4;
      if (p + n > end) throw new WireError('truncated fixed');
      fields.push({ num, wire, raw: b.subarray(p, p + n) });
      p += n;
    } else if (wire === 2) {
      const [len, q] = readVarint(b, p, end);
      const stop = q + Number(len);
      if (stop > end) throw new WireError('truncated payload');
      const child = Object.hasOwn(schema, num) ? schema[num] : undefined;
      if (child && typeof child === 'object') {
        fields.push({ num, wire, msg: parseMessage(b, q, stop, child.msg), type: child.msg });
      } else if (child === 'packed') {
        const values: bigint[] = [];
        for (let r = q; r < stop;) {
          const [v, s] = readVarint(b, r, stop);
          values.push(v);
          r = s;
        }
        fields.push({ num, wire, packed: values });
      } else {
        fields.push({ num, wire, raw: b.subarray(q, stop) });
      }
      p = stop;
    } else {
      throw new WireError(`wire type ${wire}`);
    }
  }
  return fields;
}

function varintBytes(v: bigint): number[] {
  let u = BigInt.asUintN(64, v);
  const out: number[] = [];
  do {
    let c = Number(u & 0x7fn);
    u >>= 7n;
    if (u) c |= 0x80;
    out.push(c);
  } while (u);
  return out;
}

/** Encodings of unchanged (seed) messages, shared by every case. */
const encoded = new WeakMap<Field[], Uint8Array>();

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function encodeMessage(fields: Field[]): Uint8Array {
  const cached = encoded.get(fields);
  if (cached) return cached;
  const parts: Uint8Array[] = [];
  for (const f of fields) {
    parts.push(Uint8Array.from(f.tag ?? varintBytes(BigInt(f.num) * 8n + BigInt(f.wire))));
    if (f.wire === 0) parts.push(Uint8Array.from(varintBytes(f.varint!)));
    else if (f.wire === 1 || f.wire === 5) parts.push(f.raw!);
    else {
      const payload = f.msg ? encodeMessage(f.msg) : f.packed ? Uint8Array.from(f.packed.flatMap(varintBytes)) : f.raw!;
      parts.push(Uint8Array.from(varintBytes(BigInt(payload.length))), payload);
    }
  }
  const out = concat(parts);
  encoded.set(fields, out);
  return out;
}

// ───────────────────────────── mutations ─────────────────────────────

/** A field in the tree: the indices that lead to it from the root. */
interface Target { path: number[]; field: Field; parentType: string }

interface Seed {
  name: string;
  /** How often it is drawn, relative to the others. */
  weight: number;
  bytes: Uint8Array;
  root: Field[];
  targets: Target[];
  /** Strings of the model (names, op types) to swap in. */
  strings: string[];
  /** Byte ranges [start, end) that are structure (not large raw payloads), for byte mutations. */
  structure: [number, number][];
  structureBytes: number;
}

function prepareSeed(name: string, bytes: Uint8Array, weight: number): Seed {
  const root = parseMessage(bytes, 0, bytes.length, 'ModelProto');
  const round = encodeMessage(root);
  // (Buffer.compare: a callback per byte took ~0.3 CPU-s per GoogLeNet, in every worker.)
  if (round.length !== bytes.length || Buffer.compare(round, bytes) !== 0) throw new Error(`fuzz: seed ${name} does not round-trip through the wire parser`);
  const targets: Target[] = [];
  const strings = new Set<string>();
  const walk = (fields: Field[], path: number[], type: string) => {
    fields.forEach((f, i) => {
      const here = [...path, i];
      targets.push({ path: here, field: f, parentType: type });
      if (f.msg) walk(f.msg, here, f.type!);
      const child = SCHEMA[type]?.[f.num];
      if (child === 'string' && f.raw && f.raw.length < 64) strings.add(new TextDecoder().decode(f.raw));
    });
  };
  walk(root, [], 'ModelProto');
  // Large opaque payloads (raw_data) by offset: find them by walking the bytes with offsets.
  const payloads: [number, number][] = [];
  const offsets = (fields: Field[], start: number) => {
    let p = start;
    for (const f of fields) {
      p += varintBytes(BigInt(f.num) * 8n + BigInt(f.wire)).length;
      if (f.wire === 0) p += varintBytes(f.varint!).length;
      else if (f.wire === 1 || f.wire === 5) p += f.raw!.length;
      else {
        const len = f.msg ? encodeMessage(f.msg).length : f.packed ? f.packed.flatMap(varintBytes).length : f.raw!.length;
        p += varintBytes(BigInt(len)).length;
        if (f.msg) offsets(f.msg, p);
        else if (f.raw && f.raw.length > 64) payloads.push([p + 16, p + f.raw.length - 16]);
        p += len;
      }
    }
  };
  offsets(root, 0);
  payloads.sort((a, b) => a[0] - b[0]);
  const structure: [number, number][] = [];
  let at = 0;
  for (const [s, e] of payloads) {
    if (s > at) structure.push([at, s]);
    at = Math.max(at, e);
  }
  if (at < bytes.length) structure.push([at, bytes.length]);
  return { name, weight, bytes, root, targets, strings: [...strings], structure, structureBytes: structure.reduce((a, [s, e]) => a + e - s, 0) };
}

/** A path of the seed's tree that an earlier mutation of the same case removed. */
class PathGone extends Error {}

/** A copy of the tree with `fn` applied to the message that holds the field at `path`. */
function update(fields: Field[], path: number[], fn: (siblings: Field[], index: number) => Field[]): Field[] {
  const i = path[0];
  if (i >= fields.length || (path.length > 1 && !fields[i].msg)) throw new PathGone();
  if (path.length === 1) return fn(fields.slice(), i);
  const copy = fields.slice();
  copy[i] = { ...fields[i], msg: update(fields[i].msg!, path.slice(1), fn) };
  return copy;
}

const NAMES = ['', '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', 'prototype', 'length', 'Conv', 'Relu', 'Concat', 'Gemm',
  'MaxPool', 'Reshape', 'Softmax', 'Add', 'Constant', 'If', 'Loop', 'HardSwish', 'value', 'strides', 'pads', 'kernel_shape', 'axis', 'group', 'ai.onnx', 'com.microsoft'];

function pick<T>(r: Rng, items: readonly T[]): T {
  return items[Math.floor(r.uniform() * items.length)];
}
const below = (r: Rng, n: number) => Math.floor(r.uniform() * n);

function newVarint(r: Rng, v: bigint): bigint {
  const choices: (() => bigint)[] = [
    () => 0n, () => 1n, () => -1n, () => 2n, () => 3n, () => v + 1n, () => v - 1n, () => v * 2n, () => -v,
    () => 2n ** 31n - 1n, () => 2n ** 31n, () => 2n ** 32n, () => 2n ** 53n + 1n, () => 2n ** 63n - 1n, () => -(2n ** 63n),
    () => BigInt(below(r, 256)), () => BigInt(r.nextU32()), () => BigInt(below(r, 17)),
  ];
  return pick(r, choices)();
}

/** One mutation of the tree; returns the new tree and a description. */
function mutateTree(r: Rng, seed: Seed, root: Field[]): [Field[], string] {
  const t = pick(r, seed.targets);
  const f = t.field;
  const where = `${t.parentType}.${f.num}@${t.path.join('/')}`;
  const replace = (g: Field) => update(root, t.path, (s, i) => (s.splice(i, 1, g), s));
  // Mostly values (what lowering checks), then structure, then tags (which the decoder mostly stops at).
  const roll = r.uniform();
  const kind = roll < 0.06 ? 0 : roll < 0.12 ? 1 : roll < 0.22 ? 2 : roll < 0.3 ? 3 : roll < 0.38 ? 4 : roll < 0.46 ? 5 : 6;
  if (kind === 0) { // change the field number
    const num = pick(r, [f.num + 1, Math.max(1, f.num - 1), 1 + below(r, 32), 1 + below(r, 16)]);
    return [replace({ ...f, tag: varintBytes(BigInt(num) * 8n + BigInt(f.wire)) }), `field number ${f.num} → ${num} at ${where}`];
  }
  if (kind === 1) { // change the wire type
    const wire = below(r, 8);
    return [replace({ ...f, tag: varintBytes(BigInt(f.num) * 8n + BigInt(wire)) }), `wire type ${f.wire} → ${wire} at ${where}`];
  }
  if (kind === 2) return [update(root, t.path, (s, i) => (s.splice(i, 1), s)), `delete ${where}`];
  if (kind === 3) { // duplicate (right after, or at the end of its message)
    return [update(root, t.path, (s, i) => (s.splice(r.uniform() < 0.5 ? i + 1 : s.length, 0, f), s)), `duplicate ${where}`];
  }
  if (kind === 4) { // swap with, or replace by, another field of the same message
    return [update(root, t.path, (s, i) => {
      const j = below(r, s.length);
      if (r.uniform() < 0.5) [s[i], s[j]] = [s[j], s[i]];
      else s[i] = { ...s[j], tag: s[i].tag ?? varintBytes(BigInt(s[i].num) * 8n + BigInt(s[j].wire)) };
      return s;
    }), `swap or replace ${where}`];
  }
  if (kind === 5) { // replace a sub-message by another of the same type (a node by a node, an attribute by an attribute)
    const same = seed.targets.filter((o) => o.field.type !== undefined && o.field.type === f.type);
    if (same.length) return [replace(pick(r, same).field), `replace ${where} by another ${f.type}`];
  }
  // Value mutations, by what the field holds.
  if (f.wire === 0) {
    const v = newVarint(r, f.varint!);
    return [replace({ ...f, varint: v }), `varint ${f.varint} → ${v} at ${where}`];
  }
  if (f.packed) {
    const values = f.packed.slice();
    const k = below(r, 3);
    if (k === 0 && values.length) values[below(r, values.length)] = newVarint(r, values[0]);
    else if (k === 1 && values.length) values.splice(below(r, values.length), 1);
    else values.splice(below(r, values.length + 1), 0, newVarint(r, 1n));
    return [replace({ ...f, packed: values }), `packed [${f.packed.slice(0, 6)}] → [${values.slice(0, 6)}] at ${where}`];
  }
  if (f.wire === 5 || f.wire === 1) {
    const raw = new Uint8Array(f.raw!.length);
    if (f.wire === 5) new DataView(raw.buffer).setFloat32(0, pick(r, [NaN, Infinity, -Infinity, 0, -0, 1e38, -1, r.normal()]), true);
    else new DataView(raw.buffer).setFloat64(0, pick(r, [NaN, Infinity, 0, -1, 1e300]), true);
    return [replace({ ...f, raw }), `fixed value at ${where}`];
  }
  if (f.raw && SCHEMA[t.parentType]?.[f.num] === 'string') {
    const s = r.uniform() < 0.5 ? pick(r, NAMES) : pick(r, seed.strings);
    return [replace({ ...f, raw: new TextEncoder().encode(s) }), `string → '${s}' at ${where}`];
  }
  if (f.raw) { // bytes: shorter or longer
    const n = f.raw.length;
    const raw = r.uniform() < 0.5 ? f.raw.subarray(0, Math.max(0, n - 1 - below(r, 8))) : concat([f.raw, new Uint8Array(4)]);
    return [replace({ ...f, raw }), `payload ${n} → ${raw.length} bytes at ${where}`];
  }
  // A sub-message: empty it, or drop one of its fields.
  const drop = below(r, f.msg!.length);
  return [replace({ ...f, msg: r.uniform() < 0.3 ? [] : f.msg!.filter((_, i) => i !== drop) }), `thin ${where}`];
}

/** A position for a byte mutation: mostly in structure bytes, sometimes anywhere. */
function position(r: Rng, seed: Seed, length: number, structured: boolean): number {
  if (!structured || r.uniform() < 0.1) return below(r, length);
  let k = below(r, seed.structureBytes);
  for (const [s, e] of seed.structure) {
    if (k < e - s) return Math.min(s + k, length - 1);
    k -= e - s;
  }
  return below(r, length);
}

function mutateBytes(r: Rng, seed: Seed, bytes: Uint8Array, structured: boolean): [Uint8Array, string] {
  const p = position(r, seed, bytes.length, structured);
  const kind = below(r, 5);
  if (kind === 0) {
    const out = bytes.slice();
    out[p] = r.uniform() < 0.5 ? out[p] ^ (1 << below(r, 8)) : below(r, 256);
    return [out, `byte ${p}: ${bytes[p]} → ${out[p]}`];
  }
  if (kind === 1) return [bytes.subarray(0, p), `truncate at ${p}`];
  if (kind === 2) {
    const ins = Uint8Array.from({ length: 1 + below(r, 16) }, () => below(r, 256));
    return [concat([bytes.subarray(0, p), ins, bytes.subarray(p)]), `insert ${ins.length} bytes at ${p}`];
  }
  if (kind === 3) {
    const n = 1 + below(r, 16);
    return [concat([bytes.subarray(0, p), bytes.subarray(p + n)]), `delete ${n} bytes at ${p}`];
  }
  // A varint-looking run: set the byte to a continuation byte, or clear its high bit.
  const out = bytes.slice();
  out[p] = r.uniform() < 0.5 ? out[p] | 0x80 : out[p] & 0x7f;
  return [out, `high bit of byte ${p}`];
}

/** The PRNG of case `index` under `seed` (independent of every other case). */
function caseRng(seed: number, index: number): Rng {
  return new Rng((Math.imul(seed | 0, 0x9e3779b1) ^ Math.imul(index | 0, 0x85ebca77) ^ (index / 2 ** 32 | 0)) | 0);
}

/** Builds the mutated model of one case. */
export function makeCase(seeds: Seed[], seed: number, index: number): { seedName: string; bytes: Uint8Array; steps: string[] } {
  const r = caseRng(seed, index);
  const total = seeds.reduce((a, b) => a + b.weight, 0);
  let k = r.uniform() * total, s = 0;
  while (s < seeds.length - 1 && k >= seeds[s].weight) k -= seeds[s++].weight;
  const base = seeds[s];
  const steps: string[] = [];
  const style = r.uniform();
  let bytes: Uint8Array;
  if (style < 0.55) { // tree mutations only
    let root = base.root;
    for (let n = 1 + below(r, 3); n > 0; n--) {
      try {
        const [next, step] = mutateTree(r, base, root);
        root = next;
        steps.push(step);
      } catch (e) {
        if (!(e instanceof PathGone)) throw e;
        steps.push('(a mutation whose field an earlier one removed)');
      }
    }
    bytes = encodeMessage(root);
  } else if (style < 0.9) { // byte mutations on the seed's structure
    bytes = base.bytes;
    for (let n = 1 + below(r, 3); n > 0; n--) {
      const [next, step] = mutateBytes(r, base, bytes, n === 1 || steps.length === 0);
      bytes = next;
      steps.push(step);
    }
  } else { // one of each
    const [root, step] = mutateTree(r, base, base.root);
    steps.push(step);
    const [next, step2] = mutateBytes(r, base, encodeMessage(root), false);
    bytes = next;
    steps.push(step2);
  }
  return { seedName: base.name, bytes, steps };
}

export function prepareSeeds(models: SeedModel[] = seedModels()): Seed[] {
  return models.map((m) => prepareSeed(m.name, m.bytes, m.weight));
}

let once: SeedModel[] | undefined;
/**
 * The seed models, built once per run in the main thread (the three GoogLeNets take seconds to
 * generate) and copied to each worker with its workerData (~90 MB: milliseconds): a run that
 * restarts its worker after a hang does not build them again. (Copies, not a SharedArrayBuffer:
 * TextDecoder refuses views of shared memory.)
 */
function seedModelsOnce(only?: readonly string[]): SeedModel[] {
  once ??= seedModels(only);
  return once;
}

// ───────────────────────────── running ─────────────────────────────

export interface Failure { index: number; seed: number; model: string; steps: string[]; why: string; message: string; ms: number }

export interface Summary {
  seed: number;
  from: number;
  cases: number;
  ok: number;
  refused: number;
  /** Refused by lowering (or later), past the decoder: the mutation reached the graph. */
  refusedAfterDecoding: number;
  failures: Failure[];
  seconds: number;
  /** Refusals by kind (the message with names and numbers blanked), most frequent first. */
  refusalKinds: [string, number][];
  /** Cases per seed model. */
  perModel: Record<string, number>;
}

const kindOf = (message: string) => message.replace(/'[^']*'/g, "'…'").replace(/-?\d+(\.\d+)?(e[+-]?\d+)?/g, 'N').replace(/\[[^\]]*\]/g, '[…]').slice(0, 90);

interface WorkerMessage { type: 'ready' | 'case' | 'finished'; index?: number; model?: string; outcome?: Outcome; steps?: string[] }

/** Worker side: runs cases [from, to), writing the running case and its start time to `clock`. */
function workerLoop(): void {
  const { seed, from, to, budgetMs, clock, hangCase, models } = workerData as { seed: number; from: number; to: number; budgetMs: number; clock: SharedArrayBuffer; hangCase?: number; models: SeedModel[] };
  const seeds = prepareSeeds(models);
  const c = new Float64Array(clock);
  parentPort!.postMessage({ type: 'ready' } satisfies WorkerMessage);
  for (let i = from; i < to; i++) {
    const { seedName, bytes, steps } = makeCase(seeds, seed, i);
    c[0] = i;
    c[1] = Date.now();
    // --hang-case: this case never returns (a check of the watchdog).
    while (i === hangCase) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1000);
    let outcome = judge(bytes, budgetMs);
    // Slow once may be the machine (a virtual CPU stalled by its host): slow counts when slow twice.
    if (outcome.kind === 'failed' && outcome.why === 'slow') {
      c[1] = Date.now();
      const again = judge(bytes, budgetMs);
      if (!(again.kind === 'failed' && again.why === 'slow')) outcome = again;
    }
    c[1] = 0;
    parentPort!.postMessage({ type: 'case', index: i, model: seedName, outcome, steps: outcome.kind === 'failed' ? steps : undefined } satisfies WorkerMessage);
  }
  parentPort!.postMessage({ type: 'finished' } satisfies WorkerMessage);
  // Stay alive until the main thread stops this worker, so that an exit always means a death.
  parentPort!.on('message', () => undefined);
}

export interface RunOptions { seed: number; from: number; cases: number; budgetMs: number; hangMs: number; hangCase?: number; models?: string[]; progress?: (line: string) => void }

/** Runs cases [from, from + cases) in worker threads under a watchdog (a case past `hangMs` is a hang). */
export async function runFuzz(o: RunOptions, script: URL): Promise<Summary> {
  const t0 = performance.now();
  const summary: Summary = { seed: o.seed, from: o.from, cases: o.cases, ok: 0, refused: 0, refusedAfterDecoding: 0, failures: [], seconds: 0, refusalKinds: [], perModel: {} };
  const kinds = new Map<string, number>();
  const end = o.from + o.cases;
  // Each case counts once, whichever worker's message reports it, however late.
  const seen = new Uint8Array(o.cases);
  let done = 0, lastReport = performance.now();
  const count = (index: number, model: string, out: Outcome | { kind: 'failed'; why: 'hang' | 'crash'; message: string; ms: number }, steps: string[]) => {
    if (seen[index - o.from]) return;
    seen[index - o.from] = 1;
    done++;
    summary.perModel[model] = (summary.perModel[model] ?? 0) + 1;
    if (out.kind === 'ok') summary.ok++;
    else if (out.kind === 'refused') {
      summary.refused++;
      if (out.stage === 'lower') summary.refusedAfterDecoding++;
      const k = kindOf(out.message);
      kinds.set(k, (kinds.get(k) ?? 0) + 1);
    } else {
      summary.failures.push({ index, seed: o.seed, model, steps, why: out.why, message: out.message, ms: out.ms });
    }
    if (o.progress && performance.now() - lastReport > 5000) {
      lastReport = performance.now();
      const s = (performance.now() - t0) / 1000;
      o.progress(`fuzz: ${done}/${o.cases} cases in ${s.toFixed(0)} s (${(done / s).toFixed(0)}/s): ${summary.ok} accepted, ${summary.refused} refused, ${summary.failures.length} failed`);
    }
  };
  const describe = (index: number) => makeCase(seedsForReport(o.models), o.seed, index);
  /** Cases stopped once by the watchdog (each gets a second try). */
  const suspects = new Set<number>();

  let next = o.from;
  while (next < end) {
    const clock = new SharedArrayBuffer(16);
    const c = new Float64Array(clock);
    c[0] = next - 1; // the last case started: none yet
    const worker = new Worker(script, { workerData: { seed: o.seed, from: next, to: end, budgetMs: o.budgetMs, clock, hangCase: o.hangCase, models: seedModelsOnce(o.models) } });
    next = await new Promise<number>((resolve) => {
      let settled = false;
      const settle = (to: number) => {
        settled = true;
        clearInterval(timer);
        void worker.terminate();
        resolve(to);
      };
      // The watchdog: a case running longer than hangMs is stopped with its worker, and run once more
      // in a new one (a virtual CPU can stall for seconds on a loaded host); stopped twice, it is a
      // hang, and the next worker goes on after it.
      const timer = setInterval(() => {
        if (settled || !(c[1] > 0 && Date.now() - c[1] > o.hangMs)) return;
        const index = c[0];
        if (!suspects.has(index)) {
          suspects.add(index);
          settle(index);
          return;
        }
        const { seedName, steps } = describe(index);
        count(index, seedName, { kind: 'failed', why: 'hang', message: `no result after ${o.hangMs} ms, twice (stopped)`, ms: o.hangMs }, steps);
        settle(index + 1);
      }, 100);
      worker.on('message', (m: WorkerMessage) => {
        if (m.type === 'case') count(m.index!, m.model!, m.outcome!, m.steps ?? []);
        else if (m.type === 'finished' && !settled) settle(end);
      });
      // The worker died outside a case's try (out of memory in a case would be one). It does not
      // exit by itself (it waits to be stopped after 'finished'), so an exit is a death.
      const died = (message: string) => {
        if (settled) return;
        const inCase = c[1] > 0;
        const index = inCase ? c[0] : c[0] + 1;
        const { seedName, steps } = describe(Math.min(index, end - 1));
        if (index < end) count(index, seedName, { kind: 'failed', why: 'crash', message: `worker died${inCase ? '' : ' between cases'}: ${message}`, ms: 0 }, steps);
        settle(index + 1);
      };
      worker.on('error', (e) => died(e.message));
      worker.on('exit', (code) => died(`exit code ${code}`));
    });
  }
  summary.seconds = (performance.now() - t0) / 1000;
  summary.refusalKinds = [...kinds].sort((a, b) => b[1] - a[1]);
  return summary;
}

let reportSeeds: Seed[] | undefined;
/** The seeds, in the main thread, only to describe a case that hung. */
function seedsForReport(only?: readonly string[]): Seed[] {
  reportSeeds ??= prepareSeeds(seedModelsOnce(only));
  return reportSeeds;
}

function parseArgs(argv: string[]) {
  const o = { cases: 2000, seed: 1, from: 0, budgetMs: 2000, hangMs: 10_000, json: false, case: undefined as number | undefined, hangCase: undefined as number | undefined, write: undefined as string | undefined, models: undefined as string[] | undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`fuzz: ${a} needs a value`);
      return v;
    };
    const count = (v: string) => {
      const n = Number(v);
      if (!Number.isSafeInteger(n) || n < 0) throw new Error(`fuzz: ${a} ${v} is not a count`);
      return n;
    };
    if (a === '--cases') o.cases = count(value());
    else if (a === '--seed') o.seed = count(value());
    else if (a === '--from') o.from = count(value());
    else if (a === '--budget-ms') o.budgetMs = count(value());
    else if (a === '--hang-ms') o.hangMs = count(value());
    else if (a === '--case') o.case = count(value());
    else if (a === '--hang-case') o.hangCase = count(value());
    else if (a === '--models') o.models = value().split(',');
    else if (a === '--write') o.write = value();
    else if (a === '--json') o.json = true;
    else throw new Error(`fuzz: unknown argument ${a} (known: --cases N --seed S --from I --budget-ms MS --hang-ms MS --case I --write FILE --json --hang-case I --models A,B)`);
  }
  return o;
}

const reproduce = (f: Failure, models?: string[]) => `npm run fuzz -- --seed ${f.seed} --case ${f.index}${models ? ` --models ${models.join(',')}` : ''} --write case.onnx`;

async function main(): Promise<number> {
  const o = parseArgs(process.argv.slice(2));
  if (o.case !== undefined) {
    const seeds = prepareSeeds(seedModels(o.models));
    const { seedName, bytes, steps } = makeCase(seeds, o.seed, o.case);
    console.log(`case ${o.case} of seed ${o.seed}: ${seedName}, ${bytes.length} bytes; mutations: ${steps.join('; ')}`);
    if (o.write) {
      writeFileSync(o.write, bytes);
      console.log(`wrote ${o.write} (gradcam info ${o.write})`);
    }
    const out = judge(bytes, o.budgetMs);
    console.log(`${out.kind}${out.kind === 'failed' ? ` (${out.why})` : ''} in ${out.ms.toFixed(1)} ms${'message' in out ? `: ${out.message}` : ''}`);
    return out.kind === 'failed' ? 1 : 0;
  }
  const log = (line: string) => process.stderr.write(`${line}\n`);
  log(`fuzz: ${o.cases} cases from ${o.from}, seed ${o.seed}, budget ${o.budgetMs} ms per case`);
  const s = await runFuzz({ ...o, progress: log }, new URL(import.meta.url));
  if (o.json) console.log(JSON.stringify(s));
  log(`fuzz: ${s.cases} cases in ${s.seconds.toFixed(1)} s (${(s.cases / s.seconds).toFixed(0)}/s): ${s.ok} accepted, ${s.refused} refused with a GradcamError (${s.refusedAfterDecoding} of them after decoding), ${s.failures.length} failed`);
  log(`fuzz: cases per seed model: ${Object.entries(s.perModel).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  log('fuzz: most frequent refusals:');
  for (const [k, n] of s.refusalKinds.slice(0, 15)) log(`  ${String(n).padStart(6)}  ${k}`);
  for (const f of s.failures) log(`FAILED case ${f.index} (seed ${f.seed}, ${f.model}; ${f.steps.join('; ')}): ${f.why}: ${f.message}\n  reproduce: ${reproduce(f, o.models)}`);
  return s.failures.length ? 1 : 0;
}

if (!isMainThread && (workerData as { clock?: unknown } | null)?.clock) workerLoop();
// Run as a script (dist/fuzz.mjs, or a bundle named fuzz-*.mjs), not when another module imports it.
else if (isMainThread && /(^|\/)fuzz[^/]*\.m?js$/.test(process.argv[1] ?? '') && new URL(import.meta.url).pathname === process.argv[1]) {
  main().then((code) => process.exit(code), (e: Error) => {
    process.stderr.write(`${e.message}\n`);
    process.exit(2);
  });
}

/**
 * The generated GoogLeNet-topology test models (weights/generate/): they must have exactly the
 * topology and names of the files they stand in for, run in an independent implementation
 * (onnxruntime-node), and carry signal: activations that neither vanish nor explode through all
 * nine inception blocks, logits with a clear top-5 and a softmax that is not one-hot, deep features
 * that depend on the input. And the same seed must give the same bytes.
 */
import { readFile, stat } from 'node:fs/promises';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeOnnx } from '../src/onnx/decode.ts';
import type { OnnxModel } from '../src/onnx/model.ts';
import { encodeOnnx } from '../src/onnx/write.ts';
import { googlenetTorchvision } from '../weights/generate/googlenet-torchvision.ts';
import { googlenetZoo } from '../weights/generate/googlenet-zoo.ts';
import { ensureGeneratedModel, GENERATED_MODELS, generatedModelPath } from '../weights/generate/index.ts';
import { Rng } from '../weights/generate/random.ts';

const BLOCKS = ['3a', '3b', '4a', '4b', '4c', '4d', '4e', '5a', '5b'];

/** What each generated model must look like, and which tensors to watch. */
interface Case {
  name: string;
  build: (seed?: number) => OnnxModel;
  opset: number;
  input: string;
  /** The graph output; for the zoo it is the softmax, and `logits` is its input. */
  output: string;
  logits: string;
  ops: Record<string, number>;
  /** Tensor names that must be produced by some node. */
  tensors: string[];
  weights: string[];
  /** Tensors whose statistics are checked (first: conv1, last: the pooled features). */
  taps: string[];
  blockOutputs: string[];
}

const zooBlock = (x: string) => [
  ...['1x1', '3x3_reduce', '3x3', '5x5_reduce', '5x5', 'pool_proj'].flatMap((l) => [`inception_${x}/${l}_1`, `inception_${x}/${l}_2`]),
  `inception_${x}/pool_1`, `inception_${x}/output_1`,
];
const zooOutputs = BLOCKS.map((b) => `inception_${b}/output_1`);
const tvOutputs = BLOCKS.map((b) => `/inception${b}/Concat_output_0`);

const CASES: Case[] = [
  {
    name: 'googlenet-zoo-seeded', build: googlenetZoo, opset: 12, input: 'data_0', output: 'prob_1', logits: 'loss3/classifier_1',
    ops: { Conv: 57, Relu: 57, MaxPool: 13, Concat: 9, LRN: 2, AveragePool: 1, Dropout: 1, Reshape: 1, Gemm: 1, Softmax: 1 },
    tensors: [
      'conv1/7x7_s2_1', 'conv1/7x7_s2_2', 'pool1/3x3_s2_1', 'pool1/norm1_1', 'conv2/3x3_reduce_1', 'conv2/3x3_reduce_2',
      'conv2/3x3_1', 'conv2/3x3_2', 'conv2/norm2_1', 'pool2/3x3_s2_1', ...BLOCKS.flatMap(zooBlock), 'pool3/3x3_s2_1',
      'pool4/3x3_s2_1', 'pool5/7x7_s1_1', 'pool5/7x7_s1_2', 'OC2_DUMMY_0', 'loss3/classifier_1', 'prob_1',
    ],
    weights: ['conv1/7x7_s2_w_0', 'conv1/7x7_s2_b_0', 'inception_5b/pool_proj_w_0', 'loss3/classifier_w_0', 'loss3/classifier_b_0', 'OC2_DUMMY_1'],
    taps: ['conv1/7x7_s2_1', 'conv1/7x7_s2_2', ...zooOutputs, 'pool5/7x7_s1_1'],
    blockOutputs: zooOutputs,
  },
  {
    name: 'googlenet-torchvision-seeded', build: googlenetTorchvision, opset: 13, input: 'x', output: 'logits', logits: 'logits',
    ops: { Conv: 57, BatchNormalization: 57, Relu: 57, MaxPool: 13, Concat: 9, GlobalAveragePool: 1, Flatten: 1, Gemm: 1 },
    tensors: [
      '/conv1/conv/Conv_output_0', '/conv1/bn/BatchNormalization_output_0', '/conv1/Relu_output_0', '/maxpool1/MaxPool_output_0',
      '/conv3/Relu_output_0', '/inception3a/branch1/conv/Conv_output_0', '/inception3a/branch2/branch2.0/conv/Conv_output_0',
      '/inception3a/branch3/branch3.1/Relu_output_0', '/inception3a/branch4/branch4.0/MaxPool_output_0',
      '/inception5b/branch4/branch4.1/Relu_output_0', ...tvOutputs, '/maxpool3/MaxPool_output_0', '/maxpool4/MaxPool_output_0',
      '/avgpool/GlobalAveragePool_output_0', '/Flatten_output_0', 'logits',
    ],
    weights: [
      'conv1.conv.weight', 'conv1.bn.weight', 'conv1.bn.bias', 'conv1.bn.running_mean', 'conv1.bn.running_var',
      'inception3a.branch2.0.conv.weight', 'inception5b.branch4.1.bn.running_var', 'fc.weight', 'fc.bias',
    ],
    taps: ['/conv1/conv/Conv_output_0', '/conv1/Relu_output_0', ...tvOutputs, '/avgpool/GlobalAveragePool_output_0'],
    blockOutputs: tvOutputs,
  },
];

/** Two seeded inputs: white noise of std 50, and a smooth image-like pattern in −120…+130 (rms ≈ 50). */
function testInputs(): [string, Float32Array][] {
  const noise = new Rng(123).normals(3 * 224 * 224, 0, 50);
  const image = new Float32Array(3 * 224 * 224);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < 224; y++) {
      for (let x = 0; x < 224; x++) {
        const v = 5 + 80 * Math.sin(x / 17 + c) * Math.cos(y / 23 - 0.7 * c) + 45 * Math.sin((x + 2 * y) / 9 + 1.3 * c);
        image[(c * 224 + y) * 224 + x] = Math.max(-120, Math.min(130, v));
      }
    }
  }
  return [['noise', noise], ['image', image]];
}

function stats(d: Float32Array): { mean: number; std: number; rms: number; positive: number } {
  let s = 0, s2 = 0, pos = 0;
  for (const v of d) { s += v; s2 += v * v; if (v > 0) pos++; }
  const mean = s / d.length;
  return { mean, std: Math.sqrt(Math.max(0, s2 / d.length - mean * mean)), rms: Math.sqrt(s2 / d.length), positive: pos / d.length };
}

function rmsDiff(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i]! - b[i]!) ** 2;
  return Math.sqrt(s / a.length);
}

function countOps(m: OnnxModel): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const n of m.nodes) counts[n.opType] = (counts[n.opType] ?? 0) + 1;
  return counts;
}

/** The model with the logits and the taps as extra graph outputs, so ORT returns them too. */
function withTaps(m: OnnxModel, logits: string, taps: string[]): OnnxModel {
  const extra = [logits, ...taps].filter((n) => !m.outputs.some((o) => o.name === n));
  // Taps are NCHW; their channel count and size are left for ORT to infer.
  const shape = (n: string) => (n === logits ? [1, 1000] : [1, null, null, null]);
  return { ...m, outputs: [...m.outputs, ...extra.map((name) => ({ name, elemType: 'float32', shape: shape(name) }))] };
}

describe.each(CASES)('$name', (c) => {
  let model: OnnxModel;
  let bytes: Uint8Array;
  /** ORT's outputs (graph output, logits, taps) for each test input. */
  const runs: Record<string, Record<string, Float32Array>> = {};

  beforeAll(async () => {
    model = c.build();
    bytes = encodeOnnx(model);
    const session = await ort.InferenceSession.create(encodeOnnx(withTaps(model, c.logits, c.taps)));
    for (const [label, data] of testInputs()) {
      const out = await session.run({ [c.input]: new ort.Tensor('float32', data, [1, 3, 224, 224]) });
      runs[label] = Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data as Float32Array]));
      expect(out[c.output]!.dims).toEqual([1, 1000]);
    }
    await session.release();
  });

  it('decodes back with the expected opset, op counts, tensor and weight names', () => {
    const d = decodeOnnx(bytes);
    expect(d.opset).toBe(c.opset);
    expect(d.inputs.map((i) => [i.name, i.shape])).toEqual([[c.input, [1, 3, 224, 224]]]);
    expect(d.outputs.map((o) => [o.name, o.shape])).toEqual([[c.output, [1, 1000]]]);
    expect(countOps(d)).toEqual(c.ops);
    const produced = new Set(d.nodes.flatMap((n) => n.outputs));
    for (const t of c.tensors) expect(produced.has(t), t).toBe(true);
    for (const w of c.weights) expect(d.initializers.has(w), w).toBe(true);
    // Same weights after the round trip.
    const sameBytes = (a: ArrayBufferView, b: ArrayBufferView) =>
      Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
    for (const [name, t] of model.initializers) expect(sameBytes(d.initializers.get(name)!.data, t.data), name).toBe(true);
  });

  it('has the attributes of the file it stands in for', () => {
    const byName = new Map(model.nodes.map((n) => [n.name, n]));
    const ints = (node: string, attr: string) => byName.get(node)!.attributes[attr]!.value;
    if (c.name === 'googlenet-zoo-seeded') {
      expect(model.nodes.length).toBe(143);
      for (const p of ['pool1', 'pool2', 'pool3', 'pool4']) expect(ints(`${p}/3x3_s2`, 'pads'), p).toEqual([0, 0, 2, 2]);
      expect(ints('inception_4c/pool', 'pads')).toEqual([1, 1, 1, 1]);
      expect(byName.get('pool1/norm1')!.attributes).toEqual({
        alpha: { type: 'float', value: 1e-4 }, beta: { type: 'float', value: 0.75 }, bias: { type: 'float', value: 1 }, size: { type: 'int', value: 5 },
      });
      expect([...(model.initializers.get('OC2_DUMMY_1')!.data as BigInt64Array)]).toEqual([1n, 1024n]);
      expect(ints('loss3/classifier', 'transB')).toBe(1);
      expect(model.initializers.get('loss3/classifier_w_0')!.dims).toEqual([1000, 1024]);
    } else {
      for (const n of model.nodes.filter((n) => n.opType === 'MaxPool')) expect(n.attributes.ceil_mode, n.name).toEqual({ type: 'int', value: 1 });
      expect(ints('/maxpool4/MaxPool', 'kernel_shape')).toEqual([2, 2]);
      expect(ints('/inception3a/branch3/branch3.1/conv/Conv', 'kernel_shape')).toEqual([3, 3]); // the "5x5" branch
      for (const n of model.nodes.filter((n) => n.opType === 'Conv')) expect(n.inputs.length, n.name).toBe(2); // no bias
      for (const n of model.nodes.filter((n) => n.opType === 'BatchNormalization')) {
        expect(n.attributes.epsilon!.value).toBeCloseTo(1e-3, 9);
      }
      // BatchNormalization far from identity: folding mistakes must show.
      const mean = stats(model.initializers.get('inception4c.branch2.1.bn.running_mean')!.data as Float32Array);
      const vr = stats(model.initializers.get('inception4c.branch2.1.bn.running_var')!.data as Float32Array);
      const beta = stats(model.initializers.get('inception4c.branch2.1.bn.bias')!.data as Float32Array);
      expect(mean.rms).toBeGreaterThan(1);
      expect(vr.mean).toBeGreaterThan(8);
      expect(beta.rms).toBeGreaterThan(0.2);
    }
  });

  it.each(['noise', 'image'])('gives logits with a clear top-5 and an unsaturated softmax (%s input)', (label) => {
    const logits = runs[label]![c.logits]!;
    const s = stats(logits);
    expect(s.std).toBeGreaterThan(1);
    expect(s.std).toBeLessThan(5);
    const sorted = [...logits].sort((a, b) => b - a);
    const scale = Math.abs(sorted[0]!);
    for (let i = 0; i < 4; i++) expect(sorted[i]! - sorted[i + 1]!, `top-5 margin ${i}`).toBeGreaterThan(1e-3 * scale);
    const z = logits.reduce((a, v) => a + Math.exp(v - sorted[0]!), 0);
    const pmax = 1 / z;
    expect(pmax).toBeGreaterThan(0.02); // ≫ 1/1000
    expect(pmax).toBeLessThan(0.9); // not one-hot
    if (c.output === 'prob_1') expect(Math.max(...runs[label]!.prob_1!)).toBeCloseTo(pmax, 5);
  });

  it.each(['noise', 'image'])('keeps activations healthy through all nine inception blocks (%s input)', (label) => {
    for (const t of c.taps) {
      const s = stats(runs[label]![t]!);
      expect(s.std, t).toBeGreaterThan(1e-2);
      expect(s.std, t).toBeLessThan(1e3);
      expect(s.positive, t).toBeGreaterThan(0.05);
      expect(s.positive, t).toBeLessThan(0.95);
    }
  });

  it('has deep features and logits that depend on the input', () => {
    // Deep random ReLU networks map all inputs to nearly the same features; these must not.
    const last = c.blockOutputs.at(-1)!;
    const [a, b] = [runs.noise![last]!, runs.image![last]!];
    expect(rmsDiff(a, b) / stats(a).rms).toBeGreaterThan(0.05);
    const [la, lb] = [runs.noise![c.logits]!, runs.image![c.logits]!];
    expect(rmsDiff(la, lb) / stats(la).std).toBeGreaterThan(0.02);
  });

  it('is byte-identical when generated again with the same seed, different with another', () => {
    expect(Buffer.from(encodeOnnx(c.build())).equals(Buffer.from(bytes))).toBe(true);
    expect(Buffer.from(encodeOnnx(c.build(7))).equals(Buffer.from(bytes))).toBe(false);
  });
});

describe('generated model files', () => {
  it('writes weights/generated/<name>.onnx atomically, and keeps it on the next call', async () => {
    expect(Object.keys(GENERATED_MODELS)).toEqual(expect.arrayContaining(['googlenet-zoo-seeded', 'googlenet-torchvision-seeded']));
    const name = 'googlenet-zoo-seeded';
    const lines: string[] = [];
    const path = await ensureGeneratedModel(name, { force: true, log: (l) => lines.push(l) });
    expect(path).toBe(generatedModelPath(name));
    expect(path.endsWith('weights/generated/googlenet-zoo-seeded.onnx')).toBe(true);
    expect(lines.length).toBe(2);
    const written = await readFile(path);
    expect(written.equals(Buffer.from(encodeOnnx(googlenetZoo(1))))).toBe(true);
    const before = (await stat(path)).mtimeMs;
    expect(await ensureGeneratedModel(name)).toBe(path);
    expect((await stat(path)).mtimeMs).toBe(before);
    expect(() => generatedModelPath('no-such-model')).toThrow(/unknown generated model/);
  });
});

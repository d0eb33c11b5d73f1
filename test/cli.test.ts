/**
 * The `gradcam` command end to end: the bundled CLI (dist/gradcam.mjs, built once here) runs as a
 * child process, exactly as a user runs it, and must end by itself with the right exit code.
 *
 * - `info` (no GPU): the zoo-style model's Grad-CAM feature layers, block outputs marked.
 * - `classify` of a seeded .npy on both generated GoogLeNets against onnxruntime-node on the same
 *   file: same top-5, max |Δlogit| ≤ 1e-3 · max |logit| (the forward tolerance, justified in
 *   forward-googlenet.test.ts: float32 rounding with different summation orders over ~60 layers).
 * - `classify` of weights/samples/chelsea.png: the GPU-preprocessed input tensor (--save-input)
 *   against the float64 reference of shaders/preprocess.wgsl (test/reference/preprocess.ts), and
 *   the logits against onnxruntime-node run on that reference input (tolerances derived below).
 * - Each kind of bad input: its own error text, exit code 1, no stack trace, nothing on stdout.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { samplePath } from '../src/cli/assets.ts';
import { lower } from '../src/graph/lower.ts';
import { decodeImageFile } from '../src/image/decode-node.ts';
import { decodeNpy, encodeNpy } from '../src/image/npy.ts';
import { decodeOnnx } from '../src/onnx/decode.ts';
import type { OnnxModel } from '../src/onnx/model.ts';
import { encodeOnnx } from '../src/onnx/write.ts';
import { generateModelBytes } from '../weights/generate/index.ts';
import { Rng } from '../weights/generate/random.ts';
import { expectExit, expectUserError, gradcam, inParallel, ROOT, type Run } from './helpers/cli.ts';
import { OrtOracle } from './helpers/ort.ts';
import { preprocessReference, ZOO_CAFFE } from './reference/preprocess.ts';

const CHELSEA = samplePath('chelsea.png');
const ZOO = 'googlenet-zoo-seeded';
const TV = 'googlenet-torchvision-seeded';
const BLOCKS = ['3a', '3b', '4a', '4b', '4c', '4d', '4e', '5a', '5b'];

function topK(v: ArrayLike<number>, k: number): number[] {
  return Array.from({ length: v.length }, (_, i) => i).sort((a, b) => v[b] - v[a]).slice(0, k);
}

function maxAbs(v: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < v.length; i++) m = Math.max(m, Math.abs(v[i]));
  return m;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** A smooth, image-like input (0–255 minus means) with some noise. */
function seededInput(seed: number): Float32Array {
  const rng = new Rng(seed);
  const out = new Float32Array(3 * 224 * 224);
  const [fx, fy, ph] = [rng.uniform() * 0.1, rng.uniform() * 0.1, rng.uniform() * 6];
  for (let i = 0; i < out.length; i++) {
    const x = i % 224, y = Math.floor(i / 224) % 224, c = Math.floor(i / 224 / 224);
    out[i] = 120 * Math.sin(fx * x + ph + c) * Math.cos(fy * y - c) + 10 * rng.normal();
  }
  return out;
}

/** A float64 .npy (numpy's '<f8'), written by hand: the CLI must refuse it. */
function float64Npy(shape: number[]): Uint8Array {
  const f32 = encodeNpy(shape, new Float32Array(shape.reduce((a, b) => a * b, 1)));
  const start = 10 + new DataView(f32.buffer).getUint16(8, true);
  const header = f32.slice(0, start);
  header.set(new TextEncoder().encode('<f8'), header.indexOf(0x3c)); // '<f4' → '<f8' (same length)
  const out = new Uint8Array(start + (f32.length - start) * 2);
  out.set(header);
  return out;
}

interface ClassifyJson {
  model: string; input: string; recipe: string | null;
  predictions: { class: number; label: string; score: number; probability: number }[];
  logits: number[]; probabilities: number[];
}

let dir: string;
const bytes: Record<string, Uint8Array> = {};
const models: Record<string, OnnxModel> = {};
const file = (name: string) => join(dir, name);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gradcam-cli-test-'));
  for (const name of [ZOO, TV]) {
    bytes[name] = generateModelBytes(name);
    models[name] = decodeOnnx(bytes[name]);
    await writeFile(file(`${name}.onnx`), bytes[name]);
  }
  const zoo = models[ZOO];
  const rng = new Rng(99);
  await writeFile(file('random.onnx'), Uint8Array.from({ length: 4096 }, () => rng.nextU32() & 255));
  await writeFile(file('truncated.onnx'), bytes[ZOO].subarray(0, Math.floor(bytes[ZOO].length * 0.6)));
  // An op type the engine does not implement (ONNX's DeformConv): the model is refused with exit 2.
  const nodes = zoo.nodes.map((n) => (n.name === 'inception_4c/relu_3x3' ? { ...n, opType: 'DeformConv' } : n));
  await writeFile(file('unsupported.onnx'), encodeOnnx({ ...zoo, nodes }));
  const initializers = new Map(zoo.initializers);
  expect(initializers.delete('inception_4d/5x5_w_0')).toBe(true);
  await writeFile(file('missing-weight.onnx'), encodeOnnx({ ...zoo, initializers }));
  await writeFile(file('seeded.npy'), encodeNpy([1, 3, 224, 224], seededInput(5)));
  await writeFile(file('small.npy'), encodeNpy([1, 3, 112, 112], new Float32Array(3 * 112 * 112)));
  await writeFile(file('float64.npy'), float64Npy([1, 3, 224, 224]));
  await writeFile(file('text.png'), 'This is a text file, not a picture.\n');
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('usage', () => {
  test('--help, --version, a command\'s --help: exit 0 on stdout', async () => {
    const [help, version, classifyHelp] = await inParallel([['--help'], ['--version'], ['classify', '--help']], (args) => gradcam(args));
    expectExit(help, 0);
    for (const c of ['info', 'classify', 'generate']) expect(help.stdout).toContain(`gradcam ${c} `);
    expectExit(version, 0);
    expect(version.stdout.trim()).toBe(JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')).version);
    expectExit(classifyHelp, 0);
    expect(classifyHelp.stdout).toMatch(/^usage: gradcam classify <image/);
  });

  test('usage errors: exit 2 with the usage line', async () => {
    for (const run of await inParallel([['info', '--bogus', 'x.onnx'], ['frobnicate'], ['classify', 'x.npy', '--model', 'm.onnx', '--top', 'zero'], ['info']], (args) => gradcam(args))) {
      expectExit(run, 2);
      expect(run.stderr).toMatch(/^gradcam: .*\nusage: gradcam /);
    }
  });
});

describe('generate', () => {
  test('writes (or finds) a generated model and prints its path; an unknown name is an error with a hint', async () => {
    const run = await gradcam(['generate', ZOO]);
    expectExit(run, 0);
    expect(run.stdout.trim()).toBe(join(ROOT, 'weights', 'generated', `${ZOO}.onnx`));
    const unknown = await gradcam(['generate', 'alexnet']);
    expectUserError(unknown, /^gradcam: unknown generated model 'alexnet'$/);
    expect(unknown.stderr).toMatch(new RegExp(`hint: Known: .*${ZOO}.*${TV}`));
  });
});

describe('info', () => {
  test('the zoo-style model: ops, and the feature layers with inception_3a … 5b/output_1 marked as blocks', async () => {
    const run = await gradcam(['info', file(`${ZOO}.onnx`), '--json', file('info.json')]);
    expectExit(run, 0);
    expect(run.stderr).toBe(''); // parse and lower only: no GPU, no messages
    expect(run.stdout).toMatch(/IR version 7, opset 12/);
    expect(run.stdout).toMatch(/input +data_0 +float32 \[1, 3, 224, 224\]/);
    expect(run.stdout).toMatch(/ONNX ops +143 nodes: Conv 57, Relu 57, MaxPool 13, Concat 9, LRN 2, /);
    const blockLines = run.stdout.split('\n').filter((l) => l.startsWith('  * '));
    expect(blockLines.map((l) => l.split(/\s+/)[2])).toEqual(BLOCKS.map((b) => `inception_${b}/output_1`));
    expect(blockLines.at(-1)).toMatch(/inception_5b\/output_1 +1024×7×7 +Concat +\(default\)/);
    const doc = JSON.parse(await readFile(file('info.json'), 'utf8'));
    expect(doc.onnxOps).toMatchObject({ Conv: 57, Relu: 57, MaxPool: 13, Concat: 9, LRN: 2, Gemm: 1, Softmax: 1 });
    expect(doc.lowered.logits).toBe('loss3/classifier_1');
    const layers = doc.featureLayers as { name: string; shape: number[]; block: boolean }[];
    expect(layers.filter((l) => l.block).map((l) => l.name)).toEqual(BLOCKS.map((b) => `inception_${b}/output_1`));
    expect(layers.find((l) => l.name === 'inception_4e/output_1')!.shape).toEqual([1, 832, 14, 14]);
    expect(layers.every((l) => l.shape.length === 4 && l.shape[2] * l.shape[3] > 1)).toBe(true);
    expect(doc.defaultLayer).toBe('inception_5b/output_1');
  });
});

describe('classify', () => {
  /**
   * The three GPU runs, started together two at a time (each is mostly Node, Dawn and shader
   * compiles on one core); each test awaits its own and checks it against onnxruntime-node.
   */
  let runs: Promise<Record<string, Run>>;
  beforeAll(() => {
    const argv: Record<string, string[]> = {
      [ZOO]: ['classify', file('seeded.npy'), '--model', file(`${ZOO}.onnx`), '--json', file(`${ZOO}.json`)],
      [TV]: ['classify', file('seeded.npy'), '--model', file(`${TV}.onnx`), '--json', file(`${TV}.json`)],
      chelsea: ['classify', CHELSEA, '--model', file(`${ZOO}.onnx`), '--json', file('chelsea.json'), '--save-input', file('chelsea-input.npy')],
    };
    runs = inParallel(Object.values(argv), (args) => gradcam(args, 180_000)).then((r) => Object.fromEntries(Object.keys(argv).map((k, i) => [k, r[i]])));
    runs.catch(() => undefined); // (a failure is reported by the tests that await it)
  });

  for (const name of [ZOO, TV]) {
    test(`${name}: a seeded .npy gives onnxruntime-node's top-5 and logits`, async () => {
      const json = file(`${name}.json`);
      const run = (await runs)[name];
      expectExit(run, 0);
      const got = JSON.parse(await readFile(json, 'utf8')) as ClassifyJson;
      const logitsName = lower(models[name]).logits;
      const oracle = await OrtOracle.create(models[name], [logitsName]);
      const x = decodeNpy(await readFile(file('seeded.npy'))).data;
      const want = (await oracle.run(x, [1, 3, 224, 224], [logitsName]))[logitsName];
      const err = maxAbsDiff(got.logits, want);
      expect(err, `max |Δlogit| ${err}, max |logit| ${maxAbs(want)}`).toBeLessThanOrEqual(1e-3 * maxAbs(want));
      expect(got.predictions.map((p) => p.class)).toEqual(topK(want, 5));
      // The table and the JSON say the same thing; labels are ImageNet's (1000 classes).
      const top = got.predictions[0];
      expect(top.score).toBe(got.logits[top.class]);
      expect(top.probability).toBe(got.probabilities[top.class]);
      expect(run.stdout.split('\n')[1]).toMatch(new RegExp(`^ +1 +${top.class}  ${top.label.replace(/[()]/g, '.')} +${top.score.toFixed(4)} `));
      expect(got.probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
      expect(got.recipe).toBeNull();
    });
  }

  test('chelsea.png on the zoo-style model: GPU preprocessing and logits against float64 preprocessing + onnxruntime-node', async () => {
    const json = file('chelsea.json');
    const saved = file('chelsea-input.npy');
    const run = (await runs).chelsea;
    expectExit(run, 0);
    expect(run.stderr).toMatch(/chelsea\.png 451×300 → 224×224, recipe caffe-bgr/);
    const got = JSON.parse(await readFile(json, 'utf8')) as ClassifyJson;
    expect(got.recipe).toBe('caffe-bgr');

    // The input tensor. The GPU computes the filter in float32; the reference in float64. The filter
    // weights depend on each output pixel's centre c = (X + 0.5)·scale, which float32 gets right to
    // |Δc| ≤ S·2⁻²² source pixels (scale and the product each rounded, plus the subtraction
    // i + 0.5 − c). A weight's slope is 1/support, an output mixes n ≤ 2·Σw taps whose values differ
    // from it by ≤ 255, so one pass moves by ≤ 2·255·|Δc|/support. The float32 sums (≤ 2·support + 1
    // terms of ≤ 255, then the recipe) add < 1e-3. For 451×300 → 224×224: ≈ 0.055 + 0.001, on values
    // spanning ±150. (Bugs in the filter — no antialiasing, a half-pixel shift, RGB/BGR — move values
    // by whole units.)
    const img = await decodeImageFile(CHELSEA);
    const ref = preprocessReference(img.data, img.width, img.height, 224, 224, ZOO_CAFFE);
    const gpuInput = decodeNpy(await readFile(saved));
    expect(gpuInput.shape).toEqual([1, 3, 224, 224]);
    const pass = (S: number, D: number) => (2 * 255 * S * 2 ** -22) / Math.max(S / D, 1);
    const inputTol = pass(img.width, 224) + pass(img.height, 224) + 1e-3;
    const inputErr = maxAbsDiff(gpuInput.data, ref);
    console.log(`chelsea.png: GPU vs float64 preprocessing: max |Δ| ${inputErr.toExponential(2)} (bound ${inputTol.toExponential(2)})`);
    expect(inputErr).toBeLessThanOrEqual(inputTol);

    // The logits, end to end, against onnxruntime-node on the reference input. The input differs by
    // ≤ 4e-4 of its range, the order of float32 rounding itself; the generated model neither
    // amplifies nor kills activations (generated-models.test.ts), so the forward tolerance holds.
    const logitsName = lower(models[ZOO]).logits;
    const oracle = await OrtOracle.create(models[ZOO], [logitsName]);
    const want = (await oracle.run(Float32Array.from(ref), [1, 3, 224, 224], [logitsName]))[logitsName];
    const onGpuInput = (await oracle.run(gpuInput.data, [1, 3, 224, 224], [logitsName]))[logitsName];
    const err = maxAbsDiff(got.logits, want);
    console.log(`chelsea.png: max |Δlogit| vs ORT(reference input) ${err.toExponential(2)}, vs ORT(GPU input) ${maxAbsDiff(got.logits, onGpuInput).toExponential(2)}, ORT(ref) vs ORT(GPU input) ${maxAbsDiff(want, onGpuInput).toExponential(2)}, max |logit| ${maxAbs(want).toFixed(3)}`);
    expect(err).toBeLessThanOrEqual(1e-3 * maxAbs(want));
    expect(got.predictions.map((p) => p.class)).toEqual(topK(want, 5));
  });
});

describe('bad inputs: a specific error, exit 1', () => {
  const zoo = () => file(`${ZOO}.onnx`);
  const cases: [string, () => string[], RegExp][] = [
    ['random bytes as --model', () => ['classify', file('seeded.npy'), '--model', file('random.onnx')],
      /^gradcam: .*random\.onnx: not a readable ONNX model: the protobuf decoder stopped \(.*\); the file is truncated, corrupt, or not ONNX$/],
    ['a truncated model (60% of the bytes)', () => ['classify', file('seeded.npy'), '--model', file('truncated.onnx')],
      /^gradcam: .*truncated\.onnx: not a readable ONNX model: the protobuf decoder stopped \(index out of range.*\); the file is truncated/],
    ['a model with a missing initializer', () => ['classify', file('seeded.npy'), '--model', file('missing-weight.onnx')],
      /^gradcam: .*missing-weight\.onnx: node 'inception_4d\/5x5' \(Conv\): reads 'inception_4d\/5x5_w_0', which no initializer holds \(a missing initializer\?\)$/],
    ['a .npy of the wrong shape', () => ['classify', file('small.npy'), '--model', zoo()],
      /^gradcam: .*small\.npy: shape \[1,3,112,112\], but the model's input 'data_0' is \[1,3,224,224\] \(float32 NCHW\)$/],
    ['a float64 .npy', () => ['classify', file('float64.npy'), '--model', zoo()],
      /^gradcam: .*float64\.npy: dtype float64 \('<f8'\); expected float32 \('<f4'\)$/],
    ['a .png that holds text', () => ['classify', file('text.png'), '--model', zoo()],
      /^gradcam: .*text\.png: not an image sharp can read \(.+\)$/],
    ['a missing model file', () => ['classify', file('seeded.npy'), '--model', file('nowhere.onnx')],
      /^gradcam: .*nowhere\.onnx: no such file$/],
    ['a missing image file', () => ['classify', file('nowhere.png'), '--model', zoo()],
      /^gradcam: .*nowhere\.png: no such file$/],
  ];
  test('info on a model with an unsupported op: what it could read, then the error (exit 2)', async () => {
    const run = await gradcam(['info', file('unsupported.onnx')]);
    expectExit(run, 2);
    expect(run.stdout).toMatch(/ONNX ops +143 nodes: .*DeformConv 1/);
    expect(run.stderr).toMatch(/^gradcam: .*unsupported\.onnx: node 'inception_4c\/relu_3x3' \(DeformConv\): op type DeformConv is not supported/);
  });

  test('a model with an unsupported op: exit 2, the op named, before the GPU starts', async () => {
    const run = await gradcam(['classify', file('seeded.npy'), '--model', file('unsupported.onnx')]);
    expectExit(run, 2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^gradcam: .*unsupported\.onnx: node 'inception_4c\/relu_3x3' \(DeformConv\): op type DeformConv is not supported; supported ops: .*Conv/m);
    expect(run.stderr).not.toContain('SwiftShader');
  });

  for (const [what, args, message] of cases) {
    test(what, async () => {
      const run = await gradcam(args());
      expectUserError(run, message);
      // Bad input is caught before the GPU starts.
      expect(run.stderr).not.toContain('SwiftShader');
    });
  }
});

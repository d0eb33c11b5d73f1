/**
 * Issue 19: a person's own classifier and the Model Zoo's by name. Preprocessing as data (recipes,
 * their sources, the centre crop and NHWC in the GPU kernel), labels (file, metadata_props, count),
 * the manifest's zoo entries (fetched through the same path as googlenet-12, against a local server
 * with a generated stand-in), and a fine-tuned 10-class ResNet end to end through explain, explain
 * dir/ --jsonl, eval and the API. One GPU device and one load per model.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { fetchCommand } from '../src/cli/fetch.ts';
import { GradcamError } from '../src/errors.ts';
import { checkLabelCount, labelsFromMetadata, parseLabels } from '../src/gradcam/labels.ts';
import { modelFitsDevice } from '../src/gradcam/limits.ts';
import { Network } from '../src/gradcam/network.ts';
import type { RgbaImage } from '../src/image/image.ts';
import { CAFFE_BGR, chooseRecipe, EFFICIENTNET_LITE, IMAGENET_RGB, type Recipe, sourceRect, TORCHVISION } from '../src/image/recipes.ts';
import { lowerOrFail, resolveModel } from '../src/models/resolve.ts';
import { loadNetwork } from '../src/node.ts';
import { decodeOnnx } from '../src/onnx/decode.ts';
import { encodeOnnx } from '../src/onnx/write.ts';
import { ensureGeneratedModel, generateModelBytes } from '../weights/generate/index.ts';
import { findModel, MODELS } from '../weights/manifest.ts';
import { expectExit, gradcam, inParallel, ROOT } from './helpers/cli.ts';
import { testGpu } from './helpers/gpu.ts';
import { sendBytes, startServer } from './helpers/model-server.ts';
import { OrtOracle } from './helpers/ort.ts';

const FINETUNED = 'resnet-finetuned-10';
const LABELS = join(ROOT, 'weights', 'labels', `${FINETUNED}.txt`);
const CIFAR = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];
let tmp: string;
let finetuned: string;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'gradcam-own-model-'));
  finetuned = await ensureGeneratedModel(FINETUNED);
});

afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('recipes as data (CPU)', () => {
  const model = { inputName: 'input', opTypes: ['Conv'] };

  test('the source: the user, else the manifest, else metadata_props, else a guess; each says why', () => {
    const meta = { mean: '0.5,0.5,0.5', std: '0.25, 0.25, 0.25', layout: 'nhwc', size: '96x128', resize: 'center-crop' };
    const guess = chooseRecipe(model);
    expect([guess.source, guess.recipe]).toEqual(['guess', IMAGENET_RGB]);
    expect(guess.why).toMatch(/^no recipe stated/);
    expect(chooseRecipe({ inputName: 'data_0', opTypes: [] })).toMatchObject({ source: 'guess', recipe: CAFFE_BGR, why: expect.stringMatching(/'data_0'/) });
    const fromMeta = chooseRecipe({ ...model, metadata: meta });
    expect(fromMeta.source).toBe('metadata');
    expect(fromMeta.why).toBe("the model's metadata_props (mean, std, layout, size, resize)");
    expect(fromMeta.recipe).toMatchObject({ mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25], layout: 'NHWC', size: [96, 128], resize: 'centre-crop', cropFraction: 0.875, valueScale: 1 / 255 });
    const manifest = { model: 'densenet-12', recipe: 'caffe-bgr', note: 'assumed' };
    expect(chooseRecipe({ ...model, metadata: meta, manifest })).toMatchObject({ source: 'manifest', recipe: CAFFE_BGR, why: "the manifest's entry densenet-12 (assumed)" });
    expect(chooseRecipe({ ...model, metadata: meta, manifest, user: { recipe: 'torchvision' } })).toMatchObject({ source: 'user', recipe: TORCHVISION, why: '--recipe torchvision' });
    // Fields on top of whatever was chosen: the source is the user's, the reason names the rest's.
    const mixed = chooseRecipe({ ...model, manifest, user: { mean: [1, 2, 3], size: [32, 32] } });
    expect(mixed.source).toBe('user');
    expect(mixed.why).toBe("--mean, --size from the user; the rest from the manifest's entry densenet-12 (assumed)");
    expect(mixed.recipe).toMatchObject({ ...CAFFE_BGR, name: 'caffe-bgr+user', mean: [1, 2, 3], size: [32, 32] });
  });

  test('bad values are errors that name the key or option', () => {
    const bad = (metadata: Record<string, string>, message: RegExp) => expect(() => chooseRecipe({ ...model, metadata })).toThrow(message);
    bad({ mean: '1,2' }, /^the model's metadata_props 'mean' takes three numbers separated by commas \(R,G,B\), got '1,2'$/);
    bad({ std: '1,0,1' }, /'std' takes three numbers > 0/);
    bad({ recipe: 'tensorflow' }, /^the model's metadata_props 'recipe': unknown recipe 'tensorflow'; the recipes are caffe-bgr, imagenet-rgb, torchvision, efficientnet-lite$/);
    bad({ layout: 'CHW' }, /'layout' takes nchw or nhwc, got 'CHW'/);
    bad({ size: '0' }, /'size' takes N or HxW \(integers from 1 to 8192\), got '0'/);
    bad({ channel_order: 'GBR' }, /'channel_order' takes RGB or BGR/);
  });

  test("a centre crop is torchvision's Resize(256) + CenterCrop(224), in picture pixels", () => {
    // 451 × 300: the shorter side 300 → 256 (s = 256/300), the longer 451·s = 384.85 → 384; the crop's offsets (384 − 224)/2 = 80 and 16.
    const s = 256 / 300;
    expect(sourceRect(TORCHVISION, 451, 300, 224, 224)).toEqual({ x: 80 / s, y: 16 / s, w: 224 / s, h: 224 / s });
    // Portrait, odd offset: 300 × 451 → 256 × 384; (384 − 224)/2 = 80 rows.
    expect(sourceRect(TORCHVISION, 300, 451, 224, 224)).toEqual({ x: 16 / s, y: 80 / s, w: 224 / s, h: 224 / s });
    expect(sourceRect(IMAGENET_RGB, 451, 300, 224, 224)).toEqual({ x: 0, y: 0, w: 451, h: 300 });
  });

  test('labels: a file (one per line), metadata_props (a JSON list or lines), the count checked', () => {
    expect(parseLabels('\uFEFFa\r\nb b \nc\n\n', 'l.txt')).toEqual(['a', 'b b', 'c']);
    expect(() => parseLabels('a\n\nc\n', 'l.txt')).toThrow(/^l\.txt: line 2 is empty; expected one class name per line/);
    expect(() => parseLabels('\n', 'l.txt')).toThrow(/^l\.txt: no class names/);
    expect(labelsFromMetadata({ labels: '["x", "y"]' })).toEqual(['x', 'y']);
    expect(labelsFromMetadata({ labels: 'x\ny' })).toEqual(['x', 'y']);
    expect(labelsFromMetadata({ other: '1' })).toBeUndefined();
    expect(() => labelsFromMetadata({ labels: '[1, 2]' })).toThrow(/expected a JSON list of strings/);
    expect(() => checkLabelCount(['a'], 10, 'l.txt')).toThrow(/^l\.txt: 1 class names, but the model has 10 classes$/);
  });
});

describe('resolving a file (what the CLI and loadNetwork share; no GPU)', () => {
  test('the user\'s recipe and labels file; a wrong count is refused by lowerOrFail, naming the file', async () => {
    const r = await resolveModel(finetuned, () => {}, { recipe: { recipe: 'torchvision', std: [1, 1, 1] }, labelsFile: LABELS });
    expect(r.recipeChoice).toMatchObject({ source: 'user', why: '--std from the user; the rest from --recipe torchvision', recipe: { ...TORCHVISION, name: 'torchvision+user', std: [1, 1, 1] } });
    expect([r.labels, r.labelsFrom]).toEqual([CIFAR, `--labels ${LABELS}`]);
    expect(lowerOrFail(r).input.shape).toEqual([1, 3, 64, 64]);
    const three = join(tmp, 'three.txt');
    await writeFile(three, 'a\nb\nc\n');
    expect(() => lowerOrFail({ ...r, labels: ['a', 'b', 'c'], labelsFrom: `--labels ${three}` })).toThrow(`${three}: 3 class names, but the model has 10 classes`);
    await expect(resolveModel(finetuned, () => {}, { labelsFile: join(tmp, 'missing.txt') })).rejects.toThrow(/missing\.txt: no such file/);
  });
});

describe('the manifest: zoo classifiers by name', () => {
  const REQUIRED = ['resnet18-v1-7', 'resnet18-v2-7', 'resnet50-v1-12', 'resnet50-v1-7', 'resnet50-v2-7', 'mobilenetv2-12', 'squeezenet1.0-12', 'squeezenet1.1-7',
    'densenet-12', 'shufflenet-v2-12', 'efficientnet-lite4-11', 'vgg16-12', 'vgg16-bn-7', 'bvlcalexnet-12', 'caffenet-12', 'inception-v1-12', 'inception-v2-9'];

  test('each has its URL, size, SHA-256, layout and a known recipe; assumed recipes say so', () => {
    for (const name of REQUIRED) {
      const e = findModel(name);
      expect(e, name).toBeDefined();
      expect(e!.url).toMatch(new RegExp(`^https://github\\.com/onnx/models/raw/main/validated/vision/classification/.*/${name.replace('.', '\\.')}\\.onnx$`));
      expect(e!.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(e!.bytes).toBeGreaterThan(1e6);
      expect(() => chooseRecipe({ manifest: { model: name, recipe: e!.recipe }, inputName: '', opTypes: [] })).not.toThrow();
      expect(e!.input.layout).toBe(name.startsWith('efficientnet') ? 'NHWC' : 'NCHW');
      if (e!.recipe === 'caffe-bgr') expect(e!.recipeNote, name).toMatch(/^assumed/);
    }
    expect(findModel('efficientnet-lite4-11')).toMatchObject({ recipe: 'efficientnet-lite', input: { shape: [1, 224, 224, 3] } });
  });

  // The zoo's list lives beside the repository (../shared/data); where it is, every entry must be its row.
  const tsv = join(ROOT, '..', 'shared', 'data', 'onnx-zoo-classifiers.tsv');
  test.runIf(existsSync(tsv))('sizes and hashes are the zoo list\'s', async () => {
    const rows = new Map((await readFile(tsv, 'utf8')).split('\n').filter((l) => l && !l.startsWith('#') && !l.startsWith('name\t'))
      .map((l) => l.split('\t')).map(([name, path, bytes, sha]) => [name, { path, bytes: Number(bytes), sha }]));
    const zoo = MODELS.filter((m) => m.kind === 'onnx-zoo');
    expect(zoo.length).toBeGreaterThanOrEqual(REQUIRED.length + 2);
    for (const m of zoo) {
      const row = rows.get(m.name)!;
      expect(row, m.name).toBeDefined();
      expect([m.url, m.bytes, m.sha256]).toEqual([`https://github.com/onnx/models/raw/main/${row.path}`, row.bytes, row.sha]);
    }
  });

  test('a model too big for the device says so before it downloads (largest weight against the binding limit)', () => {
    const small = { maxStorageBufferBindingSize: 128 * 2 ** 20, maxBufferSize: 256 * 2 ** 20, maxComputeWorkgroupsPerDimension: 65535 };
    expect(modelFitsDevice(findModel('vgg16-12')!, small)).toMatch(/^vgg16-12 is too big for this GPU: its largest weight tensor takes .*maxStorageBufferBindingSize.*not downloaded$/);
    expect(modelFitsDevice(findModel('bvlcalexnet-12')!, small)).toMatch(/too big/);
    expect(modelFitsDevice(findModel('resnet50-v1-7')!, small)).toBeUndefined();
    expect(modelFitsDevice(findModel('vgg16-12')!, { ...small, maxStorageBufferBindingSize: 2 ** 30, maxBufferSize: 2 ** 30 })).toBeUndefined();
  });

  test('gradcam fetch NAME: the same path as googlenet-12 (base URL, size and hash checks, cache), with a stand-in file', async () => {
    // The real weights cannot be downloaded here: the entry is pointed at a generated file (its size and hash), served locally.
    const bytes = generateModelBytes(FINETUNED);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const seen: string[] = [];
    const server = await startServer((req, res) => {
      seen.push(req.url ?? '');
      sendBytes(req, res, bytes);
    });
    const saved = new Map<string, object>();
    const env = { base: process.env.GRADCAM_MODEL_BASE_URL, cache: process.env.GRADCAM_CACHE };
    const cache = join(tmp, 'cache');
    try {
      process.env.GRADCAM_MODEL_BASE_URL = server.url;
      process.env.GRADCAM_CACHE = cache;
      for (const name of ['resnet50-v1-7', 'efficientnet-lite4-11', 'vgg16-bn-7']) {
        const entry = findModel(name)!;
        saved.set(name, { bytes: entry.bytes, sha256: entry.sha256 });
        Object.assign(entry, { bytes: bytes.length, sha256 });
        const out: string[] = [];
        await fetchCommand.run({ values: {}, positionals: [name] }, { out: (l) => out.push(l), info: () => {}, progress: () => {}, isStdout: () => false });
        expect(out).toEqual([join(cache, `${name}.onnx`)]);
        expect(createHash('sha256').update(await readFile(out[0])).digest('hex')).toBe(sha256);
        // Then by name from the cache, with the manifest's recipe and labels.
        const resolved = await resolveModel(name, () => {});
        expect(resolved.path).toBe(out[0]);
        expect(resolved.recipeChoice).toMatchObject({ source: 'manifest', recipe: { name: entry.recipe } });
        expect(resolved.labelsFrom).toBe("the manifest's label set 'imagenet'");
      }
      expect(seen).toEqual(['/resnet50-v1-7.onnx', '/efficientnet-lite4-11.onnx', '/vgg16-bn-7.onnx']);
    } finally {
      for (const [name, fields] of saved) Object.assign(findModel(name)!, fields);
      if (env.base === undefined) delete process.env.GRADCAM_MODEL_BASE_URL;
      else process.env.GRADCAM_MODEL_BASE_URL = env.base;
      if (env.cache === undefined) delete process.env.GRADCAM_CACHE;
      else process.env.GRADCAM_CACHE = env.cache;
      await server.close();
    }
  });
});

/** A picture with structure everywhere (gradients in x and y, a checker), odd-sized so that the crop's offsets are fractional. */
function picture(width: number, height: number): RgbaImage {
  const data = new Uint8ClampedArray(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4;
      data.set([(x * 255) / (width - 1), (y * 255) / (height - 1), ((x >> 2) + (y >> 2)) % 2 ? 220 : 30, 255], i);
    }
  }
  return { width, height, data };
}

/**
 * The preprocessing in float64, written from the formulas (PIL's antialiased bilinear filter over the
 * source rectangle, then the recipe): the reference for the GPU kernel, NHWC or NCHW.
 */
function preprocessReference(img: RgbaImage, r: Recipe, outW: number, outH: number, nhwc: boolean): Float64Array {
  const rect = sourceRect(r, img.width, img.height, outW, outH);
  const taps = (dst: number, origin: number, span: number, out: number, size: number) => {
    const scale = span / out, support = Math.max(scale, 1), centre = origin + (dst + 0.5) * scale;
    const list: [number, number][] = [];
    for (let i = Math.max(Math.floor(centre - support), 0); i <= Math.min(Math.ceil(centre + support), size) - 1; i++) {
      list.push([i, Math.max(0, 1 - Math.abs(i + 0.5 - centre) / support)]);
    }
    const total = list.reduce((a, [, w]) => a + w, 0);
    return list.map(([i, w]) => [i, w / total] as [number, number]);
  };
  const out = new Float64Array(3 * outW * outH);
  for (let Y = 0; Y < outH; Y++) {
    const ty = taps(Y, rect.y, rect.h, outH, img.height);
    for (let X = 0; X < outW; X++) {
      const tx = taps(X, rect.x, rect.w, outW, img.width);
      const rgb = [0, 0, 0].map((_, c) => ty.reduce((a, [y, wy]) => a + wy * tx.reduce((b, [x, wx]) => b + wx * img.data[(y * img.width + x) * 4 + c], 0), 0));
      const v = rgb.map((x, c) => (x * r.valueScale - r.mean[c]) / r.std[c]);
      const ordered = r.channelOrder === 'BGR' ? [v[2], v[1], v[0]] : v;
      ordered.forEach((x, c) => (out[nhwc ? (Y * outW + X) * 3 + c : c * outW * outH + Y * outW + X] = x));
    }
  }
  return out;
}

describe('GPU: the centre crop and NHWC (EfficientNet-Lite4 stand-in: images:0 [1, 224, 224, 3], Transpose first)', () => {
  test('the input tensor matches the float64 preprocessing; the forward matches onnxruntime-node; the map is drawn over the crop', async () => {
    const model = decodeOnnx(await readFile(await ensureGeneratedModel('efficientnet-lite-nhwc')));
    const net = await Network.load(await testGpu(), model, { recipe: EFFICIENTNET_LITE });
    try {
      expect(net.engine.layout).toBe('NHWC');
      const img = picture(301, 187);
      const res = await net.gradCAM(img, { classes: [3], overlay: true });
      const got = await net.engine.readTensor('images:0');
      const want = preprocessReference(img, EFFICIENTNET_LITE, 224, 224, true);
      // Values in [−1, 1]; a tap sum of ≤ 6 × 6 float32 products of values ≤ 255: |error| ≲ 40 · u · 255 / 128 ≈ 1e-5.
      let worst = 0;
      for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
      expect(worst).toBeLessThan(1e-4);
      // The same tensor through onnxruntime-node (1e-3 of the largest logit, as the family tests).
      const ort = await OrtOracle.create(model);
      const { logits } = await ort.run(Float32Array.from(got.subarray(0, want.length)), [1, 224, 224, 3], ['logits']);
      const scale = Math.max(...Array.from(logits, Math.abs));
      const classified = await net.classify(img, 1000);
      const logitDiff = Math.max(...classified.predictions.map((p) => Math.abs(p.score - logits[p.class])));
      console.log(`NHWC crop preprocessing: max |GPU − float64| ${worst.toExponential(2)}; logits against onnxruntime-node: max |d| ${logitDiff.toExponential(2)} (max |logit| ${scale.toFixed(3)})`);
      expect(logitDiff).toBeLessThan(1e-3 * scale);
      // The overlay: the map over the crop (x 18.7 … 282.3 of 301), the picture dimmed (× 0.4, no colour map) outside it.
      const o = res.maps[0].overlay!;
      const at = (x: number, y: number, c: number) => o.data[(y * img.width + x) * 4 + c];
      for (const [x, y] of [[2, 2], [10, 100], [295, 50]]) {
        for (let c = 0; c < 3; c++) expect(Math.abs(at(x, y, c) - 0.4 * img.data[(y * img.width + x) * 4 + c])).toBeLessThanOrEqual(1);
      }
      const inside = [[150, 90], [40, 40], [260, 150]].some(([x, y]) => [0, 1, 2].some((c) => Math.abs(at(x, y, c) - 0.4 * img.data[(y * img.width + x) * 4 + c]) > 8));
      expect(inside).toBe(true);
    } finally {
      net.destroy();
    }
  }, 120_000);
});

describe(`a fine-tuned classifier end to end (${FINETUNED}: 10 classes and its labels file)`, () => {
  test('the API: loadNetwork with a labels file; a wrong count refused before the GPU; metadata_props labels; no labels: class k', async () => {
    const gpu = await testGpu();
    const img = picture(97, 75);
    const net = await loadNetwork(finetuned, { gpu, labelsFile: LABELS, log: () => {} });
    try {
      expect(net.classCount).toBe(10);
      const r = await net.classify(img, 10);
      for (const p of r.predictions) expect(p.label).toBe(CIFAR[p.class]);
      const cam = await net.gradCAM(img, { classes: 'top2' });
      for (const m of cam.maps) expect(m.label).toBe(CIFAR[m.class]);
    } finally {
      net.destroy();
    }
    const nine = join(tmp, 'nine.txt');
    await writeFile(nine, CIFAR.slice(0, 9).join('\n'));
    await expect(loadNetwork(finetuned, { gpu, labelsFile: nine, log: () => {} })).rejects.toThrow(GradcamError);
    await expect(loadNetwork(finetuned, { gpu, labelsFile: nine, log: () => {} })).rejects.toThrow(`${nine}: 9 class names, but the model has 10 classes`);
    // Labels inside the model (metadata_props), and none at all.
    const withMeta = decodeOnnx(await readFile(finetuned));
    withMeta.metadata = { labels: JSON.stringify(CIFAR.map((c) => c.toUpperCase())) };
    const metaPath = join(tmp, 'with-labels.onnx');
    await writeFile(metaPath, encodeOnnx(withMeta));
    for (const [path, name] of [[metaPath, (c: number) => CIFAR[c].toUpperCase()], [finetuned, (c: number) => `class ${c}`]] as const) {
      const n = await loadNetwork(path, { gpu, log: () => {} });
      try {
        for (const p of (await n.classify(img, 3)).predictions) expect(p.label).toBe(name(p.class));
      } finally {
        n.destroy();
      }
    }
  }, 120_000);

  test('explain (JSON: the label beside each index; the recipe and its source) and explain dir/ --jsonl', async () => {
    const pics = join(tmp, 'pics');
    await mkdir(pics, { recursive: true });
    const sample = join(ROOT, 'weights', 'samples', 'chelsea.png');
    await writeFile(join(pics, 'a.png'), await readFile(sample));
    await writeFile(join(pics, 'b.png'), await readFile(join(ROOT, 'weights', 'samples', 'coffee.png')));
    // A wrong count is a clear error, exit 1, before the GPU starts: run beside the two explains
    // (independent runs, each mostly Node, Dawn and shader compiles on one core).
    const nine = join(tmp, 'nine-cli.txt');
    await writeFile(nine, CIFAR.slice(0, 9).join('\n'));
    const jsonl = join(tmp, 'out.jsonl');
    const [one, wrong, many] = await Promise.all([
      gradcam(['explain', sample, '--model', finetuned, '--labels', LABELS, '--recipe', 'torchvision', '--class', 'top3', '--json', '-'], 240_000),
      gradcam(['explain', sample, '--model', finetuned, '--labels', nine], 60_000),
      gradcam(['explain', pics, '--model', finetuned, '--labels', LABELS, '--jsonl', jsonl], 240_000),
    ]);
    expectExit(one, 0);
    expect(one.stderr).toMatch(/gradcam: recipe torchvision \(RGB, 0–1, .*centre crop 87\.5 %, NCHW\) \(user: --recipe torchvision\)/);
    const doc = JSON.parse(one.stdout);
    expect(doc.recipe).toBe('torchvision');
    expect(doc.recipeSource).toEqual({ source: 'user', why: '--recipe torchvision' });
    expect(doc.labels).toBe(`--labels ${LABELS}`);
    expect(doc.predictions.length).toBe(5);
    for (const p of doc.predictions) expect(p.label).toBe(CIFAR[p.class]);
    expect(doc.maps.length).toBe(3);
    for (const m of doc.maps) expect(m.label).toBe(CIFAR[m.class]);

    expectExit(many, 0);
    const lines = (await readFile(jsonl, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.length).toBe(2);
    for (const line of lines) {
      expect(line.predictions.length).toBeGreaterThan(0);
      for (const p of line.predictions) expect(p.label).toBe(CIFAR[p.class]);
    }

    expectExit(wrong, 1);
    expect(wrong.stderr).toMatch(new RegExp(`gradcam: ${nine.replace(/[.]/g, '\\.')}: 9 class names, but the model has 10 classes`));
    expect(wrong.stderr).not.toMatch(/SwiftShader/);
  }, 300_000);

  test('info (no GPU): the input as lowered, the recipe with its source and why, the labels\' source; open sizes take --size', async () => {
    // The same model with its height and width left open (dim_param), as an exporter with dynamic axes writes it.
    const open = decodeOnnx(await readFile(finetuned));
    open.inputs[0].shape = ['batch', 3, 'height', 'width'];
    const openPath = join(tmp, 'open.onnx');
    await writeFile(openPath, encodeOnnx(open));
    // No GPU: Node start-ups and decoding, mostly one core each: side by side.
    const [run, sized, plain, nhwc, usage] = await inParallel([['info', finetuned, '--labels', LABELS], ['info', openPath, '--size', '96x80', '--recipe', 'torchvision', '--json', '-'],
      ['info', openPath], ['info', await ensureGeneratedModel('efficientnet-lite-nhwc')], ['info', finetuned, '--mean', '1,2']], (args) => gradcam(args, 60_000));
    expectExit(run, 0);
    expect(run.stdout).toMatch(/^input size \[1, 3, 64, 64\] NCHW$/m);
    expect(run.stdout).toMatch(/^recipe +imagenet-rgb \(RGB, 0–1, mean 0\.485\/0\.456\/0\.406, std 0\.229\/0\.224\/0\.225, stretched, NCHW\)\n +\(guess\) no recipe stated/m);
    expect(run.stdout).toMatch(new RegExp(`^labels +--labels ${LABELS}$`, 'm'));
    expectExit(sized, 0);
    const doc = JSON.parse(sized.stdout);
    expect(doc.inputShape).toEqual([1, 3, 96, 80]);
    expect(doc.recipeDetails).toMatchObject({ name: 'torchvision+user', size: [96, 80], source: 'user', why: "--size from the user; the rest from --recipe torchvision" });
    expect(doc.labels).toBe("none stated: 'class 0' … 'class 9'");
    expect(plain.stdout).toMatch(/^input size \[1, 3, 224, 224\] NCHW \(height and width open in the file: the default 224×224\)$/m);
    // NHWC, read from the shape.
    expect(nhwc.stdout).toMatch(/^input size \[1, 224, 224, 3\] NHWC$/m);
    expectExit(usage, 2);
    expect(usage.stderr).toMatch(/--mean takes three numbers separated by commas \(R,G,B\), got '1,2'/);
  }, 120_000);

  test('eval: the labels name the predictions, and box files name classes by label', async () => {
    const pics = join(tmp, 'eval');
    const boxes = join(tmp, 'boxes');
    await mkdir(pics, { recursive: true });
    await mkdir(boxes, { recursive: true });
    await writeFile(join(pics, 'a.png'), await readFile(join(ROOT, 'weights', 'samples', 'chelsea.png')));
    await writeFile(join(boxes, 'a.xml'), '<annotation><size><width>451</width><height>300</height></size><object><name>cat</name><bndbox><xmin>100</xmin><ymin>20</ymin><xmax>350</xmax><ymax>290</ymax></bndbox></object></annotation>');
    const run = await gradcam(['eval', pics, '--model', finetuned, '--labels', LABELS, '--boxes', boxes, '--steps', '8', '--json', '-'], 120_000);
    expectExit(run, 0);
    const doc = JSON.parse(run.stdout);
    expect(doc.images.length).toBe(1);
    for (const p of doc.images[0].predictions) expect(p.label).toBe(CIFAR[p.class]);
    expect(doc.images[0].methods[0].localisation.boxes.length).toBe(5);
  }, 120_000);
});

/**
 * Model-randomisation sanity check (Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS
 * 2018): an explanation that survives the destruction of the weights it is supposed to explain
 * explains nothing. On the zoo-style seeded GoogLeNet (at 128×128: SIZE below), the Grad-CAM maps at inception_4e of the
 * top-5 classes of a photo are computed (one backward pass); then the weights are re-initialised
 * cascading from the top (the classifier; then also inception_5b; 5a; 4e), each tensor with fresh
 * normal values of its own mean and standard deviation, the network is reloaded and the maps of the
 * same class indices computed again. Grad-CAM depends on the layers above the feature layer
 * (through α) and on the feature layer itself (through A), so every step must change the maps.
 * The negative control, the same model reloaded unchanged, must give identical maps (ρ = 1).
 *
 * Measure: Spearman's rank correlation ρ between the original and the randomised map of each class,
 * on the raw 8×8 maps and on the maps upsampled to the photo. A randomised map that is 0
 * everywhere (ReLU(Σ α·A) ≤ 0: about one map in ten, measured at 224) has no ranks; it counts as ρ = 0,
 * a complete change.
 *
 * Why five classes and a mean: this model's weights are random, and on a random network Grad-CAM is
 * dominated by the activation energy Σ_k A_k (α_k = ᾱ + noise, so Σ α_k A_k ≈ ᾱ Σ_k A_k + …): the
 * maps of the top-5 classes of the *same* model correlate with each other at ρ = 0.75–0.90 (at 224:
 * 0.74–0.89). The ρ of one randomised class map is therefore noisy: over three randomisation seeds
 * (1000, 2000, 3000) the largest single-class value at a step was 0.79 (raw 0.74), while the mean
 * over the five classes stayed within −0.31 … 0.30 at every step (at 224, with 14×14 maps: single
 * values up to 0.81, means −0.26 … 0.33). Thresholds: the mean over the five classes < 0.5 at every
 * step, and no single map above 0.9 (a map that ignored the destroyed weights would give ρ ≈ 1, as
 * the control).
 */
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { beforeAll, describe, expect, test } from 'vitest';
import { Network } from '../src/gradcam/network.ts';
import type { GradcamMap } from '../src/gradcam/types.ts';
import type { RgbaImage } from '../src/image/image.ts';
import { decodeOnnx } from '../src/onnx/decode.ts';
import type { OnnxModel, OnnxTensor } from '../src/onnx/model.ts';
import { generateModelBytes } from '../weights/generate/index.ts';
import { Rng } from '../weights/generate/random.ts';
import { testGpu } from './helpers/gpu.ts';

const LAYER = 'inception_4e';
/**
 * The input size: 128×128 (inception_4e 8×8, 64 cells to rank), each pass (128/224)² ≈ 0.33 of the
 * model's own 224 (where 4e is 14×14). The zoo graph's head, AveragePool 7×7 → Reshape [1, 1024],
 * takes only 224; its AveragePool is made a GlobalAveragePool, which is the same function at 224
 * (one 7×7 window over a 7×7 map) and takes any size. Nothing else changes: the same weights, names
 * and randomisation.
 */
const SIZE = 128;
/** At every randomisation step: the mean ρ over the top-5 classes stays below this … */
const MAX_MEAN_RHO = 0.5;
/** … and so does every single class's ρ (both raw and upsampled). */
const MAX_SINGLE_RHO = 0.9;

/** Ranks 1…n, ties sharing their average rank. */
function averageRanks(v: ArrayLike<number>): Float64Array {
  const order = Array.from({ length: v.length }, (_, i) => i).sort((a, b) => v[a] - v[b]);
  const ranks = new Float64Array(v.length);
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j + 1 < order.length && v[order[j + 1]] === v[order[i]]) j++;
    for (let k = i; k <= j; k++) ranks[order[k]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return ranks;
}

/** Spearman's ρ: Pearson's correlation of the average ranks. NaN when either side is constant. */
function spearman(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`spearman: ${a.length} vs ${b.length} values`);
  const [ra, rb] = [averageRanks(a), averageRanks(b)];
  const mean = (ra.length + 1) / 2; // the mean of ranks 1…n, ties or not
  let sab = 0, saa = 0, sbb = 0;
  for (let i = 0; i < ra.length; i++) {
    const [x, y] = [ra[i] - mean, rb[i] - mean];
    sab += x * y;
    saa += x * x;
    sbb += y * y;
  }
  return sab / Math.sqrt(saa * sbb);
}

/** A copy of the model whose weights under `prefixes` are fresh normals with each tensor's own mean and std. */
function randomised(model: OnnxModel, prefixes: string[], seed: number): { model: OnnxModel; tensors: number } {
  const rng = new Rng(seed);
  const initializers = new Map<string, OnnxTensor>();
  let tensors = 0;
  for (const [name, t] of model.initializers) {
    if (t.dataType !== 'float32' || !prefixes.some((p) => name.startsWith(p))) {
      initializers.set(name, t);
      continue;
    }
    const d = t.data as Float32Array;
    let s = 0, s2 = 0;
    for (const v of d) { s += v; s2 += v * v; }
    const mean = s / d.length;
    const std = Math.sqrt(Math.max(0, s2 / d.length - mean * mean));
    initializers.set(name, { ...t, data: rng.normals(d.length, mean, std) });
    tensors++;
  }
  return { model: { ...model, initializers }, tensors };
}

/** googlenet-zoo-seeded with its input at SIZE (above). */
function zooAtSize(): OnnxModel {
  const model = decodeOnnx(generateModelBytes('googlenet-zoo-seeded'));
  const pool = model.nodes.findIndex((n) => n.name === 'pool5/7x7_s1');
  expect(model.nodes[pool].opType).toBe('AveragePool');
  expect(model.nodes[pool].attributes.kernel_shape).toMatchObject({ value: [7, 7] });
  const nodes = model.nodes.map((n, i) => (i === pool ? { ...n, opType: 'GlobalAveragePool', attributes: {} } : n));
  return { ...model, nodes, inputs: [{ ...model.inputs[0], shape: [1, 3, SIZE, SIZE] }] };
}

async function chelsea(): Promise<RgbaImage> {
  const path = fileURLToPath(new URL('../weights/samples/chelsea.png', import.meta.url));
  const { data, info } = await sharp(path).toColourspace('srgb').ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

/** Loads a network, computes the maps of `classes` at inception_4e, frees the network. */
async function mapsOf(model: OnnxModel, img: RgbaImage, classes: number[] | 'top5'): Promise<GradcamMap[]> {
  const net = await Network.load(await testGpu(), model);
  try {
    const r = await net.gradCAM(img, { classes, featureLayers: LAYER });
    expect(r.maps.length).toBe(5);
    return r.maps;
  } finally {
    net.destroy();
  }
}

const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;

describe('spearman', () => {
  test('is 1 for monotone, −1 for reversed, and averages tied ranks', () => {
    expect(averageRanks([10, 20, 20, 5])).toEqual(Float64Array.from([2, 3.5, 3.5, 1]));
    expect(spearman([1, 2, 3, 4], [1, 4, 9, 100])).toBeCloseTo(1, 12);
    expect(spearman([1, 2, 3, 4], [4, 3, 2, 1])).toBeCloseTo(-1, 12);
    // Ties: x ranks [1, 2.5, 2.5, 4], y ranks [1, 2, 3, 4]: ρ = 4.5 / √(4.5 · 5).
    expect(spearman([0, 1, 1, 2], [0, 1, 2, 3])).toBeCloseTo(4.5 / Math.sqrt(4.5 * 5), 12);
    expect(spearman([0, 0, 0], [1, 2, 3])).toBeNaN();
  });
});

describe(`model-randomisation sanity check (googlenet-zoo-seeded at ${SIZE}×${SIZE}, Grad-CAM at inception_4e)`, () => {
  let model: OnnxModel;
  let img: RgbaImage;
  let original: GradcamMap[];
  let classes: number[];

  beforeAll(async () => {
    model = zooAtSize();
    img = await chelsea();
    original = await mapsOf(model, img, 'top5');
    classes = original.map((m) => m.class);
  });

  test('the original maps are real maps, and maps of different classes are alike on this random model', () => {
    const cross: number[] = [];
    for (const [i, m] of original.entries()) {
      expect(m.layer).toBe('inception_4e/output_1');
      expect(m.shape).toEqual([SIZE / 16, SIZE / 16]);
      expect(m.max, `class ${m.class}`).toBeGreaterThan(m.min);
      for (const n of original.slice(i + 1)) cross.push(spearman(m.raw, n.raw));
    }
    console.log(`top-5 classes ${classes}: ρ between the maps of two classes ${cross.map((r) => r.toFixed(2)).join(' ')} (mean ${mean(cross).toFixed(2)})`);
  });

  test('negative control: the same model reloaded gives identical maps (ρ = 1)', async () => {
    const again = await mapsOf(model, img, classes);
    for (const [k, m] of again.entries()) {
      expect(m.class).toBe(classes[k]);
      expect(Array.from(m.raw), `class ${m.class}`).toEqual(Array.from(original[k].raw));
      expect(spearman(m.raw, original[k].raw)).toBeCloseTo(1, 12);
      expect(spearman(m.upsampled!.data, original[k].upsampled!.data)).toBeCloseTo(1, 12);
    }
  });

  test(`cascading randomisation from the top changes the maps (mean ρ < ${MAX_MEAN_RHO}, each < ${MAX_SINGLE_RHO})`, async () => {
    const cascade = ['loss3/classifier_', 'inception_5b/', 'inception_5a/', 'inception_4e/'];
    const lines: string[] = [];
    let current = model;
    for (const [step, prefix] of cascade.entries()) {
      // Cascading: the layers randomised at earlier steps keep their random values.
      const r = randomised(current, [prefix], 1000 + step);
      current = r.model;
      expect(r.tensors, prefix).toBeGreaterThanOrEqual(2);
      const maps = await mapsOf(current, img, classes);
      const rho = { raw: [] as number[], upsampled: [] as number[] };
      for (const [k, c] of classes.entries()) {
        const m = maps.find((x) => x.class === c)!;
        // A vanished map (0 everywhere) has no ranks: a complete change, counted as ρ = 0.
        rho.raw.push(m.max === 0 ? 0 : spearman(m.raw, original[k].raw));
        rho.upsampled.push(m.max === 0 ? 0 : spearman(m.upsampled!.data, original[k].upsampled!.data));
      }
      const line = `randomised ${cascade.slice(0, step + 1).join(' + ')}: ρ raw ${rho.raw.map((v) => v.toFixed(3)).join(' ')} ` +
        `(mean ${mean(rho.raw).toFixed(3)}), upsampled mean ${mean(rho.upsampled).toFixed(3)}, vanished ${maps.filter((m) => m.max === 0).length}`;
      lines.push(line);
      for (const v of Object.values(rho)) {
        expect(mean(v), line).toBeLessThan(MAX_MEAN_RHO);
        expect(Math.max(...v), line).toBeLessThan(MAX_SINGLE_RHO);
      }
    }
    console.log(lines.join('\n'));
  });
});

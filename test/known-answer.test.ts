/**
 * The known-answer model (weights/generate/googlenet-known-answer.ts): classes 0, 1, 2 score red,
 * green and blue, so Grad-CAM's right answer is known in advance. On grey pictures with one
 * coloured square, the map of the square's class must peak on the square and the maps of the two
 * other colour classes must be exactly zero, with the 'logit' and the 'softmax' reduction, three
 * classes in one backward pass, on square and non-square pictures.
 *
 * "Peaks on the square": every pixel where the upsampled map is within 1e-4 of its maximum lies
 * inside the square (or in the border band where upsampling replicates an edge cell, when the square
 * reaches that band). This is guaranteed for square sides of at least KNOWN_ANSWER_MIN_SIDE network
 * pixels (48 anywhere, 34 half a cell away from the border); the first test checks that claim
 * exhaustively along one axis, the others end to end on the GPU.
 *
 * Tolerances: the GPU computes in float32 what the float64 reference computes exactly. The maps
 * come out of about 25 float32 operations (conv1's three taps and bias, ≤ 25-tap blurs, 7×7 mean,
 * classifier, α·A, and for 'softmax' exp and p(1 − p)), each rounding by ≤ 2⁻²⁴ ≈ 6e-8 relative:
 * ≤ 2e-6 of the largest |Σ α·A| in all. Agreement is asked to 2e-5 of it (10× margin). The
 * logits: ONNX Runtime and the engine sum the same few non-zero terms in different orders (≤ 1e-6
 * relative), and the engine preprocesses on the GPU in float32 while the oracle's input comes from
 * the float64 preprocessing reference (≤ 1e-5 absolute on values up to 255, ≤ 1e-6 relative after
 * conv1); asked: |Δlogit| ≤ 1e-5 · max(1, |logit|).
 */
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Network } from '../src/gradcam/network.ts';
import { resolveLayers } from '../src/gradcam/layers.ts';
import type { GradcamResult } from '../src/gradcam/types.ts';
import type { RgbaImage } from '../src/image/image.ts';
import { decodeOnnx } from '../src/onnx/decode.ts';
import type { OnnxModel } from '../src/onnx/model.ts';
import { KNOWN_ANSWER_MIN_SIDE } from '../weights/generate/googlenet-known-answer.ts';
import { generateModelBytes } from '../weights/generate/index.ts';
import { Rng } from '../weights/generate/random.ts';
import { allowedAt, colourPath1d, maximumInside1d, squareResponse1d } from './helpers/colour-path.ts';
import { testGpu } from './helpers/gpu.ts';
import { OrtOracle } from './helpers/ort.ts';
import { gradcamOfValues } from './reference/gradcam.ts';
import { forwardValues } from './reference/graph.ts';
import { preprocessReference, ZOO_CAFFE } from './reference/preprocess.ts';
import { tensor } from './reference/tensor.ts';

const LAYER = 'inception_5b/output_1';
const LOGITS = 'loss3/classifier_1';
const COLOURS = ['red', 'green', 'blue'] as const;
/** "Within NEAR of the maximum" (relative): far above float32 rounding, far below the scan's 1e-3 margin. */
const NEAR = 1e-4;

interface Square {
  width: number;
  height: number;
  colour: 0 | 1 | 2;
  x: number;
  y: number;
  side: number;
  grey: number;
  rgb: [number, number, number];
  /** Kept half a cell (⌈size/14⌉ px) away from the border. */
  interior: boolean;
}

/** A grey picture (the first square's grey) with one square, or two of different colours. */
function picture(sqs: readonly Square[]): RgbaImage {
  const { width, height, grey } = sqs[0];
  const data = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const sq = sqs.find((q) => x >= q.x && x < q.x + q.side && y >= q.y && y < q.y + q.side);
      const [r, g, b] = sq ? sq.rgb : [grey, grey, grey];
      data.set([r, g, b, 255], (y * width + x) * 4);
    }
  }
  return { width, height, data };
}

/** Network pixels → picture pixels along an axis of `size` pixels. */
const minSide = (network: number, size: number) => Math.ceil((network * size) / 224);

/**
 * Seeded squares: sides from the guaranteed minimum to ~100 px anywhere in 224×224 and 300×200
 * pictures, two smaller ones kept half a cell from the border, colours in turn; each colour has one
 * strong channel (180–255) and two weak ones (0–80), on a grey of any level.
 */
function squares(): Square[] {
  const rng = new Rng(20240611);
  const int = (lo: number, hi: number) => lo + Math.floor(rng.uniform() * (hi - lo + 1));
  const out: Square[] = [];
  const add = (width: number, height: number, side: number, interior: boolean) => {
    const colour = (out.length % 3) as 0 | 1 | 2;
    const rgb = [int(0, 80), int(0, 80), int(0, 80)] as [number, number, number];
    rgb[colour] = int(180, 255);
    const mx = interior ? Math.ceil(width / 14) : 0, my = interior ? Math.ceil(height / 14) : 0;
    out.push({ width, height, colour, side, rgb, interior, grey: int(30, 225), x: int(mx, width - mx - side), y: int(my, height - my - side) });
  };
  for (let i = 0; i < 7; i++) add(224, 224, int(KNOWN_ANSWER_MIN_SIDE.anywhere, 100), false);
  for (let i = 0; i < 2; i++) add(224, 224, int(KNOWN_ANSWER_MIN_SIDE.interior, KNOWN_ANSWER_MIN_SIDE.anywhere - 1), true);
  for (let i = 0; i < 4; i++) add(300, 200, int(minSide(KNOWN_ANSWER_MIN_SIDE.anywhere, 300), 100), false);
  return out;
}

/** Picture pixels kept between the two squares of a picture: more than the resize's reach (≤ 1.34 px at 300 px), so no pixel mixes two colours. */
const GAP = 4;

/**
 * The squares two by two (consecutive squares: different colours, same picture size; the last alone
 * when a size has an odd count) on one picture each: the colour channels of this model are separate
 * all the way to the logits (the LRNs, the only layers that mix channels, are the identity here:
 * test below), so with the 'logit' reduction each square's map is its own colour's response alone,
 * and the third colour's map must still be exactly 0. The second square keeps its size and colour
 * and is moved (seeded) until it is GAP px clear of the first, within its own margins.
 */
function pairs(sqs: readonly Square[]): Square[][] {
  const rng = new Rng(20261207);
  const out: Square[][] = [];
  for (let i = 0; i < sqs.length; i++) {
    const [a, b] = [sqs[i], sqs[i + 1]];
    if (!b || b.width !== a.width || b.height !== a.height) {
      out.push([a]);
      continue;
    }
    const clear = (q: Square) => q.x >= a.x + a.side + GAP || a.x >= q.x + q.side + GAP || q.y >= a.y + a.side + GAP || a.y >= q.y + q.side + GAP;
    let moved = b;
    for (let t = 0; !clear(moved); t++) {
      if (t === 10_000) throw new Error(`no room for ${describeSquare(b)} next to ${describeSquare(a)}`);
      const mx = b.interior ? Math.ceil(b.width / 14) : 0, my = b.interior ? Math.ceil(b.height / 14) : 0;
      const at = (lo: number, hi: number) => lo + Math.floor(rng.uniform() * (hi - lo + 1));
      moved = { ...b, x: at(mx, b.width - mx - b.side), y: at(my, b.height - my - b.side) };
    }
    out.push([a, moved]);
    i++;
  }
  return out;
}

const describeSquare = (sq: Square) =>
  `${COLOURS[sq.colour]} rgb(${sq.rgb}) ${sq.side}px at (${sq.x}, ${sq.y})`;
const describePicture = (sqs: readonly Square[]) =>
  `${sqs.map(describeSquare).join(' and ')} on grey ${sqs[0].grey}, ${sqs[0].width}×${sqs[0].height}`;

/**
 * Checks one result against the known answer: the map of each square's colour peaks on that square,
 * the maps of colours without a square are exactly 0. Returns the squares' map peaks.
 */
function checkKnownAnswer(r: GradcamResult, sqs: readonly Square[], what: string): number[] {
  const { width, height } = sqs[0];
  expect(sqs.map((q) => q.colour), `${what}: top-1`).toContain(r.predictions[0].class);
  expect(r.maps.map((m) => m.class).sort()).toEqual([0, 1, 2]);
  const peaks: number[] = [];
  for (const m of r.maps) {
    expect(m.layer).toBe(LAYER);
    expect(m.shape).toEqual([7, 7]);
    const up = m.upsampled!;
    expect([up.width, up.height]).toEqual([width, height]);
    const sq = sqs.find((q) => q.colour === m.class);
    if (!sq) {
      // The other colours' channels are exactly 0, and so is every term of the map.
      expect(Math.abs(m.max), `${what}: class ${m.class} raw max`).toBe(0); // 0 or −0: exactly zero
      expect(up.data.every((v) => v === 0), `${what}: class ${m.class} upsampled map is all 0`).toBe(true);
      continue;
    }
    expect(m.max, `${what}: class ${m.class} map max`).toBeGreaterThan(0);
    let max = 0;
    for (const v of up.data) max = Math.max(max, v);
    const outside: string[] = [];
    for (let y = 0; y < up.height; y++) {
      for (let x = 0; x < up.width; x++) {
        const v = up.data[y * up.width + x];
        if (v >= max * (1 - NEAR) && !(allowedAt(x, up.width, sq.x, sq.side) && allowedAt(y, up.height, sq.y, sq.side))) outside.push(`(${x}, ${y})`);
      }
    }
    expect(outside.slice(0, 5), `${what}: class ${m.class}: pixels within ${NEAR} of the maximum ${max} outside its square`).toEqual([]);
    peaks.push(max);
  }
  expect(peaks).toHaveLength(sqs.length);
  return peaks;
}

async function samplePhoto(name: string): Promise<RgbaImage> {
  const path = fileURLToPath(new URL(`../weights/samples/${name}`, import.meta.url));
  const { data, info } = await sharp(path).toColourspace('srgb').ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

/** The CPU preprocessing reference, as the tensor both oracles take. */
function referenceInput(img: RgbaImage): Float32Array {
  return Float32Array.from(preprocessReference(img.data, img.width, img.height, 224, 224, ZOO_CAFFE));
}

describe('googlenet-known-answer', () => {
  let model: OnnxModel;
  let net: Network;
  let oracle: OrtOracle;

  beforeAll(async () => {
    model = decodeOnnx(generateModelBytes('googlenet-known-answer'));
    net = await Network.load(await testGpu(), model);
    oracle = await OrtOracle.create(model, [LOGITS]);
  });
  afterAll(() => net?.destroy());

  async function expectOrtLogits(img: RgbaImage, got: Float32Array, what: string) {
    const want = (await oracle.run(referenceInput(img), [1, 3, 224, 224], [LOGITS]))[LOGITS];
    for (let i = 0; i < want.length; i++) {
      expect(Math.abs(got[i] - want[i]), `${what}: logit ${i}: ${got[i]} vs ONNX Runtime ${want[i]}`).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(want[i])));
    }
  }

  test('has the zoo graph: the same nodes, attributes, weight names and shapes as googlenet-zoo-seeded', () => {
    const zoo = decodeOnnx(generateModelBytes('googlenet-zoo-seeded'));
    expect(model.opset).toBe(zoo.opset);
    expect(model.nodes.map((n) => [n.opType, n.name, n.inputs, n.outputs, n.attributes])).toEqual(zoo.nodes.map((n) => [n.opType, n.name, n.inputs, n.outputs, n.attributes]));
    expect([...model.initializers.values()].map((t) => [t.name, t.dims])).toEqual([...zoo.initializers.values()].map((t) => [t.name, t.dims]));
    expect(model.inputs).toEqual(zoo.inputs);
    expect(model.outputs).toEqual(zoo.outputs);
  });

  test('CPU, exhaustive along one axis: the stated square sizes are guaranteed, and the bounds are tight', () => {
    const path = colourPath1d(model);
    for (const size of [224, 300, 200]) {
      for (const strength of size === 224 ? [255] : [255, 100]) {
        const anywhere = minSide(KNOWN_ANSWER_MIN_SIDE.anywhere, size);
        const interior = minSide(KNOWN_ANSWER_MIN_SIDE.interior, size);
        const margin = Math.ceil(size / 14);
        const failures = { anywhere: new Set<number>(), interior: new Set<number>() };
        // Every side up to 130 px, then every 5th: large squares have wide margins.
        for (let s = interior - 4; s <= size; s += s < 130 ? 1 : 5) {
          for (let a = 0; a + s <= size; a++) {
            // A margin of 1e-3: float32 rounding (~1e-6) cannot move the maximum out of the square.
            if (maximumInside1d(squareResponse1d(path, size, a, s, strength), a, s, 1e-3)) continue;
            failures.anywhere.add(s);
            if (a >= margin && a + s <= size - margin) failures.interior.add(s);
          }
        }
        const what = `${size} px, opponency ${strength}`;
        const worst = (f: Set<number>, from: number) => [...f].filter((s) => s >= from);
        expect(worst(failures.anywhere, anywhere), `${what}: sides ≥ ${anywhere} failing somewhere`).toEqual([]);
        expect(worst(failures.interior, interior), `${what}: sides ≥ ${interior} failing away from the border`).toEqual([]);
        // Tight: some side at most 4 px below each bound fails (so the bound is not just a guess).
        expect([...failures.anywhere].some((s) => s >= anywhere - 4), `${what}: anywhere bound is tight`).toBe(true);
        expect([...failures.interior].some((s) => s >= interior - 4), `${what}: interior bound is tight`).toBe(true);
      }
    }
  });

  test('the LRNs are the identity on this model (ONNX Runtime, on a photo)', async () => {
    // The colour channels stay ≤ 0.015 through both LRNs, so 1 + (α/5)·Σx² rounds to 1 in float32.
    const pairs = [['pool1/3x3_s2_1', 'pool1/norm1_1'], ['conv2/3x3_2', 'conv2/norm2_1']];
    const lrn = await OrtOracle.create(model, pairs.flat());
    const out = await lrn.run(referenceInput(await samplePhoto('coffee.png')), [1, 3, 224, 224], pairs.flat());
    for (const [x, y] of pairs) {
      let err = 0, max = 0;
      for (let i = 0; i < out[x].length; i++) {
        err = Math.max(err, Math.abs(out[y][i] - out[x][i]));
        max = Math.max(max, Math.abs(out[x][i]));
      }
      expect(max, `${x} carries the colours`).toBeGreaterThan(1e-3);
      expect(max, `${x} stays small`).toBeLessThanOrEqual(0.015);
      console.log(`${y}: max |Δ| ${err.toExponential(2)} from its input (max ${max.toExponential(3)})`);
      expect(err, `${y} vs its input ${x}`).toBeLessThanOrEqual(1e-6 * max);
    }
  });

  test('the default feature layer is inception_5b/output_1', () => {
    expect(resolveLayers(net.graph, ['auto'])).toEqual([LAYER]);
  });

  test('localises red, green and blue squares (K = 3 classes in one pass, logit reduction; two squares a picture)', async () => {
    const lines: string[] = [];
    const cases = pairs(squares());
    expect(cases.flat()).toHaveLength(13);
    for (const [i, sqs] of cases.entries()) {
      const img = picture(sqs);
      const r = await net.gradCAM(img, { classes: [0, 1, 2] });
      const what = `picture ${i}: ${describePicture(sqs)}`;
      const peaks = checkKnownAnswer(r, sqs, what);
      expect(r.logits.slice(3).every((v) => v === -10), `${what}: the other classes' logits`).toBe(true);
      if (i === 0 || i === cases.length - 1) await expectOrtLogits(img, r.logits, what);
      lines.push(`${what}: peaks ${peaks.map((p) => p.toPrecision(3))}, logits ${Array.from(r.logits.slice(0, 3), (v) => v.toFixed(3))}, ${r.timings.totalMs.toFixed(0)} ms`);
    }
    console.log(lines.join('\n'));
  });

  test('localises with the softmax reduction too (one square a picture); the other colours\' maps are still exactly 0', async () => {
    for (const sq of squares().filter((s) => s.width === 224).slice(0, 3)) {
      const r = await net.gradCAM(picture([sq]), { classes: [0, 1, 2], reduction: 'softmax' });
      expect(r.maps.every((m) => m.reduction === 'softmax')).toBe(true);
      expect(r.predictions[0].class).toBe(sq.colour);
      checkKnownAnswer(r, [sq], `softmax: ${describePicture([sq])}`);
    }
  });

  test('agrees with onnxruntime-node and the float64 reference Grad-CAM on a photo (both reductions)', async () => {
    const img = await samplePhoto('chelsea.png');
    const x = referenceInput(img);
    const values = forwardValues(model, { [model.inputs.find((i) => !model.initializers.has(i.name))!.name]: tensor([1, 3, 224, 224], Float64Array.from(x)) }); // one float64 forward, both reductions
    for (const reduction of ['logit', 'softmax'] as const) {
      const r = await net.gradCAM({ shape: [1, 3, 224, 224], data: x }, { classes: [0, 1, 2], reduction, upsample: false });
      const want = gradcamOfValues(model, values, { layer: LAYER, classes: [0, 1, 2], reduction, logitsTensor: LOGITS });
      for (let i = 0; i < 1000; i++) expect(Math.abs(r.logits[i] - want.logits[i]), `logit ${i}`).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(want.logits[i])));
      for (const ref of want.classes) {
        const got = r.maps.find((m) => m.class === ref.classIndex)!;
        // Scaled by the largest |Σ α·A| (with 'softmax' the maps of classes 1 and 2 are all 0 on this
        // photo: their own colour is outweighed by red, whose α is negative for them).
        const scale = Math.max(...Array.from(ref.preRelu.data, Math.abs));
        expect(scale, `${reduction}: class ${ref.classIndex} has a Grad-CAM sum on the photo`).toBeGreaterThan(0);
        let err = 0;
        for (let i = 0; i < 49; i++) err = Math.max(err, Math.abs(got.raw[i] - ref.map.data[i]));
        const refMax = Math.max(...ref.map.data);
        console.log(`chelsea ${reduction} class ${ref.classIndex}: max |Δmap| ${err.toExponential(2)}, max |Σα·A| ${scale.toExponential(3)}, map max ${refMax.toExponential(3)}`);
        expect(err, `${reduction}: class ${ref.classIndex} map vs the float64 reference`).toBeLessThanOrEqual(2e-5 * scale);
      }
    }
    // The GPU preprocessing of the picture itself: checked in the next test (the same forward pass).
  });

  test('classifies and explains the sample photos without NaNs; their logits (GPU preprocessing) agree with ONNX Runtime', async () => {
    for (const name of ['chelsea.png', 'coffee.png']) {
      const img = await samplePhoto(name);
      const r = await net.gradCAM(img, { classes: 'top', overlay: true });
      expect(r.logits.every(Number.isFinite), name).toBe(true);
      expect(r.probabilities.every(Number.isFinite), name).toBe(true);
      expect([0, 1, 2]).toContain(r.predictions[0].class);
      // The GPU preprocessing of the picture against ONNX Runtime on the float64 reference preprocessing.
      await expectOrtLogits(img, r.logits, `${name} through the GPU preprocessing`);
      const m = r.maps[0];
      expect(m.raw.every(Number.isFinite) && m.upsampled!.data.every(Number.isFinite), name).toBe(true);
      expect(m.overlay!.data.length).toBe(img.width * img.height * 4);
      console.log(`${name}: top-1 ${r.predictions[0].class} (logits ${Array.from(r.logits.slice(0, 3), (v) => v.toFixed(3))}), map max ${m.max.toExponential(3)}`);
    }
  });
});

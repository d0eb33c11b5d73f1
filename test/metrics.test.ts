/**
 * The metric formulas (src/metrics/) against the float64 references of test/reference/metrics.ts,
 * which compute the same quantities another way, on seeded random data. No GPU.
 *
 * Tolerances: AUC, Average Drop and Increase are float64 in both (sums of ≤ 1000 terms of size ≤ 1:
 * ≤ 1e-13 apart). The perturbed inputs copy float32 values: exactly equal. The explanation input
 * b + L·(x − b) is one float32 rounding of a float64 result (the engine's Float32Array store): within
 * 2⁻²⁴ of |value| (+1e-12). The blur accumulates in float64 and rounds once to float32: the same
 * bound. Boxes and IoU are integer arithmetic: exactly equal.
 */
import { describe, expect, test } from 'vitest';
import { annotationXml, classResolver, parseAnnotation } from '../src/metrics/boxes.ts';
import { auc, baselineInput, BLUR_RADIUS, BLUR_SIGMA, changedAt, perturbedInput, pixelOrder } from '../src/metrics/deletion-insertion.ts';
import { averageDrop, explanationInput, increaseInConfidence, normalise } from '../src/metrics/drop-increase.ts';
import { evaluateImage, summarise, type ImageEvaluation } from '../src/metrics/evaluate.ts';
import { boxFromMap, boxToPicture, iou, localisedWithin } from '../src/metrics/localisation.ts';
import { CAFFE_BGR, IMAGENET_RGB, preprocessPixel } from '../src/image/recipes.ts';
import { Rng } from '../weights/generate/random.ts';
import {
  aucReference, averageDropReference, blurReference, boxReference, increaseReference, iouReference, perturbedReference, ranksReference,
} from './reference/metrics.ts';

const rng = new Rng(1313);
const uniform = (n: number, lo = 0, hi = 1) => Float32Array.from({ length: n }, () => lo + (hi - lo) * rng.uniform());
const F32 = 2 ** -24;

describe('drop and increase', () => {
  test('Average Drop and Increase in Confidence equal the float64 reference', () => {
    const full = Array.from(uniform(200, 0.01, 1));
    const explained = full.map((f, i) => (i % 7 === 0 ? f : Math.min(1, f * (0.3 + 1.2 * rng.uniform()))));
    const pairs = full.map((f, i) => ({ full: f, explained: explained[i] }));
    expect(Math.abs(averageDrop(pairs) - averageDropReference(full, explained))).toBeLessThanOrEqual(1e-13);
    expect(increaseInConfidence(pairs)).toBe(increaseReference(full, explained));
    // Hand values: drops of 50 % and 0 % (an increase), one tie (neither).
    expect(averageDrop([{ full: 0.8, explained: 0.4 }, { full: 0.5, explained: 0.9 }, { full: 0.3, explained: 0.3 }])).toBeCloseTo(50 / 3, 12);
    expect(increaseInConfidence([{ full: 0.8, explained: 0.4 }, { full: 0.5, explained: 0.9 }, { full: 0.3, explained: 0.3 }])).toBeCloseTo(100 / 3, 12);
  });

  test('the explanation input is the picture × the normalised map, in input space (b + L·(x − b))', () => {
    const hw = 13 * 11;
    const x = uniform(3 * hw, -120, 150);
    const raw = uniform(hw, 0, 5);
    const L = normalise(raw);
    let lo = Infinity, hi = -Infinity;
    for (const v of raw) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    for (let p = 0; p < hw; p++) expect(Math.abs(L[p] - (raw[p] - lo) / (hi - lo))).toBeLessThanOrEqual(F32);
    const black = preprocessPixel(CAFFE_BGR, [0, 0, 0]);
    expect(black).toEqual([-103.939, -116.779, -123.68]); // BGR order, minus the means
    const out = explanationInput(x, L, black);
    for (let i = 0; i < x.length; i++) {
      const c = Math.floor(i / hw);
      const want = black[c] + L[i % hw] * (x[i] - black[c]);
      expect(Math.abs(out[i] - want), `value ${i}`).toBeLessThanOrEqual(F32 * Math.abs(want) + 1e-12);
    }
    // A map of 1 everywhere leaves the picture; of 0, a black picture (the recipe of (0, 0, 0)).
    const ones = explanationInput(x, new Float32Array(hw).fill(1), black);
    const zeros = explanationInput(x, new Float32Array(hw), black);
    for (let i = 0; i < x.length; i += 17) {
      expect(ones[i]).toBeCloseTo(x[i], 3);
      expect(zeros[i]).toBe(Math.fround(black[Math.floor(i / hw)]));
    }
    const [r, g, b] = preprocessPixel(IMAGENET_RGB, [255, 0, 0]);
    expect([r, g, b].map((v) => +v.toFixed(6))).toEqual([+((1 - 0.485) / 0.229).toFixed(6), +(-0.456 / 0.224).toFixed(6), +(-0.406 / 0.225).toFixed(6)]);
  });
});

describe('deletion and insertion', () => {
  test('AUC by the trapezoid rule equals the float64 sum of trapezoids', () => {
    for (const n of [1, 2, 7, 224]) {
      const curve = Array.from(uniform(n + 1));
      expect(Math.abs(auc(curve) - aucReference(curve))).toBeLessThanOrEqual(1e-13);
    }
    expect(auc([1, 0])).toBe(0.5);
    expect(auc([1, 1, 1, 1])).toBe(1);
  });

  test('pixel order and the perturbed inputs of every step equal the reference (ties: lower index first)', () => {
    const h = 9, w = 7, hw = h * w;
    // Values from a small set: many ties.
    const map = Float32Array.from({ length: hw }, () => Math.floor(rng.uniform() * 5));
    const order = pixelOrder(map);
    const rank = ranksReference(map);
    for (let j = 0; j < hw; j++) expect(rank[order[j]]).toBe(j);
    const x = uniform(3 * hw, -100, 100);
    const base = uniform(3 * hw, -5, 5);
    const steps = 5;
    for (const kind of ['deletion', 'insertion'] as const) {
      for (let i = 0; i <= steps; i++) {
        const n = changedAt(i, steps, hw);
        expect(Array.from(perturbedInput(kind, x, base, order, n))).toEqual(Array.from(perturbedReference(kind, x, base, rank, n)));
      }
    }
    expect([0, 1, 2, 3, 4, 5].map((i) => changedAt(i, 5, hw))).toEqual([0, 13, 25, 38, 50, 63]);
  });

  test('the blur baseline equals a direct 2-D Gaussian with clamped edges; the zero baseline is 0', () => {
    const c = 2, h = 15, w = 12;
    const x = uniform(c * h * w, -120, 150);
    const got = baselineInput(x, c, h, w, 'blur');
    const want = blurReference(x, c, h, w, BLUR_SIGMA, BLUR_RADIUS);
    for (let i = 0; i < x.length; i++) expect(Math.abs(got[i] - want[i]), `value ${i}`).toBeLessThanOrEqual(F32 * Math.abs(want[i]) + 1e-12);
    expect(baselineInput(x, c, h, w, 'zero').every((v) => v === 0)).toBe(true);
  });
});

describe('localisation', () => {
  test('the box of the largest 8-connected component at 15 % of the max equals the union-find reference', () => {
    for (let trial = 0; trial < 40; trial++) {
      const w = 5 + Math.floor(rng.uniform() * 30), h = 5 + Math.floor(rng.uniform() * 30);
      // Sparse blobs: a few bumps on noise, so that there are several components.
      const map = new Float32Array(w * h);
      for (let b = 0; b < 3; b++) {
        const cx = rng.uniform() * w, cy = rng.uniform() * h, s = 1 + rng.uniform() * 4, a = rng.uniform();
        for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) map[y * w + x] += a * Math.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * s * s));
      }
      for (let i = 0; i < map.length; i++) map[i] += 0.05 * rng.uniform();
      for (const t of [0.15, 0.5, 0.9]) expect(boxFromMap(map, w, h, t), `trial ${trial}, threshold ${t}`).toEqual(boxReference(map, w, h, t));
    }
    // Diagonal neighbours connect; the larger component wins; an all-zero map has no box.
    const m = [
      1, 0, 0, 0, 0,
      0, 1, 0, 0, 1,
      0, 0, 0, 0, 1,
      0, 0, 0, 0, 1,
    ];
    expect(boxFromMap(m, 5, 4)).toEqual({ xmin: 4, ymin: 1, xmax: 4, ymax: 3 });
    expect(boxFromMap([1, 0, 0, 0, 1, 0, 0, 0, 0], 3, 3)).toEqual({ xmin: 0, ymin: 0, xmax: 1, ymax: 1 }); // (0, 0) and (1, 1): one component
    expect(boxFromMap(new Float32Array(9), 3, 3)).toBeNull();
  });

  test('IoU by interval arithmetic equals counting pixels; map boxes scale to picture pixels (1-based)', () => {
    for (let trial = 0; trial < 200; trial++) {
      const box = () => {
        const x0 = Math.floor(rng.uniform() * 30), y0 = Math.floor(rng.uniform() * 30);
        return { xmin: x0, ymin: y0, xmax: x0 + Math.floor(rng.uniform() * 20), ymax: y0 + Math.floor(rng.uniform() * 20) };
      };
      const a = box(), b = box();
      expect(Math.abs(iou(a, b) - iouReference(a, b))).toBeLessThanOrEqual(1e-15);
    }
    expect(boxToPicture({ xmin: 0, ymin: 0, xmax: 223, ymax: 223 }, 224, 224, 500, 375)).toEqual({ xmin: 1, ymin: 1, xmax: 500, ymax: 375 });
    expect(boxToPicture({ xmin: 40, ymin: 60, xmax: 119, ymax: 139 }, 224, 224, 224, 224)).toEqual({ xmin: 41, ymin: 61, xmax: 120, ymax: 140 });
    expect(boxToPicture({ xmin: 1, ymin: 1, xmax: 1, ymax: 1 }, 2, 2, 5, 5)).toEqual({ xmin: 3, ymin: 3, xmax: 5, ymax: 5 });
  });

  test('top-1 and top-5: a predicted class of the ground truth whose box overlaps by IoU ≥ 0.5', () => {
    const truth = [{ class: 7, box: { xmin: 10, ymin: 10, xmax: 29, ymax: 29 } }];
    const good = { xmin: 12, ymin: 12, xmax: 31, ymax: 31 }; // IoU 324/476 = 0.68
    const bad = { xmin: 20, ymin: 20, xmax: 39, ymax: 39 }; // IoU 100/700
    expect(localisedWithin(1, [7, 3], new Map([[7, good], [3, bad]]), truth)).toBe(true);
    expect(localisedWithin(1, [3, 7], new Map([[7, good], [3, good]]), truth)).toBe(false); // right box, wrong class first
    expect(localisedWithin(5, [3, 7], new Map([[7, good], [3, good]]), truth)).toBe(true);
    expect(localisedWithin(5, [3, 7], new Map([[7, bad], [3, good]]), truth)).toBe(false);
    expect(localisedWithin(5, [7], new Map([[7, null]]), truth)).toBe(false);
  });

  test('summarise: the error percentages and means over images', () => {
    const image = (del: number, top1: boolean, top5: boolean, full: number, explained: number): ImageEvaluation => ({
      width: 1, height: 1, predictions: [],
      methods: [{ method: 'gradcam', layer: 'inception_4e/output_1', class: 0, full, explained, deletionAuc: del, localisation: { boxes: [], top1, top5 } }],
    });
    const [s] = summarise([image(0.2, true, true, 0.5, 0.25), image(0.4, false, true, 0.5, 0.6), image(0.3, false, false, 0.4, 0.4), image(0.1, true, true, 1, 0.5)]);
    expect(s).toEqual({
      method: 'gradcam', layer: 'inception_4e/output_1', images: 4, averageDrop: (100 * (0.5 + 0 + 0 + 0.5)) / 4, increaseInConfidence: 25, deletionAuc: expect.closeTo(0.25, 15),
      localisation: { images: 4, top1Error: 50, top5Error: 25 },
    });
  });
});

describe('requests', () => {
  test('every method is accepted (the list is METHOD_SPECS\'); bad ROAD options are refused before any GPU work', async () => {
    const net = {} as Parameters<typeof evaluateImage>[0]; // never touched: the checks come first
    const picture = { width: 1, height: 1, data: new Uint8Array(4) };
    await expect(evaluateImage(net, picture, { methods: ['gradcam', 'nope' as never] })).rejects.toThrow(/^unknown method 'nope'$/);
    for (const roadPercentiles of [[], [0], [50, 100], ['50']] as never[]) {
      await expect(evaluateImage(net, picture, { road: true, roadPercentiles })).rejects.toThrow(/^roadPercentiles must be a non-empty list of numbers between 0 and 100/);
    }
    await expect(evaluateImage(net, picture, { road: true, roadNoise: -1 })).rejects.toThrow(/^roadNoise must be a number ≥ 0/);
    // A guided method passes the checks (the fake network is then reached, which shows the check let it through).
    await expect(evaluateImage(net, picture, { methods: ['guided-backprop'] })).rejects.toThrow(TypeError);
  });
});

describe('boxes', () => {
  test('PASCAL VOC / ILSVRC XML: names, boxes, size; entities, CDATA and comments', () => {
    const xml = `<?xml version="1.0"?>
<annotation>
  <folder>val</folder><filename>ILSVRC2012_val_00000001</filename>
  <!-- <object><name>commented out</name></object> -->
  <size><width>500</width><height>375</height><depth>3</depth></size>
  <object><name>n01751748</name><pose>Unspecified</pose><truncated>0</truncated><difficult>0</difficult>
    <bndbox><xmin>111</xmin><ymin>108</ymin><xmax>441</xmax><ymax>193</ymax></bndbox></object>
  <object><name><![CDATA[a <b> & c]]></name><bndbox><xmin>1.0</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object>
  <object><name>cat &amp; dog</name><bndbox><xmin>5</xmin><ymin>6</ymin><xmax>7</xmax><ymax>8</ymax></bndbox></object>
</annotation>`;
    expect(parseAnnotation(xml, 'a.xml')).toEqual({
      filename: 'ILSVRC2012_val_00000001', width: 500, height: 375,
      objects: [
        { name: 'n01751748', box: { xmin: 111, ymin: 108, xmax: 441, ymax: 193 } },
        { name: 'a <b> & c', box: { xmin: 1, ymin: 2, xmax: 3, ymax: 4 } },
        { name: 'cat & dog', box: { xmin: 5, ymin: 6, xmax: 7, ymax: 8 } },
      ],
    });
    const round = { filename: 'x & y.png', width: 10, height: 20, objects: [{ name: 'red', box: { xmin: 1, ymin: 2, xmax: 3, ymax: 4 } }] };
    expect(parseAnnotation(annotationXml(round), 'r.xml')).toEqual(round);
  });

  test('bad files: a clear error naming the file and the object', () => {
    expect(() => parseAnnotation('<html></html>', 'x.xml')).toThrow(/^x\.xml: not a PASCAL VOC \/ ILSVRC annotation \(no <annotation> element\)$/);
    expect(() => parseAnnotation('<annotation><object><bndbox/></object></annotation>', 'x.xml')).toThrow(/^x\.xml: object 1 has no <name>$/);
    expect(() => parseAnnotation('<annotation><object><name>dog</name><bndbox><xmin>9</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object></annotation>', 'x.xml'))
      .toThrow(/^x\.xml: object 1 \('dog'\) has no box of four numbers/);
    expect(() => parseAnnotation('<annotation><object><name>dog</name><bndbox><xmin>a</xmin></bndbox></object></annotation>', 'x.xml')).toThrow(/object 1 \('dog'\)/);
  });

  test('class names: WordNet ids by the synset list, else labels, else indices', () => {
    const resolve = classResolver(['tench', 'goldfish', 'great white shark'], 'n01440764 tench, Tinca tinca\nn01443537 goldfish, Carassius auratus\nn01484850 great white shark\n');
    expect(['n01443537', 'Goldfish', '2', 'n99999999', '3', 'dog'].map(resolve)).toEqual([1, 1, 2, undefined, undefined, undefined]);
    expect(classResolver(['red', 'green', 'blue'])('blue')).toBe(2);
  });
});

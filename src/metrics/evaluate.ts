/**
 * Faithfulness and localisation of CAM maps, per image and over a set (the formulas are in
 * drop-increase.ts, deletion-insertion.ts and localisation.ts). For one image:
 *
 * 1. the forward pass on the picture: its top-5 classes, probabilities, and the model's input x
 *    (preprocessed on the GPU, read back);
 * 2. one Grad-CAM call on x (every method, the layer, the top-1 class, or the top-5 for
 *    localisation): maps upsampled on the GPU to the input's resolution (224 × 224);
 * 3. per method, the perturbed inputs (the explanation map's, each step of deletion and of
 *    insertion), made on the CPU a batch at a time and classified on the GPU in batches;
 * 4. localisation: boxes from the top-5 classes' maps, scaled to the picture's pixels, against the
 *    ground truth;
 * 5. ROAD (road.ts, opt-in): per percentile, the pixels the map ranks most (MoRF) or least (LeRF)
 *    relevant removed and imputed on the CPU, classified in the same batches.
 *
 * Every method is scored (the list is METHOD_SPECS'): a map with several planes (the guided methods,
 * input attributions of [3, H, W]) is scored by the plane its overlay shows (`upsampled`: Σ_c |raw_c|
 * per pixel, or the method's own display plane).
 * The class explained and scored is the predicted (top-1) class, as in both papers.
 */
import { GradcamError } from '../errors.ts';
import { type Method, planMethods } from '../gradcam/methods.ts';
import { checkSmoothing } from '../gradcam/smoothing.ts';
import type { Network } from '../gradcam/network.ts';
import { type GradcamOptions, isReduction, type MethodOptions, type ModelInput, type Prediction, type Reduction, REDUCTIONS, type TensorInput } from '../gradcam/types.ts';
import { chwOf, inLayout, preprocessPixel, sourceRect, toPlanes, type Layout } from '../image/recipes.ts';
import type { Box } from './boxes.ts';
import { auc, type Baseline, baselineInput, BASELINES, changedAt, DEFAULT_STEPS, isBaseline, perturbedInput, pixelOrder } from './deletion-insertion.ts';
import { averageDrop, explanationInput, increaseInConfidence, normalise } from './drop-increase.ts';
import { boxFromMap, boxToPicture, localisedWithin, type LocalisationTruth } from './localisation.ts';
import { imputeRemoved, ROAD_NOISE, ROAD_PERCENTILES, type RoadOrder, roadRemoved } from './road.ts';

export interface EvaluateOptions {
  /** CAM methods (default ['gradcam']). */
  methods?: Method[];
  /**
   * The feature layer, or several ('auto' by default; 'all': every block output): every method is
   * scored at every layer, each a MethodEvaluation of its own.
   */
  featureLayer?: string | string[];
  /** The Grad-CAM score (default 'logit'). */
  reduction?: Reduction;
  /**
   * Deletion and insertion steps: an integer from 1 to the model input's pixel count H·W (each step
   * changes at least one pixel); default 224, or H·W when that is fewer.
   */
  steps?: number;
  deletionBaseline?: Baseline;
  insertionBaseline?: Baseline;
  /** Which metrics (default all; localisation needs `truth`). */
  dropIncrease?: boolean;
  deletion?: boolean;
  insertion?: boolean;
  /** Inputs per GPU batch of the perturbed forward passes (default 8). */
  batchSize?: number;
  /**
   * ROAD (road.ts; default false: it adds 2 forwards and 2 sparse solves per percentile, method and
   * layer): MoRF and LeRF with noisy linear imputation at `roadPercentiles` (default 10, 20, …, 90),
   * noise σ = `roadNoise` (default 0.01, in the model's input units; 0: none).
   */
  road?: boolean;
  roadPercentiles?: number[];
  roadNoise?: number;
  /** Passed to gradCAM with the methods: per-method parameters, eigen-smooth and aug-smooth (smoothing.ts). */
  methodOptions?: MethodOptions;
  eigenSmooth?: boolean;
  augSmooth?: boolean;
}

/** ROAD of one map: the class's probability after imputation at each percentile, most and least relevant first removed. */
export interface RoadEvaluation {
  percentiles: number[];
  morf: number[];
  lerf: number[];
  /** The percentiles (by order) at which no pixel was kept, so the picture became 0 plus the noise (a map constant there). */
  nothingKept?: { morf: number[]; lerf: number[] };
}

export interface MethodEvaluation {
  method: Method;
  /** The feature layer of the map (a tensor name). */
  layer: string;
  /** The class explained: the predicted one. */
  class: number;
  /** Y_c: its probability on the image; O_c: on the explanation map. */
  full: number;
  explained?: number;
  /** The probability at steps 0…N, and the area under it. */
  deletion?: number[];
  deletionAuc?: number;
  insertion?: number[];
  insertionAuc?: number;
  /** Boxes of the top-5 classes' maps (picture pixels, 1-based inclusive; null: an all-zero map) and the verdicts. */
  localisation?: { boxes: { class: number; box: Box | null }[]; top1: boolean; top5: boolean };
  /** ROAD's probabilities, per percentile (road.ts). */
  road?: RoadEvaluation;
}

export interface ImageEvaluation {
  /** The picture's (or tensor's) size. */
  width: number;
  height: number;
  predictions: Prediction[];
  methods: MethodEvaluation[];
}

export interface MethodSummary {
  method: Method;
  layer: string;
  images: number;
  /** Percentages (Chattopadhay et al.). */
  averageDrop?: number;
  increaseInConfidence?: number;
  /** Means over the images. */
  deletionAuc?: number;
  insertionAuc?: number;
  /**
   * ROAD, means over images and percentiles of the probability's change p − Y_c, as pytorch-grad-cam's
   * ROADMostRelevantFirstAverage / ROADLeastRelevantFirstAverage with a probability target: MoRF
   * (lower is better), LeRF (nearer 0 is better), and ROADCombined = (LeRF − MoRF) / 2 (higher is better).
   */
  roadMorf?: number;
  roadLerf?: number;
  roadCombined?: number;
  /** Over the images with ground truth: error percentages (Selvaraju et al., ILSVRC). */
  localisation?: { images: number; top1Error: number; top5Error: number };
}

const isTensor = (x: ModelInput): x is TensorInput => (x as TensorInput).shape !== undefined;

/** A box on a w × h map, in picture pixels (1-based, inclusive), when the map covers the rectangle `seen` of the picture. */
function boxInPicture(b: Box, w: number, h: number, seen: { x: number; y: number; w: number; h: number }): Box {
  if (seen.x === 0 && seen.y === 0) return boxToPicture(b, w, h, seen.w, seen.h);
  const r = boxToPicture(b, w, h, seen.w, seen.h);
  const dx = Math.round(seen.x), dy = Math.round(seen.y);
  return { xmin: r.xmin + dx, xmax: r.xmax + dx, ymin: r.ymin + dy, ymax: r.ymax + dy };
}

/**
 * The most bytes of perturbed inputs made at once: a batch is held on the CPU until it is classified,
 * so a huge batchSize (with many steps) would otherwise fill the heap. 256 MiB: 445 inputs of 3 × 224 × 224.
 */
export const PERTURBED_BYTES = 256 * 2 ** 20;

/**
 * Probabilities of `cls` for inputs made on demand (C planes of H × W, put in the model's `layout`),
 * `batch` at a time (fewer when PERTURBED_BYTES says so; the results are the same).
 */
async function scores(net: Network, shape: number[], layout: Layout, make: (() => Float32Array)[], cls: number, batch: number): Promise<number[]> {
  const size = Math.max(1, Math.min(batch, Math.floor(PERTURBED_BYTES / (shape.reduce((a, b) => a * b, 1) * 4))));
  const out: number[] = [];
  for (let at = 0; at < make.length; at += size) {
    const chunk = make.slice(at, at + size).map((f) => ({ shape, data: inLayout(f(), shape, layout) }));
    for (const r of await net.classify(chunk, { top: 1, batchSize: size })) out.push(r.probabilities[cls]);
  }
  return out;
}

/**
 * Evaluates the maps of one image (see the module comment); `truth` adds localisation. The model's
 * input is read back in the same run as the first forward pass, so concurrent calls on `net` are safe.
 */
export async function evaluateImage(net: Network, input: ModelInput, options: EvaluateOptions = {}, truth?: readonly LocalisationTruth[]): Promise<ImageEvaluation> {
  const { methods, steps, batch, percentiles, noise } = checkOptions(net, options);
  const first = await net.classify(input, 5, true);
  const { shape, data: input0 } = first.input;
  // The metrics change C planes of H × W; an NHWC model's input is read as such and written back in its layout.
  const layout = net.engine.layout;
  const [c, h, w] = chwOf(shape, layout);
  const x = toPlanes(input0, shape, layout);
  const width = isTensor(input) ? w : input.width;
  const height = isTensor(input) ? h : input.height;
  const top = first.predictions[0].class;
  const request: GradcamOptions = {
    classes: truth ? 'top5' : [top], featureLayers: options.featureLayer ?? 'auto', reduction: options.reduction ?? 'logit', upsample: true, methods,
    ...(options.methodOptions ? { methodOptions: options.methodOptions } : {}), ...(options.eigenSmooth ? { eigenSmooth: true } : {}), ...(options.augSmooth ? { augSmooth: true } : {}),
  };
  const result = await net.gradCAM({ shape, data: input0 }, request);
  const layers = [...new Set(result.maps.map((m) => m.layer))];
  const mapOf = (method: Method, layer: string, cls: number) =>
    result.maps.find((m) => m.method === method && m.layer === layer && !m.counterfactual && m.class === cls)!.upsampled!.data;
  const black = preprocessPixel(net.engine.recipe, [0, 0, 0]);
  const full = first.probabilities[top];
  const delBase = options.deletion !== false ? baselineInput(x, c, h, w, options.deletionBaseline ?? 'zero') : undefined;
  const insBase = options.insertion !== false ? baselineInput(x, c, h, w, options.insertionBaseline ?? 'blur') : undefined;
  const evaluations: MethodEvaluation[] = [];
  // Each (layer, method) with maps, layer by layer (guided-backprop's layer is the model's input).
  const has = (l: string, m: Method) => result.maps.some((x) => x.layer === l && x.method === m);
  for (const [layer, method] of layers.flatMap((l) => methods.map((m) => [l, m] as const)).filter(([l, m]) => has(l, m))) {
    const map = mapOf(method, layer, top);
    const e: MethodEvaluation = { method, layer, class: top, full };
    const order = pixelOrder(map);
    const make: (() => Float32Array)[] = [];
    if (options.dropIncrease !== false) make.push(() => explanationInput(x, normalise(map), black));
    const stepsOf = (kind: 'deletion' | 'insertion', base: Float32Array) =>
      Array.from({ length: steps + 1 }, (_, i) => () => perturbedInput(kind, x, base, order, changedAt(i, steps, h * w)));
    if (delBase) make.push(...stepsOf('deletion', delBase));
    if (insBase) make.push(...stepsOf('insertion', insBase));
    // ROAD: per order and percentile, the imputed input (seeded by them: the same noise for every method and image).
    const roads: { order: RoadOrder; p: number; nothingKept: boolean }[] = [];
    if (options.road) {
      for (const [o, order] of (['morf', 'lerf'] as const).entries()) {
        for (const [k, p] of percentiles.entries()) {
          const entry = { order, p, nothingKept: false };
          roads.push(entry);
          make.push(() => {
            const r = imputeRemoved(x, c, h, w, roadRemoved(map, p, order), noise, 1000 * o + k);
            entry.nothingKept = r.nothingKept;
            return r.data;
          });
        }
      }
    }
    const p = await scores(net, shape, layout, make, top, batch);
    let at = 0;
    if (options.dropIncrease !== false) e.explained = p[at++];
    if (delBase) {
      e.deletion = p.slice(at, at += steps + 1);
      e.deletionAuc = auc(e.deletion);
    }
    if (insBase) {
      e.insertion = p.slice(at, at += steps + 1);
      e.insertionAuc = auc(e.insertion);
    }
    if (roads.length) {
      const n = percentiles.length;
      e.road = { percentiles: [...percentiles], morf: p.slice(at, at + n), lerf: p.slice(at + n, at + 2 * n) };
      at += 2 * n;
      const empty = (order: RoadOrder) => roads.filter((r) => r.order === order && r.nothingKept).map((r) => r.p);
      if (roads.some((r) => r.nothingKept)) e.road.nothingKept = { morf: empty('morf'), lerf: empty('lerf') };
    }
    if (truth) {
      // The maps cover the part of the picture the model saw: all of it, or the recipe's centre crop.
      const [, inH, inW] = chwOf(net.engine.inputShape, net.engine.layout);
      const seen = isTensor(input) ? { x: 0, y: 0, w: width, h: height } : sourceRect(net.engine.recipe, width, height, inW, inH);
      const predicted = first.predictions.map((q) => q.class);
      const boxes = new Map(predicted.map((cls) => {
        const b = boxFromMap(mapOf(method, layer, cls), w, h);
        return [cls, b && boxInPicture(b, w, h, seen)] as const;
      }));
      e.localisation = {
        boxes: predicted.map((cls) => ({ class: cls, box: boxes.get(cls)! })),
        top1: localisedWithin(1, predicted, boxes, truth),
        top5: localisedWithin(5, predicted, boxes, truth),
      };
    }
    evaluations.push(e);
  }
  return { width, height, predictions: first.predictions, methods: evaluations };
}

const integer = (v: unknown, min: number): v is number => typeof v === 'number' && Number.isInteger(v) && v >= min;

/** The options checked before any GPU work: a misuse is a GradcamError saying what was expected. */
function checkOptions(net: Network, options: EvaluateOptions): { methods: Method[]; steps: number; batch: number; percentiles: number[]; noise: number } {
  const methods = planMethods(options.methods);
  checkSmoothing(methods, options);
  const percentiles = options.roadPercentiles ?? [...ROAD_PERCENTILES];
  if (!Array.isArray(percentiles) || percentiles.length === 0 || !percentiles.every((p) => typeof p === 'number' && p > 0 && p < 100)) {
    throw new GradcamError(`roadPercentiles must be a non-empty list of numbers between 0 and 100 (exclusive), got ${Array.isArray(percentiles) ? `[${percentiles.map(shown).join(', ')}]` : shown(percentiles)}`,
      'At percentile p, MoRF removes the pixels at or above the map\'s p-th percentile and LeRF those at or below its (100 − p)-th.');
  }
  const noise = options.roadNoise ?? ROAD_NOISE;
  if (!(typeof noise === 'number' && Number.isFinite(noise) && noise >= 0)) throw new GradcamError(`roadNoise must be a number ≥ 0 (the imputation noise's standard deviation, in the model's input units), got ${shown(noise)}`);
  if (options.reduction !== undefined && !isReduction(options.reduction)) {
    throw new GradcamError(`reduction must be ${REDUCTIONS.map((x) => `'${x}'`).join(' or ')}, got ${shown(options.reduction)}`);
  }
  for (const key of ['deletionBaseline', 'insertionBaseline'] as const) {
    const b = options[key];
    if (b !== undefined && !isBaseline(b)) throw new GradcamError(`${key} must be ${BASELINES.map((x) => `'${x}'`).join(' or ')}, got ${shown(b)}`);
  }
  const batch = options.batchSize ?? 8;
  if (!integer(batch, 1)) throw new GradcamError(`batchSize must be an integer ≥ 1, got ${shown(batch)}`, 'It is how many perturbed inputs one GPU batch classifies.');
  const [, h, w] = chwOf(net.graph.input.shape, net.engine.layout);
  const pixels = h * w;
  const steps = options.steps ?? Math.min(DEFAULT_STEPS, pixels);
  if (!integer(steps, 1) || steps > pixels) {
    throw new GradcamError(`steps must be an integer from 1 to ${pixels} (the model's input is ${h}×${w} = ${pixels} pixels; each step changes at least one), got ${shown(steps)}`);
  }
  return { methods, steps, batch, percentiles, noise };
}

const shown = (v: unknown) => (typeof v === 'string' ? `'${v}'` : String(v));

const mean = (v: number[]) => (v.length ? v.reduce((a, b) => a + b, 0) / v.length : NaN);

const evaluated = (m: MethodEvaluation) => `${m.method} at ${m.layer}`;

/**
 * The metrics over a set of images, per method and layer (in the order of the first image's). Every
 * image must have evaluations of the same methods and layers.
 */
export function summarise(images: readonly ImageEvaluation[]): MethodSummary[] {
  const keys = images[0]?.methods.map(evaluated) ?? [];
  const sets = images.map((im) => new Set(im.methods.map(evaluated)));
  if (images.length && !keys.some((k) => sets.every((s) => s.has(k)))) {
    throw new GradcamError(`the evaluations have no method and layer in common (${images.map((im, i) => `image ${i + 1}: ${im.methods.map(evaluated).join(', ') || 'none'}`).join('; ')})`);
  }
  for (const k of keys) {
    const i = sets.findIndex((s) => !s.has(k));
    if (i >= 0) throw new GradcamError(`image ${i + 1} has no evaluation of ${k} (image 1 has): summarise evaluations of the same methods and layers`);
  }
  return images[0]?.methods.map(({ method, layer }) => {
    const ms = images.map((im) => im.methods.find((m) => m.method === method && m.layer === layer)!);
    const s: MethodSummary = { method, layer, images: ms.length };
    const pairs = ms.filter((m) => m.explained !== undefined).map((m) => ({ full: m.full, explained: m.explained! }));
    if (pairs.length) {
      s.averageDrop = averageDrop(pairs);
      s.increaseInConfidence = increaseInConfidence(pairs);
    }
    const del = ms.filter((m) => m.deletionAuc !== undefined).map((m) => m.deletionAuc!);
    if (del.length) s.deletionAuc = mean(del);
    const ins = ms.filter((m) => m.insertionAuc !== undefined).map((m) => m.insertionAuc!);
    if (ins.length) s.insertionAuc = mean(ins);
    const road = ms.filter((m) => m.road);
    if (road.length) {
      const change = (order: RoadOrder) => mean(road.map((m) => mean(m.road![order].map((q) => q - m.full))));
      s.roadMorf = change('morf');
      s.roadLerf = change('lerf');
      s.roadCombined = (s.roadLerf - s.roadMorf) / 2;
    }
    const loc = ms.filter((m) => m.localisation).map((m) => m.localisation!);
    if (loc.length) {
      s.localisation = {
        images: loc.length,
        top1Error: (100 * loc.filter((l) => !l.top1).length) / loc.length,
        top5Error: (100 * loc.filter((l) => !l.top5).length) / loc.length,
      };
    }
    return s;
  }) ?? [];
}

/** The public Grad-CAM types. */
import type { RgbaImage } from '../image/image.ts';
import type { MapInspection } from './inspect.ts';
import type { Method } from './methods.ts';

export type { Method } from './methods.ts';

/** What the Grad-CAM score is: the class's logit (pre-softmax) or its probability (softmax). */
export const REDUCTIONS = ['logit', 'softmax'] as const;
export type Reduction = (typeof REDUCTIONS)[number];

export function isReduction(s: unknown): s is Reduction {
  return REDUCTIONS.includes(s as Reduction);
}

/** A float32 NCHW tensor used as the model input as is (no preprocessing). */
export interface TensorInput {
  shape: number[];
  data: Float32Array;
}

export type ModelInput = RgbaImage | TensorInput;

/**
 * Which classes to explain: a class index, a list of indices, 'top' (the best class), or 'topK'
 * (e.g. 'top5'). K classes cost one backward pass.
 */
export type ClassSpec = number | number[] | 'top' | `top${number}`;

export interface GradcamOptions {
  /** Default 'top'. */
  classes?: ClassSpec;
  /**
   * Feature layers: 'auto' (default: the last tensor with spatial extent before global pooling),
   * 'all' (every block output), exact tensor names, or block names ('inception_4e'). Several layers
   * cost one backward pass, down to the deepest.
   */
  featureLayers?: string | string[];
  /** 'logit' (default: the pre-softmax score, as in the Grad-CAM paper) or 'softmax' (the probability, as MATLAB). */
  reduction?: Reduction;
  /** The score tensor to differentiate; default: the logits, or the probabilities for reduction 'softmax'. */
  reductionLayer?: string;
  /** Return each map upsampled to the image size (default true). */
  upsample?: boolean;
  /** Return each map as a jet overlay on the picture (default false); `alpha` is the map's weight (0.5). */
  overlay?: boolean | { alpha?: number };
  /**
   * The CAM methods (default ['gradcam']; METHODS lists them): every one from the same forward and
   * backward pass, one map per (layer, method, class).
   */
  methods?: Method[];
  /** G := −G for the gradient methods: what speaks against the class (default false). */
  counterfactual?: boolean;
  /**
   * Adds `inspection` to each map (default false): channel weights, each channel's contribution, the
   * top channels with their activation and gradient maps, the signed map, the branches of a Concat
   * layer, the CAM identity, and a diagnosis. Reads the layers' activations and gradients back.
   */
  inspect?: boolean;
  /**
   * The weighted and element-wise methods' maps as the first principal component of their channel
   * terms (w_k A_k, or term(G_k, A_k)) instead of their sum, as pytorch-grad-cam's eigen_smooth
   * (default false; src/gradcam/smoothing.ts says where it applies).
   */
  eigenSmooth?: boolean;
  /**
   * Test-time augmentation, as pytorch-grad-cam's aug_smooth (default false): the maps of the input
   * flipped horizontally or not × multiplied by 0.9, 1, 1.1 (six images in one batch), each flipped
   * back and min-max normalised, averaged (values in [0, 1]); the classes are the unaugmented
   * input's (src/gradcam/smoothing.ts).
   */
  augSmooth?: boolean;
  /** Per-method parameters (MethodOptions): only the methods asked for read theirs. */
  methodOptions?: MethodOptions;
  /**
   * Cancels a run of the multi-pass methods (scorecam, ablationcam, …): checked between batches of
   * passes; the call then rejects with an AbortError (a GradcamError) and the network stays usable.
   */
  signal?: AbortSignal;
  /** Called after each batch of passes of a multi-pass method: passes done of the call's total. */
  onProgress?: (p: PassProgress) => void;
}

/** A multi-pass method's progress (GradcamOptions.onProgress): `done` of `total` passes, the method running now. */
export interface PassProgress {
  done: number;
  total: number;
  method: string;
}

/**
 * Per-method parameters (GradcamOptions.methodOptions), one object per method; each field is checked
 * by the one argument check (src/gradcam/arguments.ts, METHOD_OPTIONS).
 */
export interface MethodOptions {
  scorecam?: {
    /** Masked inputs run together in one batch of forwards (default: from the device's limits, at most 16). */
    batchSize?: number;
  };
  ablationcam?: {
    /** Ablated copies run together in one batch of forwards from the layer (default: from the device's limits, at most 16). */
    batchSize?: number;
    /** Skip channels whose activations are all zero: their weight is exactly 0 (default false). */
    skipZero?: boolean;
  };
  smoothgrad?: SmoothgradOptions;
  'integrated-gradients'?: IntegratedGradientsOptions;
  occlusion?: OcclusionOptions;
}

/** SmoothGrad (Smilkov et al. 2017): the mean gradient over noisy copies of the input. */
export interface SmoothgradOptions {
  /** Noisy copies n (default 50, the paper's). */
  samples?: number;
  /** The noise's standard deviation as a fraction of the input's range, max − min over the preprocessed input (default 0.15; 0: the plain gradient). */
  sigma?: number;
  /** The noise's seed: the same seed, the same noise (default 0). */
  seed?: number;
  /** Copies run together in one batch of forward + backward passes (default: from the device's limits, at most 16). */
  batchSize?: number;
}

/** Integrated gradients (Sundararajan et al. 2017), by the midpoint rule. */
export interface IntegratedGradientsOptions {
  /** Steps m along the straight path from the baseline to the input (default 50, Captum's). */
  steps?: number;
  /** The baseline x': 'zeros' (0 in the preprocessed input, Captum's default; the default) or 'black' (the black picture, preprocessed). */
  baseline?: 'zeros' | 'black';
  /** Steps run together in one batch of forward + backward passes (default: from the device's limits, at most 16). */
  batchSize?: number;
}

/** Occlusion (Zeiler & Fergus 2014; MATLAB's occlusionSensitivity, Captum's Occlusion): square windows set to `fill`. */
export interface OcclusionOptions {
  /** The window's side in input pixels (default ⌈min(H, W) / 7⌉: 32 at 224). */
  patch?: number;
  /** The step between windows (default half the patch). */
  stride?: number;
  /** The value inside the window, in the preprocessed input (default 0: the recipe's mean colour). */
  fill?: number;
  /** Occluded copies run together in one batch of forwards (default: from the device's limits, at most 16). */
  batchSize?: number;
}

export interface Prediction {
  class: number;
  label: string;
  /** The logit (pre-softmax score). */
  score: number;
  probability: number;
}

export interface GradcamMap {
  /** The feature tensor's name. */
  layer: string;
  /** The CAM method that made this map. */
  method: Method;
  /** Whether the gradients were negated (the counterfactual explanation; never for eigencam). */
  counterfactual: boolean;
  class: number;
  label: string;
  reduction: Reduction;
  /** The class's logit and probability. */
  score: number;
  probability: number;
  /** [h, w] of the feature layer (the guided methods: of the input). */
  shape: [number, number];
  /**
   * The per-channel maps at the input only (guided-backprop, guided-gradcam, input-x-gradient,
   * smoothgrad, integrated-gradients): the input's channels C; `raw` is then C × h × w (the input's
   * [C, H, W]), signed, and `upsampled` / `overlay` show Σ_c |raw_c| per position. saliency and
   * occlusion are [H, W] at the input (no `channels`).
   */
  channels?: number;
  /** The method's map at the feature resolution (for gradcam ReLU(Σ_k α_k A_k)), row-major, unscaled. */
  raw: Float32Array;
  /** Min and max of `raw`. */
  min: number;
  max: number;
  /** The raw map upsampled (bilinear) to the picture's size, unscaled. */
  upsampled?: { width: number; height: number; data: Float32Array; min: number; max: number };
  /** Min-max normalised, jet-coloured and blended over the picture. */
  overlay?: RgbaImage;
  /** The eigen maps (eigencam, eigengradcam, eigen-smoothed; with aug-smooth the unaugmented pass's): how the power iteration ended (`converged` false: it stopped at the cap). */
  eigen?: { iterations: number; change: number; converged: boolean };
  /** The smoothing that made this map (GradcamOptions.eigenSmooth, augSmooth), when any. */
  smoothing?: { eigen?: true; aug?: true };
  /** With `inspect: true`: what the map is made of (src/gradcam/inspect.ts). */
  inspection?: MapInspection;
  /** The many-pass input attributions (smoothgrad, integrated-gradients, occlusion): the passes this map took (forwards, or forward + backward). */
  passes?: number;
  /**
   * integrated-gradients: completeness (Sundararajan et al. 2017): Σ attributions should equal
   * y(x) − y(x'); `gap` = Σ − (y(x) − y(x')) (with the counterfactual, of −y) shrinks as the steps grow.
   */
  completeness?: { sum: number; score: number; baselineScore: number; gap: number };
}

export interface GradcamTimings {
  forwardMs: number;
  backwardMs: number;
  camMs: number;
  /** The multi-pass methods' passes (all their batches), CPU clock; absent when none ran. */
  passesMs?: number;
  /**
   * Each method's own time: its dispatches at every layer (the guided methods: with their guided
   * backward pass to the input), replayed alone; the multi-pass methods' (scorecam, ablationcam,
   * smoothgrad, integrated-gradients, occlusion) plus their passes as they ran (methodPassesMs).
   * Set by Network.profileMethods.
   */
  methodMs?: Partial<Record<Method, number>>;
  /**
   * The multi-pass methods' part of methodMs that is their passes: the wall time (CPU clock) of all
   * their batches in the run, not a replay (passes are not replayed: a method is timed by them).
   * Set by Network.profileMethods when such a method ran.
   */
  methodPassesMs?: Partial<Record<Method, number>>;
  totalMs: number;
  /** 'gpu' (timestamp queries) or 'cpu' (stages submitted one by one). */
  source: 'gpu' | 'cpu';
}

export interface GradcamResult {
  /** The size the maps were upsampled to: the picture's, unless `downscaled` says otherwise. */
  width: number;
  height: number;
  /**
   * Set when the upsampled maps and overlays are smaller than the picture, because at its size they
   * would not fit the device's buffer limits: the picture's size, and which limit. The aspect ratio
   * is kept; the overlay samples the picture under each display pixel's centre.
   */
  downscaled?: { pictureWidth: number; pictureHeight: number; reason: string };
  predictions: Prediction[];
  logits: Float32Array;
  probabilities: Float32Array;
  maps: GradcamMap[];
  timings: GradcamTimings;
  /** Set for the results of a call with an array of inputs: the batch this one ran in. */
  batch?: BatchPlace;
}

/** The forward pass's answer for one image (Network.classify). */
export interface Classification {
  /** The top classes, best first. */
  predictions: Prediction[];
  /** Pre-softmax class scores. */
  logits: Float32Array;
  probabilities: Float32Array;
}

/** Options of a call with an array of inputs (gradCAM(net, images[]), net.classify(images[])). */
export interface BatchOptions<R> {
  /**
   * Images run together on the GPU (one forward and one backward pass each batch): an integer ≥ 1. Default: as
   * many as the device's buffer limits allow for the request, at most 16 (Network.defaultBatchSize).
   * Results do not depend on it.
   */
  batchSize?: number;
  /** Called with each result as soon as its batch is done, in input order (progress, streaming output). */
  onResult?: (result: R, index: number) => void;
}

export type GradcamBatchOptions = GradcamOptions & BatchOptions<GradcamResult>;

export interface ClassifyOptions extends BatchOptions<Classification> {
  /** Predictions per image (default 5): an integer ≥ 1; more than the model's classes gives all of them, best first. */
  top?: number;
}

/** Where a result of a batched call was computed (GradcamResult.batch). */
export interface BatchPlace {
  /** The inputs run together in this batch; the result's timings are theirs, together. */
  images: number;
  /** The batch size the engine was compiled for (images ≤ slots; the other slots were padding, which changes no result). */
  slots: number;
  /** This input's place in the batch. */
  index: number;
}

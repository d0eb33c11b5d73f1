/**
 * The CAM methods: one table from a method's name to how the GPU computes it from the layer's
 * activations A [C, H, W] and gradients G = ∂score/∂A (shaders/gradcam.wgsl). Every method of a
 * request comes from the same forward and backward pass. Definitions follow pytorch-grad-cam.
 *
 * A method is one of three kinds:
 *   - 'weighted': channel weights w_k (the `weights` entry, override WEIGHTS = `code`), then the
 *     weighted map ReLU(Σ_k w_k A_k) (the `map` entry);
 *   - 'elementwise': ReLU(Σ_k term(G_k, A_k)) per position (the `elementwise` entry, override
 *     TERM = `code`);
 *   - 'eigen': the first principal component of A (code 0) or of G ⊙ A (code 1, per class), by
 *     power iteration (the `eigen` entry, override EIGEN_OF);
 *   - 'guided': from a second, guided backward pass down to the input (every ReLU's backward also
 *     drops negative gradients: the GUIDED override of the mask-applying kernels), the `guided` entry
 *     (override GUIDED_CAM = `code`: times the Grad-CAM map upsampled to the input). Their maps are
 *     the input's shape [C, H, W], signed.
 * The multi-pass kinds run many more passes (src/gradcam/passes.ts runs them in batches, with
 * progress and an AbortSignal), then the weighted map ReLU(Σ_k w_k A_k) from their weights:
 *   - 'score': one forward of the masked input per channel (src/gradcam/multipass.ts);
 *   - 'ablation': one forward from the layer per channel, the channel zeroed (multipass.ts);
 *   - 'input-passes': input attributions from many forward + backward passes on perturbed copies of
 *     the input (smoothgrad's noise, integrated gradients' path), and 'occlusion': many forwards with a
 *     window occluded (src/gradcam/attributions.ts). Their maps are at the input's resolution.
 * 'input' (saliency, input-x-gradient) is a single-pass kind: a plain backward pass to the input, next
 * to the guided one (attributions.ts inputMaps).
 * `passes` says how many passes a method needs (the page and the CLI show it before starting).
 * Adding a method: a case in the WGSL function its kind selects, and one entry here.
 */
import { GradcamError } from '../errors.ts';
import { extraPasses } from './attribution-options.ts';
import { AUGMENTATIONS } from './augmentations.ts';
import type { MethodOptions } from './types.ts';

export type MethodKind = 'weighted' | 'elementwise' | 'eigen' | 'guided' | 'score' | 'ablation' | 'input' | 'input-passes' | 'occlusion';

/** What the number of passes of a method depends on: the layer's channels, the input's [C, H, W], the per-method options. */
export interface PassContext {
  channels: number;
  input: readonly [number, number, number];
  methodOptions?: MethodOptions;
  /** aug-smooth (smoothing.ts): every pass runs for each of the six augmented copies of the input. */
  augSmooth?: boolean;
}

/** The copies of the input each pass runs for: six under aug-smooth, else one. */
const copies = (at: PassContext) => (at.augSmooth ? AUGMENTATIONS.length : 1);

/** The one forward (and backward) pass every single-pass method shares (one batch of six images under aug-smooth). */
const ONE_PASS = (at: PassContext) => copies(at);

export interface MethodSpec {
  kind: MethodKind;
  /** The WEIGHTS (weighted) or TERM (elementwise) override value; unused for 'eigen'. */
  code: number;
  /** Whether it reads the gradients (the backward pass runs only when some method does). */
  gradients: boolean;
  /** The formula, for documentation and messages. */
  formula: string;
  /** The paper. */
  reference: string;
  /**
   * 'elementwise': the term of one channel at one position, in float64 on the CPU, for the inspector's
   * per-channel contributions (the same formula as the WGSL TERM case `code`).
   */
  term?: (g: number, a: number) => number;
  /**
   * How many passes (forwards, or forward + backward) the method runs for one image, its classes and
   * one layer, the shared first pass included: 1 for the single-pass methods; at most this many when
   * an option may skip some (ablationcam's skipZero); six times as many with augSmooth (each copy's).
   */
  passes: (at: PassContext) => number;
}

export const METHOD_SPECS = {
  gradcam: { kind: 'weighted', code: 0, gradients: true, formula: 'w_k = mean_hw G_k; ReLU(Σ_k w_k A_k)', reference: 'Selvaraju et al. 2017', passes: ONE_PASS },
  hirescam: { kind: 'elementwise', code: 0, gradients: true, formula: 'ReLU(Σ_k G_k ⊙ A_k)', reference: 'Draelos & Carin 2020', passes: ONE_PASS, term: (g, a) => g * a },
  'gradcam-elementwise': {
    kind: 'elementwise', code: 1, gradients: true, formula: 'ReLU(Σ_k ReLU(G_k ⊙ A_k))', reference: 'pytorch-grad-cam (GradCAMElementWise)', passes: ONE_PASS,
    term: (g, a) => Math.max(g * a, 0),
  },
  'gradcam++': {
    kind: 'weighted', code: 1, gradients: true,
    formula: 'a = G² / (2G² + S_k G³ + 1e-6), S_k = Σ_hw A_k (a = 0 where G = 0); w_k = Σ_hw ReLU(G_k) ⊙ a_k; ReLU(Σ_k w_k A_k)',
    reference: 'Chattopadhay et al. 2018', passes: ONE_PASS,
  },
  xgradcam: { kind: 'weighted', code: 2, gradients: true, formula: 'w_k = Σ_hw G_k A_k / (Σ_hw A_k + 1e-7); ReLU(Σ_k w_k A_k)', reference: 'Fu et al. 2020', passes: ONE_PASS },
  layercam: { kind: 'elementwise', code: 2, gradients: true, formula: 'ReLU(Σ_k ReLU(G_k) ⊙ A_k)', reference: 'Jiang et al. 2021', passes: ONE_PASS, term: (g, a) => Math.max(g, 0) * a },
  eigencam: {
    kind: 'eigen', code: 0, gradients: false,
    formula: 'A as [H·W, C] centred over positions, projected on its first principal component (power iteration); sign: largest |entry| positive; ReLU',
    reference: 'Muhammad & Yeasin 2020', passes: ONE_PASS,
  },
  eigengradcam: {
    kind: 'eigen', code: 1, gradients: true,
    formula: 'G ⊙ A as [H·W, C] centred over positions, projected on its first principal component (power iteration); sign: largest |entry| positive; ReLU',
    reference: 'pytorch-grad-cam (EigenGradCAM)', passes: ONE_PASS,
  },
  'guided-backprop': {
    kind: 'guided', code: 0, gradients: true,
    formula: '∂y/∂input where every ReLU passes g_in = g_out·[x > 0]·[g_out > 0]; [3, H, W], signed', reference: 'Springenberg et al. 2015', passes: ONE_PASS,
  },
  'guided-gradcam': {
    kind: 'guided', code: 1, gradients: true,
    formula: 'guided-backprop ⊙ the Grad-CAM map upsampled bilinearly (align_corners = false) to the input; [3, H, W], signed',
    reference: 'Selvaraju et al. 2017', passes: ONE_PASS,
  },
  scorecam: {
    kind: 'score', code: 0, gradients: false,
    formula: 'M_k = A_k upsampled bilinearly (align_corners = true) to the input, min-max normalised (eps 1e-8); S_k = score(x ⊙ M_k), one forward each; w = softmax_k(S_k); ReLU(Σ_k w_k A_k)',
    reference: 'Wang et al. 2020 (pytorch-grad-cam ScoreCAM)', passes: (at) => copies(at) * (1 + at.channels),
  },
  ablationcam: {
    kind: 'ablation', code: 0, gradients: false,
    formula: 'S_k = the score with channel k of A zeroed (a forward from the layer); w_k = (S − S_k) / S; ReLU(Σ_k w_k A_k)',
    reference: 'Desai & Ramaswamy 2020 (pytorch-grad-cam AblationCAM)', passes: (at) => copies(at) * (1 + at.channels),
  },
  saliency: {
    kind: 'input', code: 0, gradients: true,
    formula: 'max_c |∂y/∂x_c| per position, x the preprocessed input; [H, W]', reference: 'Simonyan et al. 2014', passes: ONE_PASS,
  },
  'input-x-gradient': {
    kind: 'input', code: 1, gradients: true,
    formula: 'x ⊙ ∂y/∂x, x the preprocessed input (as Captum\'s InputXGradient); [C, H, W], signed', reference: 'Shrikumar et al. 2016', passes: ONE_PASS,
  },
  smoothgrad: {
    kind: 'input-passes', code: 0, gradients: true,
    formula: '(1/n) Σ_j ∂y/∂x at x + σ·(max x − min x)·z_j, z_j standard normal noise (seeded, made on the GPU); [C, H, W], signed',
    reference: 'Smilkov et al. 2017', passes: (at) => 1 + extraPasses('smoothgrad', at.input, at.methodOptions),
  },
  'integrated-gradients': {
    kind: 'input-passes', code: 1, gradients: true,
    formula: '(x − x\') ⊙ (1/m) Σ_{j=0..m} w_j ∂y/∂x at x\' + (j/m)·(x − x\'), w_j = ½ at both ends, else 1 (the trapezoid rule: m passes, x the first pass\'s), baseline x\' zeros or black; completeness gap Σ − (y(x) − y(x\')); [C, H, W], signed',
    reference: 'Sundararajan et al. 2017', passes: (at) => 1 + extraPasses('integrated-gradients', at.input, at.methodOptions),
  },
  occlusion: {
    kind: 'occlusion', code: 0, gradients: false,
    formula: 'y(x) − y(x with a patch × patch window set to the fill value), per window at the stride; each position: the mean over the windows covering it; [H, W], signed',
    reference: 'Zeiler & Fergus 2014 (Captum Occlusion, MATLAB occlusionSensitivity)', passes: (at) => 1 + extraPasses('occlusion', at.input, at.methodOptions),
  },
} as const satisfies Record<string, MethodSpec>;

export type Method = keyof typeof METHOD_SPECS;

/** Every method, in table order. */
export const METHODS = Object.keys(METHOD_SPECS) as Method[];

export function isMethod(s: unknown): s is Method {
  return typeof s === 'string' && Object.hasOwn(METHOD_SPECS, s);
}

export function methodSpec(m: Method): MethodSpec {
  return METHOD_SPECS[m];
}

/** The kinds whose methods run many passes, in batches, through the runner (src/gradcam/passes.ts). */
export const MULTI_PASS_KINDS: readonly MethodKind[] = ['score', 'ablation', 'input-passes', 'occlusion'];

export function isMultiPass(m: Method): boolean {
  return MULTI_PASS_KINDS.includes(methodSpec(m).kind);
}

/** The kinds whose maps are at the input's resolution, not at a feature layer: the guided methods and the input attributions. */
export const INPUT_KINDS: readonly MethodKind[] = ['guided', 'input', 'input-passes', 'occlusion'];

/** Whether `m`'s map is at the input (INPUT_KINDS): it has no feature layer, channels or weights. */
export function atInput(m: Method): boolean {
  return INPUT_KINDS.includes(methodSpec(m).kind);
}

/**
 * Checks a request's methods: known names, at least one; duplicates are dropped (first-seen order).
 */
export function planMethods(methods: readonly string[] | undefined): Method[] {
  const list = methods ?? ['gradcam'];
  if (!Array.isArray(list) || list.length === 0) throw new GradcamError('no methods given', `Ask for one or more of: ${METHODS.join(', ')}.`);
  for (const m of list) {
    if (!isMethod(m)) throw new GradcamError(`unknown method '${String(m)}'`, `The methods: ${METHODS.join(', ')}.`);
  }
  return [...new Set(list as Method[])];
}

/**
 * Eigen-CAM's power iteration stops when no entry of the unit vector v changes by more than this
 * between two iterations. float32 rounds each entry of Xᵀ(Xv)/‖·‖ to a few ulps of 1 (2⁻²⁴ ≈ 6e-8),
 * so the iteration settles well below it; 1e-6 is about 16 ulps of 1.
 */
export const EIGEN_TOLERANCE = 1e-6;
/** The most iterations Eigen-CAM's power iteration runs; the result says when it stopped there. */
export const EIGEN_MAX_ITERATIONS = 2000;

/**
 * The smoothing options on the map methods, as pytorch-grad-cam's (base_cam.py):
 *
 * - eigen-smooth (`eigenSmooth`): the map is the first principal component of the channel terms the
 *   method would sum — w_k A_k for a weighted method, term(G_k, A_k) for an element-wise one — as
 *   [H·W, C] centred over positions, instead of their sum Σ_k (the eigen kernel, EIGEN_OF 2 and 3;
 *   the sign as Eigen-CAM's: the entry of largest |P| positive); then the ReLU.
 * - aug-smooth (`augSmooth`): test-time augmentation, ttach's HorizontalFlip × Multiply(0.9, 1, 1.1)
 *   on the model's input tensor x: six inputs m · F^f(x) (f ∈ {no flip, flip}, m ∈ AUG_FACTORS), one
 *   batch of six, the maps (after the ReLU) each flipped back, min-max normalised
 *   (M − min) / (max − min + 1e-7) (pytorch-grad-cam's scale_cam_image), and averaged: a map in [0, 1].
 *   The classes explained are the unaugmented input's (its top-K, or those given), in all six: as
 *   pytorch-grad-cam with explicit targets (without, it would take each copy's own best class).
 *
 * Where they apply (anything else is refused with the reason, never ignored):
 * - eigen-smooth: the weighted and element-wise methods (eigencam and eigengradcam are already a
 *   principal component; the guided methods and input attributions are gradients of the input, not
 *   a sum over channels; scorecam and ablationcam, whose maps are weighted sums too, are not wired
 *   to it yet: their kinds would only need enabling here and a test against their weights);
 * - aug-smooth: the maps at a feature layer from one pass (weighted, element-wise, eigen); not the
 *   methods whose maps are at the input (the guided ones, the input attributions), nor the
 *   multi-pass ones (six times their hundreds of passes);
 * - neither with `inspect` (the inspector explains a sum over channels of one pass).
 */
import { GradcamError } from '../errors.ts';
import { type Method, methodSpec } from './methods.ts';

/** The multiplications of aug-smooth, the unaugmented one first (its maps choose the classes). */
export const AUG_FACTORS = [1, 0.9, 1.1] as const;
/** The flips of aug-smooth: none first. */
export const AUG_FLIPS = [false, true] as const;
/** The six augmentations in batch order: flip-major, factor-minor; the first is the input as given. */
export const AUGMENTATIONS: readonly { flip: boolean; factor: number }[] = AUG_FLIPS.flatMap((flip) => AUG_FACTORS.map((factor) => ({ flip, factor })));
/** pytorch-grad-cam's scale_cam_image: (M − min) / (max − min + 1e-7). */
export const AUG_NORMALISE_EPS = 1e-7;

export function eigenSmoothApplies(m: Method): boolean {
  const kind = methodSpec(m).kind;
  return kind === 'weighted' || kind === 'elementwise';
}

export function augSmoothApplies(m: Method): boolean {
  const kind = methodSpec(m).kind;
  return kind === 'weighted' || kind === 'elementwise' || kind === 'eigen';
}

/** Refuses smoothing options that do not apply to every method asked for, saying which and why. */
export function checkSmoothing(methods: readonly Method[], o: { eigenSmooth?: boolean; augSmooth?: boolean; inspect?: boolean }): void {
  const applying = (f: (m: Method) => boolean) => methods.filter(f);
  if (o.eigenSmooth) {
    const not = methods.filter((m) => !eigenSmoothApplies(m));
    if (not.length) {
      throw new GradcamError(`eigenSmooth does not apply to ${not.join(', ')}: it replaces the sum over channels of a weighted or element-wise map by their first principal component`,
        `Leave eigenSmooth out for ${not.join(', ')} (eigencam and eigengradcam are already a principal component; the guided methods and input attributions are gradients of the input, not sums over channels; scorecam and ablationcam are not wired to it yet); it applies to ${applying(eigenSmoothApplies).join(', ') || 'the weighted and element-wise methods (gradcam, hirescam, …)'}.`);
    }
  }
  if (o.augSmooth) {
    const not = methods.filter((m) => !augSmoothApplies(m));
    if (not.length) {
      throw new GradcamError(`augSmooth does not apply to ${not.join(', ')}: it averages the maps at a feature layer of six augmented copies, each from one pass`,
        'Leave augSmooth out for the methods whose maps are at the input (the guided methods, the input attributions) and the multi-pass ones (six times their passes).');
    }
  }
  if (o.inspect && (o.eigenSmooth || o.augSmooth)) {
    throw new GradcamError(`inspect explains a map as a sum over channels of one pass; it cannot be combined with ${o.eigenSmooth ? 'eigenSmooth' : 'augSmooth'}`, 'Inspect the map without smoothing.');
  }
}

/**
 * The smoothing options on the map methods, as pytorch-grad-cam's (base_cam.py: BaseCAM's, so on
 * every CAM, ScoreCAM and AblationCAM included):
 *
 * - eigen-smooth (`eigenSmooth`): the map is the first principal component of the channel terms the
 *   method would sum — w_k A_k for a weighted method and for scorecam and ablationcam (their w_k from
 *   their passes), term(G_k, A_k) for an element-wise one — as [H·W, C] centred over positions,
 *   instead of their sum Σ_k (the eigen kernel, EIGEN_OF 2 and 3; the sign as Eigen-CAM's: the entry
 *   of largest |P| positive); then the ReLU.
 * - aug-smooth (`augSmooth`): test-time augmentation, ttach's HorizontalFlip × Multiply(0.9, 1, 1.1)
 *   on the model's input tensor x: six inputs m · F^f(x) (f ∈ {no flip, flip}, m ∈ AUG_FACTORS,
 *   augmentations.ts), one batch of six, the maps (after the ReLU) each flipped back, min-max
 *   normalised (M − min) / (max − min + 1e-7) (pytorch-grad-cam's scale_cam_image), and averaged: a
 *   map in [0, 1]. The classes explained are the unaugmented input's (its top-K, or those given), in
 *   all six: as pytorch-grad-cam with explicit targets (without, it would take each copy's own best
 *   class). scorecam and ablationcam run all their passes for each of the six copies (its own masks,
 *   or its own activations ablated): six times their passes (METHOD_SPECS' `passes` with augSmooth,
 *   the progress's total).
 *
 * Where they apply (anything else is refused with the reason, never ignored):
 * - eigen-smooth: the weighted and element-wise methods, scorecam and ablationcam (eigencam and
 *   eigengradcam are already a principal component; the guided methods and input attributions are
 *   gradients of the input, not a sum over channels);
 * - aug-smooth: the maps at a feature layer (weighted, element-wise, eigen, scorecam, ablationcam);
 *   not the methods whose maps are at the input (the guided ones, the input attributions:
 *   pytorch-grad-cam's aug_smooth is BaseCAM's, and these are not its CAMs);
 * - neither with `inspect` (the inspector explains a sum over channels of one pass).
 */
import { GradcamError } from '../errors.ts';
import { type Method, type MethodKind, methodSpec } from './methods.ts';

/** The kinds whose maps are a sum over channels at a feature layer: w_k A_k or term(G_k, A_k). */
const CHANNEL_SUMS: readonly MethodKind[] = ['weighted', 'elementwise', 'score', 'ablation'];

export function eigenSmoothApplies(m: Method): boolean {
  return CHANNEL_SUMS.includes(methodSpec(m).kind);
}

/** The maps at a feature layer (not atInput's): a CAM of one pass or of many. */
export function augSmoothApplies(m: Method): boolean {
  const kind = methodSpec(m).kind;
  return CHANNEL_SUMS.includes(kind) || kind === 'eigen';
}

/** Refuses smoothing options that do not apply to every method asked for, saying which and why. */
export function checkSmoothing(methods: readonly Method[], o: { eigenSmooth?: boolean; augSmooth?: boolean; inspect?: boolean }): void {
  const applying = (f: (m: Method) => boolean) => methods.filter(f);
  if (o.eigenSmooth) {
    const not = methods.filter((m) => !eigenSmoothApplies(m));
    if (not.length) {
      throw new GradcamError(`eigenSmooth does not apply to ${not.join(', ')}: it replaces a map's sum over channels (w_k A_k, or term(G_k, A_k)) by their first principal component`,
        `Leave eigenSmooth out for ${not.join(', ')} (eigencam and eigengradcam are already a principal component; the guided methods and input attributions are gradients of the input, not sums over channels); it applies to ${applying(eigenSmoothApplies).join(', ') || 'the weighted and element-wise methods, scorecam and ablationcam'}.`);
    }
  }
  if (o.augSmooth) {
    const not = methods.filter((m) => !augSmoothApplies(m));
    if (not.length) {
      throw new GradcamError(`augSmooth does not apply to ${not.join(', ')}: it averages the maps at a feature layer of six augmented copies, and these maps are at the input`,
        'Leave augSmooth out for the guided methods and the input attributions (maps at the input; pytorch-grad-cam\'s aug_smooth is its CAMs\', and these are not CAMs); it applies to the methods at a feature layer, scorecam and ablationcam included (six times their passes).');
    }
  }
  if (o.inspect && (o.eigenSmooth || o.augSmooth)) {
    throw new GradcamError(`inspect explains a map as a sum over channels of one pass; it cannot be combined with ${o.eigenSmooth ? 'eigenSmooth' : 'augSmooth'}`, 'Inspect the map without smoothing.');
  }
}

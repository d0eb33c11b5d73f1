/**
 * Aug-smooth's six augmented copies of the input (the definition: smoothing.ts; the GPU side:
 * aug-smooth.ts), apart so that the method table (methods.ts: a method's pass count, six times its
 * passes under aug-smooth) can read them without importing smoothing.ts, which reads the table.
 */

/** The multiplications of aug-smooth, the unaugmented one first (its maps choose the classes). */
export const AUG_FACTORS = [1, 0.9, 1.1] as const;
/** The flips of aug-smooth: none first. */
export const AUG_FLIPS = [false, true] as const;
/** The six augmentations in batch order: flip-major, factor-minor; the first is the input as given. */
export const AUGMENTATIONS: readonly { flip: boolean; factor: number }[] = AUG_FLIPS.flatMap((flip) => AUG_FACTORS.map((factor) => ({ flip, factor })));
/** pytorch-grad-cam's scale_cam_image: (M − min) / (max − min + 1e-7). */
export const AUG_NORMALISE_EPS = 1e-7;

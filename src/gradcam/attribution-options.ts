/**
 * The many-pass input attributions' settings, from their options (GradcamOptions.methodOptions) and
 * the input's size: the defaults, occlusion's windows, and how many passes each costs (methods.ts
 * `passes`, shown before a run starts). No GPU here: the page and the CLI read it too.
 */
import { GradcamError } from '../errors.ts';
import type { MethodOptions, OcclusionOptions } from './types.ts';

/** The defaults of the many-pass methods' options (MethodOptions). */
export const SMOOTHGRAD_DEFAULTS = { samples: 50, sigma: 0.15, seed: 0 } as const; // Smilkov et al. 2017: n = 50, σ 10–20 % of the range
export const INTEGRATED_GRADIENTS_DEFAULTS = { steps: 50, baseline: 'zeros' } as const; // Captum: n_steps = 50, baseline 0

/** Occlusion's window: patch ⌈min(H, W) / 7⌉ (32 at 224), stride half of it (at least 1), fill 0 (the preprocessed zero: the mean colour). */
export function occlusionSettings(o: OcclusionOptions | undefined, H: number, W: number): { patch: number; stride: number; fill: number; windowsX: number; windowsY: number } {
  const patch = o?.patch ?? Math.max(1, Math.ceil(Math.min(H, W) / 7));
  const stride = o?.stride ?? Math.max(1, Math.floor(patch / 2));
  if (patch > H || patch > W) throw new GradcamError(`option methodOptions.occlusion.patch ${patch} is larger than the input (${H}×${W})`, `Use a patch of at most ${Math.min(H, W)} pixels.`);
  // Captum's window count: ⌈(size − patch) / stride⌉ + 1, the last window clipped to the input.
  const windows = (n: number) => Math.ceil((n - patch) / stride) + 1;
  return { patch, stride, fill: o?.fill ?? 0, windowsX: windows(W), windowsY: windows(H) };
}

/**
 * The passes (forwards, or forward + backward) one image costs beyond the shared first pass:
 * smoothgrad n, integrated gradients m (the trapezoid rule's m + 1 points but the last, x itself, whose
 * gradient and score the first pass gives), occlusion one per window.
 */
export function extraPasses(method: string, input: readonly [number, number, number], options?: MethodOptions): number {
  if (method === 'smoothgrad') return options?.smoothgrad?.samples ?? SMOOTHGRAD_DEFAULTS.samples;
  if (method === 'integrated-gradients') return options?.['integrated-gradients']?.steps ?? INTEGRATED_GRADIENTS_DEFAULTS.steps; // the trapezoid rule's m + 1 points but x, the first pass's
  if (method === 'occlusion') {
    const s = occlusionSettings(options?.occlusion, input[1], input[2]);
    return s.windowsX * s.windowsY;
  }
  return 0;
}

/**
 * Aug-smooth on the GPU (the definition: src/gradcam/smoothing.ts). A request with augSmooth runs on
 * an engine of 6 images per input: input n is written into image 6n, the `augment` dispatch (run by
 * the engine after the inputs' preprocessing, Engine.afterInputs) makes images 6n + 1 … 6n + 5 from
 * it, one forward and one backward pass serve all six (classes: image 6n's top-K, topk's group of 6,
 * or the classes given), and after each layer's maps the `range` and `mean` dispatches write the
 * smoothed map over image 6n's. The result reads images 0, 6, 12, …: its scores, predictions and maps
 * are the unaugmented input's, the maps smoothed.
 */
import type { Dispatch, KernelEnv } from '../gpu/dispatch.ts';
import { chwOf } from '../image/recipes.ts';
import { AUGSMOOTH } from '../kernels/augsmooth.ts';
import type { Engine } from '../runtime/engine.ts';
import { AUGMENTATIONS } from './augmentations.ts';

/** Engine images per input. */
export const AUG_COPIES = AUGMENTATIONS.length;

/** The dispatch that makes the augmented copies of each group's image 6g in the engine's input. */
export async function augmentInput(engine: Engine): Promise<Dispatch> {
  const { env } = engine;
  const groups = engine.batch / AUG_COPIES;
  const input = engine.compiled.view(engine.graph.input.name);
  const [c, , w] = chwOf(engine.inputShape, engine.layout);
  const perImage = engine.inputShape.slice(1).reduce((a, b) => a * b, 1);
  return AUGSMOOTH.dispatch(env, 'augment', {
    uniforms: { groups, perImage, channels: c, width: w, nhwc: engine.layout === 'NHWC' ? 1 : 0, inputOffset: input.offset, inputStride: input.stride },
    buffers: { input: input.buffer },
    workgroups: AUGSMOOTH.groups('augment', [perImage, AUG_COPIES - 1, groups]),
    label: 'aug-smooth input', opType: 'Grad-CAM', flops: groups * (AUG_COPIES - 1) * perImage, shapes: `${groups}×${AUG_COPIES - 1}×${perImage}`,
  });
}

/**
 * The dispatches that smooth one (layer, method)'s raw maps in place (items = 6G · K maps of `hw`
 * positions, `mapW` wide): each item's min and max, then the mean of the six normalised, flipped-back
 * maps over the group's first.
 */
export async function smoothMaps(env: KernelEnv, raw: GPUBuffer, items: number, classesPerImage: number, shape: [number, number], label: string): Promise<Dispatch[]> {
  const [h, w] = shape;
  const hw = h * w;
  const groups = items / (AUG_COPIES * classesPerImage);
  const ranges = env.scratch(items * 2, `aug-smooth ranges ${label}`);
  const common = { groups, items, classesPerImage, hw, mapW: w };
  const info = { opType: 'Grad-CAM', shapes: `${items}×${h}×${w}` };
  return [
    await AUGSMOOTH.dispatch(env, 'range', {
      uniforms: common, buffers: { raw, rangesOut: ranges }, workgroups: AUGSMOOTH.groups('range', [items, 1, 1]),
      label: `aug-smooth range ${label}`, flops: 2 * items * hw, ...info,
    }),
    await AUGSMOOTH.dispatch(env, 'mean', {
      uniforms: common, buffers: { ranges, rawInOut: raw }, workgroups: AUGSMOOTH.groups('mean', [hw, classesPerImage, groups]),
      label: `aug-smooth mean ${label}`, flops: 3 * AUG_COPIES * groups * classesPerImage * hw, ...info,
    }),
  ];
}

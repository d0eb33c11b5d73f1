/**
 * The display stage for one image size: every raw map upsampled to the picture, normalised, coloured
 * with jet and blended over the picture (shaders/overlay.wgsl). Made once per (program, size, and
 * image of the batch: image n's stage reads items n·K … n·K + K − 1 of the raw maps).
 */
import type { Dispatch, KernelEnv } from '../gpu/dispatch.ts';
import { OVERLAY } from '../kernels/overlay.ts';
import type { ReadbackPlan, ReadbackResult } from '../runtime/readback.ts';
import type { DisplayWant } from './limits.ts';
import type { LayerMaps } from './program.ts';

export class OverlayStage {
  private constructor(
    /** Number of maps (layers × items). */
    readonly maps: number,
    readonly width: number,
    readonly height: number,
    /** maps × height × width float32: the upsampled raw maps. */
    readonly upsampled: GPUBuffer,
    /** maps × (min, max) of the upsampled maps. */
    readonly range: GPUBuffer,
    /** maps × height × width RGBA8: jet over the picture. */
    readonly overlay: GPUBuffer,
    readonly dispatches: Dispatch[],
  ) {}

  /**
   * `width` × `height`: the display size (fitDisplay), at most the picture's `source` size; a smaller
   * display samples the picture under each display pixel's centre.
   */
  static async create(env: KernelEnv, layers: LayerMaps[], items: number, picture: GPUBuffer, width: number, height: number, alpha: number,
    source: { width: number; height: number } = { width, height }, firstItem = 0,
    /** The part of the picture the model saw (a recipe's centre crop), in picture pixels; default all of it. */
    seen: { x: number; y: number; w: number; h: number } = { x: 0, y: 0, w: source.width, h: source.height }): Promise<OverlayStage> {
    const maps = layers.length * items;
    const upsampled = env.scratch(maps * width * height, 'upsampled');
    const range = env.scratch(maps * 2, 'map ranges');
    const overlay = env.scratch(maps * width * height, 'overlays');
    const scaled = source.width !== width || source.height !== height;
    // The three pipelines compiled in parallel, then cached.
    await Promise.all(OVERLAY.entryNames.map((e) => OVERLAY.pipeline(env, e, e === 'colorize' ? { SCALED: scaled } : {})));
    const info = (kernel: string, flops: number) => ({ label: kernel, opType: 'Grad-CAM', flops, shapes: `${maps}×${height}×${width}` });
    const sx = width / source.width, sy = height / source.height;
    const whole = seen.x === 0 && seen.y === 0 && seen.w === source.width && seen.h === source.height;
    // The whole picture exactly (no rounding of w · (W / w)): the same sampling as before crops existed.
    const crop = whole ? { cropX: 0, cropY: 0, cropW: width, cropH: height } : { cropX: seen.x * sx, cropY: seen.y * sy, cropW: seen.w * sx, cropH: seen.h * sy };
    const display = { outW: width, outH: height, ...crop };
    const dispatches = await Promise.all(layers.map((l, i) => OVERLAY.dispatch(env, 'upsample', {
      uniforms: { ...display, mapW: l.shape[1], mapH: l.shape[0], maps, first: i * items, firstItem },
      buffers: { raw: l.raw, upsampledOut: upsampled },
      workgroups: OVERLAY.groups('upsample', [width, height, items]),
      ...info('overlay.upsample', 8 * items * width * height),
    })));
    dispatches.push(await OVERLAY.dispatch(env, 'minmax', {
      uniforms: display, buffers: { upsampled, rangesOut: range }, workgroups: [maps, 1, 1],
      ...info('overlay.minmax', 2 * maps * width * height),
    }));
    dispatches.push(await OVERLAY.dispatch(env, 'colorize', {
      overrides: { SCALED: scaled },
      uniforms: { ...display, maps, alpha, pictureW: source.width, pictureH: source.height },
      buffers: { upsampled, ranges: range, picture, overlay },
      workgroups: OVERLAY.groups('colorize', [width, height, maps]),
      ...info('overlay.colorize', 20 * maps * width * height),
    }));
    return new OverlayStage(maps, width, height, upsampled, range, overlay, dispatches);
  }

  /**
   * Adds the ranges, and the upsampled maps and overlays when wanted, to a read-back; `decode` reads
   * them. `image`: which image of the batch this stage draws (its regions are named for it).
   */
  addReadback(plan: ReadbackPlan, what: DisplayWant, image = 0): void {
    const bytes = this.maps * this.width * this.height * 4;
    plan.add(`ranges:${image}`, { buffer: this.range, offset: 0, bytes: this.maps * 8 });
    if (what.upsampled) plan.add(`upsampled:${image}`, { buffer: this.upsampled, offset: 0, bytes });
    if (what.overlay) plan.add(`overlays:${image}`, { buffer: this.overlay, offset: 0, bytes });
  }

  /** The bytes `addReadback` reads back. */
  static readbackBytes(maps: number, width: number, height: number, what: DisplayWant): number {
    return maps * 8 + maps * width * height * 4 * ((what.upsampled ? 1 : 0) + (what.overlay ? 1 : 0));
  }

  decode(read: ReadbackResult, what: DisplayWant, image = 0): { ranges: Float32Array; upsampled?: Float32Array; overlays?: Uint8ClampedArray } {
    return {
      ranges: read.f32(`ranges:${image}`),
      upsampled: what.upsampled ? read.f32(`upsampled:${image}`) : undefined,
      overlays: what.overlay ? read.rgba(`overlays:${image}`) : undefined,
    };
  }
}

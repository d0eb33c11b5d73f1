/**
 * The display stage for one image size: every raw map upsampled to the picture, normalised, coloured
 * with jet and blended over the picture (shaders/overlay.wgsl). Made once per (program, size).
 */
import code from '../../shaders/overlay.wgsl';
import type { Dispatch, KernelEnv } from '../gpu/dispatch.ts';
import { Params } from '../gpu/dispatch.ts';
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
    source: { width: number; height: number } = { width, height }): Promise<OverlayStage> {
    const maps = layers.length * items;
    const upsampled = env.scratch(maps * width * height, 'upsampled');
    const range = env.scratch(maps * 2, 'map ranges');
    const overlay = env.scratch(maps * width * height, 'overlays');
    const scaled = source.width !== width || source.height !== height;
    const [up, mm, color] = await Promise.all(['upsample', 'minmax', 'colorize'].map((e) => env.pipeline(code, e, e === 'colorize' ? { SCALED: scaled } : {})));
    const params = (w: number, h: number, first: number) =>
      env.uniform(new Params().u32(w, h, width, height, maps).f32(alpha).u32(first, source.width, source.height, 0, 0, 0));
    const meta = (kernel: string, flops: number) => ({ kernel, label: kernel, opType: 'Grad-CAM', flops, shapes: `${maps}×${height}×${width}` });
    const grid: [number, number, number] = [Math.ceil(width / 8), Math.ceil(height / 8), 0];
    const dispatches = layers.map((l, i) => env.dispatch(up, [params(l.shape[1], l.shape[0], i * items), l.raw, upsampled, null, null, null],
      [grid[0], grid[1], items], meta('overlay.upsample', 8 * items * width * height)));
    const all = params(1, 1, 0);
    dispatches.push(env.dispatch(mm, [all, null, upsampled, range, null, null], [maps, 1, 1], meta('overlay.minmax', 2 * maps * width * height)));
    dispatches.push(env.dispatch(color, [all, null, upsampled, range, picture, overlay], [grid[0], grid[1], maps], meta('overlay.colorize', 20 * maps * width * height)));
    return new OverlayStage(maps, width, height, upsampled, range, overlay, dispatches);
  }

  /** Adds the ranges, and the upsampled maps and overlays when wanted, to a read-back; `decode` reads them. */
  addReadback(plan: ReadbackPlan, what: DisplayWant): void {
    const bytes = this.maps * this.width * this.height * 4;
    plan.add('ranges', { buffer: this.range, offset: 0, bytes: this.maps * 8 });
    if (what.upsampled) plan.add('upsampled', { buffer: this.upsampled, offset: 0, bytes });
    if (what.overlay) plan.add('overlays', { buffer: this.overlay, offset: 0, bytes });
  }

  decode(read: ReadbackResult, what: DisplayWant): { ranges: Float32Array; upsampled?: Float32Array; overlays?: Uint8ClampedArray } {
    return {
      ranges: read.f32('ranges'),
      upsampled: what.upsampled ? read.f32('upsampled') : undefined,
      overlays: what.overlay ? read.rgba('overlays') : undefined,
    };
  }
}

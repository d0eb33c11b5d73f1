/**
 * The GPU preprocessing stage (shaders/preprocess.wgsl) for one source image size: its buffers,
 * pipelines and bind groups are made once per size and reused (webcam frames all share one).
 */
import { GradcamError } from '../errors.ts';
import type { BufferView, DeviceLimits, Dispatch, KernelEnv } from '../gpu/dispatch.ts';
import { checkStorageSize } from '../gpu/dispatch.ts';
import { PREPROCESS } from '../kernels/preprocess.ts';
import type { RgbaImage } from './image.ts';
import { checkImage } from './image.ts';
import { type Layout, type Recipe, sourceRect } from './recipes.ts';
import { createBuffer, destroyBuffer } from '../gpu/buffers.ts';

export class PreprocessStage {
  /** The uploaded RGBA pixels (also read by the overlay stage). */
  readonly pixels: GPUBuffer;
  readonly dispatches: Dispatch[];

  private constructor(private env: KernelEnv, readonly width: number, readonly height: number, pixels: GPUBuffer, dispatches: Dispatch[]) {
    this.pixels = pixels;
    this.dispatches = dispatches;
  }

  /**
   * Refuses, before any GPU work, a picture whose buffers or dispatches exceed the device's limits:
   * the RGBA pixels (width · height · 4 bytes, bound as one storage buffer), the row-resized
   * intermediate (3 · height · outW floats), and the passes' workgroups (⌈height / 8⌉ for the rows pass).
   */
  static check(limits: DeviceLimits, width: number, height: number, outW: number, outH: number): void {
    const hint = 'Resize the picture (a few thousand pixels a side is plenty: the model sees it at its input size).';
    checkStorageSize(limits, width * height * 4, `a ${width}×${height} picture`, hint);
    checkStorageSize(limits, 3 * height * outW * 4, `resizing a ${width}×${height} picture`, hint);
    const groups = limits.maxComputeWorkgroupsPerDimension;
    const most = Math.max(...PREPROCESS.groups('rows', [outW, height, 1]), ...PREPROCESS.groups('cols', [outW, outH, 1]));
    if (most > groups) {
      throw new GradcamError(`a ${width}×${height} picture needs ${most} workgroups along one dimension to preprocess, more than this GPU's maxComputeWorkgroupsPerDimension (${groups})`, hint);
    }
  }

  static async create(env: KernelEnv, width: number, height: number, outW: number, outH: number, recipe: Recipe, out: BufferView, layout: Layout = 'NCHW'): Promise<PreprocessStage> {
    PreprocessStage.check(env.limits, width, height, outW, outH);
    const rect = sourceRect(recipe, width, height, outW, outH);
    const pixels = createBuffer(env.device, { label: 'pixels', size: width * height * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    const tmp = env.scratch(3 * height * outW, 'resize-rows');
    const uniforms = {
      srcW: width, srcH: height, dstW: outW, dstH: outH, scaleX: rect.w / outW, scaleY: rect.h / outH, originX: rect.x, originY: rect.y,
      valueScale: recipe.valueScale, bgr: recipe.channelOrder === 'BGR' ? 1 : 0,
      mean: [...recipe.mean, 0], invStd: [...recipe.std.map((s) => 1 / s), 0], outOffset: out.offset, nhwc: layout === 'NHWC' ? 1 : 0,
    };
    await Promise.all(PREPROCESS.entryNames.map((e) => PREPROCESS.pipeline(env, e))); // compiled in parallel, then cached
    const info = (flops: number) => ({ label: 'preprocess', opType: 'Preprocess', flops, shapes: `${width}×${height} → ${outW}×${outH}` });
    const dispatches = [
      await PREPROCESS.dispatch(env, 'rows', {
        uniforms, buffers: { pixels, resizedRowsOut: tmp }, workgroups: PREPROCESS.groups('rows', [outW, height, 1]), ...info(3 * outW * height),
      }),
      await PREPROCESS.dispatch(env, 'cols', {
        uniforms, buffers: { resizedRows: tmp, modelInput: out.buffer }, workgroups: PREPROCESS.groups('cols', [outW, outH, 1]), ...info(3 * outW * outH),
      }),
    ];
    return new PreprocessStage(env, width, height, pixels, dispatches);
  }

  upload(img: RgbaImage): void {
    checkImage(img);
    if (img.width !== this.width || img.height !== this.height) throw new Error(`internal: preprocess: stage is for ${this.width}×${this.height}, image is ${img.width}×${img.height}`);
    this.env.device.queue.writeBuffer(this.pixels, 0, img.data.buffer, img.data.byteOffset, img.data.byteLength);
  }

  destroy(): void {
    destroyBuffer(this.pixels);
  }
}

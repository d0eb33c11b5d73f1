/**
 * The GPU preprocessing stage (shaders/preprocess.wgsl) for one source image size: its buffers,
 * pipelines and bind groups are made once per size and reused (webcam frames all share one).
 */
import code from '../../shaders/preprocess.wgsl';
import { GradcamError } from '../errors.ts';
import type { BufferView, DeviceLimits, Dispatch, KernelEnv } from '../gpu/dispatch.ts';
import { checkStorageSize, Params } from '../gpu/dispatch.ts';
import type { RgbaImage } from './image.ts';
import { checkImage } from './image.ts';
import type { Recipe } from './recipes.ts';

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
   * intermediate (3 · height · outW floats), and the rows pass's ⌈height / 8⌉ workgroups.
   */
  static check(limits: DeviceLimits, width: number, height: number, outW: number, outH: number): void {
    const hint = 'Resize the picture (a few thousand pixels a side is plenty: the model sees it at its input size).';
    checkStorageSize(limits, width * height * 4, `a ${width}×${height} picture`, hint);
    checkStorageSize(limits, 3 * height * outW * 4, `resizing a ${width}×${height} picture`, hint);
    const groups = limits.maxComputeWorkgroupsPerDimension;
    const most = Math.max(Math.ceil(height / 8), Math.ceil(outW / 8), Math.ceil(outH / 8));
    if (most > groups) {
      throw new GradcamError(`a ${width}×${height} picture needs ${most} workgroups along one dimension to preprocess, more than this GPU's maxComputeWorkgroupsPerDimension (${groups})`, hint);
    }
  }

  static async create(env: KernelEnv, width: number, height: number, outW: number, outH: number, recipe: Recipe, out: BufferView): Promise<PreprocessStage> {
    PreprocessStage.check(env.limits, width, height, outW, outH);
    const pixels = env.device.createBuffer({ label: 'pixels', size: width * height * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    const tmp = env.scratch(3 * height * outW, 'resize-rows');
    const params = new Params()
      .u32(width, height, outW, outH)
      .f32(width / outW, height / outH, recipe.valueScale)
      .u32(recipe.channelOrder === 'BGR' ? 1 : 0)
      .f32(...recipe.mean, 0, ...recipe.std.map((s) => 1 / s), 0)
      .u32(out.offset, 0, 0, 0);
    const uniform = env.uniform(params);
    const [rows, cols] = await Promise.all([env.pipeline(code, 'rows'), env.pipeline(code, 'cols')]);
    const meta = (kernel: string, n: number) => ({ kernel, label: 'preprocess', opType: 'Preprocess', flops: n, shapes: `${width}×${height} → ${outW}×${outH}` });
    const dispatches = [
      env.dispatch(rows, [uniform, pixels, tmp, null], [Math.ceil(outW / 8), Math.ceil(height / 8), 1], meta('preprocess.rows', 3 * outW * height)),
      env.dispatch(cols, [uniform, null, tmp, out.buffer], [Math.ceil(outW / 8), Math.ceil(outH / 8), 1], meta('preprocess.cols', 3 * outW * outH)),
    ];
    return new PreprocessStage(env, width, height, pixels, dispatches);
  }

  upload(img: RgbaImage): void {
    checkImage(img);
    if (img.width !== this.width || img.height !== this.height) throw new Error(`internal: preprocess: stage is for ${this.width}×${this.height}, image is ${img.width}×${img.height}`);
    this.env.device.queue.writeBuffer(this.pixels, 0, img.data.buffer, img.data.byteOffset, img.data.byteLength);
  }

  destroy(): void {
    this.pixels.destroy();
  }
}

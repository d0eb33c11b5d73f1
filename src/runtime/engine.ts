/**
 * The engine: a lowered graph compiled on a device, ready to run. It owns the GPU buffers and the
 * recorded programs; `classify` runs the forward pass, `gradcam.ts` adds the backward and CAM stages.
 */
import { GradcamError } from '../errors.ts';
import type { Graph } from '../graph/ir.ts';
import { lower, type LowerOptions } from '../graph/lower.ts';
import type { GpuContext } from '../gpu/device.ts';
import { checked, KernelEnv, type KernelVariant, kernelVariant } from '../gpu/dispatch.ts';
import type { Dispatch } from '../gpu/dispatch.ts';
import type { RgbaImage } from '../image/image.ts';
import { PreprocessStage } from '../image/preprocess.ts';
import { guessRecipe, type Recipe } from '../image/recipes.ts';
import type { OnnxModel } from '../onnx/model.ts';
import { compileForward, type CompiledForward } from './forward.ts';
import { encodeStage } from './program.ts';
import { Readback, viewRegions } from './readback.ts';

export interface ForwardResult {
  /** Pre-softmax class scores, [batch × classes]. */
  logits: Float32Array;
  /** Softmax of the logits, [batch × classes]. */
  probabilities: Float32Array;
  classes: number;
}

export interface EngineOptions extends LowerOptions {
  /** Kernel variants: 'cpu' (register-blocked) or 'gpu' (workgroup-memory tiles); default by adapter. */
  variant?: KernelVariant;
}

export class Engine {
  private readonly forwardReadback: Readback;
  private busy: Promise<unknown> = Promise.resolve();
  /** Preprocessing stages by image size and batch index; made once per size. */
  private stages = new Map<string, PreprocessStage>();
  /** Dispatches the next run must do first (the preprocessing of images written since the last run). */
  private pending: Dispatch[] = [];
  /** How pictures become this model's input (guessed from the model; settable). */
  recipe: Recipe;

  private constructor(
    readonly gpu: GpuContext,
    readonly model: OnnxModel,
    readonly graph: Graph,
    readonly env: KernelEnv,
    readonly compiled: CompiledForward,
    readonly options: EngineOptions,
    /** Milliseconds spent lowering and compiling (pipelines included). */
    readonly compileMs: number,
  ) {
    this.forwardReadback = new Readback(gpu.device, this.tensorRegions([graph.logits, ...(graph.probabilities ? [graph.probabilities] : [])]));
    this.recipe = guessRecipe(graph.input.name, Object.keys(graph.onnxOpCounts));
  }

  static async create(gpu: GpuContext, model: OnnxModel, options: EngineOptions = {}): Promise<Engine> {
    const t0 = performance.now();
    const graph = lower(model, options);
    const env = new KernelEnv(gpu.device, options.variant ?? kernelVariant(gpu.adapter.isSoftware));
    const compiled = await checked(gpu.device, 'compiling the forward pass', () => compileForward(env, graph));
    return new Engine(gpu, model, graph, env, compiled, options, performance.now() - t0);
  }

  get batch(): number {
    return this.graph.batch;
  }

  get inputShape(): number[] {
    return this.graph.input.shape;
  }

  get classCount(): number {
    const s = this.graph.tensors.get(this.graph.logits)!.shape;
    return s.slice(1).reduce((a, b) => a * b, 1);
  }

  /** Regions of tensors (all images) for a read-back. */
  tensorRegions(names: string[]) {
    return names.flatMap((n) => {
      const v = this.compiled.view(n);
      const t = this.graph.tensors.get(n)!;
      const per = t.shape.slice(1).reduce((a, b) => a * b, 1);
      return viewRegions(v.buffer, v.offset, v.stride, per, this.batch);
    });
  }

  /** Writes a float32 NCHW input tensor (its shape is checked against the model's). */
  writeInput(data: Float32Array, shape?: readonly number[]): void {
    const want = this.inputShape;
    if (shape && shape.join() !== want.join()) {
      throw new GradcamError(`input has shape [${shape}], but the model expects [${want}] (input '${this.graph.input.name}')`);
    }
    const n = want.reduce((a, b) => a * b, 1);
    if (data.length !== n) throw new GradcamError(`input has ${data.length} values, but the model expects [${want}] = ${n}`);
    const v = this.compiled.view(this.graph.input.name);
    this.pending = [];
    this.gpu.device.queue.writeBuffer(v.buffer, 0, data.buffer, data.byteOffset, data.byteLength);
  }

  /**
   * Uploads an RGBA picture as image `index` of the batch; the GPU resizes it to the input size and
   * applies `this.recipe` at the start of the next run.
   */
  async writeImage(img: RgbaImage, index = 0): Promise<PreprocessStage> {
    const [n, c, h, w] = this.inputShape;
    if (c !== 3) throw new GradcamError(`the model's input has ${c} channels; pictures need 3 (give a .npy tensor instead)`);
    if (index < 0 || index >= n) throw new GradcamError(`image index ${index} is outside the batch of ${n}`);
    const key = `${img.width}x${img.height}/${index}/${this.recipe.name}`;
    let stage = this.stages.get(key);
    if (!stage) {
      const v = this.compiled.view(this.graph.input.name);
      stage = await PreprocessStage.create(this.env, img.width, img.height, w, h, this.recipe, { ...v, offset: index * v.stride });
      this.stages.set(key, stage);
    }
    stage.upload(img);
    this.pending = this.pending.filter((d) => !stage.dispatches.includes(d)).concat(stage.dispatches);
    return stage;
  }

  /** Encodes the preprocessing still pending and the forward pass, as one compute pass. */
  encodeForward(encoder: GPUCommandEncoder, ts?: { querySet: GPUQuerySet; begin: number; end: number }): void {
    encodeStage(encoder, 'forward', this.pending.length ? [...this.pending, ...this.compiled.dispatches] : this.compiled.dispatches, ts);
    this.pending = [];
  }

  /** Runs `fn` after any run in flight (runs share buffers and the read-back staging). */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.busy.then(fn, fn);
    this.busy = next.catch(() => undefined);
    return next;
  }

  /** The forward pass on the input already written; reads back the logits and probabilities. */
  classify(): Promise<ForwardResult> {
    return this.exclusive(async () => {
      const encoder = this.gpu.device.createCommandEncoder({ label: 'forward' });
      this.encodeForward(encoder);
      this.forwardReadback.encode(encoder);
      await checked(this.gpu.device, 'forward pass', () => this.gpu.device.queue.submit([encoder.finish()]));
      const parts = await this.forwardReadback.read();
      return this.forwardResult(parts);
    });
  }

  /** Builds a ForwardResult from the read-back logits (and probabilities) regions. */
  forwardResult(parts: ArrayBuffer[]): ForwardResult {
    const classes = this.classCount;
    const n = this.batch;
    const join = (bufs: ArrayBuffer[]) => {
      const out = new Float32Array(n * classes);
      let at = 0;
      for (const b of bufs) {
        out.set(new Float32Array(b), at);
        at += b.byteLength / 4;
      }
      return out;
    };
    const per = parts.length / (this.graph.probabilities ? 2 : 1);
    const logits = join(parts.slice(0, per));
    const probabilities = this.graph.probabilities ? join(parts.slice(per)) : softmaxRows(logits, classes);
    return { logits, probabilities, classes };
  }

  /** Reads any tensor (all images), for tests and debugging. */
  async readTensor(name: string): Promise<Float32Array> {
    if (!this.graph.tensors.has(name)) {
      const by = this.graph.fusedAway.get(name);
      throw new GradcamError(by ? `tensor '${name}' was fused into '${by}'; create the engine with taps: ['${name}']` : `unknown tensor '${name}'`);
    }
    return this.exclusive(async () => {
      const rb = new Readback(this.gpu.device, this.tensorRegions([name]));
      const encoder = this.gpu.device.createCommandEncoder();
      rb.encode(encoder);
      await checked(this.gpu.device, 'read-back', () => this.gpu.device.queue.submit([encoder.finish()]));
      const parts = await rb.read();
      rb.destroy();
      const total = parts.reduce((a, b) => a + b.byteLength / 4, 0);
      const out = new Float32Array(total);
      let at = 0;
      for (const b of parts) {
        out.set(new Float32Array(b), at);
        at += b.byteLength / 4;
      }
      return out;
    });
  }

  destroy(): void {
    for (const s of this.stages.values()) s.destroy();
    this.forwardReadback.destroy();
    this.env.destroy();
  }
}

/** Row-wise softmax in float64, rounded to float32 (for models whose output is logits). */
export function softmaxRows(logits: Float32Array, classes: number): Float32Array {
  const out = new Float32Array(logits.length);
  for (let r = 0; r < logits.length / classes; r++) {
    let m = -Infinity;
    for (let j = 0; j < classes; j++) m = Math.max(m, logits[r * classes + j]);
    let s = 0;
    for (let j = 0; j < classes; j++) s += Math.exp(logits[r * classes + j] - m);
    for (let j = 0; j < classes; j++) out[r * classes + j] = Math.exp(logits[r * classes + j] - m) / s;
  }
  return out;
}

/**
 * The engine: a lowered graph compiled on a device, ready to run. It owns the GPU buffers and the
 * recorded programs; `classify` runs the forward pass, `gradcam.ts` adds the backward and CAM stages.
 */
import { GradcamError, InternalError } from '../errors.ts';
import { type Graph, perImage, tensorElements } from '../graph/ir.ts';
import { lower, type LowerOptions } from '../graph/lower.ts';
import type { GpuContext } from '../gpu/device.ts';
import { checked, type DeviceLimits, KernelEnv, type KernelVariant, kernelVariant, type PipelineCache } from '../gpu/dispatch.ts';
import type { Dispatch } from '../gpu/dispatch.ts';
import { checkImage, type RgbaImage } from '../image/image.ts';
import { PreprocessStage } from '../image/preprocess.ts';
import { chooseRecipe, chwOf, inputLayout, type Layout, type Recipe } from '../image/recipes.ts';
import type { OnnxModel } from '../onnx/model.ts';
import { type ConvVariantName, isConvVariant, type Plan, resolvePlan } from '../kernels/variants.ts';
import { compileForward, type CompiledForward } from './forward.ts';
import { tune, type TuneOptions, type TuneReport } from './tune.ts';
import { encodeStage } from './program.ts';
import { ReadbackPlan, type ReadbackResult, type Region, viewRegions } from './readback.ts';
import type { StageTimestamps } from './timing.ts';

export interface ForwardResult {
  /** Pre-softmax class scores, [batch × classes]. */
  logits: Float32Array;
  /** Softmax of the logits, [batch × classes]. */
  probabilities: Float32Array;
  classes: number;
}

export interface EngineOptions extends LowerOptions {
  /**
   * 'cpu' or 'gpu': the kernel family whose fixed rules choose each layer's variant (default: by
   * adapter, 'cpu' for a software one); or a conv variant's name (src/kernels/variants.ts:
   * gemm-blocked, gemm-tiled, winograd, im2col, direct, gather) for every conv layer and direction where it
   * applies, the adapter family's fixed rules elsewhere.
   */
  variant?: KernelVariant | ConvVariantName;
  /** Conv variants by layer and direction (src/kernels/variants.ts Plan); over `variant` and the fixed rules. */
  plan?: Plan;
  /** What `plan` came from, for its errors ('plan.json'); default 'the plan'. */
  planSource?: string;
  /**
   * Choose each conv layer's variant by measurement on this adapter (src/runtime/tune.ts), or take
   * the plan stored for this adapter, model and engine version; `plan`'s entries still win. Not
   * together with a conv variant name in `variant`.
   */
  tune?: boolean | TuneOptions;
  /** Limits lower than the device's (tests reach the folding and refusal paths with them). */
  limits?: Partial<DeviceLimits>;
  /**
   * The queue runs wait in; a Network passes its own, so that its runs and the engine's are
   * serialised together, also across engine replacement (Network.keep).
   */
  queue?: RunQueue;
  /** The pipeline cache to use; a Network's engines (one per batch size) share one. */
  pipelines?: PipelineCache;
  /** How pictures become the input (its size and layout decide an open input's shape); default: chooseRecipe from the model. */
  recipe?: Recipe;
}

/**
 * Runs tasks one at a time, in call order. Runs on one network share buffers (input, classes,
 * activations) and read-back staging buffers, so a run is the whole of: input write, class write,
 * encode, submit, read-back and decode.
 */
export class RunQueue {
  private tail: Promise<unknown> = Promise.resolve();
  /** Runs queued or running. */
  private pending = 0;
  /** Set by close(): the error every run not yet started rejects with. */
  private closed?: () => Error;

  run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(this.closed());
    this.pending++;
    const start = () => (this.closed ? Promise.reject(this.closed()) : fn());
    const next = this.tail.then(start, start).finally(() => this.pending--);
    this.tail = next.catch(() => undefined);
    return next;
  }

  /**
   * Closes the queue: the run in flight (if any) goes on to its end; runs queued behind it, and any
   * asked for later, reject with `error()`. `then` runs once nothing runs any more: at once when the
   * queue is idle (so that what it frees is freed when close returns), else after the run in flight.
   */
  close(error: () => Error, then: () => void): Promise<void> {
    this.closed ??= error;
    if (this.pending === 0) {
      then();
      return Promise.resolve();
    }
    const done = this.tail.then(then);
    this.tail = done;
    return done;
  }
}

/** Where non-finite values are in an array: how many, of which kinds, the first index. */
export interface NonFinite {
  count: number;
  first: number;
  /** 'NaN', 'Inf' or 'NaN and Inf'. */
  kind: string;
}

export function findNonFinite(data: ArrayLike<number>): NonFinite | null {
  let count = 0, first = -1, nan = false, inf = false;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v - v !== 0) { // NaN and ±Inf only
      if (first < 0) first = i;
      count++;
      if (v !== v) nan = true;
      else inf = true;
    }
  }
  return count ? { count, first, kind: nan && inf ? 'NaN and Inf' : nan ? 'NaN' : 'Inf' } : null;
}

/** A flat index as a multi-dimensional one, "[0, 2, 5, 1]". */
export function indexIn(shape: readonly number[], flat: number): string {
  const at: number[] = [];
  for (let d = shape.length - 1; d >= 0; d--) {
    at.unshift(flat % shape[d]);
    flat = Math.floor(flat / shape[d]);
  }
  return `[${at.join(', ')}]`;
}

/**
 * Refuses a model with NaN or ±Inf among its weights, naming the initializer and a node that reads
 * it: such a model gives NaN activations that a fused ReLU can turn into zeros, and so confident,
 * wrong answers.
 */
export function checkWeights(model: OnnxModel): void {
  for (const t of model.initializers.values()) {
    if (!(t.data instanceof Float32Array)) continue;
    const bad = findNonFinite(t.data);
    if (!bad) continue;
    const reader = model.nodes.find((n) => n.inputs.includes(t.name));
    throw new GradcamError(
      `initializer '${t.name}'${reader ? ` (node '${reader.name}')` : ''} has non-finite values (${bad.kind}): ${bad.count} of ${t.data.length}, the first at ${indexIn(t.dims.length ? t.dims : [t.data.length], bad.first)}`,
      'The model file is broken: download or export it again.');
  }
}

/** Models whose weights were checked (a re-lowering with new taps does not check again). */
const weightsChecked = new WeakSet<OnnxModel>();

/** The read-back regions of the forward result. */
const LOGITS = 'logits';
const PROBABILITIES = 'probabilities';

/** The kernel family an engine builds: `variant` when it names one, else the adapter's. */
export function engineFamily(gpu: GpuContext, variant: EngineOptions['variant']): KernelVariant {
  return variant === 'cpu' || variant === 'gpu' ? variant : kernelVariant(gpu.adapter.isSoftware);
}

/** Each conv layer's variant per direction (src/kernels/variants.ts resolvePlan); a bad plan or variant name is a GradcamError. */
export function engineChoices(graph: Graph, gpu: GpuContext, options: Pick<EngineOptions, 'variant' | 'plan' | 'planSource'>) {
  const v = options.variant;
  if (v !== undefined && v !== 'cpu' && v !== 'gpu' && !isConvVariant(v)) {
    throw new GradcamError(`unknown kernel variant '${v}'`, "Give 'cpu' or 'gpu' (a kernel family), or a conv variant: gemm-blocked, gemm-tiled, winograd, im2col, direct, gather.");
  }
  const convs = graph.ops.flatMap((op) => (op.kind === 'conv' ? [op] : []));
  return resolvePlan(convs, engineFamily(gpu, v), { variant: v !== 'cpu' && v !== 'gpu' ? v : undefined, plan: options.plan, source: options.planSource });
}

export class Engine {
  private readonly forwardReadback: ReadbackPlan;
  readonly queue: RunQueue;
  /** Preprocessing stages by image size and batch index; made once per size (until dropStages). */
  private stages = new Map<string, PreprocessStage>();
  /** Where the stages' buffers live: freed together by dropStages. */
  private stageEnv: KernelEnv;
  /** Dispatches the next run must do first, by batch index: the preprocessing of pictures written since the last run. */
  /** Per image index (and AFTER_INPUTS), the dispatches the next forward pass starts with. */
  private pending = new Map<number, readonly Dispatch[]>();
  /** How pictures become this model's input (the model's metadata_props, else guessed; settable). */
  recipe: Recipe;
  /** With `tune`: the tuned plan for this engine's batch size, and whether it was measured now or taken from the store (none: `storedOnly` found none). */
  tuning?: TuneReport;

  private constructor(
    readonly gpu: GpuContext,
    readonly model: OnnxModel,
    readonly graph: Graph,
    readonly env: KernelEnv,
    readonly compiled: CompiledForward,
    readonly options: EngineOptions,
    /** Milliseconds spent lowering and compiling (pipelines included). */
    readonly compileMs: number,
    /**
     * The forward pass's read-write buffers (activations, kernel scratch), which grow with the
     * batch: the largest and all together, in bytes, for the whole batch.
     */
    readonly forwardBytes: { largest: number; total: number },
  ) {
    this.forwardReadback = new ReadbackPlan(gpu.device);
    this.addForwardReadback(this.forwardReadback);
    this.stageEnv = env.child();
    this.recipe = options.recipe ?? chooseRecipe({ metadata: model.metadata, inputName: graph.input.name, opTypes: Object.keys(graph.onnxOpCounts) }).recipe;
    this.queue = options.queue ?? new RunQueue();
  }

  /** Lowers and compiles `model`; a model with non-finite weights is refused (checkWeights). */
  static async create(gpu: GpuContext, model: OnnxModel, options: EngineOptions = {}): Promise<Engine> {
    const t0 = performance.now();
    if (!weightsChecked.has(model)) {
      checkWeights(model);
      weightsChecked.add(model);
    }
    const recipe = options.recipe ?? chooseRecipe({ metadata: model.metadata, inputName: model.inputs[0]?.name ?? '', opTypes: [...new Set(model.nodes.map((n) => n.opType))] }).recipe;
    const graph = lower(model, { inputSize: recipe.size, layout: recipe.layout, ...options });
    const family = engineFamily(gpu, options.variant);
    let tuning: TuneReport | undefined;
    let plan = options.plan;
    if (options.tune) {
      if (options.variant !== undefined && options.variant !== family) {
        throw new GradcamError(`tune chooses every conv layer's variant; variant '${options.variant}' would be ignored`, 'Give tune or a conv variant, not both (a plan may override single layers).');
      }
      tuning = await tune(gpu, model, graph, family, options.tune === true ? {} : options.tune);
      if (tuning) plan = { ...tuning.tuned.plan, ...options.plan };
    }
    const env = new KernelEnv(gpu.device, family, options.limits, options.pipelines, engineChoices(graph, gpu, { ...options, plan }));
    const compiled = await checked(gpu.device, 'compiling the forward pass', () => compileForward(env, graph));
    const engine = new Engine(gpu, model, graph, env, compiled, options, performance.now() - t0, { ...env.scratchBytes });
    engine.tuning = tuning;
    return engine;
  }

  get batch(): number {
    return this.graph.batch;
  }

  get inputShape(): number[] {
    return this.graph.input.shape;
  }

  get classCount(): number {
    return perImage(this.graph.tensors.get(this.graph.logits)!);
  }

  /** The forward pass's dispatches (preprocessing excluded), in order: for profiles. */
  get forwardDispatches(): readonly Dispatch[] {
    return this.compiled.dispatches;
  }

  /** The regions of a tensor (all images) for a read-back. */
  tensorRegions(name: string): Region[] {
    const v = this.compiled.view(name);
    return viewRegions(v.buffer, v.offset, v.stride, perImage(this.graph.tensors.get(name)!), this.batch);
  }

  /** Adds the logits (and the model's probabilities) to a read-back; `forwardResult` decodes them. */
  addForwardReadback(plan: ReadbackPlan): void {
    plan.add(LOGITS, this.tensorRegions(this.graph.logits));
    if (this.graph.probabilities) plan.add(PROBABILITIES, this.tensorRegions(this.graph.probabilities));
  }

  /** The bytes `addForwardReadback` reads back. */
  get forwardReadbackBytes(): number {
    return this.forwardReadback.bytes;
  }

  /** Writes a float32 NCHW input tensor (checked first: checkInput). */
  writeInput(data: Float32Array, shape?: readonly number[]): void {
    this.checkInput(data, shape);
    const v = this.compiled.view(this.graph.input.name);
    this.pending.clear();
    this.gpu.device.queue.writeBuffer(v.buffer, 0, data.buffer, data.byteOffset, data.byteLength);
  }

  /** The shape of one image of the input: [1, C, H, W]. */
  get imageShape(): number[] {
    return [1, ...this.inputShape.slice(1)];
  }

  /** Writes one image's float32 tensor ([1, C, H, W], checked first: checkImageTensor) as image `index` of the batch. */
  writeImageTensor(data: Float32Array, shape: readonly number[] | undefined, index: number): void {
    this.checkImageTensor(data, shape);
    this.checkIndex(index);
    const v = this.compiled.view(this.graph.input.name);
    this.pending.delete(index);
    this.gpu.device.queue.writeBuffer(v.buffer, (index * v.stride + v.offset) * 4, data.buffer, data.byteOffset, data.byteLength);
  }

  /** checkInput for one image of the batch: its shape is [1, C, H, W]. */
  checkImageTensor(data: Float32Array, shape?: readonly number[]): void {
    checkTensor(this.graph.input.name, this.imageShape, data, shape);
  }

  private checkIndex(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.batch) throw new InternalError(`image index ${index} is outside the batch of ${this.batch}`);
  }

  /**
   * Checks an input tensor on the CPU, before any GPU work: its shape against the model's, and its
   * values (a NaN input would pass silently: ReLUs turn NaN into 0, and the answer looks confident).
   */
  checkInput(data: Float32Array, shape?: readonly number[]): void {
    checkTensor(this.graph.input.name, this.inputShape, data, shape);
  }

  /** The input's layout: the recipe's, else read from the input's shape (recipes.ts inputLayout). */
  get layout(): Layout {
    return inputLayout(this.inputShape, this.recipe.layout);
  }

  /** Checks a picture before any GPU work: its layout, and the preprocessing stage's limits. */
  checkImage(img: RgbaImage): void {
    const layout = this.layout;
    const [c, h, w] = chwOf(this.inputShape, layout);
    if (c !== 3) {
      throw new GradcamError(`the model's input '${this.graph.input.name}' [${this.inputShape}] read as ${layout} has ${c} channels; pictures need 3`,
        this.recipe.layout ? `The recipe says ${layout}; if the input is the other way round, choose layout ${layout === 'NHWC' ? 'nchw' : 'nhwc'} (--layout on the command line, the recipe's layout in the API or the page's model card), or give a tensor (.npy) instead.` : 'Give a tensor (.npy) instead.');
    }
    checkImage(img);
    PreprocessStage.check(this.env.limits, img.width, img.height, w, h);
  }

  /**
   * Uploads an RGBA picture as image `index` of the batch; the GPU resizes it to the input size and
   * applies `this.recipe` at the start of the next run.
   */
  async writeImage(img: RgbaImage, index = 0): Promise<PreprocessStage> {
    const n = this.inputShape[0];
    const layout = this.layout;
    const [, h, w] = chwOf(this.inputShape, layout);
    this.checkImage(img);
    if (index < 0 || index >= n) throw new GradcamError(`image index ${index} is outside the batch of ${n}`);
    // Keyed by the whole recipe: two recipes of one name (a user's --mean on top of one) differ.
    const key = `${img.width}x${img.height}/${index}/${JSON.stringify(this.recipe)}/${layout}`;
    let stage = this.stages.get(key);
    if (!stage) {
      const v = this.compiled.view(this.graph.input.name);
      stage = await PreprocessStage.create(this.stageEnv, img.width, img.height, w, h, this.recipe, { ...v, offset: index * v.stride + v.offset }, layout);
      this.stages.set(key, stage);
    }
    stage.upload(img);
    this.pending.set(index, stage.dispatches);
    return stage;
  }

  /** How many preprocessing stages (one per picture size and batch index) are kept. */
  get stageCount(): number {
    return this.stages.size;
  }

  /** The GPU bytes those stages hold (pixels, resize scratch). */
  get stageBytes(): number {
    let bytes = this.stageEnv.scratchBytes.total;
    for (const s of this.stages.values()) bytes += s.width * s.height * 4;
    return bytes;
  }

  /**
   * Frees every preprocessing stage (their pixels, scratch and uniforms); the next picture of each
   * size makes its stage again. A Network calls it, between runs, when pictures of many sizes
   * would otherwise keep a stage each forever.
   */
  dropStages(): void {
    for (const s of this.stages.values()) s.destroy();
    this.stages.clear();
    this.pending.clear();
    this.stageEnv.destroy();
    this.stageEnv = this.env.child();
  }

  /**
   * Dispatches for the start of the next forward pass, after the pending preprocessing: aug-smooth's
   * augmented copies of the images written (src/gradcam/aug-smooth.ts). Call it after writing them.
   */
  afterInputs(dispatches: readonly Dispatch[]): void {
    this.pending.delete(AFTER_INPUTS);
    this.pending.set(AFTER_INPUTS, dispatches); // last in the map's order: after every image's preprocessing
  }

  /** Encodes the preprocessing still pending and the forward pass, as one compute pass. */
  encodeForward(encoder: GPUCommandEncoder, ts?: StageTimestamps): void {
    const pending = [...this.pending.values()].flat();
    encodeStage(encoder, 'forward', pending.length ? [...pending, ...this.compiled.dispatches] : this.compiled.dispatches, ts);
    this.pending.clear();
  }

  /**
   * Runs `fn` after any run in flight on this engine or on the network that owns it (runs share
   * buffers and the read-back staging). Not re-entrant: inside, use the `…Now` methods.
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.queue.run(fn);
  }

  /**
   * The forward pass on the input already written; reads back the logits and probabilities. Writing
   * the input and running are two calls: with concurrent callers, use Network.classify (one run).
   */
  classify(): Promise<ForwardResult> {
    return this.exclusive(() => this.classifyNow());
  }

  /** classify() inside a run already holding the queue. Non-finite logits are an error (checkForward). */
  async classifyNow(): Promise<ForwardResult> {
    const encoder = this.gpu.device.createCommandEncoder({ label: 'forward' });
    this.encodeForward(encoder);
    this.forwardReadback.encode(encoder);
    await checked(this.gpu.device, 'forward pass', () => this.gpu.device.queue.submit([encoder.finish()]));
    const read = await this.forwardReadback.read();
    const result = this.forwardResult(read);
    read.done();
    await this.checkForward(result);
    return result;
  }

  /**
   * Throws when the logits or probabilities read back are not finite, naming the first tensor (in
   * forward order) with a non-finite value: costs nothing unless they are.
   */
  async checkForward(r: ForwardResult): Promise<void> {
    const bad = findNonFinite(r.logits) ?? findNonFinite(r.probabilities);
    if (!bad) return;
    const origin = await this.diagnoseForward();
    throw new GradcamError(`the model's scores are not finite (${bad.kind} in ${bad.count} of ${r.logits.length})${origin ? `: ${origin}` : ''}; the model's weights or input may be broken`,
      'The weights and a tensor input are checked for NaN and Inf, so the activations overflow float32 there: check the scale of the weights and of the input.');
  }

  /**
   * The diagnostic pass (only after a run gave non-finite results): reads back the input and every
   * op's output, and names the first, in forward order, holding a non-finite value. Null when all
   * are finite. Inside a run.
   */
  async diagnoseForward(): Promise<string | null> {
    const steps = [{ tensor: this.graph.input.name, node: '' }, ...this.graph.ops.map((o) => ({ tensor: o.output, node: o.name }))];
    const plan = new ReadbackPlan(this.gpu.device);
    for (const { tensor } of steps) plan.add(`tensor:${tensor}`, this.tensorRegions(tensor));
    const read = await this.readNow(plan);
    for (const { tensor, node } of steps) {
      const bad = findNonFinite(read.f32(`tensor:${tensor}`));
      if (bad) {
        return node
          ? `non-finite values (${bad.kind}) first appear in '${tensor}' (node '${node}')`
          : `the input '${tensor}' holds non-finite values (${bad.kind})`;
      }
    }
    return null;
  }

  /** Builds a ForwardResult from a read-back holding `addForwardReadback`'s regions. */
  forwardResult(read: ReadbackResult): ForwardResult {
    const classes = this.classCount;
    const logits = read.f32(LOGITS);
    const probabilities = this.graph.probabilities ? read.f32(PROBABILITIES) : softmaxRows(logits, classes);
    return { logits, probabilities, classes };
  }

  /** Reads back what `plan` holds now (nothing else runs), and destroys the plan's staging. Inside a run. */
  async readNow(plan: ReadbackPlan): Promise<ReadbackResult> {
    try {
      const encoder = this.gpu.device.createCommandEncoder({ label: 'read-back' });
      plan.encode(encoder);
      await checked(this.gpu.device, 'read-back', () => this.gpu.device.queue.submit([encoder.finish()]));
      return await plan.read();
    } finally {
      plan.destroy();
    }
  }

  /** Reads any tensor (all images), for tests and debugging. */
  async readTensor(name: string): Promise<Float32Array> {
    if (!this.graph.tensors.has(name)) {
      const by = this.graph.fusedAway.get(name);
      throw new GradcamError(by ? `tensor '${name}' was fused into '${by}'; create the engine with taps: ['${name}']` : `unknown tensor '${name}'`);
    }
    return this.exclusive(() => this.readTensorNow(name));
  }

  /** readTensor() inside a run already holding the queue. */
  async readTensorNow(name: string): Promise<Float32Array> {
    if (!this.graph.tensors.has(name)) throw new GradcamError(`unknown tensor '${name}'`);
    const read = await this.readNow(new ReadbackPlan(this.gpu.device).add(name, this.tensorRegions(name)));
    return read.f32(name);
  }

  destroy(): void {
    for (const s of this.stages.values()) s.destroy();
    this.stages.clear();
    this.stageEnv.destroy();
    this.forwardReadback.destroy();
    this.env.destroy();
  }
}

/**
 * Checks a tensor input on the CPU, before any GPU work: its shape against `want`, and its values
 * (a NaN input would pass silently: ReLUs turn NaN into 0, and the answer looks confident).
 */
function checkTensor(name: string, want: readonly number[], data: Float32Array, shape?: readonly number[]): void {
  if (shape && shape.join() !== want.join()) {
    throw new GradcamError(`input has shape [${shape}], but the model expects [${want}] (input '${name}')`);
  }
  const n = tensorElements(want);
  if (data.length !== n) throw new GradcamError(`input has ${data.length} values, but the model expects [${want}] = ${n}`);
  const bad = findNonFinite(data);
  if (bad) {
    throw new GradcamError(`input '${name}' has non-finite values (${bad.kind}): ${bad.count} of ${n}, the first at ${indexIn(want, bad.first)}`,
      'The input tensor must hold finite float32 values; check how it was made.');
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

/** The key of Engine.afterInputs' dispatches among the pending ones (image indices are ≥ 0). */
const AFTER_INPUTS = -1;

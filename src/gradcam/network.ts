/**
 * A loaded network: the engine plus everything Grad-CAM adds to it (programs per request shape,
 * display stages per picture size, read-back plans), all made once and reused.
 */
import { GradcamError } from '../errors.ts';
import type { GpuContext } from '../gpu/device.ts';
import type { RgbaImage } from '../image/image.ts';
import { chwOf, type Recipe, sourceRect, unprocess } from '../image/recipes.ts';
import type { OnnxModel } from '../onnx/model.ts';
import { checked, type DeviceLimits, type KernelEnv, type KernelVariant } from '../gpu/dispatch.ts';
import { type DispatchTiming, Profiler } from '../gpu/profiler.ts';
import { tensorElements } from '../graph/ir.ts';
import { Engine, findNonFinite, RunQueue } from '../runtime/engine.ts';
import type { ConvVariantName, Plan } from '../kernels/variants.ts';
import { tune, tunedBatchFor, type TuneOptions, type TuneReport } from '../runtime/tune.ts';
import { encodeStage } from '../runtime/program.ts';
import { ReadbackPlan, type ReadbackResult, viewRegions } from '../runtime/readback.ts';
import { StageTimer } from '../runtime/timing.ts';
import { checkLabelCount, LABELS_KEY, labelOf, labelsFromMetadata } from './labels.ts';
import { candidateLayers, type LayerInfo } from './layers.ts';
import { checkProgramFits, DISPLAY_READBACK_MAX, type DisplayPlan, type DisplayWant, fitDisplay, programBuffers, type ProgramShape, storageLimit } from './limits.ts';
import { OverlayStage } from './overlay.ts';
import { EIGEN_TOLERANCE, isMultiPass, type Method, methodSpec } from './methods.ts';
import { checkInputAttributions, completeness, runInputPasses } from './attributions.ts';
import { checkMultiPass, runMultiPass } from './multipass.ts';
import { GradcamProgram, type ProgramRequest } from './program.ts';
import { AUG_COPIES } from './aug-smooth.ts';
import { type PlannedRequest, planRequest } from './request.ts';
import type {
  BatchOptions, Classification, ClassifyOptions, GradcamBatchOptions, GradcamMap, GradcamOptions, GradcamResult, ModelInput, PassProgress, Prediction, Reduction, TensorInput,
} from './types.ts';
import { createBuffer, destroyBuffer } from '../gpu/buffers.ts';
import { checkClassifyOptions, checkGradcamOptions, checkInputForm, checkInputsForm, checkRuns, checkTop } from './arguments.ts';

export interface NetworkOptions {
  /** Tensor names that must stay addressable (fusion would otherwise hide some pre-ReLU outputs). */
  taps?: string[];
  /**
   * How pictures become the input (its size and layout included, for an input whose height and
   * width are open); default: the model's metadata_props, else guessed (src/image/recipes.ts).
   */
  recipe?: Recipe;
  /** Class names, one per class (else a GradcamError); default: the model's metadata_props 'labels', else ImageNet's for a 1000-class model, else 'class k'. */
  labels?: readonly string[];
  /**
   * 'cpu' or 'gpu': the kernel family whose fixed rules choose each conv layer's variant (default: by
   * adapter); or a conv variant (gemm-blocked, gemm-tiled, winograd, im2col, direct, gather:
   * src/kernels/variants.ts) for every conv layer and direction where it applies.
   */
  variant?: KernelVariant | ConvVariantName;
  /** Conv variants by layer name and direction, over `variant` and the fixed rules (JSON: { "conv1": { "forward": "im2col" } }). */
  plan?: Plan;
  /** Where `plan` came from, for its errors (a file name). */
  planSource?: string;
  /**
   * Time every applicable variant on every distinct conv layer shape on this adapter and keep the
   * fastest (src/runtime/tune.ts), or take the plan stored for this adapter, model and engine
   * version (no timing). `network.tuning` says which. A plan is per batch size: tuned at the load's
   * batch and at `batchSizes`; an engine for another batch size (classify / gradCAM with a
   * batchSize, the multi-pass methods' batches) takes the plan of the largest tuned size not above
   * its own (planFor).
   */
  tune?: boolean | TuneOptions;
  /** Limits lower than the device's (for tests of the folding, refusal and display-scaling paths). */
  limits?: Partial<DeviceLimits>;
}

function isTensor(x: ModelInput): x is TensorInput {
  return (x as TensorInput).shape !== undefined;
}

/**
 * Runs on one network are serialised (RunQueue): each `classify`, `gradCAM` and `readTensor` call
 * is one run, from the input write to the decoded result, in call order, also across the engine
 * replacement of `keep`. Concurrent calls give exactly the results of the same calls made one at a
 * time. Every call checks its arguments first (src/gradcam/arguments.ts). After `destroy()`, every
 * call rejects with a GradcamError saying so (see destroy).
 */
export class Network {
  private readonly queue: RunQueue;
  private programs = new Map<string, GradcamProgram>();
  private overlays = new Map<string, OverlayStage>();
  private pictures = new Map<string, GPUBuffer>();
  private readbacks = new Map<string, ReadbackPlan>();
  /** Engines compiled for other batch sizes than `engine`'s, least recently used first (engineFor). */
  private batchEngines = new Map<number, Engine>();
  /** Per engine batch: where its display stages live (dropDisplay frees them). */
  private displayEnvs = new Map<number, KernelEnv>();
  private timer: StageTimer;
  /** With the `tune` option: the tuned plan at the load's batch size, measured at this load or taken from the store. */
  tuning?: TuneReport;
  /** With the `tune` option: the tuned plans by batch size (the load's and TuneOptions.batchSizes). */
  readonly tunings = new Map<number, TuneReport>();

  private constructor(public engine: Engine, readonly model: OnnxModel, private options: NetworkOptions, queue: RunQueue) {
    this.queue = queue;
    this.timer = new StageTimer(engine.gpu.device, 3, engine.gpu.features.timestamps);
    if (options.recipe) engine.recipe = options.recipe;
  }

  /** Loads `model`; a model with NaN or infinite weights is refused, naming the initializer. */
  static async load(gpu: GpuContext, model: OnnxModel, options: NetworkOptions = {}): Promise<Network> {
    const queue = new RunQueue();
    const labels = options.labels ?? labelsFromMetadata(model.metadata);
    const tuneOptions = options.tune === true ? {} : options.tune || undefined;
    const sizes = tuneOptions?.batchSizes ?? [];
    for (const b of sizes) {
      if (!Number.isSafeInteger(b) || b < 1) throw new GradcamError(`tune.batchSizes: ${String(b)} is not a batch size`, 'Give integers ≥ 1: the batch sizes to tune at.');
    }
    const engine = await Engine.create(gpu, model, {
      taps: options.taps, variant: options.variant, plan: options.plan, planSource: options.planSource, tune: options.tune, limits: options.limits, queue, recipe: options.recipe,
    });
    if (labels) checkLabelCount(labels, engine.classCount, options.labels ? 'labels' : `the model's metadata_props '${LABELS_KEY}'`);
    const network = new Network(engine, model, { ...options, labels, tune: undefined }, queue);
    network.tuning = engine.tuning;
    if (engine.tuning) network.tunings.set(engine.batch, engine.tuning);
    // The other batch sizes asked for, now (engines made later take these plans as they are: no timing again).
    for (const b of new Set(sizes)) {
      if (!tuneOptions || b === engine.batch) continue;
      const report = await tune(gpu, model, engine.graph, engine.env.variant, tuneOptions, b);
      if (report) network.tunings.set(b, report);
    }
    return network;
  }

  /**
   * The plan an engine of `batch` images runs: the tuned plan of `batch`, else of the largest tuned
   * batch size below it (tunedBatchFor; `tunedAt` says which), with the `plan` option's entries over
   * it; with none, the `plan` option alone (and the fixed rules).
   */
  planFor(batch: number): { plan?: Plan; tunedAt?: number } {
    const at = tunedBatchFor(this.tunings.keys(), batch);
    if (at === undefined) return { plan: this.options.plan };
    return { plan: { ...this.tunings.get(at)!.tuned.plan, ...this.options.plan }, tunedAt: at };
  }

  get graph() {
    return this.engine.graph;
  }

  get classCount(): number {
    return this.engine.classCount;
  }

  /** Milliseconds the engine in use spent lowering and compiling (pipelines included). */
  get compileMs(): number {
    return this.engine.compileMs;
  }

  /**
   * Times each dispatch of the forward pass on the input written last (one run; needs the adapter's
   * 'timestamp-query' feature): per-kernel times for a profile.
   */
  profileForward(): Promise<DispatchTiming[]> {
    return this.run(async () => {
      const dispatches = this.engine.forwardDispatches;
      const profiler = new Profiler(this.engine.gpu.device, dispatches.length);
      try {
        return await profiler.run(dispatches);
      } finally {
        profiler.destroy();
      }
    });
  }

  /** Candidate feature layers (tensors with spatial extent the score depends on), in forward order. */
  layers(): LayerInfo[] {
    return candidateLayers(this.graph);
  }

  /** Checks an input before any GPU work (shape, finite values, picture limits); `engine`'s input is one image. */
  private checkInput(input: ModelInput, engine = this.engine): void {
    if (isTensor(input)) engine.checkImageTensor(input.data, input.shape);
    else engine.checkImage(input as RgbaImage);
  }

  /** checkInput for input `index` of a batched call: a failure names the input. */
  private checkInputOf(input: ModelInput, index: number, count: number): void {
    try {
      this.checkInput(input);
    } catch (e) {
      if (e instanceof GradcamError) throw new GradcamError(`input ${index} of ${count}: ${e.message}`, e.hint);
      throw e;
    }
  }

  /**
   * Writes the input as image `index` of `engine`'s batch; with `picture`, also the picture the
   * overlays are drawn over.
   */
  private async writeInput(engine: Engine, input: ModelInput, withPicture = false, index = 0): Promise<{ picture?: GPUBuffer; width: number; height: number }> {
    if (!isTensor(input)) {
      const stage = await engine.writeImage(input as RgbaImage, index);
      return { picture: stage.pixels, width: input.width, height: input.height };
    }
    engine.writeImageTensor(input.data, input.shape, index);
    const nhwc = engine.layout === 'NHWC';
    const [c, h, w] = chwOf(input.shape, engine.layout);
    if (!withPicture) return { width: w, height: h };
    // The picture under the overlay: the tensor with the recipe undone.
    const rgba = new Uint8Array(w * h * 4);
    for (let i = 0; i < w * h; i++) {
      const v = (ch: number) => input.data[nhwc ? i * c + Math.min(ch, c - 1) : Math.min(ch, c - 1) * w * h + i];
      rgba.set([...unprocess(engine.recipe, [v(0), v(1), v(2)]), 255], i * 4);
    }
    const key = `${engine.batch}|${w}x${h}|${index}`;
    let picture = this.pictures.get(key);
    if (!picture) {
      picture = createBuffer(engine.gpu.device, { label: 'picture', size: w * h * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
      this.pictures.set(key, picture);
    }
    engine.gpu.device.queue.writeBuffer(picture, 0, rgba);
    return { picture, width: w, height: h };
  }

  private predictions(logits: Float32Array, probabilities: Float32Array, top: number): Prediction[] {
    const n = this.classCount;
    return [...Array(n).keys()]
      .sort((a, b) => logits[b] - logits[a] || a - b)
      .slice(0, top)
      .map((c) => ({ class: c, label: labelOf(c, n, this.options.labels), score: logits[c], probability: probabilities[c] }));
  }

  /**
   * The forward pass only: top classes, logits and probabilities of image 0. Non-finite input
   * values or scores are a GradcamError naming where they first appear.
   *
   * With an array of inputs: one Classification per input, in order, computed in batches (see
   * `gradCAM`); `options.top` (default 5) predictions each. With `withInput`, also the model input
   * the forward pass ran on (the picture preprocessed on the GPU), read back in the same run.
   */
  classify(input: ModelInput, top?: number): Promise<Classification>;
  classify(input: ModelInput, top: number, withInput: true): Promise<Classification & { input: TensorInput }>;
  classify(inputs: readonly ModelInput[], options?: ClassifyOptions): Promise<Classification[]>;
  classify(input: ModelInput | readonly ModelInput[], arg?: number | ClassifyOptions, withInput = false): Promise<Classification | Classification[]> {
    if (Array.isArray(input)) return this.classifyBatched(input, arg);
    return this.run(async () => {
      checkInputForm(input, 'input');
      // classify(input, top), or classify(input, { top }) as with an array.
      if (typeof arg === 'object' && arg !== null) checkClassifyOptions(arg, this.classCount, false);
      const top = arg === undefined ? 5 : typeof arg === 'object' && arg !== null ? arg.top ?? 5 : arg;
      checkTop(top, this.classCount);
      const one = input as ModelInput;
      if (isTensor(one)) this.engine.checkInput(one.data, one.shape);
      else this.engine.checkImage(one as RgbaImage);
      if (isTensor(one)) this.engine.writeInput(one.data, one.shape);
      else await this.engine.writeImage(one as RgbaImage);
      const r = await this.engine.classifyNow();
      const result = { predictions: this.predictions(r.logits, r.probabilities, top), logits: r.logits, probabilities: r.probabilities };
      if (!withInput) return result;
      // The input the forward pass ran on, read back in the same run (no other call in between).
      const shape = [1, ...this.engine.inputShape.slice(1)];
      const data = (await this.engine.readTensorNow(this.graph.input.name)).slice(0, shape.reduce((a, b) => a * b, 1));
      return { ...result, input: { shape, data } };
    });
  }

  private async classifyBatched(inputs: readonly ModelInput[], options: unknown): Promise<Classification[]> {
    this.checkAlive();
    checkInputsForm(inputs);
    checkClassifyOptions(options, this.classCount, true);
    const o = (options ?? {}) as ClassifyOptions;
    return this.batched(inputs, o, () => 0, (chunk, slots) => this.classifyNow(chunk, slots, o.top ?? 5));
  }

  /** One batch of classify: the forward pass on `slots` images, `inputs` written into the first ones (inside a run). */
  private async classifyNow(inputs: readonly ModelInput[], slots: number, top: number): Promise<Classification[]> {
    const engine = await this.engineFor(slots);
    this.trimDisplay(engine);
    for (let n = 0; n < inputs.length; n++) await this.writeInput(engine, inputs[n], false, n);
    const r = await engine.classifyNow();
    const c = this.classCount;
    return inputs.map((_, n) => {
      const logits = r.logits.slice(n * c, (n + 1) * c);
      const probabilities = r.probabilities.slice(n * c, (n + 1) * c);
      return { predictions: this.predictions(logits, probabilities, top), logits, probabilities };
    });
  }

  /** The Grad-CAM program of the last run (profileMethods times its methods). */
  private lastProgram?: GradcamProgram;
  /** The multi-pass methods' milliseconds in the last run (their passes: multipass.ts, attributions.ts), for profileMethods. */
  private lastPassesByMethod = new Map<Method, number>();

  /**
   * gradCAM of one input, plus each method's time (`timings.methodMs`): after the run, each method's
   * dispatches (at every layer) are replayed alone `runs` times on the activations and gradients it
   * left, median ms (GPU timestamps when the adapter has them, else the CPU clock). One run on the
   * queue. For comparing methods side by side (the page's grid).
   */
  profileMethods(input: ModelInput, options: GradcamOptions = {}, runs = 3): Promise<GradcamResult> {
    return this.run(async () => {
      checkInputForm(input, 'input');
      checkGradcamOptions(options, false);
      checkRuns(runs);
      this.checkInput(input);
      const [result] = await this.gradCAMNow([input], 1, options, false);
      result.timings.methodMs = await this.lastProgram!.timeMethods(runs, this.timer.gpuTimed);
      // A multi-pass method's own work is its passes (CPU clock, in the run), not only the map that replays: both, and the passes' part said.
      for (const [m, ms] of this.lastPassesByMethod) result.timings.methodMs[m] = (result.timings.methodMs[m] ?? 0) + ms;
      if (this.lastPassesByMethod.size) result.timings.methodPassesMs = Object.fromEntries(this.lastPassesByMethod);
      return result;
    });
  }

  /** Reads any tensor of the last single-image run (all images of the network's own batch), for tests and debugging; one run. */
  readTensor(name: string): Promise<Float32Array> {
    return this.run(async () => {
      if (!this.graph.tensors.has(name)) {
        const by = this.graph.fusedAway.get(name);
        throw new GradcamError(by ? `tensor '${name}' was fused into '${by}'; load the network with taps: ['${name}']` : `unknown tensor '${name}'`);
      }
      return this.engine.readTensorNow(name);
    });
  }

  private async program(engine: Engine, key: string, request: ProgramRequest): Promise<GradcamProgram> {
    let p = this.programs.get(key);
    if (!p) {
      p = await checked(engine.gpu.device, 'compiling the Grad-CAM program', () => GradcamProgram.create(engine, request));
      this.programs.set(key, p);
    }
    return p;
  }

  /**
   * The engine for a batch of `slots` images: the network's own, or one compiled for that batch
   * (sharing the pipelines) and kept among the MAX_BATCH_ENGINES most recently used; an engine
   * pushed out is destroyed with its programs and display stages.
   */
  private async engineFor(slots: number): Promise<Engine> {
    if (slots === this.engine.batch) return this.engine;
    let engine = this.batchEngines.get(slots);
    if (engine) {
      this.batchEngines.delete(slots); // most recently used last
    } else {
      engine = await Engine.create(this.engine.gpu, this.model, {
        taps: this.options.taps, variant: this.options.variant, plan: this.planFor(slots).plan, planSource: this.options.planSource, limits: this.options.limits, queue: this.queue, batch: slots, pipelines: this.engine.env.pipelines, recipe: this.engine.recipe,
      });
    }
    this.batchEngines.set(slots, engine);
    engine.recipe = this.engine.recipe;
    for (const [b, old] of this.batchEngines) {
      if (this.batchEngines.size <= MAX_BATCH_ENGINES) break;
      this.dropCaches(b);
      old.destroy();
      this.batchEngines.delete(b);
    }
    return engine;
  }

  /** The engine the multi-pass methods' passes run on (multipass.ts); one is kept, made again for another batch size. */
  private passes?: Engine;

  /** The pass engine for batches of `batch` images: never one of the engines whose buffers hold a run's first pass. */
  private async passEngine(batch: number): Promise<Engine> {
    if (this.passes?.batch === batch) return this.passes;
    this.passes?.destroy();
    this.passes = undefined;
    this.passes = await Engine.create(this.engine.gpu, this.model, {
      taps: this.options.taps, variant: this.options.variant, plan: this.planFor(batch).plan, planSource: this.options.planSource, limits: this.options.limits, queue: this.queue, batch, pipelines: this.engine.env.pipelines, recipe: this.engine.recipe,
    });
    return this.passes;
  }

  /** Re-lowers the graph when a requested tensor was hidden by fusion. */
  private async keep(layers: string[], score?: string): Promise<void> {
    const hidden = [...layers, ...(score ? [score] : [])].filter((l) => this.graph.fusedAway.has(l));
    if (hidden.length) {
      // Rebuild the engine keeping these tensors (a one-time cost per new tap); the batch engines go.
      const taps = [...new Set([...(this.options.taps ?? []), ...hidden])];
      const recipe = this.engine.recipe;
      this.dropCaches();
      for (const e of this.batchEngines.values()) e.destroy();
      this.batchEngines.clear();
      this.passes?.destroy();
      this.passes = undefined;
      this.engine.destroy();
      this.engine = await Engine.create(this.engine.gpu, this.model, { taps, variant: this.options.variant, plan: this.planFor(this.engine.batch).plan, planSource: this.options.planSource, limits: this.options.limits, queue: this.queue, pipelines: this.engine.env.pipelines, recipe });
      this.engine.recipe = recipe;
      this.options = { ...this.options, taps };
    }
  }

  /**
   * Drops the cached programs, display stages, pictures and read-backs of the engine for `batch`
   * images (all engines without it). Programs live in their engine's buffers (freed with it).
   */
  private dropCaches(batch?: number): void {
    this.dropDisplay(batch);
    for (const key of [...this.programs.keys()]) if (batch === undefined || key.startsWith(`${batch}|`)) this.programs.delete(key);
  }

  /** Frees the display stages, pictures and read-backs of the engine for `batch` images (all without it). */
  private dropDisplay(batch?: number): void {
    const mine = (key: string) => batch === undefined || key.startsWith(`${batch}|`);
    for (const [key, r] of this.readbacks) if (mine(key)) { r.destroy(); this.readbacks.delete(key); }
    for (const [key, p] of this.pictures) if (mine(key)) { destroyBuffer(p); this.pictures.delete(key); }
    for (const key of this.overlays.keys()) if (mine(key)) this.overlays.delete(key);
    for (const [b, env] of this.displayEnvs) if (batch === undefined || b === batch) { env.destroy(); this.displayEnvs.delete(b); }
  }

  /** Where the display stages of `engine` live (freed together by dropDisplay). */
  private displayEnv(engine: Engine): KernelEnv {
    let env = this.displayEnvs.get(engine.batch);
    if (!env) {
      env = engine.env.child();
      this.displayEnvs.set(engine.batch, env);
    }
    return env;
  }

  /**
   * Keeps the per-picture-size caches of `engine` bounded: before a run, when its preprocessing
   * and display stages hold more than DISPLAY_CACHE_BYTES of GPU memory or number more than
   * DISPLAY_CACHE_STAGES, they are all freed (and made again for the sizes that come next).
   * Pictures of many sizes (a folder of photos) would otherwise keep a stage each, for good; a
   * session with a few sizes never reaches the bounds.
   */
  private trimDisplay(engine: Engine): void {
    const mine = (key: string) => key.startsWith(`${engine.batch}|`);
    let bytes = engine.stageBytes + (this.displayEnvs.get(engine.batch)?.scratchBytes.total ?? 0);
    for (const [key, p] of this.pictures) if (mine(key)) bytes += p.size;
    const stages = engine.stageCount + [...this.overlays.keys()].filter(mine).length;
    if (bytes <= DISPLAY_CACHE_BYTES && stages <= DISPLAY_CACHE_STAGES) return;
    this.dropDisplay(engine.batch);
    engine.dropStages();
  }

  /**
   * Runs `inputs` in batches (each batch one run), after checking all of them: `size` is the batch
   * size asked for (or default from the limits), `fits(i)` the read-back bytes input i adds. A batch
   * of r < B images runs on the engine for the smallest power of two ≥ r (or B), the other images
   * of it padding: the kernels compute each image on its own, so padding changes no result.
   */
  private async batched<R>(inputs: readonly ModelInput[], options: BatchOptions<R> & { batchSize?: number }, displayBytes: (i: number) => number,
    run: (chunk: readonly ModelInput[], slots: number) => Promise<R[]>, request?: ProgramShape, imagesPerInput = 1): Promise<R[]> {
    // The inputs' form and the options were checked by the caller (arguments.ts); here, against the model.
    inputs.forEach((x, i) => this.checkInputOf(x, i, inputs.length));
    // A layer hidden by fusion: re-lower first (one run), so that its buffers can be sized.
    if (request && options.batchSize === undefined) await this.run(() => this.keep(request.layers, request.score));
    // By default as many inputs as fit, each taking `imagesPerInput` of the engine's images (aug-smooth: 6).
    const size = options.batchSize ?? Math.max(1, Math.floor(this.defaultBatchSize(request) / imagesPerInput));
    const results: R[] = [];
    const budget = readbackBudget(this.engine.env.limits);
    let start = 0;
    while (start < inputs.length) {
      // As many images as the batch size, and as the read-back of their displays allows (at least one).
      let end = start + 1;
      let bytes = displayBytes(start);
      while (end < inputs.length && end - start < size && bytes + displayBytes(end) <= budget) bytes += displayBytes(end++);
      const chunk = inputs.slice(start, end);
      const slots = slotsFor(chunk.length, size);
      const out = await this.run(() => run(chunk, slots));
      out.forEach((r, i) => {
        results.push(r);
        options.onResult?.(r, start + i);
      });
      start = end;
    }
    return results;
  }

  /**
   * The batch size used by default for `request` (for the forward pass alone without one): the most
   * images whose largest buffer (forward activations and kernel scratch, or the request's gradients
   * and maps) the device binds (maxStorageBufferBindingSize, maxBufferSize), and whose buffers
   * together stay within maxBufferSize (WebGPU tells no memory size; that limit stands for it); at
   * most MAX_BATCH.
   */
  defaultBatchSize(request?: ProgramShape): number {
    const limits = this.engine.env.limits;
    const b0 = this.engine.batch;
    const program = request ? programBuffers(this.engine, request).map((b) => b.bytes / b0) : [];
    const largest = Math.max(this.engine.forwardBytes.largest / b0, ...program);
    const total = program.reduce((a, b) => a + b, this.engine.forwardBytes.total / b0);
    const fit = Math.min(Math.floor(storageLimit(limits).bytes / largest), Math.floor(limits.maxBufferSize / total));
    return Math.max(1, Math.min(MAX_BATCH, fit));
  }

  /**
   * Grad-CAM maps of `input` (one image) for the requested classes and layers: one forward, one
   * backward pass, one run (see the class comment). Requests that do not fit the device's limits
   * are refused before any GPU work; a display too large for them is scaled down (`downscaled`).
   *
   * With an array of inputs: one GradcamResult per input, in order, the same (bit for bit) as one
   * call per input. They run in batches of `options.batchSize` images (default: defaultBatchSize),
   * each batch one run (forward, backward and maps for all its images, one read-back); programs
   * are compiled once per batch size. Every input is checked before any GPU work (an error names
   * the input's index); `onResult` sees each result as soon as its batch is done.
   */
  gradCAM(input: ModelInput, options?: GradcamOptions): Promise<GradcamResult>;
  gradCAM(inputs: readonly ModelInput[], options?: GradcamBatchOptions): Promise<GradcamResult[]>;
  gradCAM(input: ModelInput | readonly ModelInput[], options: GradcamBatchOptions = {}): Promise<GradcamResult | GradcamResult[]> {
    if (!Array.isArray(input)) {
      return this.run(async () => {
        checkInputForm(input, 'input');
        checkGradcamOptions(options, false);
        if (this.engine.batch !== 1) throw new GradcamError(`gradCAM explains one image; this network was compiled for a batch of ${this.engine.batch}`, 'Pass an array of images: gradCAM(net, [a, b, ...]).');
        this.checkInput(input as ModelInput);
        return (await this.gradCAMNow([input as ModelInput], 1, options, false))[0];
      });
    }
    return this.gradCAMBatched(input as readonly ModelInput[], options);
  }

  private async gradCAMBatched(inputs: readonly ModelInput[], options: GradcamBatchOptions): Promise<GradcamResult[]> {
    this.checkAlive();
    checkInputsForm(inputs);
    checkGradcamOptions(options, true);
    // Planned once on the graph (the request is checked before any GPU work); each batch plans again
    // on the engine in use, which keep() may have re-lowered.
    const request = planRequest(this.graph, options);
    const display = this.displayWant(options);
    const perImage = display.upsampled || display.overlay ? (i: number) => this.displayPlan(inputs[i], request, display).bytes : () => 0;
    return this.batched(inputs, options, perImage, (chunk, slots) => this.gradCAMNow(chunk, slots, options, true), request, request.augSmooth ? AUG_COPIES : 1);
  }

  private displayWant(options: GradcamOptions): DisplayWant {
    return { upsampled: options.upsample ?? true, overlay: !!options.overlay };
  }

  /**
   * An image's display size, settled before any GPU work: the picture's, or smaller to fit the
   * limits, as for a call with this image alone; and the bytes its display reads back.
   */
  private displayPlan(input: ModelInput, req: PlannedRequest, want: DisplayWant): DisplayPlan & { bytes: number } {
    const [, th, tw] = isTensor(input) ? chwOf(input.shape, this.engine.layout) : [0, 0, 0];
    const size = isTensor(input) ? { width: tw, height: th } : { width: input.width, height: input.height };
    if (!want.upsampled && !want.overlay) return { ...size, bytes: 0 };
    const { layers, k, methods } = req;
    const maps = layers.length * methods.length * k;
    const planes = methods.length * layers.reduce((a, l) => a + tensorElements(this.graph.tensors.get(l)!.shape.slice(2)), 0);
    const otherBytes = this.engine.forwardReadbackBytes / this.engine.batch + this.timer.readbackBytes
      + k * 4 + k * planes * 4 + maps * 8; // classes, raw maps, ranges
    const plan = fitDisplay(size.width, size.height, maps, want, otherBytes, this.engine.env.limits);
    return { ...plan, bytes: OverlayStage.readbackBytes(maps, plan.width, plan.height, want) + otherBytes };
  }

  /**
   * One run: `inputs` as the first images of a batch of `slots` (the rest padding), forward,
   * backward and maps for all, one read-back; a result per input. `batch`: say so in the results.
   */
  private async gradCAMNow(inputs: readonly ModelInput[], slots: number, options: GradcamOptions, batch: boolean): Promise<GradcamResult[]> {
    const t0 = performance.now();
    const req = planRequest(this.graph, options);
    checkMultiPass(req.methods, options);
    checkInputAttributions(req.methods, options, this.engine);
    const { layers, k, explicit, reduction, methods, counterfactual, eigenSmooth, augSmooth } = req;
    await this.keep(layers, options.reductionLayer);
    // Aug-smooth: input n is image n · copies of an engine of copies images per input (aug-smooth.ts).
    const copies = augSmooth ? AUG_COPIES : 1;
    const engine = await this.engineFor(slots * copies);
    const programKey = `${slots * copies}|${JSON.stringify([layers, k, reduction, options.reductionLayer ?? '', methods, counterfactual, eigenSmooth, augSmooth])}`;
    if (!this.programs.has(programKey)) checkProgramFits(engine, { layers, k, reduction, score: options.reductionLayer, methods }, engine.env.limits);
    const want = this.displayWant(options);
    const display = want.upsampled || want.overlay;
    const alpha = typeof options.overlay === 'object' ? options.overlay.alpha ?? 0.5 : 0.5;
    const plans = inputs.map((x) => this.displayPlan(x, req, want));
    const program = await this.program(engine, programKey, { layers, classesPerImage: k, reduction, score: options.reductionLayer, methods, counterfactual, eigenSmooth, augSmooth });
    this.lastProgram = program;
    this.lastPassesByMethod.clear();
    const { device } = engine.gpu;
    this.trimDisplay(engine);
    const overlays: (OverlayStage | undefined)[] = [];
    const keys: string[] = [];
    for (let n = 0; n < inputs.length; n++) {
      const { picture, width, height } = await this.writeInput(engine, inputs[n], display, n * copies);
      const plan = plans[n];
      if (!display) continue;
      // The part of the picture the model saw: all of it, or the recipe's centre crop (a tensor is all seen).
      const [, inH, inW] = chwOf(engine.inputShape, engine.layout);
      const seen = isTensor(inputs[n]) ? { x: 0, y: 0, w: width, h: height } : sourceRect(engine.recipe, width, height, inW, inH);
      const key = `${programKey}|${n}|${width}x${height}|${plan.width}x${plan.height}|${alpha}|${seen.x},${seen.y},${seen.w},${seen.h}`;
      let overlay = this.overlays.get(key);
      if (!overlay) {
        overlay = await checked(device, 'compiling the display stage',
          () => OverlayStage.create(this.displayEnv(engine), program.layers, k, picture!, plan.width, plan.height, alpha, { width, height }, n * copies * k, seen));
        this.overlays.set(key, overlay);
      }
      overlays.push(overlay);
      keys.push(key);
    }
    program.writeClasses(explicit && Array.from({ length: slots * copies }, () => explicit).flat());
    // Set on every run (empty without aug-smooth): an engine of 6 images may also serve plain batches of 6.
    engine.afterInputs(program.augment ? [program.augment] : []);
    const rbKey = `${programKey}|${inputs.length}|${want.upsampled}|${want.overlay}|${!!options.inspect}|${keys.join('|')}`;
    let readback = this.readbacks.get(rbKey);
    if (!readback) {
      readback = new ReadbackPlan(device);
      engine.addForwardReadback(readback);
      program.addReadback(readback, !!options.inspect);
      overlays.forEach((o, n) => o?.addReadback(readback!, want, n));
      this.timer.addReadback(readback);
      this.readbacks.set(rbKey, readback);
    }

    const stages = [program.backwardStage, [...program.cam, ...overlays.flatMap((o) => o?.dispatches ?? [])]];
    let cpuTimes: number[] = [];
    // The multi-pass methods' passes (multipass.ts) need the first pass's classes and fill the weights
    // the maps read: they run between the backward stage and the maps.
    // One progress over both runners: the input passes count on from the channel passes' total.
    let channelPasses = 0;
    const report = options.onProgress;
    const progress = (first: boolean) => report && ((p: PassProgress) => {
      if (first) channelPasses = p.total;
      const offset = first ? 0 : channelPasses;
      report({ ...p, done: p.done + offset, total: p.total + offset });
    });
    const passes = methods.some(isMultiPass)
      ? async () => await runMultiPass({ first: engine, images: inputs.length, program, options: { ...options, onProgress: progress(true) }, passEngine: (b) => this.passEngine(b), defaultBatch: this.defaultBatchSize(), byMethod: this.lastPassesByMethod })
        + await runInputPasses({ first: engine, images: inputs.length, program, options: { ...options, onProgress: progress(false) }, passEngine: (b) => this.passEngine(b), defaultBatch: this.defaultBatchSize({ layers: [engine.graph.input.name], k, reduction }), byMethod: this.lastPassesByMethod })
      : undefined;
    let passesMs: number | undefined;
    if (this.timer.gpuTimed) {
      let encoder = device.createCommandEncoder({ label: 'gradcam' });
      engine.encodeForward(encoder, this.timer.writes(0));
      for (const [i, d] of stages.entries()) {
        if (i === 1 && passes) {
          const first = encoder;
          await checked(device, 'Grad-CAM run', () => device.queue.submit([first.finish()]));
          passesMs = await passes();
          encoder = device.createCommandEncoder({ label: 'gradcam' });
        }
        encodeStage(encoder, i === 0 ? 'backward' : 'gradcam', d, this.timer.writes(i + 1));
      }
      this.timer.resolve(encoder);
      readback.encode(encoder);
      await checked(device, 'Grad-CAM run', () => device.queue.submit([encoder.finish()]));
    } else {
      // No timestamps: submit stage by stage and time each on the CPU.
      let t = performance.now();
      for (let i = 0; i < 3; i++) {
        if (i === 2 && passes) {
          passesMs = await passes();
          t = performance.now();
        }
        const encoder = device.createCommandEncoder();
        if (i === 0) engine.encodeForward(encoder);
        else encodeStage(encoder, 'stage', stages[i - 1]);
        if (i === 2) readback.encode(encoder);
        await checked(device, 'Grad-CAM run', () => device.queue.submit([encoder.finish()]));
        await device.queue.onSubmittedWorkDone();
        cpuTimes.push(performance.now() - t);
        t = performance.now();
      }
    }
    const read = await readback.read();
    const results = this.assemble(read, { engine, images: inputs.length, copies, program, overlays, want, reduction, plans, cpuTimes, totalMs: performance.now() - t0, inspect: !!options.inspect });
    for (const [n, result] of results.entries()) {
      await this.checkFinite(result, program, engine);
      if (plans[n].downscaled) result.downscaled = plans[n].downscaled;
      if (batch) result.batch = { images: inputs.length, slots, index: n };
      if (passesMs !== undefined) result.timings.passesMs = passesMs;
    }
    return results;
  }

  /**
   * Throws when the scores or maps read back are not finite, naming where non-finite values first
   * appear: in the forward pass (the first op output), else in the backward pass (the first gradient
   * written), else in the map's sum. The diagnosis runs only on that failure path.
   */
  private async checkFinite(result: GradcamResult, program: GradcamProgram, engine: Engine): Promise<void> {
    await engine.checkForward({ logits: result.logits, probabilities: result.probabilities, classes: this.classCount });
    const badMap = result.maps.find((m) => findNonFinite(m.raw));
    if (!badMap) return;
    const kind = findNonFinite(badMap.raw)!.kind;
    const S = badMap.reduction === 'softmax' ? badMap.probability : badMap.score;
    if (badMap.method === 'ablationcam' && S === 0) {
      throw new GradcamError(`ablationcam's map of class ${badMap.class} at '${badMap.layer}' is not finite (${kind}): its weights (S − S_k) / S divide by the class's score S, which is 0 in float32 (${badMap.reduction === 'softmax' ? `probability ${badMap.probability}` : 'logit 0'})`,
        "Explain a likelier class, or use reduction 'logit'.");
    }
    const origin = await engine.diagnoseForward() ?? await this.diagnoseBackward(program, engine)
      ?? `the gradients are finite: the sum Σ α·A at '${badMap.layer}' overflows float32`;
    throw new GradcamError(`the Grad-CAM map of class ${badMap.class} at '${badMap.layer}' is not finite (${kind}): ${origin}; the model's weights or input may be broken`,
      'The weights and a tensor input are checked for NaN and Inf, so values overflow float32 there: check the scale of the weights and of the input.');
  }

  /** The first gradient, in the order the backward pass writes them, holding a non-finite value (inside a run). */
  private async diagnoseBackward(program: GradcamProgram, engine: Engine): Promise<string | null> {
    const { device } = engine.gpu;
    for (const step of program.backward.trail) {
      const plan = new ReadbackPlan(device).add('gradient', viewRegions(step.view.buffer, step.view.offset, step.view.stride, step.perItem, program.items));
      const bad = findNonFinite((await engine.readNow(plan)).f32('gradient'));
      if (bad) return `non-finite values (${bad.kind}) first appear in the gradient of '${step.tensor}' (the backward pass of node '${step.node}')`;
    }
    return null;
  }

  /** The result from a run's read-back: each part decoded by the module that added it. */
  private assemble(read: ReadbackResult, run: {
    engine: Engine; images: number; program: GradcamProgram; overlays: (OverlayStage | undefined)[]; want: DisplayWant; reduction: Reduction;
    /** Engine images per input: input i is image i · copies (aug-smooth: 6). */
    copies: number;
    plans: DisplayPlan[]; cpuTimes: number[]; totalMs: number; inspect: boolean;
  }): GradcamResult[] {
    const { engine, program, want, reduction, totalMs } = run;
    const all = engine.forwardResult(read);
    const { classes, maps: decoded } = program.decode(read, run.inspect);
    const displays = run.overlays.map((o, image) => o?.decode(read, want, image));
    const times = this.timer.gpuTimed ? this.timer.durations(read) : run.cpuTimes;
    read.done();
    const n = this.classCount;
    const K = program.request.classesPerImage;
    // Image i of the batch: logits row i, items i·K … i·K + K − 1, its own display stage.
    return Array.from({ length: run.images }, (_, image): GradcamResult => {
      const first = image * run.copies; // this input's engine image
      const fwd = { logits: all.logits.slice(first * n, (first + 1) * n), probabilities: all.probabilities.slice(first * n, (first + 1) * n) };
      const { width, height } = run.plans[image];
      const shown = displays[image];
      const ranges = shown?.ranges;
      const ups = shown?.upsampled;
      const ovs = shown?.overlays;
      const plane = width * height;
      const maps: GradcamMap[] = [];
      program.layers.forEach((l, li) => {
        const hw = l.shape[0] * l.shape[1] * (l.planes ?? 1); // the guided maps: planes × H × W
        for (let k = 0; k < K; k++) {
          const b = first * K + k;
          const c = classes[b];
          const raw = decoded[li].raw.slice(b * hw, (b + 1) * hw);
          let min = Infinity, max = -Infinity;
          for (const v of raw) { min = Math.min(min, v); max = Math.max(max, v); }
          const m = li * K + k;
          maps.push({
            layer: l.layer, method: l.method, counterfactual: !!program.request.counterfactual && methodSpec(l.method).gradients,
            class: c, label: labelOf(c, n, this.options.labels), reduction, score: fwd.logits[c], probability: fwd.probabilities[c],
            shape: l.shape, raw, min, max, ...(l.planes && l.planes > 1 ? { channels: l.planes } : {}),
            upsampled: ups ? { width, height, data: ups.slice(m * plane, (m + 1) * plane), min: ranges![2 * m], max: ranges![2 * m + 1] } : undefined,
            overlay: ovs ? { width, height, data: ovs.slice(m * plane * 4, (m + 1) * plane * 4) } : undefined,
          });
          const eigen = decoded[li].eigen;
          if (eigen) {
            const [iterations, change] = eigen.subarray(2 * (l.eigenPerItem ? b : first));
            maps[maps.length - 1].eigen = { iterations, change, converged: change <= EIGEN_TOLERANCE };
          }
          const { eigenSmooth, augSmooth } = program.request;
          if (eigenSmooth || augSmooth) maps[maps.length - 1].smoothing = { ...(eigenSmooth ? { eigen: true } : {}), ...(augSmooth ? { aug: true } : {}) } as const;
          if (run.inspect) maps[maps.length - 1].inspection = program.inspect(decoded, li, b, c, reduction === 'softmax' ? fwd.probabilities[c] : undefined);
          if (l.passes !== undefined) maps[maps.length - 1].passes = 1 + l.passes; // the shared first pass, and its own
          const ends = decoded[li].ends;
          if (ends) maps[maps.length - 1].completeness = completeness(raw, ends, b, !!program.request.counterfactual);
        }
      });
      return {
        width, height, maps,
        predictions: this.predictions(fwd.logits, fwd.probabilities, 5),
        logits: fwd.logits, probabilities: fwd.probabilities,
        timings: { forwardMs: times[0], backwardMs: times[1], camMs: times[2], totalMs, source: this.timer.gpuTimed ? 'gpu' : 'cpu' },
      };
    });
  }

  /**
   * Frees the network's GPU buffers. The run that has started (a single call, or the batch a call
   * with an array is running) goes on to its end and gives its result: GPU work in flight cannot be
   * taken back, and freeing its buffers under it was Dawn's "[Buffer] used in submit while
   * destroyed". Every run not started yet rejects with a GradcamError 'this network was destroyed',
   * as every later call does: calls queued behind it (a run starts a microtask after the one before
   * it, so a call made just before destroy() is one), and the batches of an array call not started
   * (its finished batches went to onResult). The buffers are freed once nothing runs: before
   * destroy returns when the network is idle, else when the run in flight ends (the promise
   * resolves then). Calling it again returns the same promise.
   */
  destroy(): Promise<void> {
    this.destroyed ??= this.queue.close(destroyedError, () => {
      this.dropCaches();
      for (const e of this.batchEngines.values()) e.destroy();
      this.batchEngines.clear();
      this.passes?.destroy();
      this.timer.destroy();
      this.engine.destroy();
    });
    return this.destroyed;
  }

  /** Set by destroy(): resolves once the buffers are freed. */
  private destroyed?: Promise<void>;

  /** Throws when the network was destroyed (calls that do work outside a run before their first one). */
  private checkAlive(): void {
    if (this.destroyed) throw destroyedError();
  }

  /** A run on the queue (see the class comment); rejects once the network was destroyed. */
  private run<T>(fn: () => Promise<T>): Promise<T> {
    return this.queue.run(fn);
  }
}

const destroyedError = () => new GradcamError('this network was destroyed (net.destroy()); load it again with loadNetwork(...)',
  'In the browser: Network.load(gpu, model). A destroyed network has freed its GPU buffers.');

/**
 * MATLAB-style entry point: `gradCAM(net, image, { classes, featureLayers, reductionLayer, reduction })`;
 * with an array of images, one result per image, computed in batches (`batchSize`; Network.gradCAM).
 */
export function gradCAM(net: Network, input: ModelInput, options?: GradcamOptions): Promise<GradcamResult>;
export function gradCAM(net: Network, inputs: readonly ModelInput[], options?: GradcamBatchOptions): Promise<GradcamResult[]>;
export function gradCAM(net: Network, input: ModelInput | readonly ModelInput[], options: GradcamBatchOptions = {}): Promise<GradcamResult | GradcamResult[]> {
  return Array.isArray(input) ? net.gradCAM(input as readonly ModelInput[], options) : net.gradCAM(input as ModelInput, options);
}

/** Engines kept for batch sizes other than the network's own (least recently used ones are destroyed). */
export const MAX_BATCH_ENGINES = 2;
/** The largest default batch size (defaultBatchSize). */
export const MAX_BATCH = 16;
/** The display and preprocessing stages of an engine are all freed before a run when they hold more GPU memory than this (trimDisplay)… */
const DISPLAY_CACHE_BYTES = 256 * 2 ** 20;
/** …or number more than this. */
const DISPLAY_CACHE_STAGES = 64;

/** The engine batch for r images when batches hold up to `size`: the smallest power of two ≥ r, or `size`. */
export function slotsFor(r: number, size: number): number {
  let s = 1;
  while (s < r) s *= 2;
  return Math.min(s, size);
}

/** The bytes one run may read back (its staging buffer): maxBufferSize, at most DISPLAY_READBACK_MAX. */
function readbackBudget(limits: DeviceLimits): number {
  return Math.min(limits.maxBufferSize, DISPLAY_READBACK_MAX);
}

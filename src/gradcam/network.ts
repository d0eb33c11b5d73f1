/**
 * A loaded network: the engine plus everything Grad-CAM adds to it (programs per request shape,
 * display stages per picture size, read-back plans), all made once and reused.
 */
import { GradcamError } from '../errors.ts';
import type { GpuContext } from '../gpu/device.ts';
import type { RgbaImage } from '../image/image.ts';
import { type Recipe, unprocess } from '../image/recipes.ts';
import type { OnnxModel } from '../onnx/model.ts';
import { checked, type DeviceLimits, type KernelVariant } from '../gpu/dispatch.ts';
import { type DispatchTiming, Profiler } from '../gpu/profiler.ts';
import { tensorElements } from '../graph/ir.ts';
import { Engine, findNonFinite, RunQueue } from '../runtime/engine.ts';
import { encodeStage } from '../runtime/program.ts';
import { ReadbackPlan, type ReadbackResult, viewRegions } from '../runtime/readback.ts';
import { StageTimer } from '../runtime/timing.ts';
import { labelOf } from './labels.ts';
import { candidateLayers, type LayerInfo } from './layers.ts';
import { checkProgramFits, type DisplayPlan, type DisplayWant, fitDisplay } from './limits.ts';
import { OverlayStage } from './overlay.ts';
import { EIGEN_TOLERANCE, methodSpec } from './methods.ts';
import { GradcamProgram, type ProgramRequest } from './program.ts';
import { planRequest } from './request.ts';
import type { GradcamMap, GradcamOptions, GradcamResult, ModelInput, Prediction, Reduction, TensorInput } from './types.ts';

export interface NetworkOptions {
  /** Tensor names that must stay addressable (fusion would otherwise hide some pre-ReLU outputs). */
  taps?: string[];
  /** How pictures become the input; default: guessed from the model. */
  recipe?: Recipe;
  /** Class names; default: ImageNet's for a 1000-class model. */
  labels?: readonly string[];
  /** Kernel variants ('cpu' register-blocked, 'gpu' tiled); default: chosen by the adapter. */
  variant?: KernelVariant;
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
 * time.
 */
export class Network {
  private readonly queue: RunQueue;
  private programs = new Map<string, GradcamProgram>();
  private overlays = new Map<string, OverlayStage>();
  private pictures = new Map<string, GPUBuffer>();
  private readbacks = new Map<string, ReadbackPlan>();
  private timer: StageTimer;

  private constructor(public engine: Engine, readonly model: OnnxModel, private options: NetworkOptions, queue: RunQueue) {
    this.queue = queue;
    this.timer = new StageTimer(engine.gpu.device, 3, engine.gpu.features.timestamps);
    if (options.recipe) engine.recipe = options.recipe;
  }

  /** Loads `model`; a model with NaN or infinite weights is refused, naming the initializer. */
  static async load(gpu: GpuContext, model: OnnxModel, options: NetworkOptions = {}): Promise<Network> {
    const queue = new RunQueue();
    const engine = await Engine.create(gpu, model, { taps: options.taps, variant: options.variant, limits: options.limits, queue });
    return new Network(engine, model, options, queue);
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
    return this.queue.run(async () => {
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

  /** Checks an input before any GPU work (shape, finite values, picture limits). */
  private checkInput(input: ModelInput): void {
    if (isTensor(input)) this.engine.checkInput(input.data, input.shape);
    else this.engine.checkImage(input as RgbaImage);
  }

  /** Writes the input; with `picture`, also the picture the overlays are drawn over. */
  private async writeInput(input: ModelInput, withPicture = false): Promise<{ picture?: GPUBuffer; width: number; height: number }> {
    if (!isTensor(input)) {
      const stage = await this.engine.writeImage(input as RgbaImage);
      return { picture: stage.pixels, width: input.width, height: input.height };
    }
    this.engine.writeInput(input.data, input.shape);
    if (!withPicture) return { width: input.shape[3], height: input.shape[2] };
    // The picture under the overlay: the tensor with the recipe undone.
    const [, c, h, w] = input.shape;
    const rgba = new Uint8Array(w * h * 4);
    for (let i = 0; i < w * h; i++) {
      const v = (ch: number) => input.data[Math.min(ch, c - 1) * w * h + i];
      rgba.set([...unprocess(this.engine.recipe, [v(0), v(1), v(2)]), 255], i * 4);
    }
    const key = `${w}x${h}`;
    let picture = this.pictures.get(key);
    if (!picture) {
      picture = this.engine.gpu.device.createBuffer({ label: 'picture', size: w * h * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
      this.pictures.set(key, picture);
    }
    this.engine.gpu.device.queue.writeBuffer(picture, 0, rgba);
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
   */
  classify(input: ModelInput, top = 5): Promise<{ predictions: Prediction[]; logits: Float32Array; probabilities: Float32Array }> {
    return this.queue.run(async () => {
      this.checkInput(input);
      await this.writeInput(input);
      const r = await this.engine.classifyNow();
      return { predictions: this.predictions(r.logits, r.probabilities, top), logits: r.logits, probabilities: r.probabilities };
    });
  }

  /** The Grad-CAM program of the last run (profileMethods times its methods). */
  private lastProgram?: GradcamProgram;

  /**
   * gradCAM of one input, plus each method's time (`timings.methodMs`): after the run, each method's
   * dispatches (at every layer) are replayed alone `runs` times on the activations and gradients it
   * left, median ms (GPU timestamps when the adapter has them, else the CPU clock). One run on the
   * queue. For comparing methods side by side (the page's grid).
   */
  profileMethods(input: ModelInput, options: GradcamOptions = {}, runs = 3): Promise<GradcamResult> {
    return this.queue.run(async () => {
      const result = await this.gradCAMNow(input, options);
      result.timings.methodMs = await this.lastProgram!.timeMethods(runs, this.timer.gpuTimed);
      return result;
    });
  }

  /** Reads any tensor of the last run (all images), for tests and debugging; one run. */
  readTensor(name: string): Promise<Float32Array> {
    return this.queue.run(() => {
      if (!this.graph.tensors.has(name)) {
        const by = this.graph.fusedAway.get(name);
        throw new GradcamError(by ? `tensor '${name}' was fused into '${by}'; load the network with taps: ['${name}']` : `unknown tensor '${name}'`);
      }
      return this.engine.readTensorNow(name);
    });
  }

  private async program(key: string, request: ProgramRequest): Promise<GradcamProgram> {
    let p = this.programs.get(key);
    if (!p) {
      p = await checked(this.engine.gpu.device, 'compiling the Grad-CAM program', () => GradcamProgram.create(this.engine, request));
      this.programs.set(key, p);
    }
    return p;
  }

  /** Re-lowers the graph when a requested tensor was hidden by fusion. */
  private async keep(layers: string[], score?: string): Promise<void> {
    const hidden = [...layers, ...(score ? [score] : [])].filter((l) => this.graph.fusedAway.has(l));
    if (hidden.length) {
      // Rebuild the engine keeping these tensors (a one-time cost per new tap).
      const taps = [...new Set([...(this.options.taps ?? []), ...hidden])];
      const recipe = this.engine.recipe;
      this.dropCaches();
      this.engine.destroy();
      this.engine = await Engine.create(this.engine.gpu, this.model, { taps, variant: this.options.variant, limits: this.options.limits, queue: this.queue });
      this.engine.recipe = recipe;
      this.options = { ...this.options, taps };
    }
  }

  private dropCaches(): void {
    for (const r of this.readbacks.values()) r.destroy();
    for (const p of this.pictures.values()) p.destroy();
    this.programs.clear();
    this.overlays.clear();
    this.pictures.clear();
    this.readbacks.clear();
  }

  /**
   * Grad-CAM maps of `input` (one image) for the requested classes and layers: one forward, one
   * backward pass, one run (see the class comment). Requests that do not fit the device's limits
   * are refused before any GPU work; a display too large for them is scaled down (`downscaled`).
   */
  gradCAM(input: ModelInput, options: GradcamOptions = {}): Promise<GradcamResult> {
    return this.queue.run(() => this.gradCAMNow(input, options));
  }

  private async gradCAMNow(input: ModelInput, options: GradcamOptions): Promise<GradcamResult> {
    const t0 = performance.now();
    if (this.engine.batch !== 1) throw new GradcamError(`gradCAM explains one image; this network was compiled for a batch of ${this.engine.batch}`);
    this.checkInput(input);
    const { layers, k, explicit, reduction, methods, counterfactual } = planRequest(this.graph, options);
    await this.keep(layers, options.reductionLayer);
    const programKey = JSON.stringify([layers, k, reduction, options.reductionLayer ?? '', methods, counterfactual]);
    if (!this.programs.has(programKey)) checkProgramFits(this.engine, { layers, k, reduction, score: options.reductionLayer, methods }, this.engine.env.limits);
    const want: DisplayWant = { upsampled: options.upsample ?? true, overlay: !!options.overlay };
    const display = want.upsampled || want.overlay;
    const alpha = typeof options.overlay === 'object' ? options.overlay.alpha ?? 0.5 : 0.5;
    // The display size, settled before any GPU work: the picture's, or smaller to fit the limits.
    const size = isTensor(input) ? { width: input.shape[3], height: input.shape[2] } : { width: input.width, height: input.height };
    let plan: DisplayPlan = size;
    if (display) {
      const maps = layers.length * methods.length * k;
      const planes = methods.length * layers.reduce((a, l) => a + tensorElements(this.graph.tensors.get(l)!.shape.slice(2)), 0);
      const otherBytes = this.engine.forwardReadbackBytes + this.timer.readbackBytes
        + k * 4 + k * planes * 4 + maps * 8; // classes, raw maps, ranges
      plan = fitDisplay(size.width, size.height, maps, want, otherBytes, this.engine.env.limits);
    }
    const program = await this.program(programKey, { layers, classesPerImage: k, reduction, score: options.reductionLayer, methods, counterfactual });
    this.lastProgram = program;
    const engine = this.engine;
    const { device } = engine.gpu;
    const { picture, width, height } = await this.writeInput(input, display);
    let overlay: OverlayStage | undefined;
    if (display) {
      const key = `${programKey}|${width}x${height}|${plan.width}x${plan.height}|${alpha}`;
      overlay = this.overlays.get(key);
      if (!overlay) {
        overlay = await checked(device, 'compiling the display stage',
          () => OverlayStage.create(engine.env, program.layers, program.items, picture!, plan.width, plan.height, alpha, { width, height }));
        this.overlays.set(key, overlay);
      }
    }
    program.writeClasses(explicit);
    const rbKey = `${programKey}|${width}x${height}|${plan.width}x${plan.height}|${alpha}|${want.upsampled}|${want.overlay}|${!!options.inspect}`;
    let readback = this.readbacks.get(rbKey);
    if (!readback) {
      readback = new ReadbackPlan(device);
      engine.addForwardReadback(readback);
      program.addReadback(readback, !!options.inspect);
      overlay?.addReadback(readback, want);
      this.timer.addReadback(readback);
      this.readbacks.set(rbKey, readback);
    }

    const stages = [program.backwardStage, [...program.cam, ...(overlay?.dispatches ?? [])]];
    let cpuTimes: number[] = [];
    if (this.timer.gpuTimed) {
      const encoder = device.createCommandEncoder({ label: 'gradcam' });
      engine.encodeForward(encoder, this.timer.writes(0));
      stages.forEach((d, i) => encodeStage(encoder, i === 0 ? 'backward' : 'gradcam', d, this.timer.writes(i + 1)));
      this.timer.resolve(encoder);
      readback.encode(encoder);
      await checked(device, 'Grad-CAM run', () => device.queue.submit([encoder.finish()]));
    } else {
      // No timestamps: submit stage by stage and time each on the CPU.
      let t = performance.now();
      for (let i = 0; i < 3; i++) {
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
    const result = this.assemble(read, { program, overlay, want, reduction, width: plan.width, height: plan.height, cpuTimes, totalMs: performance.now() - t0, inspect: !!options.inspect });
    await this.checkFinite(result, program);
    if (plan.downscaled) result.downscaled = plan.downscaled;
    return result;
  }

  /**
   * Throws when the scores or maps read back are not finite, naming where non-finite values first
   * appear: in the forward pass (the first op output), else in the backward pass (the first gradient
   * written), else in the map's sum. The diagnosis runs only on that failure path.
   */
  private async checkFinite(result: GradcamResult, program: GradcamProgram): Promise<void> {
    await this.engine.checkForward({ logits: result.logits, probabilities: result.probabilities, classes: this.classCount });
    const badMap = result.maps.find((m) => findNonFinite(m.raw));
    if (!badMap) return;
    const kind = findNonFinite(badMap.raw)!.kind;
    const origin = await this.engine.diagnoseForward() ?? await this.diagnoseBackward(program)
      ?? `the gradients are finite: the sum Σ α·A at '${badMap.layer}' overflows float32`;
    throw new GradcamError(`the Grad-CAM map of class ${badMap.class} at '${badMap.layer}' is not finite (${kind}): ${origin}; the model's weights or input may be broken`,
      'The weights and a tensor input are checked for NaN and Inf, so values overflow float32 there: check the scale of the weights and of the input.');
  }

  /** The first gradient, in the order the backward pass writes them, holding a non-finite value (inside a run). */
  private async diagnoseBackward(program: GradcamProgram): Promise<string | null> {
    const { device } = this.engine.gpu;
    for (const step of program.backward.trail) {
      const plan = new ReadbackPlan(device).add('gradient', viewRegions(step.view.buffer, step.view.offset, step.view.stride, step.perItem, program.items));
      const bad = findNonFinite((await this.engine.readNow(plan)).f32('gradient'));
      if (bad) return `non-finite values (${bad.kind}) first appear in the gradient of '${step.tensor}' (the backward pass of node '${step.node}')`;
    }
    return null;
  }

  /** The result from a run's read-back: each part decoded by the module that added it. */
  private assemble(read: ReadbackResult, run: {
    program: GradcamProgram; overlay?: OverlayStage; want: DisplayWant; reduction: Reduction; width: number; height: number; cpuTimes: number[]; totalMs: number; inspect: boolean;
  }): GradcamResult {
    const { program, overlay, want, reduction, width, height, totalMs } = run;
    const fwd = this.engine.forwardResult(read);
    const { classes, maps: decoded } = program.decode(read, run.inspect);
    const shown = overlay?.decode(read, want);
    const ranges = shown?.ranges;
    const ups = shown?.upsampled;
    const ovs = shown?.overlays;
    const times = this.timer.gpuTimed ? this.timer.durations(read) : run.cpuTimes;
    read.done();
    const n = this.classCount;
    const plane = width * height;
    const maps: GradcamMap[] = [];
    program.layers.forEach((l, li) => {
      const hw = l.shape[0] * l.shape[1];
      for (let b = 0; b < program.items; b++) {
        const c = classes[b];
        const raw = decoded[li].raw.slice(b * hw, (b + 1) * hw);
        let min = Infinity, max = -Infinity;
        for (const v of raw) { min = Math.min(min, v); max = Math.max(max, v); }
        const m = li * program.items + b;
        maps.push({
          layer: l.layer, method: l.method, counterfactual: !!program.request.counterfactual && methodSpec(l.method).gradients,
          class: c, label: labelOf(c, n, this.options.labels), reduction, score: fwd.logits[c], probability: fwd.probabilities[c],
          shape: l.shape, raw, min, max,
          upsampled: ups ? { width, height, data: ups.slice(m * plane, (m + 1) * plane), min: ranges![2 * m], max: ranges![2 * m + 1] } : undefined,
          overlay: ovs ? { width, height, data: ovs.slice(m * plane * 4, (m + 1) * plane * 4) } : undefined,
        });
        const eigen = decoded[li].eigen;
        if (eigen) {
          const [iterations, change] = eigen.subarray(2 * (b / program.request.classesPerImage | 0));
          maps[maps.length - 1].eigen = { iterations, change, converged: change <= EIGEN_TOLERANCE };
        }
        if (run.inspect) maps[maps.length - 1].inspection = program.inspect(decoded, li, b, c, reduction === 'softmax' ? fwd.probabilities[c] : undefined);
      }
    });
    return {
      width, height, maps,
      predictions: this.predictions(fwd.logits, fwd.probabilities, 5),
      logits: fwd.logits, probabilities: fwd.probabilities,
      timings: { forwardMs: times[0], backwardMs: times[1], camMs: times[2], totalMs, source: this.timer.gpuTimed ? 'gpu' : 'cpu' },
    };
  }

  destroy(): void {
    this.dropCaches();
    this.timer.destroy();
    this.engine.destroy();
  }
}

/** MATLAB-style entry point: `gradCAM(net, image, { classes, featureLayers, reductionLayer, reduction })`. */
export function gradCAM(net: Network, input: ModelInput, options: GradcamOptions = {}): Promise<GradcamResult> {
  return net.gradCAM(input, options);
}

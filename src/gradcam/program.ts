/**
 * The Grad-CAM program for one request shape (layers, K classes per image, reduction): after the
 * forward pass, [softmax, when the model has none and the reduction needs it] → top-K (or the given
 * classes) → seed → targeted backward → each method's map per layer (src/gradcam/methods.ts: every
 * method from the same forward and backward pass). Compiled once, replayed per image.
 */
import { chwOf } from '../image/recipes.ts';
import { type Graph, type Op, perImage } from '../graph/ir.ts';
import { withSoftmaxScore } from '../graph/score.ts';
import type { BufferView, Dispatch } from '../gpu/dispatch.ts';
import { view as viewUniforms } from '../gpu/kernel.ts';
import { EIGEN_OF, eigenScratchFloats, GRADCAM } from '../kernels/gradcam.ts';
import type { OpKernel } from '../kernels/types.ts';
import { softmaxKernel } from '../ops/softmax.ts';
import { compileBackward, type BackwardProgram } from '../runtime/backward.ts';
import { Profiler } from '../gpu/profiler.ts';
import type { Engine } from '../runtime/engine.ts';
import { encodeStage } from '../runtime/program.ts';
import { opShapes } from '../runtime/forward.ts';
import { type ReadbackPlan, type ReadbackResult, viewRegions } from '../runtime/readback.ts';
import { camClassifier, concatBranches, inspectMap, type MapInspection, type ResidualInputs, residualInputs } from './inspect.ts';
import { EIGEN_MAX_ITERATIONS, EIGEN_TOLERANCE, type Method, methodSpec } from './methods.ts';
import { augmentInput, AUG_COPIES, smoothMaps } from './aug-smooth.ts';
import type { Reduction } from './types.ts';
import { type InputBackward, inputMaps, passMaps } from './attributions.ts';

export interface ProgramRequest {
  layers: string[];
  classesPerImage: number;
  reduction: Reduction;
  /** The score tensor; default: the logits (reduction 'logit') or the probabilities ('softmax'). */
  score?: string;
  /** The CAM methods (default ['gradcam']); one forward and one backward pass serve them all. */
  methods?: Method[];
  /** G := −G for the gradient methods (the counterfactual explanation). */
  counterfactual?: boolean;
  /**
   * The weighted and element-wise methods' maps as the first principal component of their channel
   * terms (w_k A_k, term(G_k, A_k)) instead of their sum (pytorch-grad-cam's eigen_smooth).
   */
  eigenSmooth?: boolean;
  /**
   * Aug-smooth (src/gradcam/aug-smooth.ts): the engine's images are groups of 6 augmented copies;
   * each layer's maps are smoothed over image 6n's, the classes are image 6n's.
   */
  augSmooth?: boolean;
}

/** One method's maps at one layer, for all items. */
export interface LayerMaps {
  layer: string;
  method: Method;
  /** [h, w] of the feature layer. */
  shape: [number, number];
  channels: number;
  /** items × h × w raw maps (ReLU applied), item = image · K + k. */
  raw: GPUBuffer;
  /** items × h × w maps before the ReLU. */
  signed: GPUBuffer;
  /** items × channels channel weights (the weighted methods). */
  weights?: GPUBuffer;
  /** The eigen entry's scratch, eigenScratchFloats(channels, h·w) per unit: [iterations, last change, …]. */
  eigen?: GPUBuffer;
  /** The eigen entry's unit: the item (eigengradcam, eigen-smooth) or the image (eigencam). */
  eigenPerItem?: boolean;
  /** The dispatches that compute these maps (after the backward pass). */
  dispatches: Dispatch[];
  /** The layer's activations (per image) and gradients (per item), read back for the inspector. */
  features: BufferView;
  gradients: BufferView;
  /**
   * The guided methods: `layer` is the input (guided-backprop) or the Grad-CAM layer (guided-gradcam),
   * `shape` the input's [H, W], `rgb` the maps (items × planes × H × W, planes = the input's channels);
   * `raw` holds Σ_c |map_c| per position, for display.
   */
  rgb?: GPUBuffer;
  planes?: number;
  /** The many-pass input attributions (attributions.ts): the passes per image the last run took. */
  passes?: number;
  /** integrated-gradients: y(x') and y(x) per item, for the completeness gap. */
  ends?: GPUBuffer;
}

/** One entry of `layers` as read back. */
export interface DecodedMaps {
  raw: Float32Array;
  /** With inspect: the layer's activations (images × C × h·w) and gradients (items × C × h·w). */
  activations?: Float32Array;
  gradients?: Float32Array;
  /** With inspect, for a residual Add's output: its residual and identity inputs (images × C × h·w each). */
  residual?: { r: Float32Array; i: Float32Array };
  signed?: Float32Array;
  weights?: Float32Array;
  /** integrated-gradients: [y(x'), y(x)] per item. */
  ends?: Float32Array;
  /** The eigen entry: [iterations, last change] per unit (LayerMaps.eigenPerItem). */
  eigen?: Float32Array;
}

export class GradcamProgram {
  private constructor(
    readonly request: ProgramRequest,
    readonly score: string,
    readonly items: number,
    /** Class per item, u32. */
    readonly classes: GPUBuffer,
    /** Before the backward: extra softmax, top-K, seed (topK dispatch excluded when classes are given). */
    readonly pre: Dispatch[],
    readonly topk: Dispatch,
    readonly backward: BackwardProgram,
    readonly layers: LayerMaps[],
    /** Whether the backward pass runs (some method reads gradients). */
    readonly needsGradients: boolean,
    private engine: Engine,
    /** The guided backward pass (to the input) and its seed, when a guided method is asked for. */
    readonly guided?: { seed: Dispatch; backward: BackwardProgram },
    /** The plain backward pass to the input and its seed, when an 'input' method is asked for (attributions.ts). */
    readonly inputBackward?: InputBackward,
  ) {}

  static async create(engine: Engine, req: ProgramRequest): Promise<GradcamProgram> {
    const { graph, env, compiled } = engine;
    const K = req.classesPerImage;
    const items = graph.batch * K;
    const pre: Dispatch[] = [];
    let score = req.score ?? (req.reduction === 'softmax' ? graph.probabilities : graph.logits);
    let view = (n: string) => compiled.view(n);
    let kernels = compiled.kernels;
    let compiledGraph = graph;
    if (!score) {
      // The model outputs logits: the softmax score is an op this program adds after them (graph/score.ts).
      const scored = withSoftmaxScore(graph);
      const { op } = scored;
      compiledGraph = scored.graph;
      const probs = op.output;
      const per = perImage(compiledGraph.tensors.get(probs)!);
      const buffer = env.scratch(per * graph.batch, probs);
      const k = softmaxKernel(op, opShapes(compiledGraph, op));
      kernels = new Map([...kernels, [op, k]]);
      view = (n: string): BufferView => (n === probs ? { buffer, offset: 0, stride: per } : compiled.view(n));
      pre.push(...await k.forward({ env, inputs: [compiled.view(graph.logits)], output: view(probs), batch: graph.batch }));
      score = probs;
    }
    const backward = await compileBackward({ graph: compiledGraph, env, kernels, view }, { score, features: req.layers, classesPerImage: K });

    const classes = env.scratch(items, 'classes'); // u32 per item
    const classCount = perImage(compiledGraph.tensors.get(score)!);
    await Promise.all(GRADCAM.entryNames.map((e) => GRADCAM.pipeline(env, e))); // compiled in parallel, then cached
    const common = { items, classesPerImage: K };
    const info = (flops: number, shapes: string) => ({ opType: 'Grad-CAM', flops, shapes });
    // Top-K by logit (the same order as by probability), so it can run before any extra softmax.
    const logitsView = compiled.view(graph.logits);
    const topk = await GRADCAM.dispatch(env, 'topk', {
      uniforms: { ...common, classCount, topkGroup: req.augSmooth ? AUG_COPIES : 1, ...viewUniforms('scores', logitsView) },
      buffers: { scores: logitsView.buffer, classesOut: classes },
      workgroups: GRADCAM.groups('topk', [graph.batch, 1, 1]),
      label: 'gradcam.topk', ...info(graph.batch * K * classCount, `${graph.batch}×${classCount} top ${K}`),
    });
    pre.push(await GRADCAM.dispatch(env, 'seed', {
      uniforms: { ...common, classCount, seedValue: 1, ...viewUniforms('scoreGrad', backward.scoreGrad) },
      buffers: { classes, scoreGrad: backward.scoreGrad.buffer },
      workgroups: GRADCAM.groups('seed', [classCount, items, 1]),
      label: 'gradcam.seed', ...info(0, `${items}×${classCount}`),
    }));

    const methods = req.methods ?? ['gradcam'];
    // The backward pass to the layers runs for the layer methods that read gradients and for guided-gradcam (its Grad-CAM map).
    // (The input attributions' gradients are to the input: their own backward passes.)
    const needsGradients = methods.some((m) => methodSpec(m).gradients && !['guided', 'input', 'input-passes'].includes(methodSpec(m).kind)) || methods.includes('guided-gradcam');
    const gradSign = req.counterfactual ? -1 : 1;
    const layers: LayerMaps[] = [];
    // guided-gradcam needs each layer's Grad-CAM map: computed, not returned, when gradcam is not asked for.
    const hiddenGradcam = methods.includes('guided-gradcam') && !methods.includes('gradcam');
    const hidden: LayerMaps[] = [];
    for (const layer of req.layers) {
      const shape = graph.tensors.get(layer)!.shape;
      const [c, h, w] = [shape[1], shape[2] ?? 1, shape[3] ?? 1];
      const g = backward.featureGrads.get(layer)!;
      const a = compiled.view(layer);
      const geometry = { ...common, channels: c, hw: h * w };
      const shapes = `${items}×${c}×${h}×${w}`;
      for (const method of [...methods, ...(hiddenGradcam ? ['gradcam' as const] : [])]) {
        const spec = methodSpec(method);
        if (['guided', 'input', 'input-passes', 'occlusion'].includes(spec.kind)) continue; // maps at the input, made below
        const raw = env.scratch(items * h * w, `map ${method} ${layer}`);
        const signed = env.scratch(items * h * w, `signed map ${method} ${layer}`);
        const maps: LayerMaps = { layer, method, shape: [h, w], channels: c, raw, signed, dispatches: [], features: a, gradients: g };
        const at = { label: `${method} ${layer}`, use: method };
        // The first principal component of what the map sums (eigenOf): per image for eigencam, else per item.
        const eigen = async (eigenOf: number, overrides: Record<string, number> = {}) => {
          const units = eigenOf === EIGEN_OF.activations ? graph.batch : items;
          maps.eigen = env.scratch(units * eigenScratchFloats(c, h * w), `eigen ${method} ${layer}`);
          maps.eigenPerItem = eigenOf !== EIGEN_OF.activations;
          maps.dispatches.push(await GRADCAM.dispatch(env, 'eigen', {
            overrides: { ...overrides, EIGEN_OF: eigenOf },
            uniforms: { ...geometry, gradSign, ...viewUniforms('features', a), ...viewUniforms('featureGrad', g), eigenTolerance: EIGEN_TOLERANCE, eigenMaxIterations: EIGEN_MAX_ITERATIONS },
            buffers: {
              features: a.buffer, featureGrad: maps.eigenPerItem && eigenOf !== EIGEN_OF.weighted ? g.buffer : env.dummy,
              alphas: maps.weights ?? env.dummy, maps: raw, signedMapsOut: signed, eigenScratch: maps.eigen,
            },
            workgroups: [units, 1, 1],
            // Per iteration 4·C·HW (Xv and Xᵀu); the count is data-dependent: one iteration is stated.
            ...at, ...info(units * 4 * c * h * w, `${units}×${c}×${h}×${w}, power iteration`),
          }));
        };
        if (spec.kind === 'weighted' || spec.kind === 'score' || spec.kind === 'ablation') {
          maps.weights = env.scratch(items * c, `weights ${method} ${layer}`);
          // A multi-pass method's weights come from its passes (src/gradcam/multipass.ts), written before the map runs.
          if (spec.kind === 'weighted') maps.dispatches.push(await GRADCAM.dispatch(env, 'weights', {
            overrides: { WEIGHTS: spec.code },
            uniforms: { ...geometry, gradSign, ...viewUniforms('featureGrad', g), ...viewUniforms('features', a) },
            buffers: { featureGrad: g.buffer, features: a.buffer, alphasOut: maps.weights },
            workgroups: GRADCAM.groups('weights', [c, items, 1]),
            ...at, ...info(3 * items * c * h * w, shapes),
          }));
          if (req.eigenSmooth) {
            await eigen(EIGEN_OF.weighted);
          } else {
            maps.dispatches.push(await GRADCAM.dispatch(env, 'map', {
              uniforms: { ...geometry, ...viewUniforms('features', a) },
              buffers: { features: a.buffer, alphas: maps.weights, maps: raw, signedMapsOut: signed },
              workgroups: GRADCAM.groups('map', [h * w, items, 1]),
              ...at, ...info(2 * items * c * h * w, shapes),
            }));
          }
        } else if (spec.kind === 'elementwise' && req.eigenSmooth) {
          await eigen(EIGEN_OF.elementwise, { TERM: spec.code });
        } else if (spec.kind === 'elementwise') {
          maps.dispatches.push(await GRADCAM.dispatch(env, 'elementwise', {
            overrides: { TERM: spec.code },
            uniforms: { ...geometry, gradSign, ...viewUniforms('featureGrad', g), ...viewUniforms('features', a) },
            buffers: { featureGrad: g.buffer, features: a.buffer, maps: raw, signedMapsOut: signed },
            workgroups: GRADCAM.groups('elementwise', [h * w, items, 1]),
            ...at, ...info(3 * items * c * h * w, shapes),
          }));
        } else {
          await eigen(spec.code === 1 ? EIGEN_OF.gradTimesActivations : EIGEN_OF.activations);
        }
        (hiddenGradcam && method === 'gradcam' ? hidden : layers).push(maps);
      }
    }
    // Aug-smooth: each map smoothed over its group's first image, after the map's own dispatches (the
    // methods with maps at the input are refused with it: smoothing.ts; scorecam's and ablationcam's
    // weights come from every copy's own passes, multipass.ts).
    if (req.augSmooth) {
      for (const l of layers) l.dispatches.push(...await smoothMaps(env, l.raw, items, K, l.shape, `${l.method} ${l.layer}`));
    }
    const guided = methods.some((m) => methodSpec(m).kind === 'guided')
      ? await guidedMaps({ engine, graph: compiledGraph, kernels, view, score, req, classes, layers, hidden, common, methods }) : undefined;
    passMaps({ engine, items, layers, methods });
    // (integrated-gradients takes its path's last point, x, from this pass: attributions.ts.)
    const inputBackward = methods.some((m) => methodSpec(m).kind === 'input' || m === 'integrated-gradients')
      ? await inputMaps({ engine, graph: compiledGraph, kernels, view, score, req, classes, layers, common, methods }) : undefined;
    const program = new GradcamProgram(req, score, items, classes, pre, topk, backward, layers, needsGradients, engine, guided, inputBackward);
    if (req.augSmooth) program.augment = await augmentInput(engine);
    return program;
  }

  /** Aug-smooth: the dispatch that makes the augmented copies of the input (Engine.afterInputs runs it before the forward pass). */
  augment?: Dispatch;

  /** Sets explicit classes (items = N·K, item = image·K + k); without a call, top-K is chosen on the GPU. */
  writeClasses(classes: number[] | null): void {
    this.explicit = classes !== null;
    if (classes) this.engine.gpu.device.queue.writeBuffer(this.classes, 0, new Uint32Array(classes));
  }

  private explicit = false;

  /** The stage after the forward pass: class choice, seed, backward (when some method reads gradients). */
  get backwardStage(): Dispatch[] {
    return [
      ...(this.explicit ? [] : [this.topk]),
      ...(this.needsGradients || this.guided || this.inputBackward ? this.pre : []),
      ...(this.needsGradients ? this.backward.dispatches : []),
      ...(this.guided ? [this.guided.seed, ...this.guided.backward.dispatches] : []),
      ...(this.inputBackward ? [this.inputBackward.seed, ...this.inputBackward.backward.dispatches] : []),
    ];
  }

  /** Every map's dispatches, in `layers` order. */
  get cam(): Dispatch[] {
    return this.layers.flatMap((l) => l.dispatches);
  }

  /**
   * Adds to a read-back the classes (`classes`), each (method, layer)'s raw maps (`map:<method>:<layer>`)
   * and the eigen entry's iteration counts (`eigen:<method>:<layer>`); with `inspect`, also the signed maps
   * (`signed:…`) and channel weights (`weights:…`). `decode` reads them.
   */
  addReadback(plan: ReadbackPlan, inspect = false): void {
    plan.add('classes', { buffer: this.classes, offset: 0, bytes: this.items * 4 });
    const n = this.items / this.request.classesPerImage; // images
    const seen = new Set<string>();
    for (const l of this.layers) {
      const key = `${l.method}:${l.layer}`;
      const bytes = this.items * l.shape[0] * l.shape[1] * 4;
      if (l.rgb) {
        plan.add(`map:${key}`, { buffer: l.rgb, offset: 0, bytes: bytes * l.planes! }); // no inspection of the guided maps
        if (l.ends) plan.add(`ends:${key}`, { buffer: l.ends, offset: 0, bytes: this.items * 8 });
        continue;
      }
      plan.add(`map:${key}`, { buffer: l.raw, offset: 0, bytes });
      if (l.eigen) {
        const per = eigenScratchFloats(l.channels, l.shape[0] * l.shape[1]) * 4;
        plan.add(`eigen:${key}`, Array.from({ length: l.eigenPerItem ? this.items : n }, (_, i) => ({ buffer: l.eigen!, offset: i * per, bytes: 8 })));
      }
      if (!inspect) continue;
      plan.add(`signed:${key}`, { buffer: l.signed, offset: 0, bytes });
      if (l.weights) plan.add(`weights:${key}`, { buffer: l.weights, offset: 0, bytes: this.items * l.channels * 4 });
      const plane = l.channels * l.shape[0] * l.shape[1];
      if (l.eigen) {
        const per = eigenScratchFloats(l.channels, l.shape[0] * l.shape[1]) * 4;
        plan.add(`eigenv:${key}`, Array.from({ length: l.eigenPerItem ? this.items : n }, (_, i) => ({ buffer: l.eigen!, offset: i * per + (2 + l.channels) * 4, bytes: l.channels * 4 })));
      }
      if (seen.has(l.layer)) continue; // once per layer
      seen.add(l.layer);
      plan.add(`A:${l.layer}`, viewRegions(l.features.buffer, l.features.offset, l.features.stride, plane, n));
      const residual = this.residualOf(l.layer);
      for (const [key, name] of residual ? [['R', residual.residual], ['I', residual.identity]] : []) {
        const v = this.engine.compiled.view(name);
        plan.add(`${key}:${l.layer}`, viewRegions(v.buffer, v.offset, v.stride, plane, n));
      }
      if (this.needsGradients) plan.add(`G:${l.layer}`, viewRegions(l.gradients.buffer, l.gradients.offset, l.gradients.stride, plane, this.items));
    }
  }

  /**
   * The class of each item, and per entry of `layers`: the raw maps (items × h × w), with `inspect`
   * the signed maps and weights (items × channels), for the eigen entry [iterations, last change] per unit.
   */
  decode(read: ReadbackResult, inspect = false): { classes: Uint32Array; maps: DecodedMaps[] } {
    const perLayer = new Map<string, Pick<DecodedMaps, 'activations' | 'gradients' | 'residual'>>();
    if (inspect) {
      for (const l of this.layers) {
        if (perLayer.has(l.layer) || l.rgb) continue;
        const residual = this.residualOf(l.layer) && { r: read.f32(`R:${l.layer}`), i: read.f32(`I:${l.layer}`) };
        perLayer.set(l.layer, { activations: read.f32(`A:${l.layer}`), gradients: this.needsGradients ? read.f32(`G:${l.layer}`) : undefined, residual });
      }
    }
    return {
      classes: read.u32('classes'),
      maps: this.layers.map((l) => {
        const key = `${l.method}:${l.layer}`;
        return {
          raw: read.f32(`map:${key}`),
          ends: l.ends ? read.f32(`ends:${key}`) : undefined,
          signed: inspect && !l.rgb ? read.f32(`signed:${key}`) : undefined,
          weights: inspect && !l.rgb ? (l.weights ? read.f32(`weights:${key}`) : l.eigen ? read.f32(`eigenv:${key}`) : undefined) : undefined,
          eigen: l.eigen ? read.f32(`eigen:${key}`) : undefined,
          ...perLayer.get(l.layer),
        };
      }),
    };
  }

  /**
   * Each method's time, in ms: its dispatches (at every layer) replayed on the activations and
   * gradients the last run left, `runs` times, the median. With timestamps, the sum of its dispatches'
   * GPU times (one pass each); without, the CPU clock from submission to completion (inside a run).
   */
  async timeMethods(runs: number, timestamps: boolean): Promise<Partial<Record<Method, number>>> {
    const { device } = this.engine.gpu;
    const byMethod = new Map<Method, Dispatch[]>();
    for (const l of this.layers) byMethod.set(l.method, [...(byMethod.get(l.method) ?? []), ...l.dispatches]);
    // A guided method's own work is mostly its guided backward pass down to the input: count it.
    if (this.guided) {
      for (const [m, dispatches] of byMethod) {
        if (methodSpec(m).kind === 'guided') byMethod.set(m, [this.guided.seed, ...this.guided.backward.dispatches, ...dispatches]);
      }
    }
    // Likewise an input method's plain backward pass.
    if (this.inputBackward) {
      for (const [m, dispatches] of byMethod) {
        if (methodSpec(m).kind === 'input') byMethod.set(m, [this.inputBackward.seed, ...this.inputBackward.backward.dispatches, ...dispatches]);
      }
    }
    const samples = new Map<Method, number[]>([...byMethod.keys()].map((m) => [m, []]));
    const profiler = timestamps ? new Profiler(device, Math.max(...[...byMethod.values()].map((d) => d.length))) : undefined;
    try {
      for (let r = 0; r < runs; r++) {
        for (const [m, dispatches] of byMethod) {
          let ms: number;
          if (profiler) {
            ms = (await profiler.run(dispatches)).reduce((a, t) => a + t.ms, 0);
          } else {
            const t0 = performance.now();
            const encoder = device.createCommandEncoder({ label: `time ${m}` });
            encodeStage(encoder, m, dispatches);
            device.queue.submit([encoder.finish()]);
            await device.queue.onSubmittedWorkDone();
            ms = performance.now() - t0;
          }
          samples.get(m)!.push(ms);
        }
      }
    } finally {
      profiler?.destroy();
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    return Object.fromEntries([...samples].map(([m, xs]) => [m, median(xs)]));
  }

  private branches = new Map<string, ReturnType<typeof concatBranches>>();
  private residuals = new Map<string, ResidualInputs | undefined>();

  /** The residual Add inputs of a layer (inspect.ts), once per layer. */
  private residualOf(layer: string): ResidualInputs | undefined {
    if (!this.residuals.has(layer)) this.residuals.set(layer, residualInputs(this.engine.graph, layer));
    return this.residuals.get(layer);
  }
  private classifiers = new Map<string, ReturnType<typeof camClassifier>>();

  /**
   * The inspector's report (inspect.ts) of entry `index` of `layers` for item b (decoded with
   * inspect), the class `classIndex`; `probability`: the class's, for the softmax reduction.
   */
  inspect(decoded: DecodedMaps[], index: number, b: number, classIndex: number, probability?: number): MapInspection | undefined {
    const l = this.layers[index];
    if (l.rgb) return undefined; // the guided methods have no channels to inspect
    const d = decoded[index];
    const { graph } = this.engine;
    const hw = l.shape[0] * l.shape[1];
    const plane = l.channels * hw;
    const image = Math.floor(b / this.request.classesPerImage);
    if (!this.branches.has(l.layer)) this.branches.set(l.layer, concatBranches(graph, l.layer));
    if (!this.classifiers.has(l.layer)) this.classifiers.set(l.layer, camClassifier(graph, l.layer));
    let gradients = d.gradients?.slice(b * plane, (b + 1) * plane);
    if (gradients && this.request.counterfactual) gradients = gradients.map((g) => -g);
    const logitScore = this.score === graph.logits || graph.aliases.get(this.score) === graph.logits;
    return inspectMap({
      method: l.method, layer: l.layer, classIndex, channels: l.channels, hw,
      activations: d.activations!.slice(image * plane, (image + 1) * plane), gradients,
      signed: d.signed!.slice(b * hw, (b + 1) * hw), raw: d.raw.slice(b * hw, (b + 1) * hw),
      weights: d.weights && (l.eigen && !l.eigenPerItem ? d.weights.slice(image * l.channels, (image + 1) * l.channels) : d.weights.slice(b * l.channels, (b + 1) * l.channels)),
      branches: this.branches.get(l.layer),
      residual: d.residual && { ...this.residualOf(l.layer)!, r: d.residual.r.slice(image * plane, (image + 1) * plane), i: d.residual.i.slice(image * plane, (image + 1) * plane) },
      cam: { ...this.classifiers.get(l.layer)!, logitReduction: this.request.reduction === 'logit' && logitScore },
      softmaxProbability: probability,
    });
  }
}

/**
 * The guided methods (methods.ts, kind 'guided'): a second backward pass, guided (every ReLU's
 * backward also drops negative gradients), from the score down to the input, seeded by its own seed
 * dispatch (−1 for the counterfactual); then per method the `guided` dispatch, appended to `layers`:
 * guided-backprop once (its layer is the input), guided-gradcam per layer (times that layer's
 * Grad-CAM map, from `layers` or `hidden`, upsampled to the input).
 */
async function guidedMaps(c: {
  engine: Engine; graph: Graph; kernels: Map<Op, OpKernel>; view: (n: string) => BufferView; score: string; req: ProgramRequest;
  classes: GPUBuffer; layers: LayerMaps[]; hidden: LayerMaps[]; common: { items: number; classesPerImage: number }; methods: Method[];
}): Promise<{ seed: Dispatch; backward: BackwardProgram }> {
  const { engine, graph, score, req, common, layers } = c;
  const { env } = engine;
  const { items } = common;
  const input = engine.graph.input.name;
  const backward = await compileBackward({ graph, env, kernels: c.kernels, view: c.view }, { score, features: [input], classesPerImage: req.classesPerImage, guided: true });
  const classCount = perImage(graph.tensors.get(score)!);
  const seed = await GRADCAM.dispatch(env, 'seed', {
    uniforms: { ...common, classCount, seedValue: req.counterfactual ? -1 : 1, ...viewUniforms('scoreGrad', backward.scoreGrad) },
    buffers: { classes: c.classes, scoreGrad: backward.scoreGrad.buffer },
    workgroups: GRADCAM.groups('seed', [classCount, items, 1]),
    label: 'gradcam.seed guided', opType: 'Grad-CAM', flops: 0, shapes: `${items}×${classCount}`,
  });
  const g = backward.featureGrads.get(input)!;
  // The gradient is in the input's layout (the kernel's nhwc); the maps are [C, H, W] either way.
  const [C, H, W] = chwOf(engine.graph.input.shape, engine.layout);
  const hw = H * W;
  const entry = async (method: Method, layer: string, cam?: LayerMaps): Promise<void> => {
    const raw = env.scratch(items * hw, `display ${method} ${layer}`);
    const rgb = env.scratch(items * C * hw, `map ${method} ${layer}`);
    const dispatches = cam && !layers.includes(cam) ? [...cam.dispatches] : [];
    dispatches.push(await GRADCAM.dispatch(env, 'guided', {
      overrides: { GUIDED_CAM: cam !== undefined },
      uniforms: { ...common, channels: C, hw, width: W, nhwc: engine.layout === 'NHWC' ? 1 : 0, mapH: cam?.shape[0] ?? 1, mapW: cam?.shape[1] ?? 1, ...viewUniforms('featureGrad', g) },
      buffers: { featureGrad: g.buffer, camMap: cam?.raw ?? env.dummy, guidedOut: rgb, maps: raw },
      workgroups: GRADCAM.groups('guided', [hw, items, 1]),
      label: `${method} ${layer}`, use: method, opType: 'Grad-CAM', flops: items * C * hw * (cam ? 10 : 2), shapes: `${items}×${C}×${H}×${W}`,
    }));
    layers.push({ layer, method, shape: [H, W], channels: C, raw, signed: raw, dispatches, features: engine.compiled.view(input), gradients: g, rgb, planes: C });
  };
  if (c.methods.includes('guided-backprop')) await entry('guided-backprop', input);
  if (c.methods.includes('guided-gradcam')) {
    for (const layer of req.layers) {
      const cam = [...layers, ...c.hidden].find((l) => l.layer === layer && l.method === 'gradcam')!;
      await entry('guided-gradcam', layer, cam);
    }
  }
  return { seed, backward };
}

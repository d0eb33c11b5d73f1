/**
 * The Grad-CAM program for one request shape (layers, K classes per image, reduction): after the
 * forward pass, [softmax, when the model has none and the reduction needs it] → top-K (or the given
 * classes) → seed → targeted backward → α and the map per layer. Compiled once, replayed per image.
 */
import { perImage } from '../graph/ir.ts';
import { withSoftmaxScore } from '../graph/score.ts';
import type { BufferView, Dispatch } from '../gpu/dispatch.ts';
import { view as viewUniforms } from '../gpu/kernel.ts';
import { GRADCAM } from '../kernels/gradcam.ts';
import { softmaxKernel } from '../kernels/softmax.ts';
import { compileBackward, type BackwardProgram } from '../runtime/backward.ts';
import type { Engine } from '../runtime/engine.ts';
import { opShapes } from '../runtime/forward.ts';
import type { ReadbackPlan, ReadbackResult } from '../runtime/readback.ts';
import type { Reduction } from './types.ts';

export interface ProgramRequest {
  layers: string[];
  classesPerImage: number;
  reduction: Reduction;
  /** The score tensor; default: the logits (reduction 'logit') or the probabilities ('softmax'). */
  score?: string;
}

export interface LayerMaps {
  layer: string;
  /** [h, w] of the feature layer. */
  shape: [number, number];
  channels: number;
  /** items × h × w raw maps (ReLU applied), item = image · K + k. */
  raw: GPUBuffer;
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
    readonly cam: Dispatch[],
    readonly layers: LayerMaps[],
    private engine: Engine,
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
      uniforms: { ...common, classCount, ...viewUniforms('scores', logitsView) },
      buffers: { scores: logitsView.buffer, classesOut: classes },
      workgroups: GRADCAM.groups('topk', [graph.batch, 1, 1]),
      label: 'gradcam.topk', ...info(graph.batch * K * classCount, `${graph.batch}×${classCount} top ${K}`),
    });
    pre.push(await GRADCAM.dispatch(env, 'seed', {
      uniforms: { ...common, classCount, ...viewUniforms('scoreGrad', backward.scoreGrad) },
      buffers: { classes, scoreGrad: backward.scoreGrad.buffer },
      workgroups: GRADCAM.groups('seed', [classCount, items, 1]),
      label: 'gradcam.seed', ...info(0, `${items}×${classCount}`),
    }));

    const cam: Dispatch[] = [];
    const layers: LayerMaps[] = [];
    for (const layer of req.layers) {
      const shape = graph.tensors.get(layer)!.shape;
      const [c, h, w] = [shape[1], shape[2] ?? 1, shape[3] ?? 1];
      const alphas = env.scratch(items * c, `alpha ${layer}`);
      const raw = env.scratch(items * h * w, `map ${layer}`);
      const g = backward.featureGrads.get(layer)!;
      const a = compiled.view(layer);
      const geometry = { ...common, channels: c, hw: h * w };
      cam.push(await GRADCAM.dispatch(env, 'alpha', {
        uniforms: { ...geometry, ...viewUniforms('featureGrad', g) },
        buffers: { featureGrad: g.buffer, alphasOut: alphas },
        workgroups: GRADCAM.groups('alpha', [c, items, 1]),
        label: 'gradcam.alpha', ...info(items * c * h * w, `${items}×${c}×${h}×${w}`),
      }));
      cam.push(await GRADCAM.dispatch(env, 'map', {
        uniforms: { ...geometry, ...viewUniforms('features', a) },
        buffers: { features: a.buffer, alphas, maps: raw },
        workgroups: GRADCAM.groups('map', [h * w, items, 1]),
        label: 'gradcam.map', ...info(2 * items * c * h * w, `${items}×${c}×${h}×${w}`),
      }));
      layers.push({ layer, shape: [h, w], channels: c, raw });
    }
    return new GradcamProgram(req, score, items, classes, pre, topk, backward, cam, layers, engine);
  }

  /** Sets explicit classes (items = N·K, item = image·K + k); without a call, top-K is chosen on the GPU. */
  writeClasses(classes: number[] | null): void {
    this.explicit = classes !== null;
    if (classes) this.engine.gpu.device.queue.writeBuffer(this.classes, 0, new Uint32Array(classes));
  }

  private explicit = false;

  /** The stage after the forward pass: class choice, seed, backward. */
  get backwardStage(): Dispatch[] {
    return [...(this.explicit ? [] : [this.topk]), ...this.pre, ...this.backward.dispatches];
  }

  /** Adds the classes (`classes`) and each layer's raw maps (`map:<layer>`) to a read-back; `decode` reads them. */
  addReadback(plan: ReadbackPlan): void {
    plan.add('classes', { buffer: this.classes, offset: 0, bytes: this.items * 4 });
    for (const l of this.layers) plan.add(`map:${l.layer}`, { buffer: l.raw, offset: 0, bytes: this.items * l.shape[0] * l.shape[1] * 4 });
  }

  /** The class of each item, and each layer's raw maps (items × h × w, in `layers` order). */
  decode(read: ReadbackResult): { classes: Uint32Array; raw: Float32Array[] } {
    return { classes: read.u32('classes'), raw: this.layers.map((l) => read.f32(`map:${l.layer}`)) };
  }
}

/**
 * Checks and resolves a Grad-CAM request against the graph alone (no GPU): the classes, the feature
 * layers, the reduction and the score tensor. Every mistake is a GradcamError raised here, before
 * any compilation or GPU work.
 */
import { GradcamError } from '../errors.ts';
import { type Graph, perImage } from '../graph/ir.ts';
import { backwardCone } from '../graph/cone.ts';
import { resolveLayers } from './layers.ts';
import { checkSmoothing } from './smoothing.ts';
import { type Method, planMethods } from './methods.ts';
import { type ClassSpec, type GradcamOptions, isReduction, type Reduction, REDUCTIONS } from './types.ts';

export interface PlannedRequest {
  /** Resolved tensor names. */
  layers: string[];
  /** Classes per image. */
  k: number;
  /** Explicit class indices, or null for the top-K chosen on the GPU. */
  explicit: number[] | null;
  reduction: Reduction;
  /** An explicit score tensor (reductionLayer), if any. */
  score?: string;
  /** The CAM methods, known and without duplicates. */
  methods: Method[];
  counterfactual: boolean;
  /** The map as the first principal component of its channel terms (smoothing.ts). */
  eigenSmooth: boolean;
  /** Test-time augmentation: six images per input (smoothing.ts, aug-smooth.ts). */
  augSmooth: boolean;
}

export function classPlan(spec: ClassSpec | undefined, n: number): { k: number; explicit: number[] | null } {
  const s = spec ?? 'top';
  if (typeof s === 'string') {
    const m = /^top(\d*)$/.exec(s);
    if (!m) throw new GradcamError(`classes '${s}' is not understood`, "Use a class index, a list of indices, 'top' or 'topK' (e.g. 'top5').");
    const k = m[1] ? Number(m[1]) : 1;
    if (k < 1 || k > n) throw new GradcamError(`top${k} asks for ${k} classes, but the model has ${n}`);
    return { k, explicit: null };
  }
  const given = typeof s === 'number' ? [s] : s;
  if (given.length === 0) throw new GradcamError('no classes given');
  for (const c of given) {
    if (!Number.isInteger(c) || c < 0 || c >= n) throw new GradcamError(`class index ${c} is out of range: the model has classes 0 … ${n - 1}`);
  }
  // A class asked for twice is explained once (first-seen order).
  const list = [...new Set(given)];
  return { k: list.length, explicit: list };
}

export function planRequest(graph: Graph, options: GradcamOptions): PlannedRequest {
  const reduction = options.reduction ?? 'logit';
  if (!isReduction(reduction)) throw new GradcamError(`reduction '${reduction}' is not one of: ${REDUCTIONS.join(', ')}`);
  const classes = perImage(graph.tensors.get(graph.logits)!);
  const { k, explicit } = classPlan(options.classes, classes);
  const methods = planMethods(options.methods);
  checkSmoothing(methods, options);
  const score = options.reductionLayer;
  if (score !== undefined && !graph.tensors.has(score) && !graph.fusedAway.has(score)) {
    throw new GradcamError(`unknown reduction layer '${score}'`, `The model's scores: ${graph.logits}${graph.probabilities ? ` (logits), ${graph.probabilities} (probabilities)` : ''}.`);
  }
  const requests = options.featureLayers === undefined ? ['auto'] : typeof options.featureLayers === 'string' ? [options.featureLayers] : options.featureLayers;
  const layers = resolveLayers(graph, requests, score ?? graph.logits);
  // The cone check (no path to the score, or a layer after it) on what the current graph shows;
  // tensors hidden by fusion are checked once the graph is re-lowered with them kept.
  const visible = layers.filter((l) => graph.tensors.has(l));
  const scoreTensor = score ?? (reduction === 'softmax' && graph.probabilities ? graph.probabilities : graph.logits);
  if (graph.tensors.has(scoreTensor)) backwardCone(graph, scoreTensor, visible);
  return { layers, k, explicit, reduction, score, methods, counterfactual: options.counterfactual === true, eigenSmooth: options.eigenSmooth === true, augSmooth: options.augSmooth === true };
}

/**
 * The inspector (`inspect: true`): what one map is made of, from the activations A [C, h·w] and the
 * gradients G [C, h·w] (G := −G for the counterfactual) read back with it, and from the graph:
 *   - the channel weights (all C) and each channel's contribution c_k to Σ_hw of the signed map:
 *       weighted methods  c_k = w_k · Σ_hw A_k
 *       element-wise      c_k = Σ_hw term(G_k, A_k)
 *       eigencam          c_k = v_k · Σ_{hw: P > 0} X_k (its share of the positive part; Σ_hw X_k = 0)
 *       eigengradcam      the same with X = G ⊙ A centred
 *   - the top channels by contribution (most positive first) and the most negative ones, with their
 *     activation and gradient maps (h·w values: thumbnails);
 *   - the signed map (before the ReLU) and its negative share;
 *   - for a Concat output (GoogLeNet's inception blocks), each input branch's channel range (from the
 *     graph's concat) and its summed contribution;
 *   - for a residual Add output (a ResNet block, its ReLU fused or not), the residual branch's share
 *     against the identity's (the shortcut): A = ReLU(R + I) = [R + I > 0]·R + [R + I > 0]·I, so a
 *     weighted method's c_k = w_k Σ_hw A_k splits exactly into w_k Σ_{hw: R+I>0} R_k and the same
 *     of I_k (R and I read back with the layer; weighted methods only: the other maps are not
 *     linear in A);
 *   - the CAM identity where it applies (camIdentity);
 *   - a diagnosis sentence (why the map is all zero, when it is).
 * The sums are float64 over float32 values on the CPU: this is a report, not a kernel.
 */
import { ancestors } from '../graph/deps.ts';
import { aliasRoot, type Graph, type Op } from '../graph/ir.ts';
import { type Method, methodSpec } from './methods.ts';

type ConvOp = Extract<Op, { kind: 'conv' }>;
type PoolOp = Extract<Op, { kind: 'maxpool' | 'avgpool' }>;

export interface ChannelDetail {
  channel: number;
  /** The channel's weight (weighted methods: w_k; eigencam: v_k with the map's sign). */
  weight?: number;
  contribution: number;
  /** The branch of the concat it belongs to, when the layer is a Concat output. */
  branch?: string;
  /** A_k, h·w values, row-major. */
  activation: Float32Array;
  /** G_k (negated for the counterfactual), h·w values; absent for eigencam. */
  gradient?: Float32Array;
}

export interface BranchContribution {
  /** The concat input's tensor name. */
  name: string;
  /**
   * What the branch ends in, from the graph: '1×1', '3×3', '5×5' (the producing convolution's kernel),
   * 'pool proj' (a 1×1 after a stride-1 max-pool); for a residual Add 'residual' or 'identity'.
   */
  kind: string;
  /** Channels [start, end) of the layer. */
  channels: [number, number];
  /** Σ of its channels' contributions, and of their positive and negative parts. */
  contribution: number;
  positive: number;
  negative: number;
}

/**
 * Grad-CAM at a layer followed only by global average pooling and the classifier, with the logit
 * reduction: α_k = W[c, k] / (h·w), so the map is CAM / (h·w) (Zhou et al. 2016's class activation map).
 */
export interface CamIdentity {
  /** Whether the layer, score and method are such that the identity holds. */
  applies: boolean;
  /** Why it applies or not. */
  reason: string;
  /** max_k |α_k − W[c, k] / (h·w)| and max_k |W[c, k]| / (h·w) (the scale it is read against). */
  maxAbsDiff?: number;
  scale?: number;
  /** max_hw |signed map − Σ_k W[c, k] A_k / (h·w)| and max_hw Σ_k |W[c, k] A_k| / (h·w). */
  mapMaxAbsDiff?: number;
  mapScale?: number;
}

export interface MapInspection {
  /** Channel weights, all C (weighted methods and eigencam). */
  weights?: Float32Array;
  /** Each channel's contribution (see the module comment), all C. */
  contributions: Float64Array;
  /** The channels with the largest contributions, largest first (at most 8 with c_k > 0). */
  topChannels: ChannelDetail[];
  /** The channels with the most negative contributions, most negative first (at most 8 with c_k < 0). */
  negativeChannels: ChannelDetail[];
  /** The map before the ReLU, h·w. */
  signed: Float32Array;
  /** Σ|negative entries| / Σ|entries| of the signed map (0 when it is all 0), and the share of negative positions. */
  negativeShare: number;
  negativePositions: number;
  /** Per branch of a Concat output. */
  branches?: BranchContribution[];
  /** For gradcam maps (see CamIdentity). */
  camIdentity?: CamIdentity;
  /** One or two sentences: what the map shows, and why it is all zero when it is. */
  diagnosis: string;
}

const TOP = 8;

/** The ops by the root of their output. */
function producers(graph: Graph): Map<string, Op> {
  return new Map(graph.ops.map((op) => [aliasRoot(graph.aliases, op.output), op]));
}

/** A Concat output's branches: channel ranges from the concat's inputs, kinds from their producers. */
export function concatBranches(graph: Graph, layer: string): Omit<BranchContribution, 'contribution' | 'positive' | 'negative'>[] | undefined {
  const root = aliasRoot(graph.aliases, layer);
  const concat = graph.concats.find((c) => aliasRoot(graph.aliases, c.output) === root);
  if (!concat) return undefined;
  const made = producers(graph);
  let start = 0;
  return concat.slices.map((slice) => {
    const channels = graph.tensors.get(slice)!.shape[1];
    let op = made.get(aliasRoot(graph.aliases, slice));
    if (op?.kind === 'copy') op = made.get(aliasRoot(graph.aliases, op.inputs[0]));
    let kind = op?.kind ?? 'input';
    if (op?.kind === 'conv') {
      const conv = op as ConvOp;
      const before = made.get(aliasRoot(graph.aliases, conv.inputs[0]));
      const pool = before?.kind === 'maxpool' && (before as PoolOp).strideH === 1 && (before as PoolOp).strideW === 1;
      kind = pool ? 'pool proj' : `${conv.kh}×${conv.kw}`;
    }
    const range: [number, number] = [start, start + channels];
    start += channels;
    return { name: op?.output ?? slice, kind, channels: range };
  });
}

/** The inputs of a residual Add whose output is `layer`: which is the residual branch, which the identity (shortcut). */
export interface ResidualInputs {
  residual: string;
  identity: string;
  /** Whether a ReLU is fused into the Add (the layer is ReLU(R + I)). */
  relu: boolean;
}

/**
 * When `layer` is the output of an Add of two activations of its shape (a residual block), its
 * inputs: the identity is the one with fewer ops of its own since the two paths split (none for a
 * plain shortcut, one for a downsampling 1×1 conv), the residual branch the other.
 */
export function residualInputs(graph: Graph, layer: string): ResidualInputs | undefined {
  const root = (n: string) => aliasRoot(graph.aliases, n);
  const op = producers(graph).get(root(layer));
  // An Add of two activations is the 'binary' op with fn 'add' (src/ops/binary.ts).
  const o = op?.kind === 'binary' && op.fn === 'add' ? op : undefined;
  if (!o || o.inputs.length !== 2) return undefined;
  const shape = graph.tensors.get(layer)?.shape.join();
  if (o.inputs.some((i) => graph.tensors.get(i)?.shape.join() !== shape)) return undefined;
  const [a, b] = o.inputs.map((i) => ancestors(graph, i));
  const own = (x: Set<string>, y: Set<string>) => [...x].filter((t) => !y.has(t)).length;
  const [ownA, ownB] = [own(a, b), own(b, a)];
  if (ownA === ownB) return undefined;
  const [residual, identity] = ownA > ownB ? o.inputs : [o.inputs[1], o.inputs[0]];
  return { residual, identity, relu: o.relu === true };
}

/**
 * When `layer` is followed only by a global average pool and a 1×1 classifier (Gemm) whose output
 * is the logits (through views: Flatten, Dropout, Reshape), the classifier's weights [classes, C].
 */
export function camClassifier(graph: Graph, layer: string): { weights: Float32Array; channels: number } | { reason: string } {
  const root = (n: string) => aliasRoot(graph.aliases, n);
  const consumers = (n: string) => graph.ops.filter((op) => op.inputs.some((i) => root(i) === root(n)));
  const t = graph.tensors.get(layer)!;
  const [h, w] = [t.shape[2] ?? 1, t.shape[3] ?? 1];
  const after = consumers(layer);
  if (after.length !== 1 || after[0].kind !== 'avgpool') return { reason: `'${layer}' is not followed by a global average pool alone` };
  const pool = after[0] as PoolOp;
  if (pool.kh !== h || pool.kw !== w || pool.pads.some((p) => p !== 0)) return { reason: `the pool after '${layer}' is not global (${pool.kh}×${pool.kw} over ${h}×${w})` };
  const next = consumers(pool.output);
  if (next.length !== 1 || next[0].kind !== 'conv') return { reason: `the global pool after '${layer}' is not followed by the classifier alone` };
  const fc = next[0] as ConvOp;
  if (fc.kh !== 1 || fc.kw !== 1 || fc.relu || root(fc.output) !== root(graph.logits)) {
    return { reason: `the layer after the global pool ('${fc.name}') is not a linear classifier whose output is the logits` };
  }
  return { weights: fc.weight, channels: fc.cIn };
}

export interface InspectInput {
  method: Method;
  layer: string;
  classIndex: number;
  /** A [C, h·w] of the item's image, and G [C, h·w] of the item (already negated for the counterfactual); G absent for eigencam-only programs. */
  activations: Float32Array;
  gradients?: Float32Array;
  channels: number;
  hw: number;
  signed: Float32Array;
  raw: Float32Array;
  /** The method's channel weights (weighted methods), or Eigen-CAM's v (before the sign). */
  weights?: Float32Array;
  /** Eigen-CAM: the sign applied to the projection. */
  branches?: ReturnType<typeof concatBranches>;
  /** A residual Add's inputs (R, I: [C, h·w] of the item's image), from residualInputs. */
  residual?: ResidualInputs & { r: Float32Array; i: Float32Array };
  /** For gradcam maps: the classifier weights when the CAM identity's graph condition holds, else why not. */
  cam?: ReturnType<typeof camClassifier> & { logitReduction: boolean };
  /** The class's probability, when the reduction is softmax (a saturated softmax has vanishing gradients). */
  softmaxProbability?: number;
}

/** Whether the map is ReLU(Σ_k w_k A_k): the weighted methods and scorecam and ablationcam (weights from their passes). */
function weightedMap(m: Method): boolean {
  const { kind } = methodSpec(m);
  return kind === 'weighted' || kind === 'score' || kind === 'ablation';
}

export function inspectMap(x: InspectInput): MapInspection {
  const { channels: C, hw, activations: A, gradients: G, method } = x;
  const spec = methodSpec(method);
  const contributions = new Float64Array(C);
  let weights: Float32Array | undefined;
  if (weightedMap(method)) {
    weights = x.weights!;
    for (let k = 0; k < C; k++) {
      let s = 0;
      for (let i = 0; i < hw; i++) s += A[k * hw + i];
      contributions[k] = weights[k] * s;
    }
  } else if (spec.kind === 'elementwise') {
    for (let k = 0; k < C; k++) {
      let s = 0;
      for (let i = 0; i < hw; i++) s += spec.term!(G![k * hw + i], A[k * hw + i]);
      contributions[k] = s;
    }
  } else {
    // Eigen-CAM: v with the map's sign, from the signed map (P = X v), and each channel's share of P's positive part.
    // X is A centred over positions (eigencam), or G ⊙ A centred (eigengradcam, code 1).
    const v = x.weights!;
    const E = spec.code === 1 ? A.map((a, j) => a * G![j]) : A;
    const mean = new Float64Array(C);
    for (let k = 0; k < C; k++) { for (let i = 0; i < hw; i++) mean[k] += E[k * hw + i]; mean[k] /= hw; }
    let dot = 0; // sign: P·(X v) > 0 when the map kept the sign of v
    for (let i = 0; i < hw; i++) {
      let p = 0;
      for (let k = 0; k < C; k++) p += (E[k * hw + i] - mean[k]) * v[k];
      dot += p * x.signed[i];
    }
    const sign = dot < 0 ? -1 : 1;
    weights = v.map((a) => sign * a);
    for (let k = 0; k < C; k++) {
      let s = 0;
      for (let i = 0; i < hw; i++) if (x.signed[i] > 0) s += (E[k * hw + i] - mean[k]) * weights[k];
      contributions[k] = s;
    }
  }
  const order = [...contributions.keys()].sort((a, b) => contributions[b] - contributions[a] || a - b);
  const branchOf = (k: number) => x.branches?.find((b) => k >= b.channels[0] && k < b.channels[1])?.name;
  const detail = (k: number): ChannelDetail => ({
    channel: k, weight: weights?.[k], contribution: contributions[k], branch: branchOf(k),
    activation: A.slice(k * hw, (k + 1) * hw), gradient: G && spec.gradients ? G.slice(k * hw, (k + 1) * hw) : undefined,
  });
  const topChannels = order.filter((k) => contributions[k] > 0).slice(0, TOP).map(detail);
  const negativeChannels = order.filter((k) => contributions[k] < 0).reverse().slice(0, TOP).map(detail);

  let neg = 0, abs = 0, negCount = 0;
  for (const v of x.signed) { abs += Math.abs(v); if (v < 0) { neg -= v; negCount++; } }
  const branches = (weightedMap(method) && x.residual ? residualShares(x.residual, A, weights!, C, hw) : undefined) ?? x.branches?.map((b) => {
    let positive = 0, negative = 0;
    for (let k = b.channels[0]; k < b.channels[1]; k++) {
      if (contributions[k] > 0) positive += contributions[k];
      else negative += contributions[k];
    }
    return { ...b, contribution: positive + negative, positive, negative };
  });
  const result: MapInspection = {
    weights, contributions, topChannels, negativeChannels, signed: x.signed,
    negativeShare: abs > 0 ? neg / abs : 0, negativePositions: negCount / hw, branches, diagnosis: '',
  };
  if (method === 'gradcam' && x.cam) result.camIdentity = camIdentity(x, weights!);
  result.diagnosis = diagnose(x, result);
  return result;
}

/** The residual and identity shares of a weighted map's contributions (see the module comment). */
function residualShares(res: NonNullable<InspectInput['residual']>, A: Float32Array, w: Float32Array, C: number, hw: number): BranchContribution[] {
  // Where the ReLU passes R + I: where the layer's own value (the GPU's rounded R + I) is > 0.
  const share = (v: Float32Array, name: string, kind: string): BranchContribution => {
    let positive = 0, negative = 0;
    for (let k = 0; k < C; k++) {
      let s = 0;
      for (let j = 0; j < hw; j++) {
        const p = k * hw + j;
        if (!res.relu || A[p] > 0) s += v[p];
      }
      const c = w[k] * s;
      if (c > 0) positive += c;
      else negative += c;
    }
    return { name, kind, channels: [0, C], contribution: positive + negative, positive, negative };
  };
  return [share(res.r, res.residual, 'residual'), share(res.i, res.identity, 'identity')];
}

function camIdentity(x: InspectInput, alpha: Float32Array): CamIdentity {
  const cam = x.cam!;
  if ('reason' in cam) return { applies: false, reason: cam.reason };
  if (!cam.logitReduction) return { applies: false, reason: 'the identity holds for the logit reduction (the score is the classifier\'s output); this map differentiates another score' };
  const { channels: C, hw, activations: A } = x;
  const W = cam.weights.subarray(x.classIndex * cam.channels, (x.classIndex + 1) * cam.channels);
  let maxAbsDiff = 0, scale = 0;
  for (let k = 0; k < C; k++) {
    maxAbsDiff = Math.max(maxAbsDiff, Math.abs(alpha[k] - W[k] / hw));
    scale = Math.max(scale, Math.abs(W[k]) / hw);
  }
  let mapMaxAbsDiff = 0, mapScale = 0;
  for (let i = 0; i < hw; i++) {
    let s = 0, m = 0;
    for (let k = 0; k < C; k++) { s += W[k] * A[k * hw + i]; m += Math.abs(W[k] * A[k * hw + i]); }
    mapMaxAbsDiff = Math.max(mapMaxAbsDiff, Math.abs(x.signed[i] - s / hw));
    mapScale = Math.max(mapScale, m / hw);
  }
  return {
    applies: true, reason: `'${x.layer}' is followed only by global average pooling and the classifier: α_k = W[c, k] / (h·w), the map is CAM / (h·w)`,
    maxAbsDiff, scale, mapMaxAbsDiff, mapScale,
  };
}

const fmt = (v: number) => v.toPrecision(3);

/** Why the map looks as it does, in a sentence or two (the "why is my map all zero?" answer). */
function diagnose(x: InspectInput, r: MapInspection): string {
  const positive = x.raw.filter((v) => v > 0).length;
  const share = `${(100 * r.negativeShare).toFixed(0)}% of the signed map's mass is negative (hidden by the ReLU)`;
  if (positive > 0) return `The map is positive at ${positive} of ${x.hw} positions; ${share}.`;
  const A = x.activations;
  if (A.every((v) => v === 0)) return `The map is all zero because the layer's activations are all 0 for this input.`;
  const spec = methodSpec(x.method);
  if (spec.gradients && x.gradients && x.gradients.every((v) => v === 0)) {
    const saturated = x.softmaxProbability !== undefined && x.softmaxProbability > 0.999
      ? ` The softmax is saturated (p = ${x.softmaxProbability.toPrecision(6)}), so ∂p/∂z ≈ 0: use the logit reduction.` : '';
    return `The map is all zero because the gradient at this layer is 0: the score does not change with it here.${saturated}`;
  }
  if (r.topChannels.length === 0 && r.negativeChannels.length === 0) {
    return 'The map is all zero because every channel contributes exactly 0: the channels the class weighs are 0 in this input (what the class looks for is absent here).';
  }
  const top = r.topChannels[0], bottom = r.negativeChannels[0];
  const named = (c: ChannelDetail | undefined) => (c ? `channel ${c.channel}${c.branch ? ` (${c.branch})` : ''}, ${fmt(c.contribution)}` : 'none');
  if (weightedMap(x.method) && r.weights && r.weights.every((w) => w <= 0)) {
    const max = r.weights.reduce((a, b) => Math.max(a, b), -Infinity);
    return `The map is all zero because every channel weight is ≤ 0 (the largest is ${fmt(max)}): at this layer every channel counts against the class. Try the counterfactual or an earlier layer.`;
  }
  if (spec.kind === 'elementwise' && x.method === 'layercam' && x.gradients && x.gradients.every((g) => g <= 0)) {
    return 'The map is all zero because every gradient is ≤ 0 (LayerCAM keeps positive gradients only).';
  }
  return `The map is all zero because the signed map is ≤ 0 everywhere: the negative contributions (largest: ${named(bottom)}) outweigh the positive ones (largest: ${named(top)}).`;
}

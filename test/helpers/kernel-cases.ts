/**
 * The small models of the kernel tests (test/kernels-forward.test.ts, test/kernels-backward.test.ts).
 *
 * Each *case* (one variant of one kernel) is a branch `x_k → [op under test] → Flatten → Gemm(W_k
 * random [M, F], transB = 1) → z_k`, so that the gradient reaching the op is a dense random vector
 * (rows of W_k), never a one-hot. Several cases that share an input shape are branches of one model,
 * logits = z_1 + z_2 + … (plus a final Softmax for the softmax group): on SwiftShader compiling a conv
 * pipeline costs seconds, the rest of a model milliseconds, and every branch's head uses the same
 * (1×1, one position) conv pipeline, compiled once per model instead of once per case.
 *
 * A branch reads its own input x_k = x + shift_k (an Add of a constant: the engine's affine op; exact,
 * since x is on a coarse grid), so the gradient at x_k is that branch's alone; the gradient at x sums
 * them all. Branches that must read the graph input itself (a Concat of it) read x.
 *
 * Shapes are odd on purpose: not multiples of the conv kernel's 16 channels × 8 positions block,
 * 1×1 spatial, stride 2, asymmetric pads, channel counts not a multiple of 4, batches of 2 and 3.
 * Inputs are float32-exact; where a max or a ReLU follows they are distinct values on a 1/64 grid (no
 * ties, none at 0), except in the tie group, which is about ties.
 */
import type { OnnxAttribute, OnnxModel, OnnxNode, OnnxTensor } from '../../src/onnx/model.ts';
import { buildModel, float, int, int64, ints, node, weight } from '../reference/models.ts';
import { numel, randomTensor, rng, tensor, type Tensor } from '../reference/tensor.ts';

export type Reduction = 'logit' | 'softmax';

/** One compared tensor: which case (branch) and kernel family it belongs to, for the report. */
export interface Compared {
  tensor: string;
  kernel: string;
  branch: string;
}

export interface KernelCase {
  name: string;
  model: OnnxModel;
  input: Tensor;
  /** Tensors whose forward values are compared, besides the logits (and probabilities). */
  checks: Compared[];
  /** Gradient targets: the graph input 'x', each branch input, and the cases' own choices. */
  grads: Compared[];
  /** Tensors the engine must keep addressable (this disables the fusion that would hide them). */
  taps: string[];
  /** Classes per image (K each): classes[n] for image n. */
  classes: number[][];
  reductions: Reduction[];
  /** Why central differences do not apply, when they do not (exact ties). */
  noFd?: string;
  /** Extra assertions on the engine's gradients (item 0 of each wrt tensor); returns violations. */
  handChecks?: (g: Record<string, Float32Array[]>) => string[];
}

// ───────────────────────────── inputs ─────────────────────────────

type Random = () => number;

const uniform = (shape: number[], r: Random, lo = -1, hi = 1): Tensor => randomTensor(shape, r, lo, hi);

/** Distinct values (k + ½)/64 − n/128, shuffled: no ties, none near 0, exact in float32. */
function distinct(shape: number[], r: Random): Tensor {
  const n = numel(shape);
  const v = Array.from({ length: n }, (_, k) => (k + 0.5) / 64 - n / 128);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [v[i], v[j]] = [v[j], v[i]];
  }
  return tensor(shape, v);
}

/** Few levels (multiples of 1/4 in [−1, 1]): many exact ties inside pooling windows. */
function tied(shape: number[], r: Random): Tensor {
  return tensor(shape, Array.from({ length: numel(shape) }, () => Math.floor(r() * 9) / 4 - 1));
}

// ───────────────────────────── building blocks ─────────────────────────────

const pool = (k: number[], s: number[], pads: number[], ceil = 0, extra: Record<string, OnnxAttribute> = {}) =>
  ({ kernel_shape: ints(k), strides: ints(s), pads: ints(pads), ceil_mode: int(ceil), ...extra });

/** What a branch's builder gets: its input, a name prefix, the model's RNG, and places for weights and nodes. */
class Branch {
  readonly weights: OnnxTensor[] = [];
  readonly nodes: OnnxNode[] = [];
  constructor(readonly id: string, readonly input: string, readonly r: Random) {}

  p(name: string): string {
    return `${this.id}/${name}`;
  }

  /** Adds a node; output and weight names are prefixed, inputs named by the builder as given. */
  add(opType: string, inputs: string[], out: string, attrs: Record<string, OnnxAttribute> = {}): string {
    this.nodes.push(node(opType, inputs, [this.p(out)], attrs));
    return this.p(out);
  }

  w(name: string, t: Tensor): string {
    this.weights.push(weight(this.p(name), t));
    return this.p(name);
  }

  /**
   * Conv with W ~ U(±1/√fan_in) (outputs of order 1) and an optional bias ~ U(±½); shape is the
   * weight's [C_out, C_in/group, KH, KW]; group, dilations and auto_pad only when given.
   */
  conv(x: string, out: string, shape: [number, number, number, number], o: ConvOptions = {}): string {
    const s = 1 / Math.sqrt(shape[1] * shape[2] * shape[3]);
    const inputs = [x, this.w(`${out}_w`, uniform(shape, this.r, -s, s))];
    if (o.bias ?? true) inputs.push(this.w(`${out}_b`, uniform([shape[0]], this.r, -0.5, 0.5)));
    const attrs: Record<string, OnnxAttribute> = { kernel_shape: ints([shape[2], shape[3]]), strides: ints(o.strides ?? [1, 1]) };
    if (o.autoPad) attrs.auto_pad = { type: 'string', value: o.autoPad };
    else attrs.pads = ints(o.pads ?? [0, 0, 0, 0]);
    if (o.group) attrs.group = int(o.group);
    if (o.dilations) attrs.dilations = ints(o.dilations);
    return this.add('Conv', inputs, out, attrs);
  }

  batchNorm(x: string, out: string, c: number): string {
    const names = [
      this.w(`${out}_s`, uniform([c], this.r, 0.5, 1.5)), this.w(`${out}_b`, uniform([c], this.r, -0.5, 0.5)),
      this.w(`${out}_m`, uniform([c], this.r, -0.5, 0.5)), this.w(`${out}_v`, uniform([c], this.r, 0.2, 2)),
    ];
    return this.add('BatchNormalization', [x, ...names], out, { epsilon: float(1e-3) });
  }
}

interface CaseSpec {
  name: string;
  kernel: string;
  /** Builds the op(s) under test from `b.input`; returns the tensor the head reads. */
  build(b: Branch): string;
  /** Tensors to compare (unprefixed names; the branch input is 'in'). */
  check: string[];
  /** Gradient targets besides the branch input (unprefixed). */
  wrt?: string[];
  taps?: string[];
  /** Read the graph input x itself instead of a copy (e.g. to concatenate it). */
  direct?: boolean;
  /** The copy is x + shift (exact for the grid inputs). */
  shift?: number;
}

interface GroupSpec {
  name: string;
  seed: number;
  input: number[];
  makeInput(shape: number[], r: Random): Tensor;
  cases: CaseSpec[];
  /** Classes of the head (default 7). */
  classCount?: number;
  classes?: number[][];
  softmax?: boolean;
  reductions?: Reduction[];
  /** The model's opset (default 13). */
  opset?: number;
  noFd?: string;
  handChecks?: KernelCase['handChecks'];
}

/** A group of cases as one model: branches, their heads, logits = Σ z_k [→ Softmax]. */
function makeGroup(g: GroupSpec): KernelCase {
  const r = rng(g.seed);
  const input = g.makeInput(g.input, r);
  const M = g.classCount ?? 7;
  const weights: OnnxTensor[] = [];
  const nodes: OnnxNode[] = [];
  const checks: Compared[] = [];
  const grads: Compared[] = [{ tensor: 'x', kernel: 'input', branch: 'all branches (Σ)' }];
  const taps: string[] = [];
  const heads: string[] = [];
  g.cases.forEach((c, k) => {
    const id = `b${k}`;
    let inName = 'x';
    if (!c.direct) {
      inName = `${id}/in`;
      const shift = `${id}/shift`;
      weights.push(weight(shift, tensor([1], [c.shift ?? 0])));
      nodes.push(node('Add', ['x', shift], [inName]));
    }
    const b = new Branch(id, inName, r);
    const feature = c.build(b);
    weights.push(...b.weights);
    nodes.push(...b.nodes);
    const name = (t: string) => (t === 'in' ? inName : b.p(t));
    checks.push(...c.check.map((t) => ({ tensor: name(t), kernel: c.kernel, branch: c.name })));
    if (!c.direct) grads.push({ tensor: inName, kernel: c.kernel, branch: c.name });
    grads.push(...(c.wrt ?? []).map((t) => ({ tensor: name(t), kernel: c.kernel, branch: c.name })));
    taps.push(...(c.taps ?? []).map(name));
    // The head: Flatten → Gemm with W ~ U(±1.5/√F), so each z_k is of order 1.
    const shape = buildModel({ opset: g.opset, inputs: { x: g.input }, weights: [...weights], nodes: [...nodes], outputs: [feature] }).outputs[0].shape as number[];
    const F = numel(shape.slice(1));
    const s = 1.5 / Math.sqrt(F);
    weights.push(weight(`${id}/head_w`, uniform([M, F], r, -s, s)), weight(`${id}/head_b`, uniform([M], r, -0.5, 0.5)));
    nodes.push(node('Flatten', [feature], [`${id}/flat`], { axis: int(1) }));
    const z = g.cases.length === 1 ? 'logits' : `${id}/z`;
    nodes.push(node('Gemm', [`${id}/flat`, `${id}/head_w`, `${id}/head_b`], [z], { transB: int(1) }));
    heads.push(z);
  });
  for (let k = 1; k < heads.length; k++) {
    const out = k === heads.length - 1 ? 'logits' : `sum${k}`;
    nodes.push(node('Add', [k === 1 ? heads[0] : `sum${k - 1}`, heads[k]], [out]));
  }
  if (g.softmax) nodes.push(node('Softmax', ['logits'], ['prob'], { axis: int(1) }));
  const model = buildModel({ opset: g.opset, inputs: { x: g.input }, weights, nodes, outputs: [g.softmax ? 'prob' : 'logits'] });
  return {
    name: g.name, model, input, checks, grads, taps, noFd: g.noFd, handChecks: g.handChecks,
    classes: g.classes ?? [[3, 0, 5]], reductions: g.reductions ?? ['logit'],
  };
}

interface ConvOptions { bias?: boolean; strides?: number[]; pads?: number[]; group?: number; dilations?: number[]; autoPad?: string }

// ───────────────────────────── the cases ─────────────────────────────

const conv = (name: string, shape: [number, number, number, number], o: ConvOptions = {}): CaseSpec => ({
  name, kernel: 'conv', build: (b) => b.conv(b.input, 'y', shape, o), check: ['y'], wrt: ['y'],
});
/** A conv case reported under `kernel` (depthwise, grouped, dilated, auto_pad). */
const convAs = (kernel: string, name: string, shape: [number, number, number, number], o: ConvOptions = {}): CaseSpec => ({ ...conv(name, shape, o), kernel });
const gemm = (name: string, w: [number, number], attrs: Record<string, OnnxAttribute>, bias: number[] | null): CaseSpec => ({
  name, kernel: 'gemm',
  build: (b) => {
    const f = b.add('Flatten', [b.input], 'f', { axis: int(1) });
    const ins = [f, b.w('g_w', uniform(w, b.r, -0.2, 0.2))];
    if (bias) ins.push(b.w('g_b', uniform(bias, b.r)));
    return b.add('Gemm', ins, 'g', attrs);
  },
  check: ['g'], wrt: ['g'],
});
const maxpool = (name: string, attrs: Record<string, OnnxAttribute>, shift = 0): CaseSpec => ({
  name, kernel: 'maxpool', shift, build: (b) => b.add('MaxPool', [b.input], 'p', attrs), check: ['p'], wrt: ['p'],
});
const avgpool = (name: string, attrs: Record<string, OnnxAttribute>): CaseSpec => ({
  name, kernel: 'avgpool', build: (b) => b.add('AveragePool', [b.input], 'p', attrs), check: ['p'], wrt: ['p'],
});
const gap = (name: string): CaseSpec => ({ name, kernel: 'globalavgpool', build: (b) => b.add('GlobalAveragePool', [b.input], 'p'), check: ['p'], wrt: ['p'] });
const lrn = (name: string, p: { size: number; alpha: number; beta: number; bias: number }): CaseSpec => ({
  name, kernel: 'lrn',
  build: (b) => b.add('LRN', [b.input], 'n', { size: int(p.size), alpha: float(p.alpha), beta: float(p.beta), bias: float(p.bias) }),
  check: ['n'], wrt: ['n'],
});

export function kernelCases(): KernelCase[] {
  return [
    ...elementwiseGroups(),
    makeGroup({
      name: 'conv and gemm on [1, 5, 9, 8]', seed: 11, input: [1, 5, 9, 8], makeInput: (s, r) => uniform(s, r),
      cases: [
        conv('conv 1×1 (pointwise), C_in 5 → C_out 17, bias', [17, 5, 1, 1]),
        conv('conv 3×3 stride 2 no pads, C_in 5 → C_out 33', [33, 5, 3, 3], { strides: [2, 2] }),
        conv('conv 5×5 pad 2, C_in 5 → C_out 17', [17, 5, 5, 5], { pads: [2, 2, 2, 2] }),
        conv('conv 3×2 strides [2,1] pads [0,1,2,0], C_in 5 → C_out 16, no bias', [16, 5, 3, 2], { strides: [2, 1], pads: [0, 1, 2, 0], bias: false }),
        gemm('gemm transB 0, alpha 0.7, beta 1.3, bias [M], K 360 → M 19', [360, 19], { alpha: float(0.7), beta: float(1.3) }, [19]),
        gemm('gemm transB 1, alpha −1.5, beta 0.5, bias [1, M], K 360 → M 33', [33, 360], { transB: int(1), alpha: float(-1.5), beta: float(0.5) }, [1, 33]),
        gemm('gemm transB 1, no bias, K 360 → M 5', [5, 360], { transB: int(1) }, null),
        {
          name: 'matmul with a constant right operand, Reshape [1,−1] in front, K 360 → 21', kernel: 'gemm',
          build: (b) => {
            b.weights.push(int64(b.p('shape'), [1, -1]));
            const f = b.add('Reshape', [b.input, b.p('shape')], 'f');
            return b.add('MatMul', [f, b.w('m_w', uniform([360, 21], b.r, -0.2, 0.2))], 'g');
          },
          check: ['g'], wrt: ['g'],
        },
      ],
    }),
    makeGroup({
      name: 'conv, fusions and views on [1, 3, 13, 11]', seed: 22, input: [1, 3, 13, 11], makeInput: (s, r) => uniform(s, r),
      cases: [
        conv('conv 7×7 stride 2 pads [3,2,2,3], C_in 3 → C_out 17', [17, 3, 7, 7], { strides: [2, 2], pads: [3, 2, 2, 3] }),
        conv('conv 3×3 pad 1, C_in 3 → C_out 33, no bias', [33, 3, 3, 3], { bias: false, pads: [1, 1, 1, 1] }),
        {
          name: 'conv 3×3 pad 1 + Relu (fused into the conv), C_out 17', kernel: 'conv+relu',
          build: (b) => b.add('Relu', [b.conv(b.input, 'y', [17, 3, 3, 3], { pads: [1, 1, 1, 1] })], 'r'), check: ['r'], wrt: ['r'],
        },
        {
          name: 'conv 3×3 pad 1, then Relu standalone (conv output tapped)', kernel: 'relu',
          build: (b) => b.add('Relu', [b.conv(b.input, 'y', [6, 3, 3, 3], { pads: [1, 1, 1, 1] })], 'r'), taps: ['y'], check: ['y', 'r'], wrt: ['y', 'r'],
        },
        {
          name: 'batchnorm after conv (folded into it), pads [1,0,1,2]', kernel: 'batchnorm',
          build: (b) => b.batchNorm(b.conv(b.input, 'y', [17, 3, 3, 3], { bias: false, pads: [1, 0, 1, 2] }), 'bn', 17), check: ['bn'], wrt: ['bn'],
        },
        {
          name: 'batchnorm after conv + Relu (folded, fused)', kernel: 'batchnorm',
          build: (b) => b.add('Relu', [b.batchNorm(b.conv(b.input, 'y', [5, 3, 3, 3], { pads: [1, 1, 1, 1] }), 'bn', 5)], 'r'), check: ['r'], wrt: ['r'],
        },
        {
          name: 'batchnorm after conv, conv output tapped (an affine op, not folded)', kernel: 'batchnorm',
          build: (b) => b.batchNorm(b.conv(b.input, 'y', [7, 3, 3, 3], { bias: false, pads: [1, 1, 1, 1] }), 'bn', 7), taps: ['y'], check: ['y', 'bn'], wrt: ['y', 'bn'],
        },
        {
          name: 'conv 3×3 → Reshape [1,−1] → Dropout → Identity → Flatten → Gemm', kernel: 'views',
          build: (b) => {
            const y = b.conv(b.input, 'y', [5, 3, 3, 3], { pads: [1, 1, 1, 1] });
            b.weights.push(int64(b.p('shape'), [1, -1]));
            return b.add('Identity', [b.add('Dropout', [b.add('Reshape', [y, b.p('shape')], 'v')], 'd')], 'i');
          },
          check: ['y', 'v', 'd', 'i'], wrt: ['y', 'i'],
        },
      ],
    }),
    makeGroup({
      name: 'Winograd F(2×2, 3×3) (3×3 stride 1) on batch 2 of [6, 11, 9]: odd outputs, partial tiles', seed: 23, input: [2, 6, 11, 9],
      makeInput: (s, r) => uniform(s, r), classCount: 6, classes: [[3, 0], [5, 1]],
      cases: [
        conv('winograd: no pads (9×7 output), C_out 20', [20, 6, 3, 3]),
        conv('winograd: pad 2 (13×11 output), C_out 17, no bias', [17, 6, 3, 3], { pads: [2, 2, 2, 2], bias: false }),
        conv('winograd: pads [0,2,1,0], C_out 33', [33, 6, 3, 3], { pads: [0, 2, 1, 0] }),
        {
          name: 'winograd into a concat slice: [conv 1×1, conv 3×3 pad 1]', kernel: 'concat',
          build: (b) => b.add('Concat', [b.conv(b.input, 'a', [3, 6, 1, 1]), b.conv(b.input, 'b', [5, 6, 3, 3], { pads: [1, 1, 1, 1] })], 'cat', { axis: int(1) }),
          check: ['a', 'b', 'cat'], wrt: ['a', 'b', 'cat'],
        },
      ],
    }),
    makeGroup({
      name: '1×1 spatial: [1, 5, 1, 1]', seed: 13, input: [1, 5, 1, 1], makeInput: (s, r) => uniform(s, r),
      cases: [
        conv('conv 3×3 pad 1 on 1×1 spatial, C_in 5 → C_out 6', [6, 5, 3, 3], { pads: [1, 1, 1, 1] }),
        conv('conv 1×1 on 1×1 spatial, C_in 5 → C_out 17, no bias', [17, 5, 1, 1], { bias: false }),
        gap('global average pool on 1×1'),
        lrn('LRN size 7 wider than C 5, alpha 1', { size: 7, alpha: 1, beta: 0.75, bias: 1 }),
        convAs('depthwise', 'depthwise 3×3 pad 1 on 1×1 spatial, group 5 (C 5)', [5, 1, 3, 3], { pads: [1, 1, 1, 1], group: 5 }),
        {
          name: 'global max pool and ReduceMean [2,3] keepdims 0 on 1×1', kernel: 'globalmaxpool',
          build: (b) => b.add('ReduceMean', [b.add('GlobalMaxPool', [b.input], 'g')], 'm', { axes: ints([2, 3]), keepdims: int(0) }), check: ['g', 'm'], wrt: ['g', 'm'],
        },
      ],
    }),
    makeGroup({
      name: 'grouped, depthwise and dilated convolutions on batch 2 of [6, 9, 7]', seed: 31, input: [2, 6, 9, 7],
      makeInput: (s, r) => uniform(s, r), classCount: 6, classes: [[3, 0], [5, 1]],
      cases: [
        convAs('depthwise', 'depthwise 3×3 pad 1, group 6 (C 6)', [6, 1, 3, 3], { pads: [1, 1, 1, 1], group: 6 }),
        convAs('depthwise', 'depthwise ×2 (C_out 12), 3×3 stride 2, pads [1,0,2,1], no bias', [12, 1, 3, 3], { strides: [2, 2], pads: [1, 0, 2, 1], group: 6, bias: false }),
        convAs('depthwise', 'depthwise 5×5 dilation 2, pads [4,3,4,3]', [6, 1, 5, 5], { pads: [4, 3, 4, 3], dilations: [2, 2], group: 6 }),
        convAs('depthwise', 'depthwise 3×3 stride 2, dilations [1,2], auto_pad SAME_UPPER', [6, 1, 3, 3], { strides: [2, 2], dilations: [1, 2], autoPad: 'SAME_UPPER', group: 6 }),
        convAs('grouped', 'group 2, C_in 6 → C_out 34, 3×3 pad 1 (GEMM per group forward, direct backward)', [34, 3, 3, 3], { pads: [1, 1, 1, 1], group: 2 }),
        convAs('grouped', 'group 3, C_in 6 → C_out 24, 1×1 (8 per group: GEMM forward)', [24, 2, 1, 1], { group: 3 }),
        convAs('grouped', 'group 3, C_out 9, 2×2, auto_pad SAME_LOWER', [9, 2, 2, 2], { autoPad: 'SAME_LOWER', group: 3 }),
        convAs('grouped', 'group 2, C_out 8, 3×3 stride 2, auto_pad VALID, dilations [1,2]', [8, 3, 3, 3], { strides: [2, 2], autoPad: 'VALID', group: 2, dilations: [1, 2] }),
        convAs('dilated', 'group 1, 3×3 dilation 2, pads [2,1,2,1], C_out 17 (im2col forward)', [17, 6, 3, 3], { pads: [2, 1, 2, 1], dilations: [2, 2] }),
        {
          name: 'conv 1×1 → 16, then group 2 3×3 pad 1 dilation [2,1] → 34 + Relu (GEMM per group both ways, masked), then group 1 3×3 dilation 2 stride 2',
          kernel: 'grouped',
          build: (b) => {
            const a = b.conv(b.input, 'a', [16, 6, 1, 1]);
            const g = b.add('Relu', [b.conv(a, 'g', [34, 8, 3, 3], { pads: [2, 1, 2, 1], dilations: [2, 1], group: 2 })], 'r');
            return b.conv(g, 'd', [9, 34, 3, 3], { strides: [2, 2], pads: [2, 2, 2, 2], dilations: [2, 2] });
          },
          check: ['a', 'r', 'd'], wrt: ['a', 'r', 'd'],
        },
      ],
    }),
    makeGroup({
      name: 'max pooling, Relu, BatchNorm, nested concat on distinct [1, 5, 10, 9]', seed: 14, input: [1, 5, 10, 9], makeInput: distinct,
      cases: [
        maxpool('maxpool 3×3 s2 pads [0,0,2,2] (Caffe ceil style)', pool([3, 3], [2, 2], [0, 0, 2, 2])),
        maxpool('maxpool 2×2 s2 ceil_mode on odd width 9', pool([2, 2], [2, 2], [0, 0, 0, 0], 1)),
        maxpool('maxpool 3×3 s1 pad 1, all inputs negative (padding never wins)', pool([3, 3], [1, 1], [1, 1, 1, 1]), -8),
        {
          name: 'relu standalone after maxpool 3×3 s2 pads 1', kernel: 'relu',
          build: (b) => b.add('Relu', [b.add('MaxPool', [b.input], 'p', pool([3, 3], [2, 2], [1, 1, 1, 1]))], 'r'), check: ['p', 'r'], wrt: ['p', 'r'],
        },
        {
          name: 'batchnorm after maxpool (an affine op)', kernel: 'batchnorm',
          build: (b) => b.batchNorm(b.add('MaxPool', [b.input], 'p', pool([2, 2], [2, 2], [0, 0, 0, 0])), 'bn', 5), check: ['p', 'bn'], wrt: ['p', 'bn'],
        },
        {
          name: 'batchnorm after maxpool + Relu (affine with fused relu)', kernel: 'batchnorm',
          build: (b) => b.add('Relu', [b.batchNorm(b.add('MaxPool', [b.input], 'p', pool([3, 3], [2, 2], [0, 0, 0, 0])), 'bn', 5)], 'r'),
          check: ['p', 'r'], wrt: ['p', 'r'],
        },
        {
          name: 'nested concat [[conv 1×1, maxpool 3×3 s1 pad 1], conv 3×3]', kernel: 'concat',
          build: (b) => {
            const c1 = b.add('Concat', [b.conv(b.input, 'a', [3, 5, 1, 1]), b.add('MaxPool', [b.input], 'm', pool([3, 3], [1, 1], [1, 1, 1, 1]))], 'c1', { axis: int(1) });
            return b.add('Concat', [c1, b.conv(b.input, 'd', [6, 5, 3, 3], { pads: [1, 1, 1, 1] })], 'c2', { axis: int(1) });
          },
          check: ['a', 'm', 'c1', 'd', 'c2'], wrt: ['a', 'm', 'c1', 'd', 'c2'],
        },
      ],
    }),
    makeGroup({
      name: 'dilated max pooling, auto_pad, global max pool, ReduceMax/ReduceMean over [2,3] (axes attribute) on distinct [1, 5, 10, 9]',
      seed: 32, input: [1, 5, 10, 9], makeInput: distinct,
      cases: [
        maxpool('maxpool 3×3 dilation 2, stride 1, pads [2,1,1,2]', pool([3, 3], [1, 1], [2, 1, 1, 2], 0, { dilations: ints([2, 2]) })),
        maxpool('maxpool 2×2 dilations [2,3] stride 2 ceil_mode pads [1,0,0,1]', pool([2, 2], [2, 2], [1, 0, 0, 1], 1, { dilations: ints([2, 3]) })),
        maxpool('maxpool 3×3 stride 2 auto_pad SAME_UPPER', { kernel_shape: ints([3, 3]), strides: ints([2, 2]), auto_pad: { type: 'string', value: 'SAME_UPPER' } }),
        maxpool('maxpool 2×2 stride 1 auto_pad SAME_LOWER', { kernel_shape: ints([2, 2]), auto_pad: { type: 'string', value: 'SAME_LOWER' } }),
        maxpool('maxpool 3×3 stride 2 auto_pad VALID', { kernel_shape: ints([3, 3]), strides: ints([2, 2]), auto_pad: { type: 'string', value: 'VALID' } }),
        avgpool('avgpool 2×2 stride 2 auto_pad SAME_UPPER count_include_pad 1', { kernel_shape: ints([2, 2]), strides: ints([2, 2]), auto_pad: { type: 'string', value: 'SAME_UPPER' }, count_include_pad: int(1) }),
        { name: 'global max pool', kernel: 'globalmaxpool', build: (b) => b.add('GlobalMaxPool', [b.input], 'p'), check: ['p'], wrt: ['p'] },
        { name: 'ReduceMax axes [2,3] keepdims 1', kernel: 'reduce', build: (b) => b.add('ReduceMax', [b.input], 'p', { axes: ints([2, 3]) }), check: ['p'], wrt: ['p'] },
        { name: 'ReduceMean axes [−2,−1] keepdims 0', kernel: 'reduce', build: (b) => b.add('ReduceMean', [b.input], 'p', { axes: ints([-2, -1]), keepdims: int(0) }), check: ['p'], wrt: ['p'] },
      ],
    }),
    makeGroup({
      name: 'ReduceMean/ReduceMax over [2,3] with the axes as input (opset 18) on batch 2 of distinct [3, 5, 4]', seed: 33, input: [2, 3, 5, 4], opset: 18,
      makeInput: distinct, classCount: 6, classes: [[3, 0], [5, 1]],
      cases: [
        {
          name: 'ReduceMean axes input [2,3] keepdims 1', kernel: 'reduce',
          build: (b) => { b.weights.push(int64(b.p('axes'), [2, 3])); return b.add('ReduceMean', [b.input, b.p('axes')], 'p'); }, check: ['p'], wrt: ['p'],
        },
        {
          name: 'ReduceMax axes input [−1,−2] keepdims 0', kernel: 'reduce',
          build: (b) => { b.weights.push(int64(b.p('axes'), [-1, -2])); return b.add('ReduceMax', [b.input, b.p('axes')], 'p', { keepdims: int(0) }); }, check: ['p'], wrt: ['p'],
        },
      ],
    }),
    makeGroup({
      name: 'average pooling, Add, Concat on [1, 5, 8, 9]', seed: 15, input: [1, 5, 8, 9], makeInput: (s, r) => uniform(s, r),
      cases: [
        ...[0, 1].flatMap((cip) => [
          avgpool(`avgpool 3×3 s2 pads [1,1,0,2] count_include_pad ${cip}`, pool([3, 3], [2, 2], [1, 1, 0, 2], 0, { count_include_pad: int(cip) })),
          avgpool(`avgpool 3×3 s2 pads [1,0,1,0] ceil_mode count_include_pad ${cip}`, pool([3, 3], [2, 2], [1, 0, 1, 0], 1, { count_include_pad: int(cip) })),
          avgpool(`avgpool 2×2 s2 ceil_mode no pads count_include_pad ${cip} (odd width 9)`, pool([2, 2], [2, 2], [0, 0, 0, 0], 1, { count_include_pad: int(cip) })),
        ]),
        gap('global average pool 8×9'),
        {
          name: 'add of two activations (conv 1×1 + conv 3×3)', kernel: 'add',
          build: (b) => b.add('Add', [b.conv(b.input, 'a', [6, 5, 1, 1]), b.conv(b.input, 'b', [6, 5, 3, 3], { pads: [1, 1, 1, 1] })], 's'),
          check: ['a', 'b', 's'], wrt: ['a', 'b', 's'],
        },
        {
          name: 'add + Relu (fused into the add)', kernel: 'add+relu',
          build: (b) => b.add('Relu', [b.add('Add', [b.conv(b.input, 'a', [6, 5, 1, 1]), b.conv(b.input, 'b', [6, 5, 3, 3], { pads: [1, 1, 1, 1] })], 's')], 'r'),
          check: ['a', 'b', 'r'], wrt: ['a', 'r'],
        },
        {
          name: 'concat [conv 1×1, conv 3×3, graph input x]', kernel: 'concat', direct: true,
          build: (b) => b.add('Concat', [b.conv(b.input, 'a', [6, 5, 1, 1]), b.conv(b.input, 'b', [3, 5, 3, 3], { pads: [1, 1, 1, 1] }), b.input], 'cat', { axis: int(1) }),
          check: ['a', 'b', 'cat'], wrt: ['a', 'b', 'cat'],
        },
        {
          name: 'concat [a, b] + conv 1×1 of a: a feeds the concat and a conv', kernel: 'concat',
          build: (b) => {
            const a = b.conv(b.input, 'a', [4, 5, 1, 1]);
            const cat = b.add('Concat', [a, b.conv(b.input, 'b', [3, 5, 3, 3], { pads: [1, 1, 1, 1] })], 'cat', { axis: int(1) });
            return b.add('Add', [cat, b.conv(a, 'e', [7, 4, 1, 1])], 's');
          },
          check: ['a', 'b', 'cat', 'e', 's'], wrt: ['a', 'cat', 'e'],
        },
      ],
    }),
    makeGroup({
      name: 'LRN, and a Softmax as the last op over 100 classes (more than a 64-wide workgroup), on [1, 7, 4, 3]', seed: 16, input: [1, 7, 4, 3],
      makeInput: (s, r) => uniform(s, r, -2, 2), classCount: 100, classes: [[17, 64, 99]], softmax: true, reductions: ['logit', 'softmax'],
      cases: [
        lrn('LRN size 5, alpha 0.5, beta 0.75, bias 1', { size: 5, alpha: 0.5, beta: 0.75, bias: 1 }),
        lrn('LRN size 4 (even), alpha 0.8, beta 0.6, bias 2', { size: 4, alpha: 0.8, beta: 0.6, bias: 2 }),
        lrn('LRN size 3, alpha 1e-2, beta 1.2, bias 0.5', { size: 3, alpha: 1e-2, beta: 1.2, bias: 0.5 }),
        { name: 'conv 3×3 pad 1 → softmax head', kernel: 'softmax', build: (b) => b.conv(b.input, 'y', [4, 7, 3, 3], { pads: [1, 1, 1, 1] }), check: ['y'], wrt: ['y'] },
        avgpool('avgpool 2×2 s1 → softmax head', pool([2, 2], [1, 1], [0, 0, 0, 0])),
      ],
    }),
    makeGroup({
      name: 'max-pool ties on [1, 3, 9, 8] (levels of 1/4)', seed: 18, input: [1, 3, 9, 8],
      // Channel 0's top-left 2×4 is set by hand: [[1, 5, 3, 3], [5, 2, 3, 3]] (below).
      makeInput: (s, r) => {
        const t = tied(s, r);
        [[1, 5, 3, 3], [5, 2, 3, 3]].forEach((row, y) => row.forEach((v, x) => { t.data[y * s[3] + x] = v; }));
        return t;
      },
      noFd: 'exact ties: the max is not differentiable there',
      cases: [
        maxpool('maxpool 3×3 s2 pads 1 with exact ties (first maximum in row-major order)', pool([3, 3], [2, 2], [1, 1, 1, 1])),
        maxpool('maxpool 2×2 s2 with exact ties', pool([2, 2], [2, 2], [0, 0, 0, 0])),
      ],
      // Window (0,0) of the 2×2 pool holds 1 5 / 5 2: its gradient goes to the 5 at (0,1), not (1,0);
      // window (0,1) holds 3 3 / 3 3: all of it goes to (0,2).
      handChecks: (g) => {
        const dx = g['b1/in'][0], dp = g['b1/p'][0];
        const W = 8;
        const want: [number, number, number][] = [[0, 0, 0], [0, 1, dp[0]], [1, 0, 0], [1, 1, 0], [0, 2, dp[1]], [0, 3, 0], [1, 2, 0], [1, 3, 0]];
        const bad = want.filter(([y, x, v]) => dx[y * W + x] !== v).map(([y, x, v]) => `dx[0,0,${y},${x}] = ${dx[y * W + x]}, expected ${v}`);
        if (dp[0] === 0 || dp[1] === 0) bad.push('the upstream gradient of the tie windows is 0: the check is vacuous');
        return bad;
      },
    }),
    makeGroup({
      name: 'batch 2 (softmax reduction without a Softmax node): LRN (GoogLeNet parameters, inputs ±40) → conv 3×3 s2 + Relu → maxpool ceil', seed: 19, input: [2, 3, 9, 8],
      makeInput: (s, r) => uniform(s, r, -40, 40), classCount: 6, classes: [[4, 1], [2, 5]], reductions: ['logit', 'softmax'],
      cases: [
        {
          name: 'batch 2: LRN → conv 3×3 s2 pads [1,1,0,0] + Relu → maxpool 2×2 s2 ceil', kernel: 'batch',
          build: (b) => {
            const n = b.add('LRN', [b.input], 'n', { size: int(5), alpha: float(1e-4), beta: float(0.75), bias: float(1) });
            const r = b.add('Relu', [b.conv(n, 'y', [17, 3, 3, 3], { strides: [2, 2], pads: [1, 1, 0, 0] })], 'r');
            return b.add('MaxPool', [r], 'p', pool([2, 2], [2, 2], [0, 0, 0, 0], 1));
          },
          check: ['n', 'r', 'p'], wrt: ['n', 'r', 'p'],
        },
        lrn('batch 2: LRN size 5, GoogLeNet alpha 1e-4 on inputs of ±40', { size: 5, alpha: 1e-4, beta: 0.75, bias: 1 }),
      ],
    }),
    makeGroup({
      name: 'batch 3: concat [x, conv 1×1] → avgpool 2×2 s2 ceil count_include_pad 1', seed: 20, input: [3, 4, 5, 6], makeInput: (s, r) => uniform(s, r),
      classCount: 5, classes: [[0, 4], [1, 0], [3, 2]],
      cases: [{
        name: 'batch 3: concat [x, conv 1×1] → avgpool 2×2 s2 ceil count_include_pad 1', kernel: 'batch', direct: true,
        build: (b) => b.add('AveragePool', [b.add('Concat', [b.input, b.conv(b.input, 'a', [5, 4, 1, 1])], 'cat', { axis: int(1) })], 'p',
          pool([2, 2], [2, 2], [0, 0, 0, 0], 1, { count_include_pad: int(1) })),
        check: ['a', 'cat', 'p'], wrt: ['a', 'cat', 'p'],
      }],
    }),
    makeGroup({
      // Seed 28: no conv output lies within rounding of a bound (prepare() refuses such a case; seeds 25 and 27 had one).
      name: 'Sigmoid and Clip (opset 13: bounds as inputs) on batch 2 of [5, 6, 7], inputs ±8', seed: 28, input: [2, 5, 6, 7],
      makeInput: (s, r) => uniform(s, r, -8, 8), classCount: 6, classes: [[2, 4], [5, 0]], reductions: ['logit', 'softmax'],
      cases: [
        // (Its backward recomputes σ'(x) from x: it reads the exact branch input, helpers/magnitude.ts.)
        { name: 'sigmoid on ±8', kernel: 'sigmoid', build: (b) => b.add('Sigmoid', [b.input], 's'), check: ['s'], wrt: ['s'] },
        {
          name: 'clip [−0.5, 0.75] after conv 3×3 pad 1', kernel: 'clip',
          build: (b) => b.add('Clip', [b.conv(b.input, 'y', [7, 5, 3, 3], { pads: [1, 1, 1, 1] }), b.w('lo', tensor([], [-0.5])), b.w('hi', tensor([], [0.75]))], 'c'),
          check: ['y', 'c'], wrt: ['y', 'c'],
        },
        {
          name: 'ReLU6: clip [0, 6]', kernel: 'clip',
          build: (b) => b.add('Clip', [b.input, b.w('lo', tensor([], [0])), b.w('hi', tensor([], [6]))], 'c'), check: ['c'], wrt: ['c'],
        },
        { name: 'clip, max 2.5 only', kernel: 'clip', build: (b) => b.add('Clip', [b.input, '', b.w('hi', tensor([], [2.5]))], 'c'), check: ['c'], wrt: ['c'] },
        { name: 'clip, min −1.25 only', kernel: 'clip', build: (b) => b.add('Clip', [b.input, b.w('lo', tensor([], [-1.25]))], 'c'), check: ['c'], wrt: ['c'] },
      ],
    }),
    makeGroup({
      name: 'Clip before opset 11 (bounds as attributes) on [1, 3, 5, 4]', seed: 26, input: [1, 3, 5, 4], opset: 10,
      makeInput: (s, r) => uniform(s, r, -4, 4),
      cases: [
        { name: 'clip-6: min −1, max 3', kernel: 'clip', build: (b) => b.add('Clip', [b.input], 'c', { min: float(-1), max: float(3) }), check: ['c'], wrt: ['c'] },
        { name: 'clip-6: max 0.5 only', kernel: 'clip', build: (b) => b.add('Clip', [b.input], 'c', { max: float(0.5) }), check: ['c'], wrt: ['c'] },
      ],
    }),
    // When written, this group failed to compile: placement.ts writes the first 'a' in place (a slice
    // of cat) and copies the second from it, so the copy reads and writes one buffer, which
    // runtime/forward.ts's checkAliasing refuses ("... are slices of one concatenation").
    makeGroup({
      name: 'concat of the same tensor twice [a, b, a] on [1, 5, 8, 9]', seed: 21, input: [1, 5, 8, 9], makeInput: (s, r) => uniform(s, r),
      cases: [{
        name: 'concat [a, b, a]: a twice (its second slice is a copy)', kernel: 'concat',
        build: (b) => {
          const a = b.conv(b.input, 'a', [4, 5, 1, 1]);
          return b.add('Concat', [a, b.conv(b.input, 'b', [3, 5, 3, 3], { pads: [1, 1, 1, 1] }), a], 'cat', { axis: int(1) });
        },
        check: ['a', 'b', 'cat'], wrt: ['a', 'cat'],
      }],
    }),
    // Layout ops (issue 18): ShuffleNet's channel split and shuffle (Split, Reshape to rank 5,
    // Transpose, Reshape), slices, pads of every mode, a concat along the last axis, views, ReduceMean
    // over non-spatial axes; on a batch of 2 so that every view's item stride is exercised.
    makeGroup({
      name: 'layout on batch 2 of [6, 5, 4]: channel shuffle, Split, Slice, Pad, Concat on axis 3, Squeeze/Unsqueeze, ReduceMean', seed: 31, input: [2, 6, 5, 4],
      makeInput: (s, r) => uniform(s, r), classCount: 5, classes: [[1, 4], [3, 0]],
      cases: [
        {
          name: 'ShuffleNetV2 unit: Split [3, 3] → conv 1×1 on one half → Concat → Reshape [0,2,3,5,4] → Transpose [0,2,1,3,4] → Reshape [0,6,5,4]',
          kernel: 'layout',
          build: (b) => {
            b.weights.push(int64(b.p('split'), [3, 3]), int64(b.p('r5'), [0, 2, 3, 5, 4]), int64(b.p('r4'), [0, 6, 5, 4]));
            b.nodes.push(node('Split', [b.input, b.p('split')], [b.p('s0'), b.p('s1')], { axis: int(1) }));
            const cat = b.add('Concat', [b.p('s0'), b.conv(b.p('s1'), 'c', [3, 3, 1, 1])], 'cat', { axis: int(1) });
            const t = b.add('Transpose', [b.add('Reshape', [cat, b.p('r5')], 'g')], 't', { perm: ints([0, 2, 1, 3, 4]) });
            return b.add('Reshape', [t, b.p('r4')], 'shuffled');
          },
          check: ['s0', 's1', 'c', 'cat', 't', 'shuffled'], wrt: ['s0', 's1', 'cat', 't'],
        },
        {
          name: 'channel Slice 2…5 (a view at an offset) → conv 1×1; channels 0, 1 read by nobody (their gradient 0)', kernel: 'layout',
          build: (b) => {
            b.weights.push(int64(b.p('st'), [2]), int64(b.p('en'), [5]), int64(b.p('ax'), [1]));
            return b.conv(b.add('Slice', [b.input, b.p('st'), b.p('en'), b.p('ax')], 'cs'), 'c', [4, 3, 1, 1]);
          },
          check: ['cs', 'c'], wrt: ['cs', 'c'],
        },
        {
          name: 'Slice opset 13: H from the end with step −2, W 1… (clamped end), channels 1…4',
          kernel: 'layout',
          build: (b) => {
            b.weights.push(int64(b.p('st'), [-1, 1, 1]), int64(b.p('en'), [-100, 100, 4]), int64(b.p('ax'), [2, 3, 1]), int64(b.p('sp'), [-2, 2, 1]));
            return b.add('Slice', [b.input, b.p('st'), b.p('en'), b.p('ax'), b.p('sp')], 's');
          },
          check: ['s'], wrt: ['s'],
        },
        ...(['reflect', 'edge'] as const).map((mode): CaseSpec => ({
          name: `Pad ${mode}, pads H [2, 1] W [1, 3]`, kernel: 'layout',
          build: (b) => {
            b.weights.push(int64(b.p('pads'), [0, 0, 2, 1, 0, 0, 1, 3]));
            return b.add('Pad', [b.input, b.p('pads')], 'p', { mode: { type: 'string', value: mode } });
          },
          check: ['p'], wrt: ['p'],
        })),
        {
          name: 'Pad constant 0.5, channels [1, 0], W cropped by 1 at the start', kernel: 'layout',
          build: (b) => {
            b.weights.push(int64(b.p('pads'), [0, 1, 0, -1, 0, 0, 0, 2]));
            return b.add('Pad', [b.input, b.p('pads'), b.w('v', tensor([], [0.5]))], 'p');
          },
          check: ['p'], wrt: ['p'],
        },
        {
          name: 'all-zero Pad (a view) → AveragePool 2×2; Concat on axis 3 of [x_k, conv 1×1]', kernel: 'layout',
          build: (b) => {
            b.weights.push(int64(b.p('pads'), [0, 0, 0, 0, 0, 0, 0, 0]));
            const pooled = b.add('AveragePool', [b.add('Pad', [b.input, b.p('pads')], 'zp')], 'ap', { kernel_shape: ints([2, 2]), strides: ints([1, 1]) });
            return b.add('Concat', [pooled, b.conv(pooled, 'c', [6, 6, 1, 1])], 'cat', { axis: int(3) });
          },
          check: ['zp', 'ap', 'c', 'cat'], wrt: ['ap', 'c', 'cat'],
        },
        {
          name: 'Transpose to NHWC → Unsqueeze [1] (rank 5) → Squeeze [1] → ReduceMean over the last axis, no keepdims', kernel: 'layout',
          build: (b) => {
            b.weights.push(int64(b.p('ax'), [1]), int64(b.p('axr'), [-1]));
            const t = b.add('Transpose', [b.input], 't', { perm: ints([0, 2, 3, 1]) });
            const s = b.add('Squeeze', [b.add('Unsqueeze', [t, b.p('ax')], 'u'), b.p('ax')], 'sq');
            return b.add('ReduceMean', [s], 'm', { axes: ints([-1]), keepdims: int(0) });
          },
          check: ['t', 'u', 'sq', 'm'], wrt: ['t', 'm'],
        },
        {
          name: 'BatchNormalization wherever it stands: on a rank-5 view [N, 2, 3, 5, 4] (an affine op over axis 1)', kernel: 'batchnorm',
          build: (b) => {
            b.weights.push(int64(b.p('r5'), [0, 2, 3, 5, 4]));
            return b.batchNorm(b.add('Reshape', [b.input, b.p('r5')], 'g'), 'bn', 2);
          },
          check: ['bn'], wrt: ['bn'],
        },
        {
          name: 'ReduceMean over channels (axis 1, keepdims) and over [C, H] (axes 1, 2)', kernel: 'reducemean',
          build: (b) => b.add('Concat', [
            b.add('ReduceMean', [b.input], 'mc', { axes: ints([1]), keepdims: int(1) }),
            b.add('ReduceMean', [b.input], 'mch', { axes: ints([1, 2]), keepdims: int(1) }),
          ], 'cat', { axis: int(2) }),
          check: ['mc', 'mch', 'cat'], wrt: ['mc', 'mch'],
        },
      ],
    }),
    // ConvNeXt's channels-last block: Transpose → LayerNorm over C → MatMul (pointwise, C → 4C) →
    // Relu (a stand-in for GELU) → MatMul (4C → C) → Transpose back; the LayerNorm over the whole
    // image (axis 1); opset 17 (LayerNormalization).
    makeGroup({
      name: 'ConvNeXt channels-last chain on [1, 5, 4, 3] (opset 17)', seed: 32, input: [1, 5, 4, 3], opset: 17,
      makeInput: (s, r) => uniform(s, r, -2, 2),
      cases: [
        {
          name: 'Transpose [0,2,3,1] → LayerNorm (last axis, C 5) → MatMul 5→19 → Relu → MatMul 19→5 → Transpose [0,3,1,2]', kernel: 'layernorm',
          build: (b) => {
            const t = b.add('Transpose', [b.input], 't', { perm: ints([0, 2, 3, 1]) });
            const ln = b.add('LayerNormalization', [t, b.w('g', uniform([5], b.r, 0.5, 1.5)), b.w('be', uniform([5], b.r, -0.5, 0.5))], 'ln', { axis: int(-1), epsilon: float(1e-6) });
            const m1 = b.add('MatMul', [ln, b.w('w1', uniform([5, 19], b.r, -0.45, 0.45))], 'm1');
            const m2 = b.add('MatMul', [b.add('Relu', [m1], 'r'), b.w('w2', uniform([19, 5], b.r, -0.25, 0.25))], 'm2');
            return b.add('Transpose', [m2], 'back', { perm: ints([0, 3, 1, 2]) });
          },
          check: ['t', 'ln', 'm1', 'r', 'm2', 'back'], wrt: ['ln', 'm1', 'm2', 'back'],
        },
        {
          // (torch.onnx's LayerNorm before opset 17; ConvNeXt's channels-first LayerNorm is this over axis 1.)
          name: 'decomposed LayerNorm over the last axis: ReduceMean → Sub → Pow 2 → ReduceMean → Add ε → Sqrt → Div', kernel: 'reducemean',
          build: (b) => {
            const t = b.add('Transpose', [b.input], 't', { perm: ints([0, 2, 3, 1]) });
            const mean = b.add('ReduceMean', [t], 'mean', { axes: ints([-1]), keepdims: int(1) });
            const d = b.add('Sub', [t, mean], 'd');
            const v = b.add('ReduceMean', [b.add('Pow', [d, b.w('two', tensor([], [2]))], 'sq')], 'var', { axes: ints([-1]), keepdims: int(1) });
            const s = b.add('Sqrt', [b.add('Add', [v, b.w('eps', tensor([], [1e-5]))], 've')], 'sd');
            return b.add('Div', [d, s], 'n');
          },
          check: ['mean', 'd', 'var', 'sd', 'n'], wrt: ['mean', 'var', 'n'],
        },
        {
          name: 'LayerNorm from axis 1 (over C, H, W: one row per image), no bias', kernel: 'layernorm',
          build: (b) => b.add('LayerNormalization', [b.input, b.w('g', uniform([5, 4, 3], b.r, 0.5, 1.5))], 'ln', { axis: int(1) }),
          check: ['ln'], wrt: ['ln'],
        },
        {
          name: 'channel Split [2, 3] (views): the first part unused (its gradient zero-filled), the second → Transpose', kernel: 'layout',
          build: (b) => {
            b.weights.push(int64(b.p('split'), [2, 3]));
            b.nodes.push(node('Split', [b.input, b.p('split')], [b.p('s0'), b.p('s1')], { axis: int(1) }));
            return b.add('Transpose', [b.p('s1')], 't', { perm: ints([0, 3, 2, 1]) });
          },
          check: ['s1', 't'], wrt: ['s1', 't'],
        },
      ],
    }),
  ];
}

// ───────────────────────────── element-wise ops: broadcasting (binary.wgsl), activations (activation.wgsl) ─────────────────────────────

/** A constant of the branch, uniform in [lo, hi). */
const constant = (b: Branch, name: string, shape: number[], lo = -1, hi = 1) => b.w(name, uniform(shape, b.r, lo, hi));
/** A scalar constant (shape []). */
const scalar = (b: Branch, name: string, v: number) => b.w(name, tensor([], [v]));
/** One node of `type` on the branch input (and constant inputs), compared at its output. */
const single = (kernel: string, name: string, type: string, attrs: Record<string, OnnxAttribute> = {}, extra: (b: Branch) => string[] = () => []): CaseSpec => ({
  name, kernel, build: (b) => b.add(type, [b.input, ...extra(b)], 'y', attrs), check: ['y'], wrt: ['y'],
});
/** y = type(in, the branch input's mean over H, W [N, C, 1, 1]): a broadcast between two activations. */
const withMean = (kernel: string, name: string, type: string, meanFirst = false): CaseSpec => ({
  name, kernel,
  build: (b) => {
    const g = b.add('GlobalAveragePool', [b.input], 'g');
    return b.add(type, meanFirst ? [g, b.input] : [b.input, g], 'y');
  },
  check: ['g', 'y'], wrt: ['g', 'y'],
});

function elementwiseGroups(): KernelCase[] {
  return [
    makeGroup({
      name: 'broadcast element-wise ops on batch 2 of [5, 6, 7]', seed: 41, input: [2, 5, 6, 7], makeInput: (s, r) => uniform(s, r, -2, 2),
      classCount: 6, classes: [[2, 4], [5, 0]],
      cases: [
        withMean('binary', 'squeeze-and-excite product Mul([N,C,1,1], [N,C,H,W]) of two activations', 'Mul', true),
        single('binary', 'Add of a [W] constant', 'Add', {}, (b) => [constant(b, 'k', [7])]),
        single('binary', 'Sub of a full-shape constant [1,C,H,W]', 'Sub', {}, (b) => [constant(b, 'k', [1, 5, 6, 7])]),
        { name: 'Sub: per-channel constant [C,1,1] minus the activation (affine, scale −1)', kernel: 'affine', build: (b) => b.add('Sub', [constant(b, 'k', [5, 1, 1]), b.input], 'y'), check: ['y'], wrt: ['y'] },
        single('affine', 'Mul by a per-channel constant [1,C,1,1] (affine)', 'Mul', {}, (b) => [constant(b, 'k', [1, 5, 1, 1])]),
        { name: 'Mul of a tensor by itself (x², two gradient contributions)', kernel: 'binary', build: (b) => b.add('Mul', [b.input, b.input], 'y'), check: ['y'], wrt: ['y'] },
        withMean('binary', 'Max of [N,C,H,W] and its mean [N,C,1,1]', 'Max'),
        { name: 'Max(x, x): exact ties everywhere, half of the gradient to each', kernel: 'binary', build: (b) => b.add('Max', [b.input, b.input], 'y'), check: ['y'], wrt: ['y'] },
        single('binary', 'Min with a per-channel constant [C,1,1]', 'Min', {}, (b) => [constant(b, 'k', [5, 1, 1])]),
        {
          name: 'Sum of three: the activation, its mean [N,C,1,1], a [W] constant', kernel: 'binary',
          build: (b) => b.add('Sum', [b.input, b.add('GlobalAveragePool', [b.input], 'g'), constant(b, 'k', [7])], 'y'), check: ['g', 'y'], wrt: ['g', 'y'],
        },
        single('binary', 'PRelu, slope per channel [C,1,1]', 'PRelu', {}, (b) => [constant(b, 'k', [5, 1, 1], 0, 0.5)]),
        single('binary', 'PRelu, scalar slope [1]', 'PRelu', {}, (b) => [constant(b, 'k', [1], 0.1, 0.3)]),
        {
          name: 'rank 5: [N,5,2,3,7] (a Reshape) times a constant [1,1,2,1,7] and times its mean [N,5,1,1,1]', kernel: 'binary',
          build: (b) => {
            b.weights.push(int64(b.p('shape5'), [2, 5, 2, 3, 7]), int64(b.p('shape1'), [2, 5, 1, 1, 1]));
            const r5 = b.add('Reshape', [b.input, b.p('shape5')], 'r5');
            const g5 = b.add('Reshape', [b.add('GlobalAveragePool', [b.input], 'g'), b.p('shape1')], 'g5');
            return b.add('Mul', [b.add('Mul', [r5, constant(b, 'k', [1, 1, 2, 1, 7])], 'm'), g5], 'y');
          },
          check: ['m', 'y'], wrt: ['g5', 'm', 'y'],
        },
        {
          name: 'Add [N,C,H,W] + [N,C,1,1], then Relu (fused: the broadcast gradient masked)', kernel: 'binary+relu',
          build: (b) => b.add('Relu', [b.add('Add', [b.input, b.add('GlobalAveragePool', [b.input], 'g')], 's')], 'r'), check: ['g', 'r'], wrt: ['g', 'r'],
        },
      ],
    }),
    makeGroup({
      name: 'division, powers and a decomposed LayerNorm on positive inputs, batch 2 of [4, 5, 3]', seed: 42, input: [2, 4, 5, 3],
      makeInput: (s, r) => uniform(s, r, 0.5, 2.5), classCount: 5, classes: [[1, 3], [4, 0]],
      cases: [
        single('binary', 'Div by a [H,1] constant', 'Div', {}, (b) => [constant(b, 'k', [5, 1], 0.5, 2)]),
        { name: 'Div of a constant [C,1,1] by the activation', kernel: 'binary', build: (b) => b.add('Div', [constant(b, 'k', [4, 1, 1]), b.input], 'y'), check: ['y'], wrt: ['y'] },
        withMean('binary', 'Div of [N,C,H,W] by its mean [N,C,1,1] (two activations)', 'Div'),
        withMean('binary', 'Div of the mean [N,C,1,1] by [N,C,H,W]', 'Div', true),
        single('affine', 'Div by a scalar constant (affine: x·(1/c))', 'Div', {}, (b) => [scalar(b, 'k', 1.7)]),
        single('activation', 'Sqrt', 'Sqrt'),
        single('activation', 'Reciprocal', 'Reciprocal'),
        ...[2, 3, 1.5, -0.5].map((e) => single('activation', `Pow, exponent ${e}`, 'Pow', {}, (b) => [scalar(b, 'e', e)])),
        {
          name: 'decomposed LayerNorm over (H, W), GlobalAveragePool as the mean: (x − μ)/√(mean((x − μ)²) + ε)', kernel: 'binary',
          build: (b) => {
            const mu = b.add('GlobalAveragePool', [b.input], 'mu');
            const d = b.add('Sub', [b.input, mu], 'd');
            const v = b.add('GlobalAveragePool', [b.add('Pow', [d, scalar(b, 'two', 2)], 'd2')], 'v');
            const s = b.add('Sqrt', [b.add('Add', [v, scalar(b, 'eps', 1e-5)], 've')], 's');
            return b.add('Div', [d, s], 'y');
          },
          check: ['mu', 'd', 'v', 's', 'y'], wrt: ['d', 's', 'y'],
        },
      ],
    }),
    makeGroup({
      name: 'activations on batch 2 of [5, 6, 7], inputs ±4 (opset 20)', seed: 43, input: [2, 5, 6, 7], opset: 20,
      makeInput: (s, r) => uniform(s, r, -4, 4), classCount: 6, classes: [[1, 5], [0, 3]], reductions: ['logit', 'softmax'],
      cases: [
        single('activation', 'HardSigmoid (α 0.2, β 0.5)', 'HardSigmoid'),
        single('activation', 'HardSigmoid α 1/6 (PyTorch\'s)', 'HardSigmoid', { alpha: float(1 / 6) }),
        single('activation', 'HardSwish', 'HardSwish'),
        single('activation', 'LeakyRelu α 0.1', 'LeakyRelu', { alpha: float(0.1) }),
        single('activation', 'Tanh', 'Tanh'),
        single('activation', 'Elu α 1.3', 'Elu', { alpha: float(1.3) }),
        single('activation', 'Softplus', 'Softplus'),
        single('activation', 'Erf', 'Erf'),
        single('activation', 'Gelu (approximate none)', 'Gelu'),
        single('activation', 'Gelu approximate tanh', 'Gelu', { approximate: { type: 'string', value: 'tanh' } }),
        single('activation', 'Neg', 'Neg'),
        single('activation', 'Abs', 'Abs'),
        single('activation', 'Exp', 'Exp'),
        { name: 'SiLU as x · Sigmoid(x)', kernel: 'activation', build: (b) => b.add('Mul', [b.input, b.add('Sigmoid', [b.input], 's')], 'y'), check: ['s', 'y'], wrt: ['s', 'y'] },
        {
          name: 'GELU as the Erf pattern: x · ½(1 + Erf(x/√2))', kernel: 'activation',
          build: (b) => {
            const e = b.add('Erf', [b.add('Div', [b.input, scalar(b, 'sqrt2', Math.SQRT2)], 't')], 'e');
            return b.add('Mul', [b.add('Mul', [b.input, b.add('Add', [e, scalar(b, 'one', 1)], 'a')], 'm'), scalar(b, 'half', 0.5)], 'y');
          },
          check: ['t', 'e', 'y'], wrt: ['t', 'e', 'y'],
        },
        {
          name: 'MobileNetV3 squeeze-and-excite: x · HardSigmoid(mean), α 1/6', kernel: 'activation',
          build: (b) => b.add('Mul', [b.input, b.add('HardSigmoid', [b.add('GlobalAveragePool', [b.input], 'g')], 'h', { alpha: float(1 / 6) })], 'y'),
          check: ['g', 'h', 'y'], wrt: ['g', 'h', 'y'],
        },
        {
          name: 'EfficientNet squeeze-and-excite: x · Sigmoid(mean)', kernel: 'activation',
          build: (b) => b.add('Mul', [b.input, b.add('Sigmoid', [b.add('GlobalAveragePool', [b.input], 'g')], 'h')], 'y'),
          check: ['g', 'h', 'y'], wrt: ['g', 'h', 'y'],
        },
      ],
    }),
  ];
}

/**
 * Error bounds for comparing float32 GPU results with the float64 reference, from float32 rounding.
 *
 * A float32 sum of n terms is within γ_n·Σ|terms| of the exact sum (γ_n = n·u/(1 − n·u) ≈ n·u,
 * u = 2⁻²⁴, worst case, any summation order, FMA or not). Through a chain of ops these bounds add up,
 * each op's Σ|terms| taken over the magnitudes of its inputs. So for every value we compute its
 * *magnitude* M — the same computation carried out on absolute values (|x|, |W|, |b|, ...) — and
 * allow
 *
 *     |gpu − reference| ≤ rtol · M,   rtol = u · Σ_{ops on the way} (n_op + 16)
 *
 * where n_op is the op's reduction length (forward: terms per output; backward: terms per input
 * gradient), the sum runs over the ops between the graph input and the value (forward; at a join the
 * largest of the inputs' budgets) or between the value and the score (backward), and 16 ulp per op cover the rest:
 * bias add, alpha/beta/BatchNorm scales folded into the weights (one rounding each), the average's
 * division (2.5 ulp in WGSL), the write-out. Transcendentals get their WGSL accuracy explicitly
 * (LRN's pow, Softmax's exp). This is a worst-case bound: it never flakes, and it still catches a
 * wrong kernel, because a wrong index, a dropped or doubled term or a wrong coefficient is an error of
 * order M/n, hundreds of times larger than n·u·M for the n ≤ 1300 of these models.
 *
 *   forward magnitudes  (forwardMagnitudes): the reference run on the model with every constant
 *     replaced by its absolute value (BatchNorm's mean by −|mean|, so that (|x| + |mean|)·|scale|/σ + |B|),
 *     on |input|. MaxPool of magnitudes bounds |max| and the error of a max; Relu is the identity on
 *     them. LRN(|x|) = |LRN(x)| bounds LRN's own rounding only, so LRN must read an exact input (the
 *     graph input, or a constant shift of it whose values are float32-exact).
 *   backward magnitudes (backwardMagnitudes): reverse mode with |seed|, |W|, and the *real* forward
 *     values for the decisions (ReLU and Clip masks, max-pool arg-max), every term taken in absolute
 *     value (LRN: |dy_c|·d_c^−β + (2αβ/size)·|x_c|·Σ|dy_j·x_j|·d_j^(−β−1); Softmax: y·(|dy| + Σ|dy|·y)).
 *   Activations (Sigmoid, Tanh, GELU, …) and the broadcast element-wise ops (Add, Mul, Div, …): see
 *     ELEMENTWISE_ROUNDING. Clip: exact; M_y = max(M_x, lo if lo > 0, −hi if hi < 0).
 *
 *   Winograd (3×3, stride-1 convolutions; the CPU variant computes them as F(2×2, 3×3), see
 *     src/kernels/winograd.ts): the magnitude is the algorithm on absolute values,
 *     |Aᵀ|·[Σ_c (|G|·|g|·|Gᵀ|) ⊙ (|Bᵀ|·|d|·|B|)]·|A| + |b| (winogradMagnitude). Each of its stages is a
 *     sum of at most C terms (the channel sum; the transforms add 2 and 3 terms per pass, U is rounded
 *     once), so its error is within u·(C + 9 + 16)·that magnitude, inside the op's C·9 + 16 ulps. It is
 *     never below the direct magnitude (the signed coefficients of each direct term sum to 1), so the
 *     bound also holds where the direct kernel runs. The data gradient of such a layer is computed the
 *     same way (filters transposed and rotated by 180°, pads 2 − pad), and bounded the same way.
 *
 * The decisions must not depend on rounding: `kinkMargins` checks that every ReLU and Clip input and
 * every max-pool window's runner-up lie further from the kink than the error bound (exact ties are
 * allowed where the pool reads exact values).
 *
 * Each ONNX op type's part of this is one entry of the ROUNDING table (its own ulps, magnitude,
 * backward magnitude, kinks), keyed like the reference's OPS (test/reference/graph.ts).
 */
import { gradientPads, usesWinograd, usesWinogradBackward } from '../../src/kernels/winograd.ts';
import type { OnnxModel, OnnxNode, OnnxTensor } from '../../src/onnx/model.ts';
import { extent, forwardValues, referenceBackward as REFERENCE_BACKWARD, padsOf, reduceAxes } from '../reference/graph.ts';
import * as ew from '../reference/elementwise.ts';
import * as layout from '../reference/layout.ts';
import * as op from '../reference/ops.ts';
import { fromOnnx, numel, reshape, tensor, zeros, type Tensor } from '../reference/tensor.ts';

export const U = 2 ** -24;

// ───────────────────────────── attributes ─────────────────────────────

function attr(node: OnnxNode, name: string) {
  return node.attributes[name];
}
const num = (n: OnnxNode, name: string, fallback: number): number => {
  const a = attr(n, name);
  return a && (a.type === 'int' || a.type === 'float') ? a.value : fallback;
};
const list = (n: OnnxNode, name: string, fallback: number[]): number[] => {
  const a = attr(n, name);
  return a && a.type === 'ints' ? a.value : fallback;
};
/** A Conv's parameters for input shape xShape and weight shape wShape (auto_pad as the reference reads it). */
const convParams = (n: OnnxNode, xShape: number[], wShape: number[]): op.ConvParams => {
  const strides = list(n, 'strides', [1, 1]) as [number, number];
  const dilations = list(n, 'dilations', [1, 1]) as [number, number];
  return { strides, dilations, group: num(n, 'group', 1), pads: padsOf(n, xShape.slice(2), extent(wShape.slice(2), dilations), strides) };
};
/** A Conv node's window and channels as the engine's lowering rules take them, for input shape xShape. */
export function convWindow(n: OnnxNode, xShape: number[], wShape: number[]) {
  const [, , kh, kw] = wShape;
  const { strides: [strideH, strideW], pads, dilations, group } = convParams(n, xShape, wShape);
  return { kh, kw, strideH, strideW, pads, dilations: dilations!, group: group!, cIn: xShape[1], cOut: wShape[0] };
}
const poolParams = (n: OnnxNode, xShape: number[]): op.PoolParams => {
  const kernel = list(n, 'kernel_shape', []) as [number, number], strides = list(n, 'strides', [1, 1]) as [number, number];
  const dilations = list(n, 'dilations', [1, 1]) as [number, number];
  return { kernel, strides, dilations, pads: padsOf(n, xShape.slice(2), extent(kernel, dilations), strides), ceilMode: num(n, 'ceil_mode', 0) === 1 };
};
const lrnParams = (n: OnnxNode): op.LrnParams => ({ size: num(n, 'size', 0), alpha: num(n, 'alpha', 1e-4), beta: num(n, 'beta', 0.75), bias: num(n, 'bias', 1) });
const absT = (t: Tensor): Tensor => tensor(t.shape, t.data.map(Math.abs));

// ───────────────────────────── helpers of the table ─────────────────────────────

/**
 * True for the graph input and for Add(graph input, constant): tensors that carry no rounding error
 * from earlier ops, provided their values are float32-exact (prepare() checks that: then the float32
 * add was exact).
 */
export function exactInput(model: OnnxModel, name: string): boolean {
  const isInput = (t: string) => model.inputs.some((i) => i.name === t);
  if (isInput(name)) return true;
  const producer = model.nodes.find((n) => n.outputs.includes(name));
  if (producer && EXACT_COPIES.has(producer.opType)) return exactInput(model, producer.inputs[0]); // a copy of an exact tensor is exact
  return !!producer && producer.opType === 'Add' && producer.inputs.some(isInput) && producer.inputs.some((i) => model.initializers.has(i));
}

/** Ops that move values without arithmetic (the pad value of a constant Pad is a float32 constant). */
const EXACT_COPIES = new Set(['Transpose', 'Slice', 'Split', 'Pad', 'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Identity', 'Dropout']);

const BT_ABS = [[1, 0, 1, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 1, 0, 1]];
const G_ABS = [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0.5], [0, 0, 1]];
const AT_ABS = [[1, 1, 1, 0], [0, 1, 1, 1]];

/** R·X·Sᵀ for small dense matrices. */
function sandwich(r: number[][], x: number[][], s: number[][]): number[][] {
  const rx = r.map((row) => x[0].map((_, j) => row.reduce((a, v, k) => a + v * x[k][j], 0)));
  return rx.map((row) => s.map((srow) => row.reduce((a, v, k) => a + v * srow[k], 0)));
}

/** W'[ci, co, ky, kx] = W[co, ci, 2 − ky, 2 − kx]: the data gradient's 3×3 filters. */
export function rotateTranspose(w: Tensor): Tensor {
  const [CO, CI] = w.shape;
  const out = zeros([CI, CO, 3, 3]);
  for (let co = 0; co < CO; co++) {
    for (let ci = 0; ci < CI; ci++) {
      for (let k = 0; k < 9; k++) out.data[(ci * CO + co) * 9 + 8 - k] = w.data[(co * CI + ci) * 9 + k];
    }
  }
  return out;
}

/** F(2×2, 3×3) on absolute values (x, w, b already ≥ 0): the file comment's Winograd magnitude. */
export function winogradMagnitude(x: Tensor, w: Tensor, b: Tensor | null, pads: op.Pads): Tensor {
  const [N, C, H, W] = x.shape;
  const K = w.shape[0];
  const [pt, pl, pb, pr] = pads;
  const OH = H + pt + pb - 2, OW = W + pl + pr - 2;
  const y = zeros([N, K, OH, OW]);
  const u = Array.from({ length: K * C }, (_, kc) =>
    sandwich(G_ABS, [0, 1, 2].map((ky) => [0, 1, 2].map((kx) => w.data[(kc * 3 + ky) * 3 + kx])), G_ABS));
  for (let n = 0; n < N; n++) {
    for (let ty = 0; ty < OH; ty += 2) {
      for (let tx = 0; tx < OW; tx += 2) {
        const v = Array.from({ length: C }, (_, c) => sandwich(BT_ABS, [0, 1, 2, 3].map((i) => [0, 1, 2, 3].map((j) => {
          const iy = ty - pt + i, ix = tx - pl + j;
          return iy >= 0 && iy < H && ix >= 0 && ix < W ? x.data[((n * C + c) * H + iy) * W + ix] : 0;
        })), BT_ABS));
        for (let k = 0; k < K; k++) {
          const m = [0, 1, 2, 3].map((i) => [0, 1, 2, 3].map((j) => v.reduce((a, vc, c) => a + u[k * C + c][i][j] * vc[i][j], 0)));
          const out = sandwich(AT_ABS, m, AT_ABS);
          for (let i = 0; i < 2 && ty + i < OH; i++) {
            for (let j = 0; j < 2 && tx + j < OW; j++) y.data[((n * K + k) * OH + ty + i) * OW + tx + j] = out[i][j] + (b ? b.data[k] : 0);
          }
        }
      }
    }
  }
  return y;
}

/** Σ of the absolute terms of LRN's backward (the file comment's formula), real x. */
function lrnBackwardMagnitude(dy: Tensor, x: Tensor, p: op.LrnParams): Tensor {
  const [N, C] = x.shape;
  const hw = numel(x.shape.slice(2));
  const lo = Math.floor((p.size - 1) / 2), hi = Math.ceil((p.size - 1) / 2);
  const d = new Float64Array(x.data.length);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      for (let q = 0; q < hw; q++) {
        let s = 0;
        for (let j = Math.max(0, c - lo); j <= Math.min(C - 1, c + hi); j++) s += x.data[(n * C + j) * hw + q] ** 2;
        d[(n * C + c) * hw + q] = p.bias + (p.alpha / p.size) * s;
      }
    }
  }
  const k = 2 * Math.abs(p.beta) * (Math.abs(p.alpha) / p.size);
  const dx = zeros(x.shape);
  for (let i = 0; i < dx.data.length; i++) dx.data[i] = dy.data[i] * d[i] ** -p.beta;
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      // Output channel c's window holds j ∈ [c − lo, c + hi]: its cross term reaches each such x_j.
      for (let j = Math.max(0, c - lo); j <= Math.min(C - 1, c + hi); j++) {
        for (let q = 0; q < hw; q++) {
          const oc = (n * C + c) * hw + q, oj = (n * C + j) * hw + q;
          dx.data[oj] += k * Math.abs(x.data[oj] * dy.data[oc] * x.data[oc]) * d[oc] ** (-p.beta - 1);
        }
      }
    }
  }
  return dx;
}

/**
 * WGSL's pow(d, e) is exp2(e·log2 d): log2 is within 2⁻²¹ absolute on [0.5, 2] and 3 ulp elsewhere,
 * the product rounds once, exp2(t) is within 3 + 2|t| ulp; so pow is within
 * ln2·|e|·max(8, 3|log2 d|) + 3·|e·log2 d| + 3 ulp (relative), taken at the largest |log2 d|.
 */
function powUlps(e: number, maxLog2: number): number {
  return Math.LN2 * Math.abs(e) * Math.max(8, 3 * maxLog2) + 3 * Math.abs(e) * maxLog2 + 3;
}

/** max |log2 d| over LRN's denominators d = bias + (α/size)·Σ x² (from the real input). */
function lrnMaxLog2(x: Tensor, p: op.LrnParams): number {
  const [N, C] = x.shape;
  const hw = numel(x.shape.slice(2));
  const lo = Math.floor((p.size - 1) / 2), hi = Math.ceil((p.size - 1) / 2);
  let m = 0;
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      for (let q = 0; q < hw; q++) {
        let s = 0;
        for (let j = Math.max(0, c - lo); j <= Math.min(C - 1, c + hi); j++) s += x.data[(n * C + j) * hw + q] ** 2;
        m = Math.max(m, Math.abs(Math.log2(p.bias + (p.alpha / p.size) * s)));
      }
    }
  }
  return m;
}

/** exp(t) is within 3 + 2|t| ulp, t down to −(max − min) of the row. */
export function softmaxForwardUlps(len: number, range: number): number {
  return len + 2 * (3 + 2 * range) + 16;
}

/** Softmax's backward on absolute values: y·(|dy| + Σ|dy|·y) per row (the last axis of a 2-D tensor). */
function softmaxBackwardMagnitude(node: OnnxNode, y: Tensor, dy: Tensor, opset: number): Tensor {
  if (opset >= 13 ? num(node, 'axis', -1) !== -1 && num(node, 'axis', -1) !== y.shape.length - 1 : y.shape.length !== 2) {
    throw new Error(`magnitude: Softmax '${node.name}' must be over the last axis of a 2-D tensor`);
  }
  const inner = y.shape[y.shape.length - 1];
  const dx = zeros(y.shape);
  for (let row = 0; row < y.data.length; row += inner) {
    let dot = 0;
    for (let i = 0; i < inner; i++) dot += dy.data[row + i] * y.data[row + i];
    for (let i = 0; i < inner; i++) dx.data[row + i] = y.data[row + i] * (dy.data[row + i] + dot);
  }
  return dx;
}

/**
 * Every max-pool window's maximum beats its runner-up by more than 4·(the window's largest reach), ties
 * allowed as kinkMargins says. `p`: the window (default: the node's MaxPool attributes).
 */
function maxPoolKinks(node: OnnxNode, model: OnnxModel, x: Tensor, reach: ArrayLike<number>, p = poolParams(node, x.shape)): string[] {
  const bad: string[] = [];
  const xName = node.inputs[0];
  const afterRelu = model.nodes.some((n) => n.outputs[0] === xName && n.opType === 'Relu');
  const [N, C, H, W] = x.shape;
  const [dh, dw] = p.dilations!;
  const [kh, kw] = extent(p.kernel, p.dilations!);
  const OH = op.pooledSize(H, kh, p.strides[0], p.pads[0], p.pads[2], p.ceilMode);
  const OW = op.pooledSize(W, kw, p.strides[1], p.pads[1], p.pads[3], p.ceilMode);
  for (let nc = 0; nc < N * C; nc++) {
    for (let oy = 0; oy < OH; oy++) {
      for (let ox = 0; ox < OW; ox++) {
        const ys = oy * p.strides[0] - p.pads[0], xs = ox * p.strides[1] - p.pads[1];
        const vals: number[] = [];
        let reachMax = 0;
        for (let iy = ys; iy < Math.min(ys + kh, H); iy += dh) {
          if (iy < 0) continue;
          for (let ix = xs; ix < Math.min(xs + kw, W); ix += dw) {
            if (ix < 0) continue;
            vals.push(x.data[nc * H * W + iy * W + ix]);
            reachMax = Math.max(reachMax, reach[nc * H * W + iy * W + ix]);
          }
        }
        vals.sort((a, b) => b - a);
        const gap = vals.length > 1 ? vals[0] - vals[1] : Infinity;
        if (gap === 0 && (exactInput(model, xName) || (afterRelu && vals[0] === 0))) continue;
        if (gap <= 4 * reachMax) bad.push(`MaxPool '${node.name}': window (${nc}, ${oy}, ${ox}) has a near tie (gap ${gap}, reach ${reachMax})`);
      }
    }
  }
  return bad;
}

/** Values within 4·reach of a kink at k (ReLU's 0, Clip's bounds). */
function nearKink(node: OnnxNode, x: Tensor, reach: ArrayLike<number>, kinks: number[]): string[] {
  const bad: string[] = [];
  for (let i = 0; i < x.data.length; i++) {
    for (const k of kinks) {
      if (Math.abs(x.data[i] - k) <= 4 * reach[i]) bad.push(`${node.opType} '${node.name}': input ${i} = ${x.data[i]} is within rounding of ${k} (reach ${reach[i]})`);
    }
  }
  return bad;
}

/** Clip's bounds in the real model: attributes before opset 11, constant inputs 1 and 2 from 11 on; ±∞ when absent. */
function clipBounds(node: OnnxNode, model: OnnxModel): [number, number] {
  if (model.opset < 11) return [num(node, 'min', -Infinity), num(node, 'max', Infinity)];
  const bound = (i: number, fallback: number) => (node.inputs[i] ? (model.initializers.get(node.inputs[i])!.data as Float32Array)[0] : fallback);
  return [bound(1, -Infinity), bound(2, Infinity)];
}

/** A pooling window of the whole plane of x (GlobalMaxPool, ReduceMax over [2, 3]). */
const wholePlane = (x: Tensor): op.PoolParams => ({ kernel: [x.shape[2], x.shape[3]], strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], ceilMode: false });

/** The elements a ReduceMean or ReduceMax sums into each output. */
function reducedCount(n: OnnxNode, values: Map<string, Tensor>): number {
  const ins = n.inputs.map((i) => values.get(i)!);
  return numel(ins[0].shape) / numel(values.get(n.outputs[0])!.shape);
}

// ───────────────────────────── the table ─────────────────────────────

/** What a kink check may read besides its first input: every value, and how far rounding reaches in any tensor. */
interface KinkContext { values: Map<string, Tensor>; reachOf(t: string): ArrayLike<number> }

/**
 * The rounding bound of each ONNX op type: the tests' second half of an op, next to its float64
 * reference (test/reference/graph.ts OPS, the same keys). Every member but `backward` is optional.
 */
interface Rounding {
  /** The node in the model on absolute values, when |constants| alone is not its magnitude (Gemm's alpha, BatchNorm's mean). */
  absolute?(n: OnnxNode, c: { model: OnnxModel; inits: Map<string, OnnxTensor>; last: boolean }): OnnxNode;
  /** M of the output from the inputs' magnitudes, when it is not the reference op on them (undefined: it is). */
  magnitude?(n: OnnxNode, mags: Tensor[], c: { model: OnnxModel; winograd: boolean; values: () => Map<string, Tensor> }): Tensor | undefined;
  /** M of each input's gradient from M of the output's (|W|, real forward values for masks and arg-maxes). */
  backward(n: OnnxNode, ins: Tensor[], y: Tensor, dy: Tensor, c: { model: OnnxModel; dys: (Tensor | undefined)[]; mags?: Map<string, Tensor> }): (Tensor | undefined)[];
  /** Inputs whose forward values the backward reads besides exact ones (Mul, Div): their forward rtol joins the backward budget. */
  reads?(n: OnnxNode): string[];
  /** The op's rounding in ulp of its output's magnitude, besides the 16 every op gets (default 0). */
  ulps?(n: OnnxNode, values: Map<string, Tensor>, dir: 'forward' | 'backward'): number;
  /** Decisions within rounding (reach) of a kink. */
  kinks?(n: OnnxNode, model: OnnxModel, x: Tensor, reach: ArrayLike<number>): string[];
  /** Conditions on several inputs: Max/Min decisions within rounding of a tie, a divisor within rounding of 0. */
  margins?(n: OnnxNode, model: OnnxModel, c: KinkContext): string[];
}

const view: Rounding = { backward: (_n, [x], _y, dy) => [op.viewBackward(dy, x.shape)] };
const poolUlps = (n: OnnxNode) => { const k = list(n, 'kernel_shape', []); return k[0] * k[1]; };
const gemmUlps = (n: OnnxNode, values: Map<string, Tensor>, dir: 'forward' | 'backward') => {
  const w = values.get(n.inputs[1])!;
  const [k, m] = num(n, 'transB', 0) === 1 ? [w.shape[1], w.shape[0]] : w.shape;
  return dir === 'forward' ? k : m;
};

/**
 * Layout ops move values without arithmetic: exact, and their magnitude is the op on magnitudes (the
 * reference op on the absolute model: a constant Pad's value taken absolute too); their backward is
 * the reference's scatter of the gradient magnitudes. LayerNormalization: see layerNormMagnitude.
 */
const LAYOUT_ROUNDING: Record<string, Rounding> = {
  Transpose: { backward: (n, ins, y, dy, c) => referenceBackward(n, ins, y, dy, c) },
  Slice: { backward: (n, ins, y, dy, c) => referenceBackward(n, ins, y, dy, c) },
  Split: { backward: (n, ins, y, dy, c) => referenceBackward(n, ins, y, dy, c) },
  Pad: {
    absolute: (n) => (attr(n, 'value') ? { ...n, attributes: { ...n.attributes, value: { type: 'float', value: Math.abs(num(n, 'value', 0)) } } } : n),
    backward: (n, ins, y, dy, c) => referenceBackward(n, ins, y, dy, c),
  },
  Squeeze: { backward: (_n, [x], _y, dy) => [op.viewBackward(dy, x.shape)] },
  Unsqueeze: { backward: (_n, [x], _y, dy) => [op.viewBackward(dy, x.shape)] },
  LayerNormalization: {
    magnitude: (n, [m], c) => layerNormMagnitude(n, m, c.values()),
    backward: (n, [x, scale], _y, dy, c) => {
      if (!exactInput(c.model, n.inputs[0])) throw new Error(`magnitude: LayerNormalization '${n.name}' must read an exact input (its backward recomputes μ and σ from x)`);
      return [layerNormBackwardMagnitude(n, x, absT(scale), dy)];
    },
    // Forward: the row's mean and variance (a sum of `inner` terms each), rsqrt, the products: within
    // 2·inner + 8 ulp of the magnitude; backward: two more row sums and the products, 2·inner + 8.
    ulps: (n, values) => 2 * layerNormInner(n, values.get(n.inputs[0])!.shape) + 8,
  },
};

/** The reference's own backward of an op that moves values (exact): applied to the gradient magnitudes. */
function referenceBackward(n: OnnxNode, ins: Tensor[], y: Tensor, dy: Tensor, c: { model: OnnxModel; dys: (Tensor | undefined)[] }): (Tensor | undefined)[] {
  return REFERENCE_BACKWARD(n, ins, y, dy, c.model.opset, c.dys);
}

const layerNormAxis = (n: OnnxNode, rank: number) => (num(n, 'axis', -1) + rank) % rank;
const layerNormInner = (n: OnnxNode, shape: number[]) => numel(shape.slice(layerNormAxis(n, shape.length)));

/** A row's mean and σ = √(variance + ε), in float64. */
function rowSigma(xs: Float64Array, eps: number): { mean: number; sigma: number } {
  const mean = xs.reduce((a, v) => a + v, 0) / xs.length;
  return { mean, sigma: Math.sqrt(xs.reduce((a, v) => a + (v - mean) ** 2, 0) / xs.length + eps) };
}

/**
 * LayerNormalization's magnitude. Its output is not a sum of |terms|: x̂ = (x − μ)/σ divides by the
 * row's σ, so an error e in x (|e_j| ≤ E, the row's largest input error) moves x̂_i by at most
 * (|e_i| + mean|e|)/σ + |x̂_i|·mean_j(|x̂_j||e_j|)/σ ≤ (2 + |x̂_i|)·E/σ (mean|x̂| ≤ RMS x̂ ≤ 1). The
 * op's own rounding (μ and σ² sums of `inner` terms, on values ≤ max M_x) is an input error of the
 * same kind, and rounds x̂ relatively. So, per row, with the real x and the input magnitudes M_x:
 *     M_y,i = |γ_i|·((2 + |x̂_i|)·max_row M_x/σ + |x̂_i|) + |β_i|,
 * and an input error within rtol_in·M_x gives an output error within rtol_in·M_y.
 */
function layerNormMagnitude(n: OnnxNode, m: Tensor, values: Map<string, Tensor>): Tensor {
  const x = values.get(n.inputs[0])!;
  const scale = values.get(n.inputs[1])!, bias = n.inputs[2] ? values.get(n.inputs[2])! : null;
  const inner = layerNormInner(n, x.shape);
  const out = zeros(x.shape);
  for (let row = 0; row < x.data.length; row += inner) {
    const xs = x.data.subarray(row, row + inner);
    const { mean, sigma } = rowSigma(xs, num(n, 'epsilon', 1e-5));
    const maxM = Math.max(...m.data.subarray(row, row + inner));
    for (let i = 0; i < inner; i++) {
      const xh = Math.abs(xs[i] - mean) / sigma;
      out.data[row + i] = Math.abs(scale.data[i]) * (((2 + xh) * maxM) / sigma + xh) + (bias ? Math.abs(bias.data[i]) : 0);
    }
  }
  return out;
}

/**
 * dx = (g − mean g − x̂·mean(g·x̂))/σ, g = dy·γ, on absolute terms: (|g| + mean|g| + |x̂|·mean|g·x̂|)/σ
 * (|scale| and the gradient magnitudes dy given).
 */
function layerNormBackwardMagnitude(n: OnnxNode, x: Tensor, scale: Tensor, dy: Tensor): Tensor {
  const inner = layerNormInner(n, x.shape);
  const dx = zeros(x.shape);
  for (let row = 0; row < x.data.length; row += inner) {
    const xs = x.data.subarray(row, row + inner);
    const { mean, sigma } = rowSigma(xs, num(n, 'epsilon', 1e-5));
    let g = 0, gx = 0;
    for (let i = 0; i < inner; i++) {
      g += scale.data[i] * dy.data[row + i];
      gx += (scale.data[i] * dy.data[row + i] * Math.abs(xs[i] - mean)) / sigma;
    }
    for (let i = 0; i < inner; i++) {
      dx.data[row + i] = (scale.data[i] * dy.data[row + i] + g / inner + ((Math.abs(xs[i] - mean) / sigma) * gx) / inner) / sigma;
    }
  }
  return dx;
}

// ───────────────────────────── element-wise ops (test/reference/elementwise.ts) ─────────────────────────────

/**
 * Binary ops (numpy broadcasting). An operand's error is within rtol·M of it, a constant's is 0.
 *   Add, Sub, Sum: M_y = Σ M (the sum of absolute terms); Max, Min: max(M_a, M_b), with every
 *   decision (a vs b) further from a tie than rounding reaches; PRelu: max(1, |slope|)·M_x, x away from 0.
 *   Mul: M_y = M_a·|b| + |a|·M_b (each term only for an operand that carries an error; first order).
 *   Div: M_y = M_a/|b| + |a|·M_b/b² (the same; the divisor's error must stay ≪ |b|).
 * Their backward passes read forward values (Mul: the other operand; Div: both): the gradient's
 * magnitude then uses the forward magnitudes of what it reads (needs `mags`), and its budget adds
 * those values' forward rtol (`reads`, backwardBudgets). The backward sums over the dimensions an
 * operand was broadcast along: as many terms as the output has values per value of the operand.
 */
const isConstant = (c: { model: OnnxModel }, name: string) => c.model.initializers.has(name);
const ewBinary = (f: (a: number, b: number) => number, a: Tensor, b: Tensor) => ew.binary({ f, da: () => 0, db: () => 0 }, a, b);
/** Reduces |dy|·P (P over the output's shape) onto an operand's shape (its broadcast dimensions summed). */
const reduceTo = (t: Tensor, shape: number[]) => ew.sumBackward(t, [shape])[0];
/** The forward magnitude of an input for a backward that reads it (|value| for a constant). */
function forwardMag(n: OnnxNode, i: number, ins: Tensor[], c: { model: OnnxModel; mags?: Map<string, Tensor> }): Tensor {
  if (isConstant(c, n.inputs[i])) return absT(ins[i]);
  const m = c.mags?.get(n.inputs[i]);
  if (!m) throw new Error(`magnitude: ${n.opType} '${n.name}' reads '${n.inputs[i]}' in its backward; pass the forward magnitudes to backwardMagnitudes`);
  return m;
}
/** Backward ulps of a broadcast op: the longest sum of its backward (output values per operand value). */
const broadcastUlps = (n: OnnxNode, values: Map<string, Tensor>, dir: 'forward' | 'backward') => {
  const out = numel(values.get(n.outputs[0])!.shape);
  return dir === 'forward' ? n.inputs.length - 1 : Math.max(...n.inputs.map((i) => out / numel(values.get(i)!.shape)));
};
const sumMagnitude = (ms: Tensor[]) => ms.slice(1).reduce((acc, m) => op.add(acc, m), ms[0]);

/** Max/Min: each output's winner beats the loser by more than 4·(the larger reach), or they tie exactly on exact inputs. */
function tieKinks(n: OnnxNode, model: OnnxModel, c: KinkContext): string[] {
  const [a, b] = n.inputs.map((i) => c.values.get(i)!);
  const [ra, rb] = n.inputs.map((i) => (model.initializers.has(i) ? zeros(c.values.get(i)!.shape).data : c.reachOf(i)));
  const gap = ewBinary((u, v) => Math.abs(u - v), a, b);
  const reach = ewBinary(Math.max, tensor(a.shape, ra), tensor(b.shape, rb));
  const exact = n.inputs.every((i) => model.initializers.has(i) || exactInput(model, i));
  const bad: string[] = [];
  gap.data.forEach((g, i) => {
    if (g === 0 && exact) return;
    if (g <= 4 * reach.data[i]) bad.push(`${n.opType} '${n.name}': output ${i} has a near tie (gap ${g}, reach ${reach.data[i]})`);
  });
  return bad;
}

const MUL_DIV_READS = (n: OnnxNode) => n.inputs;

/** Div's bounds are first order in the divisor's error: it must stay below 1e-3 of |b| (else 1/b is not linear there). */
function divisorMargins(n: OnnxNode, model: OnnxModel, c: KinkContext): string[] {
  if (model.initializers.has(n.inputs[1])) return [];
  const b = c.values.get(n.inputs[1])!.data, reach = c.reachOf(n.inputs[1]);
  const bad: string[] = [];
  b.forEach((v, i) => { if (Math.abs(v) <= 1e3 * reach[i]) bad.push(`Div '${n.name}': divisor ${i} = ${v} is within 1e3·rounding of 0 (reach ${reach[i]})`); });
  return bad;
}

const BINARY_ROUNDING: Record<string, Rounding> = {
  Add: { backward: (_n, [a, b], _y, dy) => op.addBackward(dy, a.shape, b.shape), ulps: broadcastUlps },
  Sub: { magnitude: (_n, [ma, mb]) => op.add(ma, mb), backward: (_n, [a, b], _y, dy) => op.addBackward(dy, a.shape, b.shape), ulps: broadcastUlps },
  Sum: { backward: (_n, ins, _y, dy) => ew.sumBackward(dy, ins.map((t) => t.shape)), ulps: broadcastUlps, magnitude: (_n, ms) => sumMagnitude(ms) },
  Mul: {
    magnitude: (n, [ma, mb], c) => {
      const [a, b] = n.inputs.map((i) => absT(c.values().get(i)!));
      const terms = [isConstant(c, n.inputs[0]) ? null : ewBinary((u, v) => u * v, ma, b), isConstant(c, n.inputs[1]) ? null : ewBinary((u, v) => u * v, a, mb)];
      return sumMagnitude(terms.filter((t): t is Tensor => t !== null));
    },
    // dA = Σ dy·b, dB = Σ dy·a: |dy| times the other operand's forward magnitude.
    backward: (n, ins, _y, dy, c) => {
      const [ma, mb] = [forwardMag(n, 0, ins, c), forwardMag(n, 1, ins, c)];
      return [reduceTo(ewBinary((g, v) => g * v, dy, mb), ins[0].shape), reduceTo(ewBinary((g, u) => g * u, dy, ma), ins[1].shape)];
    },
    ulps: broadcastUlps,
    reads: MUL_DIV_READS,
  },
  Div: {
    magnitude: (n, [ma, mb], c) => {
      const [a, b] = n.inputs.map((i) => absT(c.values().get(i)!));
      const terms = [
        isConstant(c, n.inputs[0]) ? null : ewBinary((m, v) => m / v, ma, b),
        isConstant(c, n.inputs[1]) ? null : ewBinary((u, q) => u * q, a, ewBinary((m, v) => m / (v * v), mb, b)),
      ];
      return sumMagnitude(terms.filter((t): t is Tensor => t !== null));
    },
    // dA = Σ dy/b: |Δ(1/b)| ≤ ΔB/b², so |dy|·M_b/b²; dB = −Σ dy·a/b²: |dy|·(M_a/b² + 2|a|·M_b/|b|³).
    backward: (n, ins, _y, dy, c) => {
      const [a, b] = ins.map(absT);
      const [ma, mb] = [forwardMag(n, 0, ins, c), forwardMag(n, 1, ins, c)];
      const pa = ewBinary((m, v) => m / (v * v), mb, b);
      const pb = op.add(ewBinary((m, v) => m / (v * v), ma, b), ewBinary((u, q) => 2 * u * q, a, ewBinary((m, v) => m / (v * v * v), mb, b)));
      return [reduceTo(ewBinary((g, p) => g * p, dy, pa), ins[0].shape), reduceTo(ewBinary((g, p) => g * p, dy, pb), ins[1].shape)];
    },
    // Forward: one division (2.5 ulp); backward: −(g·(a/b))/b, three roundings, plus the sum.
    ulps: (n, values, dir) => broadcastUlps(n, values, dir) + 4,
    reads: MUL_DIV_READS,
    margins: divisorMargins,
  },
  Max: {
    backward: (_n, [a, b], _y, dy) => ew.binaryBackward(ew.BINARY.Max, dy, a, b),
    ulps: broadcastUlps,
    margins: tieKinks,
  },
  Min: {
    magnitude: (_n, [ma, mb]) => ewBinary(Math.max, ma, mb),
    backward: (_n, [a, b], _y, dy) => ew.binaryBackward(ew.BINARY.Min, dy, a, b),
    ulps: broadcastUlps,
    margins: tieKinks,
  },
  PRelu: {
    magnitude: (_n, [m, s]) => ewBinary((u, v) => u * Math.max(1, v), m, s),
    backward: (_n, [x, s], _y, dy) => [reduceTo(ewBinary((g, p) => g * p, dy, ewBinary((u, v) => (u > 0 ? 1 : Math.abs(v)), x, s)), x.shape)],
    kinks: (n, _model, x, reach) => nearKink(n, x, reach, [0]),
  },
};

/**
 * Activations y = f(x). Magnitude, to first order in the input's error (value-aware, from the real x):
 *     M_y = A(x) + |f'(x)|·M_x,
 * A(x) ≥ |f(x)| the absolute terms of f's evaluation (HardSigmoid |αx| + |β|, HardSwish |x|(|x|/6 + ½),
 * else |f(x)|): the op's own rounding is relative to A, an input error moves y by |f'|·Δx. Decisions
 * (HardSigmoid's and HardSwish's corners, LeakyRelu's, Elu's, Abs' 0) lie further from their kink than
 * rounding reaches. The backward recomputes f'(x) from x: its magnitude is |dy|·D(x), D the absolute
 * terms of f' (GELU: Φ(x) + |x|φ(x), where Φ + xφ cancels); when x carries a forward error (not the
 * graph input or a constant shift of it), f'(x) moves by |f''(x)|·Δx to first order, so the magnitude
 * is |dy|·(D(x) + |f''(x)|·M_x) and the budget adds x's forward rtol (`reads`); f'' by central
 * differences of the float64 f' (step 1e-7·max(1, |x|): its own error is far below M_x's scale).
 * Own rounding, in ulps of A (forward) or of |dy|·D (backward), from WGSL's accuracy (exp 3 + 2|v|,
 * division 2.5, sqrt as 1/inverseSqrt 4.5, pow as exp2(y·log2 x)) and the shader's forms (see
 * shaders/activation.wgsl): expm1 ≤ 8 (series for |v| < ½, else e^v − 1 with e^v/(1 − e^v) ≤ 1.6);
 * erfc ≤ 37 + 3a² (the fit's 2, exp of −a² − 1.27 + P(t), P's Horner sum ≈ 6, t's rounding through P
 * ≈ 17); erf = 1 − erfc for |x| ≥ ½ within erfc/erf ≤ 0.93 of that (≤ 40), its series below ½ a few.
 * X = max |x| over the input.
 */
interface ActivationBound {
  /** Ulps beyond the 16 every op gets, forward and backward, from the largest |x| (and the node and values: Pow's exponent). */
  ulps(maxX: number, n: OnnxNode, values: Map<string, Tensor>): [number, number];
  absTerms?(x: number, p: [number, number]): number;
  derivTerms?(x: number, p: [number, number]): number;
  kinks?(p: [number, number]): number[];
}

const sigmoid64 = (v: number) => 1 / (1 + Math.exp(-v));
const geluV = (x: number) => 2 * Math.sqrt(2 / Math.PI) * (Math.abs(x) + 0.044715 * Math.abs(x) ** 3); // |2u|
const ACTIVATION_BOUNDS: Record<string, ActivationBound> = {
  // t = e^(−|x|) within 3 + 2|x| ulp, in numerator and denominator for x < 0, 1 + t and the division:
  // ≤ 4|x| + 10; backward t/(1 + t)² carries t's error 3 times, 1 + t, the square, the division and
  // the product with dy: ≤ 6|x| + 16.
  Sigmoid: { ulps: (m) => [4 * m + 10, 6 * m + 16] },
  HardSigmoid: { ulps: () => [0, 0], absTerms: (x, [a, b]) => Math.abs(a * x) + Math.abs(b), kinks: ([a, b]) => [-b / a, (1 - b) / a] },
  HardSwish: {
    ulps: () => [0, 0], absTerms: (x) => Math.abs(x) * (Math.abs(x) / 6 + 0.5), kinks: () => [-3, 3],
    derivTerms: (x) => (x < -3 ? 0 : x <= 3 ? Math.abs(x) / 3 + 0.5 : 1),
  },
  LeakyRelu: { ulps: () => [0, 0], kinks: () => [0] },
  Tanh: { ulps: (m) => [12, 10 + 4 * m] },
  Elu: { ulps: (m) => [10, 5 + 2 * m], kinks: () => [0] },
  Softplus: { ulps: (m) => [12 + 2 * m, 10 + 4 * m] },
  Erf: { ulps: (m) => [40, 6 + 3 * m * m] },
  Gelu: {
    ulps: (m, n) => (attr(n, 'approximate')?.value === 'tanh' ? [11 + 9 * geluV(m), 21 + 11 * geluV(m)] : [40 + 3 * m * m, 40 + 3 * m * m]),
    derivTerms: (x) => {
      const v = 2 * Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3);
      const phi = Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
      // (Both forms: the erf form's Φ + |x|φ, the tanh form's σ(2u) + |x|σ'(2u)·2u', each ≥ |f'|; the larger.)
      return Math.max(0.5 * (1 + ew.erf(x / Math.SQRT2)) + Math.abs(x) * phi,
        sigmoid64(v) + Math.abs(x) * sigmoid64(v) * (1 - sigmoid64(v)) * 2 * Math.sqrt(2 / Math.PI) * (1 + 3 * 0.044715 * x * x));
    },
  },
  Pow: {
    ulps: (_m, n, values) => {
      const e = Number(values.get(n.inputs[1])!.data[0]);
      const x = values.get(n.inputs[0])!.data;
      const log2 = Math.max(0, ...Array.from(x, (v) => (v === 0 ? 0 : Math.abs(Math.log2(Math.abs(v))))));
      // x·x, x·x·x, √x exactly as the shader special-cases them; otherwise pow(|x|, e) as exp2(e·log2|x|).
      const powerUlps = (k: number) => ([0, 1, 2, 3].includes(k) ? 3 : k === 0.5 ? 5 : powUlps(k, log2));
      return [powerUlps(e), powerUlps(e - 1) + 1];
    },
  },
  Sqrt: { ulps: () => [5, 8] },
  Reciprocal: { ulps: () => [3, 4] },
  Neg: { ulps: () => [0, 0] },
  Abs: { ulps: () => [0, 0], kinks: () => [0] },
  Exp: { ulps: (m) => [3 + 2 * m, 3 + 2 * m] },
};

/** The activation's reference definition and parameters, as the reference graph reads them. */
function activationOf(n: OnnxNode, model: OnnxModel): { def: ew.UnaryDef; p: [number, number] } {
  const t = n.opType === 'Gelu' && attr(n, 'approximate')?.value === 'tanh' ? 'GeluTanh' : n.opType;
  const p: [number, number] = n.opType === 'HardSigmoid' ? [num(n, 'alpha', 0.2), num(n, 'beta', 0.5)]
    : n.opType === 'LeakyRelu' ? [num(n, 'alpha', 0.01), 0] : n.opType === 'Elu' ? [num(n, 'alpha', 1), 0]
    : n.opType === 'Pow' ? [Number((model.initializers.get(n.inputs[1])!.data as Float32Array)[0]), 0] : [0, 0];
  return { def: ew.UNARY[t], p };
}

function activationRounding(type: string): Rounding {
  const bound = ACTIVATION_BOUNDS[type];
  return {
    magnitude: (n, [m], c) => {
      const { def, p } = activationOf(n, c.model);
      const x = c.values().get(n.inputs[0])!;
      return tensor(x.shape, x.data.map((v, i) => (bound.absTerms?.(v, p) ?? Math.abs(def.f(v, ...p))) + Math.abs(def.df(v, ...p)) * m.data[i]));
    },
    backward: (n, ins, _y, dy, c) => {
      const { def, p } = activationOf(n, c.model);
      const x = ins[0];
      const exact = exactInput(c.model, n.inputs[0]);
      const mx = exact ? undefined : forwardMag(n, 0, ins, c);
      const second = (v: number) => {
        const h = 1e-7 * Math.max(1, Math.abs(v));
        return Math.abs(def.df(v + h, ...p) - def.df(v - h, ...p)) / (2 * h);
      };
      return [tensor(x.shape, x.data.map((v, i) => dy.data[i] * ((bound.derivTerms?.(v, p) ?? Math.abs(def.df(v, ...p))) + (mx ? second(v) * mx.data[i] : 0))))];
    },
    reads: (n) => [n.inputs[0]],
    ulps: (n, values, dir) => {
      const maxX = Math.max(...values.get(n.inputs[0])!.data.map(Math.abs));
      return bound.ulps(maxX, n, values)[dir === 'forward' ? 0 : 1];
    },
    kinks: (n, model, x, reach) => (bound.kinks ? nearKink(n, x, reach, bound.kinks(activationOf(n, model).p)) : []),
  };
}

const ELEMENTWISE_ROUNDING: Record<string, Rounding> = {
  ...BINARY_ROUNDING,
  ...Object.fromEntries(Object.keys(ACTIVATION_BOUNDS).map((t) => [t, activationRounding(t)])),
};

const ROUNDING: Record<string, Rounding> = {
  // Grouped and dilated convolutions: the same sums over fewer or spread-out terms (the direct
  // kernel's and the per-group GEMM's terms are those of the reference's loops), so the same bound
  // with the group's reduction length: forward C_in/group·KH·KW, backward C_out/group·KH·KW.
  Conv: {
    magnitude: (n, [x, w, b], c) => {
      const window = convWindow(n, x.shape, w.shape);
      return c.winograd && usesWinograd(window, 'cpu') ? winogradMagnitude(x, w, b ?? null, window.pads) : undefined;
    },
    backward: (n, [x, w], _y, dy) => {
      const window = convWindow(n, x.shape, w.shape);
      if (usesWinogradBackward(window, 'cpu')) return [winogradMagnitude(dy, rotateTranspose(absT(w)), null, gradientPads(window.pads))];
      return [op.convBackward(dy, x.shape, absT(w), convParams(n, x.shape, w.shape))];
    },
    ulps: (n, values, dir) => {
      const [co, ci, kh, kw] = values.get(n.inputs[1])!.shape;
      return (dir === 'forward' ? ci : co / num(n, 'group', 1)) * kh * kw;
    },
  },
  Gemm: {
    absolute: (n) => ({ ...n, attributes: { ...n.attributes, alpha: { type: 'float', value: Math.abs(num(n, 'alpha', 1)) }, beta: { type: 'float', value: Math.abs(num(n, 'beta', 1)) } } }),
    backward: (n, [x, w], _y, dy) => [op.gemmBackward(dy, x.shape, absT(w), {
      transA: num(n, 'transA', 0) === 1, transB: num(n, 'transB', 0) === 1, alpha: Math.abs(num(n, 'alpha', 1)), beta: 0,
    })],
    ulps: gemmUlps,
  },
  MatMul: {
    backward: (_n, [x, w], _y, dy) => [x.shape.length === 2 ? op.matmulBackward(dy, x.shape, absT(w)) : layout.matmulLastAxisBackward(dy, x.shape, absT(w))],
    ulps: gemmUlps,
  },
  MaxPool: {
    backward: (n, [x], _y, dy) => [op.maxPoolBackward(dy, x, poolParams(n, x.shape))],
    ulps: poolUlps,
    kinks: maxPoolKinks,
  },
  AveragePool: { backward: (n, [x], _y, dy) => [op.averagePoolBackward(dy, x.shape, poolParams(n, x.shape), num(n, 'count_include_pad', 0) === 1)], ulps: poolUlps },
  GlobalAveragePool: {
    backward: (_n, [x], _y, dy) => [op.globalAveragePoolBackward(dy, x.shape)],
    ulps: (n, values, dir) => (dir === 'forward' ? numel(values.get(n.inputs[0])!.shape.slice(2)) : 1),
  },
  // A max is exact (its error is its input's); the gradient goes to the real arg-max.
  GlobalMaxPool: {
    backward: (_n, [x], _y, dy) => [op.globalMaxPoolBackward(dy, x)],
    ulps: (n, values, dir) => (dir === 'forward' ? numel(values.get(n.inputs[0])!.shape.slice(2)) : 1),
    kinks: (n, model, x, reach) => maxPoolKinks(n, model, x, reach, wholePlane(x)),
  },
  // Means and maxima over the reduced axes: GlobalAveragePool's and GlobalMaxPool's bounds over those elements.
  ReduceMean: {
    backward: (n, ins, _y, dy, c) => [op.reduceMeanBackward(dy, ins[0].shape, reduceAxes(n, ins, ins[0].shape.length, c.model.opset))],
    ulps: (n, values, dir) => (dir === 'forward' ? reducedCount(n, values) : 1),
  },
  ReduceMax: {
    backward: (n, ins, _y, dy, c) => [op.reduceMaxBackward(dy, ins[0], reduceAxes(n, ins, ins[0].shape.length, c.model.opset))],
    ulps: (n, values, dir) => (dir === 'forward' ? reducedCount(n, values) : 1),
    kinks: (n, model, x, reach) => {
      const axes = reduceAxes(n, n.inputs.map((i) => model.initializers.has(i) ? fromOnnx(model.initializers.get(i)!) : x), x.shape.length, model.opset);
      if (x.shape.length !== 4 || axes.join() !== '2,3') throw new Error(`magnitude: ReduceMax '${n.name}': kinks only over the spatial axes [2, 3]`);
      return maxPoolKinks(n, model, x, reach, wholePlane(x));
    },
  },
  LRN: {
    absolute: (n, c) => {
      if (!exactInput(c.model, n.inputs[0])) throw new Error(`magnitude: LRN '${n.name}' must read the graph input or a constant shift of it (its bound covers its own rounding only)`);
      return n;
    },
    backward: (n, [x], _y, dy) => [lrnBackwardMagnitude(dy, x, lrnParams(n))],
    ulps: (n, values, dir) => {
      const p = lrnParams(n);
      const m = lrnMaxLog2(values.get(n.inputs[0])!, p);
      // Forward: Σ of size squares, one pow. Backward: that, plus a sum of size terms with pow(d, −β−1).
      return dir === 'forward' ? p.size + powUlps(p.beta, m) : 2 * p.size + powUlps(p.beta, m) + powUlps(p.beta + 1, m);
    },
  },
  Relu: {
    backward: (_n, [x], _y, dy) => [op.reluBackward(dy, x)],
    kinks: (n, _model, x, reach) => nearKink(n, x, reach, [0]),
  },
  Softmax: {
    absolute: (n, c) => {
      if (!c.last) throw new Error(`magnitude: Softmax '${n.name}' must be the last node`);
      return { ...n, opType: 'Identity', attributes: {} };
    },
    backward: (n, _ins, y, dy, c) => [softmaxBackwardMagnitude(n, y, dy, c.model.opset)],
    ulps: (n, values, dir) => {
      const x = values.get(n.inputs[0])!;
      const len = x.shape[x.shape.length - 1];
      return dir === 'forward' ? softmaxForwardUlps(len, Math.max(...x.data) - Math.min(...x.data)) - 16 : len;
    },
  },
  BatchNormalization: {
    absolute: (n, c) => {
      const mean = c.model.initializers.get(n.inputs[3])!;
      c.inits.set(n.inputs[3], { ...mean, data: (mean.data as Float32Array).map((v) => -Math.abs(v)) });
      return n;
    },
    backward: (n, ins, _y, dy) => [op.batchNormBackward(dy, {
      scale: absT(ins[1]), bias: ins[2], mean: ins[3], variance: ins[4], epsilon: num(n, 'epsilon', 1e-5),
    })],
  },
  // Exact (a min and a max); |Δy| ≤ |Δx|, and |y| ≤ max(|x|, lo when lo > 0, −hi when hi < 0). The
  // gradient is a mask like ReLU's: x must lie further from both bounds than rounding can move it.
  Clip: {
    magnitude: (n, [m], c) => {
      const [lo, hi] = clipBounds(n, c.model);
      const floor = Math.max(lo, -hi, 0);
      return tensor(m.shape, m.data.map((v) => Math.max(v, floor)));
    },
    backward: (n, [x], _y, dy, c) => [op.clipBackward(dy, x, ...clipBounds(n, c.model))],
    kinks: (n, model, x, reach) => nearKink(n, x, reach, clipBounds(n, model).filter(Number.isFinite)),
  },
  Concat: {
    backward: (n, ins, _y, dy) => {
      const axis = (num(n, 'axis', 1) + dy.shape.length) % dy.shape.length;
      return op.concatBackward(dy, ins.map((t) => t.shape), axis);
    },
  },
  Flatten: view, Reshape: view, Dropout: view, Identity: view,
  ...LAYOUT_ROUNDING,
  ...ELEMENTWISE_ROUNDING,
};

/** The ONNX op types with a rounding bound. */
export const ROUNDING_OP_TYPES: readonly string[] = Object.keys(ROUNDING);

function rounding(n: OnnxNode): Rounding {
  const r = ROUNDING[n.opType];
  if (!r) throw new Error(`magnitude: no rounding bound for ${n.opType} (add it to ROUNDING)`);
  return r;
}

// ───────────────────────────── forward magnitudes ─────────────────────────────

/** The model on absolute values (see the file comment): |constants|, and each op's `absolute`. */
function absoluteModel(model: OnnxModel): OnnxModel {
  const inits = new Map([...model.initializers].map(([k, t]) => [k, t.dataType === 'float32' ? { ...t, data: (t.data as Float32Array).map(Math.abs) } : t]));
  const nodes = model.nodes.map((n, i) => rounding(n).absolute?.(n, { model, inits, last: i === model.nodes.length - 1 }) ?? n);
  return { ...model, initializers: inits, nodes };
}

/**
 * M for every tensor of the forward pass (by name). `winograd: false` gives the direct magnitude
 * everywhere: the reach of an input perturbation (finite differences), rather than of rounding.
 */
export function forwardMagnitudes(model: OnnxModel, inputs: Record<string, Tensor>, o: { winograd?: boolean } = {}): Map<string, Tensor> {
  const abs = Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, absT(t)]));
  let real: Map<string, Tensor> | undefined; // the real model's values, for magnitudes that need them (LayerNormalization's σ)
  const values = () => (real ??= forwardValues(model, inputs));
  return forwardValues(absoluteModel(model), abs, (node, ins) => {
    const m = rounding(node).magnitude?.(node, ins, { model, winograd: o.winograd !== false, values });
    return m ? [m] : undefined;
  });
}

// ───────────────────────────── backward magnitudes ─────────────────────────────

/**
 * Backward magnitudes: for each (non-negative) seed on `score`, the bound M of ∂(seed·score)/∂t for
 * each t in wrt, walking the cone in reverse like the reference's backwardReference. `values` are
 * the real model's forward values (forwardValues).
 */
export function backwardMagnitudes(model: OnnxModel, values: Map<string, Tensor>, score: string, seeds: Float64Array[], wrt: string[],
  /** The forward magnitudes (forwardMagnitudes), for ops whose backward reads inexact forward values (Mul, Div). */
  mags?: Map<string, Tensor>): Record<string, Tensor[]> {
  const inCone = new Set(wrt);
  for (const n of model.nodes) if (n.inputs.some((i) => inCone.has(i))) n.outputs.forEach((o) => inCone.add(o));
  const out: Record<string, Tensor[]> = Object.fromEntries(wrt.map((w) => [w, [] as Tensor[]]));
  for (const seed of seeds) {
    if (seed.some((v) => v < 0)) throw new Error('magnitude: seeds must be non-negative');
    const grads = new Map<string, Tensor>([[score, tensor(values.get(score)!.shape, seed)]]);
    for (let i = model.nodes.length - 1; i >= 0; i--) {
      const node = model.nodes[i];
      const dys = node.outputs.map((o) => grads.get(o));
      if (!dys.some(Boolean) || !node.inputs.some((n) => inCone.has(n))) continue;
      const dy = dys[0] ?? zeros(values.get(node.outputs[0])!.shape);
      const ins = node.inputs.map((n) => values.get(n)!);
      const dIns = rounding(node).backward(node, ins, values.get(node.outputs[0])!, dy, { model, dys, mags });
      node.inputs.forEach((name, j) => {
        if (!inCone.has(name) || !dIns[j]) return;
        const prev = grads.get(name);
        if (!prev) grads.set(name, reshape(dIns[j]!, dIns[j]!.shape));
        else for (let e = 0; e < prev.data.length; e++) prev.data[e] += dIns[j]!.data[e];
      });
    }
    for (const w of wrt) out[w].push(grads.get(w) ?? zeros(values.get(w)!.shape));
  }
  return out;
}

// ───────────────────────────── rounding budgets ─────────────────────────────

/**
 * An op's rounding in ulp of its output's magnitude: its longest reduction (forward: the terms of one
 * output; backward: the terms of one input gradient) + 16 ulp for the rest (file comment).
 */
export function opUlps(node: OnnxNode, values: Map<string, Tensor>, dir: 'forward' | 'backward'): number {
  return (rounding(node).ulps?.(node, values, dir) ?? 0) + 16;
}


/** Forward rtol per tensor: the max over its inputs' rtol plus the op's own (ulps·u). */
export function forwardBudgets(model: OnnxModel, values: Map<string, Tensor>): Map<string, number> {
  const r = new Map<string, number>(model.inputs.map((i) => [i.name, 0]));
  for (const node of model.nodes) {
    const inMax = Math.max(0, ...node.inputs.map((i) => r.get(i) ?? 0)); // initializers are exact (0)
    for (const o of node.outputs) if (o) r.set(o, inMax + opUlps(node, values, 'forward') * U);
  }
  return r;
}

/**
 * Backward rtol per tensor, for gradients of `score` (seeded exactly): the max over its consumers on
 * the way to the score of (their output's rtol + the op's backward ulps), plus 1 ulp per consumer for
 * summing their contributions.
 */
export function backwardBudgets(model: OnnxModel, values: Map<string, Tensor>, score: string): Map<string, number> {
  const r = new Map<string, number>([[score, 0]]);
  let fwd: Map<string, number> | undefined;
  for (let i = model.nodes.length - 1; i >= 0; i--) {
    const node = model.nodes[i];
    const outs = node.outputs.map((o) => r.get(o)).filter((v) => v !== undefined);
    if (outs.length === 0) continue;
    const out = Math.max(...outs);
    // A backward that reads inexact forward values (Mul, Div) carries their forward error too.
    const read = rounding(node).reads?.(node).filter((t) => !model.initializers.has(t)) ?? [];
    const mine = out + opUlps(node, values, 'backward') * U + Math.max(0, ...read.map((t) => (fwd ??= forwardBudgets(model, values)).get(t) ?? 0));
    for (const name of node.inputs) if (!model.initializers.has(name)) r.set(name, Math.max(r.get(name) ?? 0, mine));
  }
  // A tensor read k times (by k ops, or twice by one Concat) sums k contributions: γ_k more.
  for (const [name, v] of r) r.set(name, v + model.nodes.reduce((k, n) => k + n.inputs.filter((i) => i === name).length, 0) * U);
  return r;
}

// ───────────────────────────── decisions away from rounding ─────────────────────────────

/**
 * Checks that rounding (or a finite-difference step) cannot flip a decision (each op's `kinks`): every
 * ReLU input v has |v| > 4·reach(v), every Clip input lies further than that from both bounds, every
 * max-pool window's maximum beats its runner-up by more than 4·(the window's largest reach);
 * reachOf(tensor)[i] is how far rounding or the step can move value i.
 * Exact ties are allowed where the pool reads an exact input (the graph input or a shift of it), and
 * ties at 0 where it reads a Relu output (ReLU's mask gives those a zero gradient whichever wins).
 * Returns the violations (empty when all is well).
 */
export function kinkMargins(model: OnnxModel, values: Map<string, Tensor>, reachOf: (t: string) => ArrayLike<number>): string[] {
  return model.nodes.flatMap((node) => {
    const kinks = rounding(node).kinks;
    const margins = rounding(node).margins?.(node, model, { values, reachOf }) ?? [];
    return [...margins, ...(kinks ? kinks(node, model, values.get(node.inputs[0])!, reachOf(node.inputs[0])) : [])];
  });
}

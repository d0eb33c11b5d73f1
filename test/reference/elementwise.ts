/**
 * The element-wise ops in float64, forward and derivative side by side: the binary ops with numpy
 * broadcasting (Add, Sub, Mul, Div, Max, Min, PRelu, and Sum of n) and the activations. Written from
 * the ONNX definitions; at a kink the derivative is PyTorch's (stated with each). Like ops.ts, it
 * shares no code with src/.
 */
import { broadcastOffsets, broadcastShape } from './ops.ts';
import { numel, zeros, type Tensor } from './tensor.ts';

// ───────────────────────────── binary ops (numpy broadcasting) ─────────────────────────────

/** f and its partial derivatives ∂f/∂a, ∂f/∂b. */
export interface BinaryDef {
  f(a: number, b: number): number;
  da(a: number, b: number): number;
  db(a: number, b: number): number;
}

/** Max/Min: the whole gradient to the operand that wins, half to each at a tie (PyTorch's maximum/minimum). */
const wins = (x: number, o: number, max: boolean) => (x === o ? 0.5 : (max ? x > o : x < o) ? 1 : 0);

export const BINARY: Record<string, BinaryDef> = {
  Add: { f: (a, b) => a + b, da: () => 1, db: () => 1 },
  Sub: { f: (a, b) => a - b, da: () => 1, db: () => -1 },
  Mul: { f: (a, b) => a * b, da: (_a, b) => b, db: (a) => a },
  Div: { f: (a, b) => a / b, da: (_a, b) => 1 / b, db: (a, b) => -a / (b * b) },
  Max: { f: (a, b) => Math.max(a, b), da: (a, b) => wins(a, b, true), db: (a, b) => wins(b, a, true) },
  Min: { f: (a, b) => Math.min(a, b), da: (a, b) => wins(a, b, false), db: (a, b) => wins(b, a, false) },
  // ONNX PRelu: x for x ≥ 0, slope·x below; PyTorch's gradient takes the slope at x = 0. (The slope is a constant.)
  PRelu: { f: (x, s) => (x < 0 ? s * x : x), da: (x, s) => (x > 0 ? 1 : s), db: () => 0 },
};

/** y = f(a, b) over the broadcast shape. */
export function binary(def: BinaryDef, a: Tensor, b: Tensor): Tensor {
  const shape = broadcastShape(a.shape, b.shape);
  const ia = broadcastOffsets(a.shape, shape), ib = broadcastOffsets(b.shape, shape);
  const y = zeros(shape);
  for (let i = 0; i < y.data.length; i++) y.data[i] = def.f(a.data[ia[i]], b.data[ib[i]]);
  return y;
}

/** Each input's gradient: dy · ∂f/∂input, summed over the dimensions the input was broadcast along. */
export function binaryBackward(def: BinaryDef, dy: Tensor, a: Tensor, b: Tensor): [Tensor, Tensor] {
  const ia = broadcastOffsets(a.shape, dy.shape), ib = broadcastOffsets(b.shape, dy.shape);
  const da = zeros(a.shape), db = zeros(b.shape);
  for (let i = 0; i < dy.data.length; i++) {
    const u = a.data[ia[i]], v = b.data[ib[i]];
    da.data[ia[i]] += dy.data[i] * def.da(u, v);
    db.data[ib[i]] += dy.data[i] * def.db(u, v);
  }
  return [da, db];
}

/** Sum of n inputs, broadcast. */
export function sum(xs: Tensor[]): Tensor {
  return xs.slice(1).reduce((acc, x) => binary(BINARY.Add, acc, x), xs[0]);
}

/** Each input of a Sum gets dy summed over the dimensions it was broadcast along. */
export function sumBackward(dy: Tensor, shapes: number[][]): Tensor[] {
  return shapes.map((shape) => {
    const dx = zeros(shape);
    const offsets = broadcastOffsets(shape, dy.shape);
    for (let i = 0; i < dy.data.length; i++) dx.data[offsets[i]] += dy.data[i];
    return dx;
  });
}

// ───────────────────────────── activations ─────────────────────────────

/**
 * erf(x) = (2/√π) e^(−x²) Σ_n 2ⁿ x^(2n+1) / (1·3·…·(2n+1)): every term positive, so no cancellation;
 * summed until a term no longer changes the sum. |x| > 6: ±1 (erfc(6) ≈ 2e−17).
 */
export function erf(x: number): number {
  const a = Math.abs(x);
  if (a > 6) return Math.sign(x);
  let term = a, total = a;
  for (let n = 1; term > 1e-17 * total; n++) {
    term *= (2 * a * a) / (2 * n + 1);
    total += term;
  }
  return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * Math.exp(-a * a) * total;
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const GELU_C = 0.044715;
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** f(x) and f'(x) with the node's parameters (α, β; Pow's exponent as α). */
export interface UnaryDef {
  f(x: number, alpha: number, beta: number): number;
  df(x: number, alpha: number, beta: number): number;
}

export const UNARY: Record<string, UnaryDef> = {
  // (The reference graph runs Sigmoid with ops.ts' sigmoid; this row serves the rounding bounds.)
  Sigmoid: { f: sigmoid, df: (x) => sigmoid(x) * (1 - sigmoid(x)) },
  // clamp(αx + β, 0, 1); the gradient is α strictly inside (PyTorch's hardsigmoid: −3 < x < 3).
  HardSigmoid: {
    f: (x, a, b) => Math.min(1, Math.max(0, a * x + b)),
    df: (x, a, b) => (a * x + b > 0 && a * x + b < 1 ? a : 0),
  },
  // x·clamp(x/6 + ½, 0, 1); PyTorch's hardswish_backward: 0 below −3, x/3 + ½ up to 3 (inclusive), then 1.
  HardSwish: { f: (x) => x * Math.min(1, Math.max(0, x / 6 + 0.5)), df: (x) => (x < -3 ? 0 : x <= 3 ? x / 3 + 0.5 : 1) },
  // x for x ≥ 0, αx below; PyTorch: the gradient at 0 is α.
  LeakyRelu: { f: (x, a) => (x >= 0 ? x : a * x), df: (x, a) => (x > 0 ? 1 : a) },
  Tanh: { f: Math.tanh, df: (x) => 1 - Math.tanh(x) ** 2 },
  // x for x > 0, α(eˣ − 1) else; PyTorch: α·eˣ for x ≤ 0.
  Elu: { f: (x, a) => (x > 0 ? x : a * Math.expm1(x)), df: (x, a) => (x > 0 ? 1 : a * Math.exp(x)) },
  Softplus: { f: (x) => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x))), df: sigmoid },
  Erf: { f: erf, df: (x) => (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x) },
  // x·Φ(x), Φ(x) = ½(1 + erf(x/√2)); the derivative Φ(x) + x·φ(x).
  Gelu: {
    f: (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)),
    df: (x) => 0.5 * (1 + erf(x / Math.SQRT2)) + (x * Math.exp(-0.5 * x * x)) / Math.sqrt(2 * Math.PI),
  },
  // ½x(1 + tanh u), u = √(2/π)(x + 0.044715x³).
  GeluTanh: {
    f: (x) => 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + GELU_C * x ** 3))),
    df: (x) => {
      const t = Math.tanh(SQRT_2_OVER_PI * (x + GELU_C * x ** 3));
      return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * GELU_C * x * x);
    },
  },
  // x^e; its derivative e·x^(e−1) (PyTorch: 0 when e = 0).
  Pow: { f: (x, e) => x ** e, df: (x, e) => (e === 0 ? 0 : e * x ** (e - 1)) },
  Sqrt: { f: Math.sqrt, df: (x) => 0.5 / Math.sqrt(x) },
  Reciprocal: { f: (x) => 1 / x, df: (x) => -1 / (x * x) },
  Neg: { f: (x) => -x, df: () => -1 },
  // PyTorch: sign(x), 0 at 0.
  Abs: { f: Math.abs, df: Math.sign },
  Exp: { f: Math.exp, df: Math.exp },
};

export function unary(def: UnaryDef, x: Tensor, alpha = 0, beta = 0): Tensor {
  const y = zeros(x.shape);
  for (let i = 0; i < numel(x.shape); i++) y.data[i] = def.f(x.data[i], alpha, beta);
  return y;
}

export function unaryBackward(def: UnaryDef, dy: Tensor, x: Tensor, alpha = 0, beta = 0): Tensor {
  const dx = zeros(x.shape);
  for (let i = 0; i < dx.data.length; i++) dx.data[i] = dy.data[i] * def.df(x.data[i], alpha, beta);
  return dx;
}

// Element-wise activations y = f(x), f chosen by FN (src/ops/activation.ts lists them), with the
// parameters α (p.alpha) and β (p.beta); one invocation per value over items × count (elementOf:
// src/gpu/wgsl-library.ts ELEMENT).
//   forward:  y = f(x)
//   backward: dx (+)= dy' · f'(x), f' recomputed from the forward input x (read at image item / maskDiv),
//             dy' = dy, or dy · (dy > 0) when GUIDED (guided backprop at a rectifier: set for Clip only)
//
//   f                  f(x)                                  f'(x) (at a kink: PyTorch's choice)
//   Sigmoid            1 / (1 + e^−x)                        σ(x)(1 − σ(x))
//   HardSigmoid        clamp(αx + β, 0, 1)                   α where 0 < αx + β < 1 (strict), else 0
//   HardSwish          x · clamp(x/6 + ½, 0, 1)              0 for x < −3, x/3 + ½ for x ≤ 3, else 1
//   LeakyRelu          x for x ≥ 0, αx below                 1 for x > 0, else α
//   Tanh               tanh x                                1 − tanh² x
//   Elu                x for x > 0, α(e^x − 1) else          1 for x > 0, else α e^x
//   Softplus           log(1 + e^x)                          σ(x)
//   Erf                erf x                                 (2/√π) e^(−x²)
//   Gelu               x Φ(x) = ½ x erfc(−x/√2)               Φ(x) + x φ(x)
//   GeluTanh           ½ x (1 + tanh u) = x σ(2u),           σ(2u) + x σ'(2u) · 2u'
//                      u = √(2/π)(x + 0.044715 x³)
//   Pow                x^α (α a constant)                    α x^(α−1) (0 when α = 0)
//   Sqrt, Reciprocal   √x, 1/x                               ½/√x, −1/x²
//   Neg, Abs, Exp      −x, |x|, e^x                          −1, sign x (0 at 0), e^x
//   Clip               min(max(x, α), β) (β wins if α > β)   1 for α < x < β (strict: hardtanh's, ReLU6's), else 0
//
// Stable forms: σ and σ' from t = e^(−|x|) ≤ 1 (no overflow); tanh = sign(x)·(−m/(2 + m)),
// m = expm1(−2|x|) ∈ (−1, 0], and tanh' = 4t/(1 + t)², t = e^(−2|x|) (no cancellation in 1 − tanh²);
// softplus = max(x, 0) + log1p(e^(−|x|)); expm1 and log1p by series where e^v − 1 and log(1 + t)
// would cancel; erf by its Taylor series for |x| < ½, else 1 − erfc; erfc(a ≥ ½) by Numerical
// Recipes' erfcc (relative error < 1.2e-7 everywhere); GELU from erfc(−x/√2) (no cancellation in
// 1 + erf for negative x), its tanh form as x σ(2u). The rounding of each is bounded in
// test/helpers/magnitude.ts. Pow: x·x for α = 2, x·x·x for 3, √x for ½; otherwise pow(|x|, α),
// negative for a negative x and an odd integer α (WGSL's pow is undefined for x < 0; so is a real
// x^α for a non-integer α).

const SIGMOID = 0u;
const HARD_SIGMOID = 1u;
const HARD_SWISH = 2u;
const LEAKY_RELU = 3u;
const TANH = 4u;
const ELU = 5u;
const SOFTPLUS = 6u;
const ERF = 7u;
const GELU = 8u;
const GELU_TANH = 9u;
const POW = 10u;
const SQRT = 11u;
const RECIPROCAL = 12u;
const NEG = 13u;
const ABS = 14u;
const EXP = 15u;
const CLIP = 16u;

const TWO_OVER_SQRT_PI = 1.1283791670955126;
const SQRT_HALF = 0.7071067811865476;
const INV_SQRT_2PI = 0.3989422804014327;
const SQRT_2_OVER_PI = 0.7978845608028654;
const GELU_C = 0.044715;

/** e^v − 1; Taylor to v⁹/9! where |v| < ½ (remainder < 2⁻³⁰ relative). */
fn expm1(v: f32) -> f32 {
  if (abs(v) < 0.5) {
    return v * (1.0 + v * (1.0 / 2.0 + v * (1.0 / 6.0 + v * (1.0 / 24.0 + v * (1.0 / 120.0 + v * (1.0 / 720.0
      + v * (1.0 / 5040.0 + v * (1.0 / 40320.0 + v * (1.0 / 362880.0)))))))));
  }
  return exp(v) - 1.0;
}

/** log(1 + t) for 0 ≤ t ≤ 1 as 2 atanh(s), s = t/(2 + t) ≤ ⅓: the series to s¹⁷/17 (remainder < 2⁻³² relative). */
fn log1p01(t: f32) -> f32 {
  let s = t / (2.0 + t);
  let q = s * s;
  return 2.0 * s * (1.0 + q * (1.0 / 3.0 + q * (1.0 / 5.0 + q * (1.0 / 7.0 + q * (1.0 / 9.0 + q * (1.0 / 11.0
    + q * (1.0 / 13.0 + q * (1.0 / 15.0 + q * (1.0 / 17.0)))))))));
}

/** σ(v) = 1/(1 + e^−v), and σ'(v) = t/(1 + t)², both from t = e^(−|v|). */
fn sigmoid(v: f32) -> f32 {
  let t = exp(-abs(v));
  return select(t, 1.0, v >= 0.0) / (1.0 + t);
}
fn sigmoidGrad(v: f32) -> f32 {
  let t = exp(-abs(v));
  let s = 1.0 + t;
  return t / (s * s);
}

/** erf(a) for |a| < ½: (2/√π) Σ (−1)ⁿ a^(2n+1) / (n! (2n + 1)) to n = 6 (remainder < 2⁻³⁰ relative). */
fn erfSeries(a: f32) -> f32 {
  let q = a * a;
  return TWO_OVER_SQRT_PI * a * (1.0 + q * (-1.0 / 3.0 + q * (1.0 / 10.0 + q * (-1.0 / 42.0 + q * (1.0 / 216.0
    + q * (-1.0 / 1320.0 + q * (1.0 / 9360.0)))))));
}

/** erfc(a) for a ≥ 0: Numerical Recipes' erfcc (Chebyshev fit, relative error < 1.2e-7). */
fn erfcTail(a: f32) -> f32 {
  let t = 1.0 / (1.0 + 0.5 * a);
  return t * exp(-a * a - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
    + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
}

fn erfc(z: f32) -> f32 {
  let a = abs(z);
  let c = select(erfcTail(a), 1.0 - erfSeries(a), a < 0.5);
  return select(c, 2.0 - c, z < 0.0);
}

fn erf(u: f32) -> f32 {
  let a = abs(u);
  return sign(u) * select(1.0 - erfcTail(a), erfSeries(a), a < 0.5);
}

/** u^e (see the file comment). */
fn power(u: f32, e: f32) -> f32 {
  if (e == 0.0) {
    return 1.0;
  }
  if (e == 1.0) {
    return u;
  }
  if (e == 2.0) {
    return u * u;
  }
  if (e == 3.0) {
    return u * u * u;
  }
  if (e == 0.5) {
    return sqrt(u);
  }
  let m = pow(abs(u), e);
  let oddInteger = e == round(e) && round(0.5 * e) != 0.5 * e;
  return select(m, -m, u < 0.0 && oddInteger);
}

/** GELU's tanh form: √(2/π)(u + 0.044715 u³). */
fn geluU(u: f32) -> f32 {
  return SQRT_2_OVER_PI * (u + GELU_C * u * u * u);
}

fn f(u: f32) -> f32 {
  switch FN {
    case SIGMOID: { return sigmoid(u); }
    case HARD_SIGMOID: { return clamp(p.alpha * u + p.beta, 0.0, 1.0); }
    case HARD_SWISH: { return u * clamp(u / 6.0 + 0.5, 0.0, 1.0); }
    case LEAKY_RELU: { return select(p.alpha * u, u, u >= 0.0); }
    case TANH: {
      let m = expm1(-2.0 * abs(u));
      return sign(u) * (-m / (2.0 + m));
    }
    case ELU: { return select(p.alpha * expm1(u), u, u > 0.0); }
    case SOFTPLUS: { return max(u, 0.0) + log1p01(exp(-abs(u))); }
    case ERF: { return erf(u); }
    case GELU: { return 0.5 * u * erfc(-u * SQRT_HALF); }
    case GELU_TANH: { return u * sigmoid(2.0 * geluU(u)); }
    case POW: { return power(u, p.alpha); }
    case SQRT: { return sqrt(u); }
    case RECIPROCAL: { return 1.0 / u; }
    case NEG: { return -u; }
    case ABS: { return abs(u); }
    case CLIP: { return min(max(u, p.alpha), p.beta); }
    default: { return exp(u); } // EXP
  }
}

fn fGrad(u: f32) -> f32 {
  switch FN {
    case SIGMOID: { return sigmoidGrad(u); }
    case HARD_SIGMOID: {
      let v = p.alpha * u + p.beta;
      return select(0.0, p.alpha, v > 0.0 && v < 1.0);
    }
    case HARD_SWISH: { return select(select(1.0, u / 3.0 + 0.5, u <= 3.0), 0.0, u < -3.0); }
    case LEAKY_RELU: { return select(p.alpha, 1.0, u > 0.0); }
    case TANH: {
      let t = exp(-2.0 * abs(u));
      let s = 1.0 + t;
      return 4.0 * t / (s * s);
    }
    case ELU: { return select(p.alpha * exp(u), 1.0, u > 0.0); }
    case SOFTPLUS: { return sigmoid(u); }
    case ERF: { return TWO_OVER_SQRT_PI * exp(-u * u); }
    case GELU: { return 0.5 * erfc(-u * SQRT_HALF) + u * INV_SQRT_2PI * exp(-0.5 * u * u); }
    case GELU_TANH: {
      let u2 = 2.0 * geluU(u);
      return sigmoid(u2) + u * sigmoidGrad(u2) * 2.0 * SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_C * u * u);
    }
    case POW: { return select(p.alpha * power(u, p.alpha - 1.0), 0.0, p.alpha == 0.0); }
    case SQRT: { return 0.5 / sqrt(u); }
    case RECIPROCAL: { return -1.0 / (u * u); }
    case NEG: { return -1.0; }
    case ABS: { return sign(u); }
    case CLIP: { return select(0.0, 1.0, u > p.alpha && u < p.beta); }
    default: { return exp(u); } // EXP
  }
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = elementOf(gid, nwg, p.count, p.items);
  if (!e.inside) {
    return;
  }
  y[e.item * p.yStride + p.yOffset + e.k] = f(x[e.item * p.xStride + p.xOffset + e.k]);
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = elementOf(gid, nwg, p.count, p.items);
  if (!e.inside) {
    return;
  }
  var g = dy[e.item * p.dyStride + p.dyOffset + e.k];
  if (GUIDED) {
    g = select(0.0, g, g > 0.0);
  }
  let v = g * fGrad(x[(e.item / p.maskDiv) * p.xStride + p.xOffset + e.k]);
  let addr = e.item * p.dxStride + p.dxOffset + e.k;
  if (ACCUMULATE) {
    dx[addr] += v;
  } else {
    dx[addr] = v;
  }
}

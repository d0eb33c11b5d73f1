/**
 * WGSL functions that several kernels share, written once (declareKernel's `libraries`: each kernel
 * that lists one gets its code in its generated header). A library reads no uniform; one made for a
 * binding reads that binding by name (the kernel declares it), so that it can loop over storage, which
 * WGSL functions cannot take as an argument.
 */
import type { WgslLibrary } from './kernel.ts';

/**
 * A tensor shaped as the model's input, [C, H·W] per image, in its layout: element (c, i) (channel c,
 * pixel i) at c·hw + i in NCHW, at i·channels + c in NHWC. Used by the guided, attribution and Score-CAM
 * kernels, which read the input, its gradient or a masked copy in whatever layout the model takes.
 */
export const INPUT_LAYOUT: WgslLibrary = {
  name: 'input layout',
  code: `
// Element (c, i) of a tensor shaped as the input (channels × hw per image): NCHW c·hw + i, NHWC i·channels + c.
fn layoutIndex(c: u32, i: u32, channels: u32, hw: u32, nhwc: bool) -> u32 {
  return select(c * hw + i, i * channels + c, nhwc);
}

// The channel and pixel (c, i) of element e (layoutIndex's inverse).
fn layoutChannelPixel(e: u32, channels: u32, hw: u32, nhwc: bool) -> vec2<u32> {
  if (nhwc) {
    return vec2<u32>(e % channels, e / channels);
  }
  return vec2<u32>(e / hw, e % hw);
}
`,
};

/**
 * `elementOf(gid, nwg, count, items)`: the invocation of a 1-D launch (linearIndex) over items ×
 * `count` values per item, as value `k` of item `item`, and whether it is one of them (`inside`: the
 * launch rounds up to whole workgroups; an invocation outside returns). The element-wise kernels'
 * (activation, binary, elementwise) first lines.
 */
export const ELEMENT: WgslLibrary = {
  name: 'item and value of a launch over items × count values',
  code: `
// Invocation linearIndex(gid, nwg) of a launch over items × count values: value k of item, inside the items or not.
struct Element {
  item: u32,
  k: u32,
  inside: bool,
}

fn elementOf(gid: vec3<u32>, nwg: vec3<u32>, count: u32, items: u32) -> Element {
  let id = linearIndex(gid, nwg);
  return Element(id / count, id % count, id < count * items);
}
`,
};

/**
 * `<binding>Probability(row, c, count)`: the softmax probability of class c in the row of `count`
 * logits of `binding` that starts at `row`, exp(l_c − max l) / Σ_j exp(l_j − max l) (stable: every
 * exponent ≤ 0). The score of the 'softmax' reduction in the kernels that score passes.
 */
export function rowProbability(binding: string): WgslLibrary {
  return {
    name: `softmax over a row of ${binding}`,
    code: `
// The probability of class c in the row of count logits of ${binding} at row: exp(l_c − max l) / Σ_j exp(l_j − max l).
fn ${binding}Probability(row: u32, c: u32, count: u32) -> f32 {
  var top = ${binding}[row];
  for (var j = 1u; j < count; j++) {
    top = max(top, ${binding}[row + j]);
  }
  var total = 0.0;
  for (var j = 0u; j < count; j++) {
    total += exp(${binding}[row + j] - top);
  }
  return exp(${binding}[row + c] - top) / total;
}
`,
  };
}

/**
 * `<binding>Bilinear(base, h, w, sy, sx)`: the h × w plane of `binding` that starts at `base`, sampled
 * bilinearly at the source position (sy, sx), 0 ≤ sy ≤ h − 1, 0 ≤ sx ≤ w − 1 (the caller maps output
 * pixels to source positions: align_corners true or false). Used to upsample maps to the input
 * (guided-gradcam, Score-CAM's masks) and to the display (overlay.wgsl); the formula is PyTorch's
 * upsample_bilinear2d's, (1 − f)·a + f·b along x, then along y.
 */
export function planeBilinear(binding: string): WgslLibrary {
  return {
    name: `bilinear sample of a plane of ${binding}`,
    code: `
// The h × w plane of ${binding} at base, sampled bilinearly at source (sy, sx) in [0, h − 1] × [0, w − 1].
fn ${binding}Bilinear(base: u32, h: u32, w: u32, sy: f32, sx: f32) -> f32 {
  let y0 = min(u32(floor(sy)), h - 1u);
  let x0 = min(u32(floor(sx)), w - 1u);
  let y1 = min(y0 + 1u, h - 1u);
  let x1 = min(x0 + 1u, w - 1u);
  let fy = sy - f32(y0);
  let fx = sx - f32(x0);
  let top = (1.0 - fx) * ${binding}[base + y0 * w + x0] + fx * ${binding}[base + y0 * w + x1];
  let bottom = (1.0 - fx) * ${binding}[base + y1 * w + x0] + fx * ${binding}[base + y1 * w + x1];
  return (1.0 - fy) * top + fy * bottom;
}
`,
  };
}

/**
 * The activation fused into an op's output (graph/fuse.ts): ReLU (override RELU), capped at 6 when
 * RELU6 too (ReLU6, a Clip(0, 6) fused into a convolution), and its backward rule, applied by the
 * backward kernels where they read dy (MASK: `mask` holds the forward output y). Every kernel that
 * applies a fused ReLU takes the rule from here: the convolutions' (conv, conv_tiled, winograd,
 * depthwise, conv_gather; `fusedReluOverrides` sets their overrides), the element-wise affine and
 * grad, and the broadcast binary ops (RELU6 off there: only a conv fuses a ReLU6).
 */
export const FUSED_RELU: WgslLibrary = {
  name: 'fused ReLU or ReLU6',
  overrides: ['RELU', 'RELU6', 'GUIDED'],
  code: `
// The fused activation of an output value: max(v, 0) when RELU, then min(·, 6) when RELU6 (ReLU6).
fn fusedRelu(v: f32) -> f32 {
  var r = v;
  if (RELU) {
    r = max(r, 0.0);
    if (RELU6) {
      r = min(r, 6.0);
    }
  }
  return r;
}

fn fusedRelu4(v: vec4<f32>) -> vec4<f32> {
  var r = v;
  if (RELU) {
    r = max(r, vec4<f32>(0.0));
    if (RELU6) {
      r = min(r, vec4<f32>(6.0));
    }
  }
  return r;
}

// Whether the gradient g passes the fused activation backward, from the forward output y: y > 0, and
// y < 6 with RELU6 (strictly inside: PyTorch's relu and hardtanh; from y alone, y = 0 or 6 is the
// clipped side), and g > 0 too when GUIDED (guided backprop: the same rule at both activations).
fn fusedPasses(y: f32, g: f32) -> bool {
  return y > 0.0 && (!RELU6 || y < 6.0) && (!GUIDED || g > 0.0);
}

fn fusedPasses4(y: vec4<f32>, g: vec4<f32>) -> vec4<bool> {
  return (y > vec4<f32>(0.0)) & ((y < vec4<f32>(6.0)) | vec4<bool>(!RELU6)) & ((g > vec4<f32>(0.0)) | vec4<bool>(!GUIDED));
}
`,
};

/**
 * `<binding>Load4(at, maskAt, ok)`: 4 values of `binding` at `at`, through the fused activation's
 * backward rule when MASK (FUSED_RELU's fusedPasses4 on the forward output, read from the binding
 * `mask` at `maskAt`), 0 where !ok. How the convolutions' GEMM (conv.wgsl, from `input`) and the
 * gather kernel (conv_gather.wgsl, from `dy`) read what they multiply by the weights.
 */
export function maskedLoad4(binding: string): WgslLibrary {
  return {
    name: `4 values of ${binding} through the fused ReLU's mask`,
    overrides: ['MASK'],
    needs: [FUSED_RELU],
    code: `
// ${binding}[at] for 4 positions (0 where !ok), times the fused ReLU's mask of the forward output mask[maskAt] when MASK.
fn ${binding}Load4(at: vec4<u32>, maskAt: vec4<u32>, ok: vec4<bool>) -> vec4<f32> {
  var v = vec4<f32>(${binding}[at.x], ${binding}[at.y], ${binding}[at.z], ${binding}[at.w]);
  if (MASK) {
    let m = vec4<f32>(mask[maskAt.x], mask[maskAt.y], mask[maskAt.z], mask[maskAt.w]);
    v = select(vec4<f32>(0.0), v, fusedPasses4(m, v));
  }
  return select(vec4<f32>(0.0), v, ok);
}
`,
  };
}

/**
 * FUSED_RELU's overrides for one dispatch of a convolution kernel: RELU on the forward output, MASK
 * where the data gradient reads dy through the forward output `mask`, GUIDED for guided backprop, and
 * RELU6 when the op's fused activation is ReLU6 (and one of the others applies it).
 */
export function fusedReluOverrides(op: { relu6?: boolean }, c: { relu?: boolean; mask?: unknown; guided?: boolean }) {
  const relu = !!c.relu, mask = c.mask != null;
  return { RELU: relu, RELU6: !!op.relu6 && (relu || mask), MASK: mask, GUIDED: !!c.guided };
}

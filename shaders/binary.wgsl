// Binary element-wise ops with ONNX (numpy) broadcasting: Add, Sub, Mul, Div, Max, Min, PRelu, and Sum of n.
//   forward:    y = f(a, b), f by FN (below); ReLU when RELU
//   accumulate: y = y + b                    (a Sum's third and later inputs; ReLU when RELU)
//   backward:   dx_j (+)= Σ_{k : x_k = x_j} g_k · ∂f/∂x (a_k, b_k), x the operand WRT (0: a, 1: b)
//               g_k = dy_k, times the fused ReLU's mask (y_k > 0, read at image item / maskDiv) when
//               MASK, and also (dy_k > 0) when GUIDED; the sum runs over the output values that read
//               x_j (the dimensions x is broadcast along), in a fixed order: deterministic, no atomics.
//   ∂f/∂x:  add 1; sub 1, −1; mul b, a; div 1/b, −a/b²; max/min 1 where x wins, ½ each at a tie
//           (PyTorch's maximum/minimum); prelu (a = x, b = slope): 1 where x > 0, else the slope
//           (PyTorch: at x = 0 the slope).
// Threads: forward and accumulate one invocation per output value over items × count; backward one
// per value of x over items × xCount, each summing its output values (one when REDUCE is false);
// elementOf (src/gpu/wgsl-library.ts ELEMENT) says which.
// Geometry (src/kernels/broadcast.ts): the image's output is DIMS dimensions n0, n1, … (innermost
// first); operand a walks them with strides a0, a1, …, b with b0, b1, … (0 where it is broadcast).
// An operand's item i starts at i·stride + offset (a constant has stride 0: every item reads it).

const ADD = 0u;
const SUB = 1u;
const MUL = 2u;
const DIV = 3u;
const MAX = 4u;
const MIN = 5u;
const PRELU = 6u;

fn f(u: f32, v: f32) -> f32 {
  switch FN {
    case ADD: { return u + v; }
    case SUB: { return u - v; }
    case MUL: { return u * v; }
    case DIV: { return u / v; }
    case MAX: { return max(u, v); }
    case MIN: { return min(u, v); }
    default: { return select(u, u * v, u < 0.0); } // PRELU
  }
}

// The fused ReLU (fusedRelu) and its backward rule (fusedPasses): src/gpu/wgsl-library.ts FUSED_RELU.

/** The strides of a and b along dimension d. */
fn strides(d: u32) -> vec2<u32> {
  switch d {
    case 0u: { return vec2<u32>(p.a0, p.b0); }
    case 1u: { return vec2<u32>(p.a1, p.b1); }
    case 2u: { return vec2<u32>(p.a2, p.b2); }
    case 3u: { return vec2<u32>(p.a3, p.b3); }
    default: { return vec2<u32>(p.a4, p.b4); }
  }
}

/** Where output value k (within its item) reads a and b. */
fn operands(k: u32) -> vec2<u32> {
  var r = k;
  var at = vec2<u32>(0u, 0u);
  if (DIMS > 1u) { at += (r % p.n0) * strides(0u); r /= p.n0; }
  if (DIMS > 2u) { at += (r % p.n1) * strides(1u); r /= p.n1; }
  if (DIMS > 3u) { at += (r % p.n2) * strides(2u); r /= p.n2; }
  if (DIMS > 4u) { at += (r % p.n3) * strides(3u); r /= p.n3; }
  return at + r * strides(DIMS - 1u); // the outermost dimension takes what is left
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = elementOf(gid, nwg, p.count, p.items);
  if (!e.inside) {
    return;
  }
  let at = operands(e.k);
  y[e.item * p.yStride + p.yOffset + e.k] = fusedRelu(f(a[e.item * p.aStride + p.aOffset + at.x], b[e.item * p.bStride + p.bOffset + at.y]));
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn accumulate(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = elementOf(gid, nwg, p.count, p.items);
  if (!e.inside) {
    return;
  }
  let addr = e.item * p.yStride + p.yOffset + e.k;
  y[addr] = fusedRelu(y[addr] + b[e.item * p.bStride + p.bOffset + operands(e.k).y]);
}

/** dy_k · ∂f/∂x at output value k, whose operands are at `at`; img is the forward image of the item. */
fn term(item: u32, img: u32, k: u32, at: vec2<u32>) -> f32 {
  var g = dy[item * p.dyStride + p.dyOffset + k];
  if (MASK) {
    g = select(0.0, g, fusedPasses(mask[img * p.maskStride + p.maskOffset + k], g));
  }
  if (FN == ADD) {
    return g;
  }
  if (FN == SUB) {
    return select(g, -g, WRT == 1u);
  }
  let u = a[img * p.aStride + p.aOffset + at.x];
  let v = b[img * p.bStride + p.bOffset + at.y];
  switch FN {
    case MUL: { return g * select(v, u, WRT == 1u); }
    case DIV: { return select(g / v, -(g * (u / v)) / v, WRT == 1u); }
    case PRELU: { return select(g * v, g, u > 0.0); }
    default: { // MAX, MIN
      let x = select(u, v, WRT == 1u);
      let o = select(v, u, WRT == 1u);
      let wins = select((x < o), (x > o), FN == MAX);
      return select(select(0.0, 0.5 * g, x == o), g, wins);
    }
  }
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = elementOf(gid, nwg, p.xCount, p.items);
  if (!e.inside) {
    return;
  }
  let item = e.item;
  let j = e.k; // x_j of the header
  let img = item / p.maskDiv;
  var sum = 0.0;
  if (!REDUCE) {
    // x has the output's shape: its value j is output value j.
    sum = term(item, img, j, operands(j));
  } else {
    var n = array<u32, 5>(p.n0, p.n1, p.n2, p.n3, p.n4);
    var sa = array<u32, 5>(p.a0, p.a1, p.a2, p.a3, p.a4);
    var sb = array<u32, 5>(p.b0, p.b1, p.b2, p.b3, p.b4);
    var sx = sa;
    if (WRT == 1u) {
      sx = sb;
    }
    // x_j's coordinates along the dimensions x walks (x is contiguous: its strides are its own);
    // the others (sx = 0) are summed over, innermost fastest.
    var span = array<u32, 5>(1u, 1u, 1u, 1u, 1u);
    var sy = array<u32, 5>(0u, 0u, 0u, 0u, 0u);
    var k = 0u;
    var at = vec2<u32>(0u, 0u);
    var total = 1u;
    var st = 1u;
    for (var d = 0u; d < DIMS; d++) {
      sy[d] = st;
      if (sx[d] == 0u) {
        span[d] = n[d];
        total *= n[d];
      } else {
        let c = (j / sx[d]) % n[d];
        k += c * st;
        at += c * vec2<u32>(sa[d], sb[d]);
      }
      st *= n[d];
    }
    var c = array<u32, 5>(0u, 0u, 0u, 0u, 0u);
    for (var r = 0u; r < total; r++) {
      sum += term(item, img, k, at);
      for (var d = 0u; d < DIMS; d++) {
        if (span[d] == 1u) {
          continue;
        }
        c[d] += 1u;
        k += sy[d];
        at += vec2<u32>(sa[d], sb[d]);
        if (c[d] < span[d]) {
          break;
        }
        c[d] = 0u;
        k -= span[d] * sy[d];
        at -= span[d] * vec2<u32>(sa[d], sb[d]);
      }
    }
  }
  let addr = item * p.dxStride + p.dxOffset + j;
  if (ACCUMULATE) {
    dx[addr] += sum;
  } else {
    dx[addr] = sum;
  }
}

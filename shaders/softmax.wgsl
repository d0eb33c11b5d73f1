// Softmax over each item's values (the class axis of [N, classes]), numerically stable, and its
// backward.
//   forward:   y_j = exp(x_j − max x) / Σ_i exp(x_i − max x)
//   backward:  dx_j = y_j · (dy_j − Σ_i dy_i · y_i)           (y read at image item / maskDiv)
// One workgroup of 64 invocations per item: each invocation strides over the row, then a tree
// reduction in workgroup memory (the row max, then the sum).

override ACCUMULATE: bool = false;

struct Params {
  length: u32,
  items: u32,
  xOffset: u32,   // forward: x; backward: y (the forward output)
  xStride: u32,
  gOffset: u32,   // forward: y; backward: dy
  gStride: u32,
  dOffset: u32,   // backward: dx
  dStride: u32,
  maskDiv: u32,
  _p0: u32,
  _p1: u32,
  _p2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> d: array<f32>;

var<workgroup> part: array<f32, 64>;

fn reduceMax(v: f32, t: u32) -> f32 {
  part[t] = v;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s >>= 1u) {
    if (t < s) {
      part[t] = max(part[t], part[t + s]);
    }
    workgroupBarrier();
  }
  let r = part[0];
  workgroupBarrier();
  return r;
}

fn reduceSum(v: f32, t: u32) -> f32 {
  part[t] = v;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s >>= 1u) {
    if (t < s) {
      part[t] = part[t] + part[t + s];
    }
    workgroupBarrier();
  }
  let r = part[0];
  workgroupBarrier();
  return r;
}

@compute @workgroup_size(64)
fn forward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let row = wg.x;
  let xb = row * p.xStride + p.xOffset;
  var m = -3.402823e38;
  for (var i = t; i < p.length; i += 64u) {
    m = max(m, x[xb + i]);
  }
  m = reduceMax(m, t);
  var s = 0.0;
  for (var i = t; i < p.length; i += 64u) {
    s += exp(x[xb + i] - m);
  }
  s = reduceSum(s, t);
  let gb = row * p.gStride + p.gOffset;
  for (var i = t; i < p.length; i += 64u) {
    g[gb + i] = exp(x[xb + i] - m) / s;
  }
}

@compute @workgroup_size(64)
fn backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let item = wg.x;
  let yb = (item / p.maskDiv) * p.xStride + p.xOffset;
  let gb = item * p.gStride + p.gOffset;
  var s = 0.0;
  for (var i = t; i < p.length; i += 64u) {
    s += g[gb + i] * x[yb + i];
  }
  s = reduceSum(s, t);
  let db = item * p.dStride + p.dOffset;
  for (var i = t; i < p.length; i += 64u) {
    let v = x[yb + i] * (g[gb + i] - s);
    if (ACCUMULATE) {
      d[db + i] += v;
    } else {
      d[db + i] = v;
    }
  }
}

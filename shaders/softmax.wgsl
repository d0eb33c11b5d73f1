// Softmax over each item's values (the class axis of [N, classes]), numerically stable, and its
// backward.
//   forward:   y_j = exp(x_j − max x) / Σ_i exp(x_i − max x)
//   backward:  dx_j = y_j · (dy_j − Σ_i dy_i · y_i)           (y = `probs`, read at image item / maskDiv)
// One workgroup of WG_X = 64 invocations per item: each invocation strides over the row, then a tree
// reduction in workgroup memory (the row max, then the sum). Item i of each view starts at
// i·stride + offset.

const_assert (WG_X & (WG_X - 1u)) == 0u && WG_Y == 1u && WG_Z == 1u;   // the tree reduction halves WG_X

var<workgroup> part: array<f32, WG_X>;

fn reduceMax(v: f32, t: u32) -> f32 {
  part[t] = v;
  workgroupBarrier();
  for (var s = WG_X / 2u; s > 0u; s >>= 1u) {
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
  for (var s = WG_X / 2u; s > 0u; s >>= 1u) {
    if (t < s) {
      part[t] = part[t] + part[t + s];
    }
    workgroupBarrier();
  }
  let r = part[0];
  workgroupBarrier();
  return r;
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn forward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let row = wg.x;
  let xb = row * p.xStride + p.xOffset;
  var m = -3.402823e38;
  for (var i = t; i < p.length; i += WG_X) {
    m = max(m, x[xb + i]);
  }
  m = reduceMax(m, t);
  var s = 0.0;
  for (var i = t; i < p.length; i += WG_X) {
    s += exp(x[xb + i] - m);
  }
  s = reduceSum(s, t);
  let yb = row * p.yStride + p.yOffset;
  for (var i = t; i < p.length; i += WG_X) {
    y[yb + i] = exp(x[xb + i] - m) / s;
  }
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let item = wg.x;
  let yb = (item / p.maskDiv) * p.probsStride + p.probsOffset;
  let dyb = item * p.dyStride + p.dyOffset;
  var s = 0.0;
  for (var i = t; i < p.length; i += WG_X) {
    s += dy[dyb + i] * probs[yb + i];
  }
  s = reduceSum(s, t);
  let dxb = item * p.dxStride + p.dxOffset;
  for (var i = t; i < p.length; i += WG_X) {
    let v = probs[yb + i] * (dy[dyb + i] - s);
    if (ACCUMULATE) {
      dx[dxb + i] += v;
    } else {
      dx[dxb + i] = v;
    }
  }
}

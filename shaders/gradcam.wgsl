// Grad-CAM on the GPU: choosing the classes, seeding the backward pass, and the maps.
//
// Items: b = n·K + k is class slot k of image n (K classes per image, one backward pass for all).
//   topk:  cls[n·K + k] = the k-th largest score of image n (ties: the lower class index first);
//          one invocation per image.
//   seed:  dy_score[b, j] = 1 if j = cls[b] else 0 — the gradient of y = score[cls[b]] with respect
//          to the score tensor; one invocation per (j, b).
//   grads: α[b, c] = (1 / HW) · Σ_hw ∂y/∂A[b, c, hw]     (the gradient's spatial mean)
//          one invocation per (c, b).
//   map:   raw[b, hw] = max(0, Σ_c α[b, c] · A[n, c, hw])  (the Grad-CAM map at feature resolution)
//          one invocation per (hw, b). A non-finite sum (NaN, ±Inf: an overflow upstream) is
//          written as is, not ReLU'd (max(NaN, 0) may be 0): the host checks the maps it reads back.

struct Params {
  count: u32,      // topk/seed: classes; alpha/map: channels C
  hw: u32,         // alpha/map: H·W of the feature layer
  items: u32,      // N·K
  k: u32,          // K, classes per image
  aOffset: u32,    // the score tensor (topk), dy_score (seed), ∂y/∂A (alpha), A (map)
  aStride: u32,
  _p0: u32,
  _p1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> cls: array<u32>;
@group(0) @binding(2) var<storage, read_write> a: array<f32>;
@group(0) @binding(3) var<storage, read_write> alpha: array<f32>;
@group(0) @binding(4) var<storage, read_write> raw: array<f32>;

@compute @workgroup_size(64)
fn topk(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n = gid.x;
  if (n * p.k >= p.items) {
    return;
  }
  let base = n * p.aStride + p.aOffset;
  var prevScore = 3.402823e38;
  var prevClass = -1;
  for (var k = 0u; k < p.k; k++) {
    // The best class strictly after (prevScore, prevClass) in the order (score desc, index asc).
    var best = -1;
    var bestScore = -3.402823e38;
    for (var j = 0u; j < p.count; j++) {
      let s = a[base + j];
      let after = s < prevScore || (s == prevScore && i32(j) > prevClass);
      if (after && (best < 0 || s > bestScore)) {
        best = i32(j);
        bestScore = s;
      }
    }
    cls[n * p.k + k] = u32(max(best, 0));
    prevScore = bestScore;
    prevClass = best;
  }
}

@compute @workgroup_size(64)
fn seed(@builtin(global_invocation_id) gid: vec3<u32>) {
  let j = gid.x;
  let b = gid.y;
  if (j >= p.count || b >= p.items) {
    return;
  }
  a[b * p.aStride + p.aOffset + j] = select(0.0, 1.0, j == cls[b]);
}

@compute @workgroup_size(64)
fn grads(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  let b = gid.y;
  if (c >= p.count || b >= p.items) {
    return;
  }
  let base = b * p.aStride + p.aOffset + c * p.hw;
  var s = 0.0;
  for (var i = 0u; i < p.hw; i++) {
    s += a[base + i];
  }
  alpha[b * p.count + c] = s / f32(p.hw);
}

@compute @workgroup_size(64)
fn map(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  let b = gid.y;
  if (i >= p.hw || b >= p.items) {
    return;
  }
  let base = (b / p.k) * p.aStride + p.aOffset + i;
  var s = 0.0;
  for (var c = 0u; c < p.count; c++) {
    s += alpha[b * p.count + c] * a[base + c * p.hw];
  }
  // Non-finite by its exponent bits (comparisons with NaN may be folded away).
  let nonFinite = (bitcast<u32>(s) & 0x7f800000u) == 0x7f800000u;
  raw[b * p.hw + i] = select(max(s, 0.0), s, nonFinite);
}

// Grad-CAM on the GPU: choosing the classes, seeding the backward pass, and the maps.
//
// Items: b = n·K + k is class slot k of image n (K = classesPerImage, one backward pass for all).
//   topk:  classesOut[n·K + k] = the k-th largest of image n's scores (ties: the lower class index
//          first); one invocation per image.
//   seed:  scoreGrad[b, j] = 1 if j = classes[b] else 0 — the gradient of y = score[classes[b]] with
//          respect to the score tensor; one invocation per (j, b).
//   alpha: alphasOut[b, c] = α[b, c] = (1 / HW) · Σ_hw ∂y/∂A[b, c, hw]   (featureGrad's spatial mean)
//          one invocation per (c, b).
//   map:   maps[b, hw] = max(0, Σ_c alphas[b, c] · A[n, c, hw])  (A = features; the Grad-CAM map at
//          feature resolution) one invocation per (hw, b). A non-finite sum (NaN, ±Inf: an overflow
//          upstream) is written as is, not ReLU'd (max(NaN, 0) may be 0): the host checks the maps
//          it reads back.
// Item i of each tensor view (scores, scoreGrad, featureGrad, features) starts at i·stride + offset.

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn topk(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n = gid.x;
  if (n * p.classesPerImage >= p.items) {
    return;
  }
  let base = n * p.scoresStride + p.scoresOffset;
  var prevScore = 3.402823e38;
  var prevClass = -1;
  for (var k = 0u; k < p.classesPerImage; k++) {
    // The best class strictly after (prevScore, prevClass) in the order (score desc, index asc).
    var best = -1;
    var bestScore = -3.402823e38;
    for (var j = 0u; j < p.classCount; j++) {
      let s = scores[base + j];
      let after = s < prevScore || (s == prevScore && i32(j) > prevClass);
      if (after && (best < 0 || s > bestScore)) {
        best = i32(j);
        bestScore = s;
      }
    }
    classesOut[n * p.classesPerImage + k] = u32(max(best, 0));
    prevScore = bestScore;
    prevClass = best;
  }
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn seed(@builtin(global_invocation_id) gid: vec3<u32>) {
  let j = gid.x;
  let b = gid.y;
  if (j >= p.classCount || b >= p.items) {
    return;
  }
  scoreGrad[b * p.scoreGradStride + p.scoreGradOffset + j] = select(0.0, 1.0, j == classes[b]);
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn alpha(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  let b = gid.y;
  if (c >= p.channels || b >= p.items) {
    return;
  }
  let base = b * p.featureGradStride + p.featureGradOffset + c * p.hw;
  var s = 0.0;
  for (var i = 0u; i < p.hw; i++) {
    s += featureGrad[base + i];
  }
  alphasOut[b * p.channels + c] = s / f32(p.hw);
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn map(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  let b = gid.y;
  if (i >= p.hw || b >= p.items) {
    return;
  }
  let base = (b / p.classesPerImage) * p.featuresStride + p.featuresOffset + i;
  var s = 0.0;
  for (var c = 0u; c < p.channels; c++) {
    s += alphas[b * p.channels + c] * features[base + c * p.hw];
  }
  // Non-finite by its exponent bits (comparisons with NaN may be folded away).
  let nonFinite = (bitcast<u32>(s) & 0x7f800000u) == 0x7f800000u;
  maps[b * p.hw + i] = select(max(s, 0.0), s, nonFinite);
}

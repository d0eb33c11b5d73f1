// Grad-CAM and the CAM family on the GPU: choosing the classes, seeding the backward pass, and the
// maps of each method (src/gradcam/methods.ts is the table of methods).
//
// Items: b = n·K + k is class slot k of image n (K = classesPerImage, one backward pass for all).
// A = features [C, HW] of image n = b / K; G = gradSign · featureGrad [C, HW] of item b (gradSign = −1:
// the counterfactual explanation, G := −G).
//   topk:  classesOut[n·K + k] = the k-th largest of the scores of image n − n mod topkGroup (ties:
//          the lower class index first): with topkGroup 1 image n's own; aug-smooth's groups of 6
//          augmented copies (topkGroup 6) take the unaugmented first one's. One invocation per image.
//   seed:  scoreGrad[b, j] = seedValue if j = classes[b] else 0 — the gradient of y = score[classes[b]]
//          with respect to the score tensor (seedValue 1, or −1 for the counterfactual of the guided
//          backward pass); one invocation per (j, b).
//   weights: alphasOut[b, c] = w[b, c], one invocation per (c, b), by the override WEIGHTS:
//          0 gradcam    w = (1 / HW) · Σ_hw G
//          1 gradcam++  w = Σ_hw ReLU(G) · G² / (2G² + S·G³ + 1e-6), S = Σ_hw A (a term is 0 where G = 0)
//          2 xgradcam   w = Σ_hw G·A / (S + 1e-7)
//   map:   signedMapsOut[b, hw] = Σ_c alphas[b, c] · A[c, hw]; maps[b, hw] = its ReLU; one invocation
//          per (hw, b).
//   elementwise: signedMapsOut[b, hw] = Σ_c term(G[c, hw], A[c, hw]), maps = its ReLU, one invocation
//          per (hw, b), by the override TERM: 0 hirescam G·A, 1 gradcam-elementwise ReLU(G·A),
//          2 layercam ReLU(G)·A.
//   eigen: the first principal component of a [HW, C] matrix E, by the override EIGEN_OF:
//          0 eigencam        E[i, c] = A[c, i]                 one unit per image n
//          1 eigengradcam    E[i, c] = G[c, i]·A[c, i]         one unit per item b
//          2 eigen-smooth of a weighted method: E[i, c] = alphas[b, c]·A[c, i]   per item b
//          3 eigen-smooth of an element-wise one: E[i, c] = term(G[c, i], A[c, i]) (TERM)  per item b
//          X = E centred over positions (X[i, c] = E[i, c] − mean_i E[i, c]); v = the first right
//          singular vector of X by power iteration v ← Xᵀ(Xv) / ‖Xᵀ(Xv)‖ from v_c ∝ 1 + 0.01·c, until
//          max_c |Δv_c| ≤ eigenTolerance or eigenMaxIterations; projection P = Xv, its sign flipped so
//          that the entry of largest |P| (the first such) is positive; signedMapsOut = P and
//          maps = ReLU(P): for each of image n's K items (EIGEN_OF 0), or for item b. One workgroup of
//          EIGEN_WG_X invocations per unit; invocation t takes channels and positions t, t + EIGEN_WG_X, …
//          The scratch of unit u (eigenScratch, 2 + 3C + HW floats from u·(2 + 3C + HW)):
//          [iterations, last change, mean[C], v[C], w = Xᵀu [C], u = Xv [HW]].
//   guided: the guided methods over the input x [C, H, W] (hw = H·W, width = W; featureGrad = the guided
//          backward pass's ∂y/∂x): guidedOut[b, c, i] = G[b, c, i] · s(i), s = 1 (guided-backprop) or,
//          when GUIDED_CAM, the Grad-CAM map camMap[b] (mapH × mapW) upsampled bilinearly
//          (align_corners = false: source (o + 0.5)·in/out − 0.5, clamped to [0, in − 1]) at i
//          (guided-gradcam); maps[b, i] = Σ_c |guidedOut[b, c, i]| (a plane for display). One
//          invocation per (i, b). G[b, c, i] is read in the input's layout (nhwc = 1: at i·C + c, else
//          c·hw + i); guidedOut is [C, H, W] either way.
// A non-finite map value (NaN, ±Inf: an overflow upstream) is written as is, not ReLU'd (max(NaN, 0)
// may be 0): the host checks the maps it reads back.
// Item i of each tensor view (scores, scoreGrad, featureGrad, features) starts at i·stride + offset.

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn topk(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n = gid.x;
  if (n * p.classesPerImage >= p.items) {
    return;
  }
  let base = (n - n % max(p.topkGroup, 1u)) * p.scoresStride + p.scoresOffset;
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
  scoreGrad[b * p.scoreGradStride + p.scoreGradOffset + j] = select(0.0, p.seedValue, j == classes[b]);
}

// ReLU, except that a non-finite value (by its exponent bits: comparisons with NaN may be folded
// away) is kept as is for the host's check.
fn relu(s: f32) -> f32 {
  let nonFinite = (bitcast<u32>(s) & 0x7f800000u) == 0x7f800000u;
  return select(max(s, 0.0), s, nonFinite);
}

// The summand of w_k at one position (WEIGHTS: see the header).
fn weightTerm(g: f32, a: f32, sumA: f32) -> f32 {
  switch WEIGHTS {
    case 1u: {
      if (g == 0.0) {
        return 0.0;
      }
      let g2 = g * g;
      return max(g, 0.0) * g2 / (2.0 * g2 + sumA * g2 * g + 1e-6);
    }
    case 2u: {
      return g * a;
    }
    default: {
      return g;
    }
  }
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn weights(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  let b = gid.y;
  if (c >= p.channels || b >= p.items) {
    return;
  }
  let g0 = b * p.featureGradStride + p.featureGradOffset + c * p.hw;
  let a0 = (b / p.classesPerImage) * p.featuresStride + p.featuresOffset + c * p.hw;
  var sumA = 0.0;
  for (var i = 0u; i < p.hw; i++) {
    sumA += features[a0 + i];
  }
  var w = 0.0;
  for (var i = 0u; i < p.hw; i++) {
    w += weightTerm(p.gradSign * featureGrad[g0 + i], features[a0 + i], sumA);
  }
  switch WEIGHTS {
    case 1u: {
      alphasOut[b * p.channels + c] = w;
    }
    case 2u: {
      alphasOut[b * p.channels + c] = w / (sumA + 1e-7);
    }
    default: {
      alphasOut[b * p.channels + c] = w / f32(p.hw);
    }
  }
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
  signedMapsOut[b * p.hw + i] = s;
  maps[b * p.hw + i] = relu(s);
}

// One channel's term of an element-wise map at one position (TERM: see the header).
fn elementTerm(g: f32, a: f32) -> f32 {
  switch TERM {
    case 1u: {
      return max(g * a, 0.0);
    }
    case 2u: {
      return max(g, 0.0) * a;
    }
    default: {
      return g * a;
    }
  }
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn elementwise(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  let b = gid.y;
  if (i >= p.hw || b >= p.items) {
    return;
  }
  let g0 = b * p.featureGradStride + p.featureGradOffset + i;
  let a0 = (b / p.classesPerImage) * p.featuresStride + p.featuresOffset + i;
  var s = 0.0;
  for (var c = 0u; c < p.channels; c++) {
    s += elementTerm(p.gradSign * featureGrad[g0 + c * p.hw], features[a0 + c * p.hw]);
  }
  signedMapsOut[b * p.hw + i] = s;
  maps[b * p.hw + i] = relu(s);
}

var<workgroup> partial: array<f32, EIGEN_WG_X>;
var<workgroup> partialAt: array<u32, EIGEN_WG_X>;
var<workgroup> reduced: f32;
var<workgroup> reducedAt: u32;

// The sum (max = false) or the maximum (max = true) of x over the workgroup, the same for every
// invocation (a uniform value: loops and barriers may depend on it).
fn workgroupReduce(t: u32, x: f32, takeMax: bool) -> f32 {
  partial[t] = x;
  workgroupBarrier();
  for (var s = EIGEN_WG_X / 2u; s > 0u; s >>= 1u) {
    if (t < s) {
      partial[t] = select(partial[t] + partial[t + s], max(partial[t], partial[t + s]), takeMax);
    }
    workgroupBarrier();
  }
  if (t == 0u) {
    reduced = partial[0];
  }
  return workgroupUniformLoad(&reduced);
}

// The position of the largest |x| over the workgroup (ties: the lower position), for every invocation.
fn workgroupArgMax(t: u32, x: f32, at: u32) -> u32 {
  partial[t] = x;
  partialAt[t] = at;
  workgroupBarrier();
  for (var s = EIGEN_WG_X / 2u; s > 0u; s >>= 1u) {
    if (t < s) {
      let other = partial[t + s];
      let otherAt = partialAt[t + s];
      if (other > partial[t] || (other == partial[t] && otherAt < partialAt[t])) {
        partial[t] = other;
        partialAt[t] = otherAt;
      }
    }
    workgroupBarrier();
  }
  if (t == 0u) {
    reducedAt = partialAt[0];
  }
  return workgroupUniformLoad(&reducedAt);
}

// E[i, k] of unit u (EIGEN_OF: see the header), before centring.
fn eigenEntry(u: u32, k: u32, i: u32) -> f32 {
  let n = select(u / p.classesPerImage, u, EIGEN_OF == 0u);
  let a = features[n * p.featuresStride + p.featuresOffset + k * p.hw + i];
  switch EIGEN_OF {
    case 1u: {
      return p.gradSign * featureGrad[u * p.featureGradStride + p.featureGradOffset + k * p.hw + i] * a;
    }
    case 2u: {
      return alphas[u * p.channels + k] * a;
    }
    case 3u: {
      return elementTerm(p.gradSign * featureGrad[u * p.featureGradStride + p.featureGradOffset + k * p.hw + i], a);
    }
    default: {
      return a;
    }
  }
}

@compute @workgroup_size(EIGEN_WG_X, EIGEN_WG_Y, EIGEN_WG_Z)
fn eigen(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  // Unit n: an image (EIGEN_OF 0) or an item.
  let n = wid.x;
  let units = select(p.items, p.items / p.classesPerImage, EIGEN_OF == 0u);
  if (n >= units) {
    return;
  }
  let C = p.channels;
  let HW = p.hw;
  let s0 = n * (2u + 3u * C + HW);
  let mean = s0 + 2u;
  let v = mean + C;
  let w = v + C;
  let u = w + C;
  // Channel means and the start vector.
  var sq = 0.0;
  for (var k = t; k < C; k += EIGEN_WG_X) {
    var s = 0.0;
    for (var i = 0u; i < HW; i++) {
      s += eigenEntry(n, k, i);
    }
    eigenScratch[mean + k] = s / f32(HW);
    let v0 = 1.0 + 0.01 * f32(k);
    eigenScratch[v + k] = v0;
    sq += v0 * v0;
  }
  let norm0 = sqrt(workgroupReduce(t, sq, false));
  for (var k = t; k < C; k += EIGEN_WG_X) {
    eigenScratch[v + k] /= norm0;
  }
  storageBarrier();
  var iterations = 0u;
  var change = 3.402823e38;
  var degenerate = false;
  loop {
    if (iterations >= p.eigenMaxIterations || change <= p.eigenTolerance) {
      break;
    }
    // u = Xv
    for (var i = t; i < HW; i += EIGEN_WG_X) {
      var s = 0.0;
      for (var k = 0u; k < C; k++) {
        s += (eigenEntry(n, k, i) - eigenScratch[mean + k]) * eigenScratch[v + k];
      }
      eigenScratch[u + i] = s;
    }
    storageBarrier();
    // w = Xᵀu, then v = w / ‖w‖
    var wsq = 0.0;
    for (var k = t; k < C; k += EIGEN_WG_X) {
      var s = 0.0;
      let m = eigenScratch[mean + k];
      for (var i = 0u; i < HW; i++) {
        s += (eigenEntry(n, k, i) - m) * eigenScratch[u + i];
      }
      eigenScratch[w + k] = s;
      wsq += s * s;
    }
    let norm = sqrt(workgroupReduce(t, wsq, false));
    iterations++;
    if (norm == 0.0) {
      // X = 0 (A constant over positions): no principal direction; the projection is 0.
      degenerate = true;
      break;
    }
    var d = 0.0;
    for (var k = t; k < C; k += EIGEN_WG_X) {
      let next = eigenScratch[w + k] / norm;
      d = max(d, abs(next - eigenScratch[v + k]));
      eigenScratch[v + k] = next;
    }
    change = workgroupReduce(t, d, true);
    storageBarrier();
  }
  // The projection P = Xv (into u), and the position of its largest |P|.
  var best = -1.0;
  var bestAt = 0u;
  for (var i = t; i < HW; i += EIGEN_WG_X) {
    var s = 0.0;
    if (!degenerate) {
      for (var k = 0u; k < C; k++) {
        s += (eigenEntry(n, k, i) - eigenScratch[mean + k]) * eigenScratch[v + k];
      }
    }
    eigenScratch[u + i] = s;
    if (abs(s) > best) {
      best = abs(s);
      bestAt = i;
    }
  }
  let at = workgroupArgMax(t, best, bestAt);
  storageBarrier();
  let sign = select(1.0, -1.0, eigenScratch[u + at] < 0.0);
  // EIGEN_OF 0: the same map for each of image n's K items; else item n's.
  let first = select(n, n * p.classesPerImage, EIGEN_OF == 0u);
  let count = select(1u, p.classesPerImage, EIGEN_OF == 0u);
  for (var i = t; i < HW; i += EIGEN_WG_X) {
    let s = sign * eigenScratch[u + i];
    for (var k = 0u; k < count; k++) {
      let b = first + k;
      signedMapsOut[b * HW + i] = s;
      maps[b * HW + i] = relu(s);
    }
  }
  if (t == 0u) {
    eigenScratch[s0] = f32(iterations);
    eigenScratch[s0 + 1u] = change;
  }
}

// The Grad-CAM map of item b upsampled bilinearly (align_corners = false) to the input's H × W, at position i
// (camMapBilinear: src/gpu/wgsl-library.ts).
fn camAt(b: u32, i: u32) -> f32 {
  let height = p.hw / p.width;
  let sy = clamp((f32(i / p.width) + 0.5) * f32(p.mapH) / f32(height) - 0.5, 0.0, f32(p.mapH - 1u));
  let sx = clamp((f32(i % p.width) + 0.5) * f32(p.mapW) / f32(p.width) - 0.5, 0.0, f32(p.mapW - 1u));
  return camMapBilinear(b * p.mapH * p.mapW, p.mapH, p.mapW, sy, sx);
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn guided(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  let b = gid.y;
  if (i >= p.hw || b >= p.items) {
    return;
  }
  var s = 1.0;
  if (GUIDED_CAM) {
    s = camAt(b, i);
  }
  var d = 0.0;
  for (var c = 0u; c < p.channels; c++) {
    let at = layoutIndex(c, i, p.channels, p.hw, p.nhwc == 1u); // G's layout is the input's (src/gpu/wgsl-library.ts)
    let v = featureGrad[b * p.featureGradStride + p.featureGradOffset + at] * s;
    guidedOut[(b * p.channels + c) * p.hw + i] = v;
    d += abs(v);
  }
  maps[b * p.hw + i] = d;
}

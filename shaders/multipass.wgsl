// The multi-pass CAM methods' own kernels (src/gradcam/multipass.ts): Score-CAM's masked inputs,
// Ablation-CAM's ablated layers, the scores of each pass and the channel weights made from them.
//
// Image n of the first pass: A = features [C, mapH·mapW] at n·featuresStride + featuresOffset, x =
// image [inC, inH·inW] (NCHW, or NHWC when nhwc = 1) at n·imageStride + imageOffset. A batch of
// passes fills `batch` slots s of the pass engine; slot s runs pass p = cursor[0] + s (p < passCount;
// the slots past the last pass are padding, their scores never gathered).
//   maskRange:  per channel c, the min and max over the input's inH × inW positions of up(A_c), A_c
//           upsampled bilinearly with align_corners = true (source y·(mapH − 1)/(inH − 1), likewise x;
//           PyTorch's UpsamplingBilinear2d): rangesOut[2c] = min, [2c + 1] = max. One invocation per c,
//           looping over the positions.
//   mask:   Score-CAM's masked input of slot s, channel c = channelList[p]:
//           passInput[s, ch, i] = x[ch, i] · (up(A_c)(i) − min_c) / (max_c − min_c + 1e-8) for every input
//           channel ch; a padding slot gets 0. One invocation per (position i, slot s).
//   ablate: Ablation-CAM's layer of slot s, channel c = channelList[p]: passFeatures[s, j] = 0 where j is
//           in channel c (j / (mapH·mapW) = c), else A[j]; a padding slot gets A unchanged. One
//           invocation per (j, slot s).
//   gather: scoresOut[k·passCount + p] = the score of class classes[n·K + k] in slot s's output
//           (passScores: the logits, or their softmax when SOFTMAX); one invocation per (slot s, k).
//   softmaxWeights: Score-CAM: weightsOut[(n·K + k)·C + c] = exp(S_c − max S) / Σ_c' exp(S_c' − max S),
//           S = scores[k·passCount …] (passCount = C); one invocation per k, looping over channels.
//   ablationWeights: Ablation-CAM: weightsOut[(n·K + k)·C + c] = (S − S_c) / S, S the first pass's score
//           of the class (baseScores, softmax when SOFTMAX), S_c = scores[k·passCount + slotOf[c]];
//           0 for a skipped channel (slotOf[c] = 0xffffffff: all its activations are 0, S_c = S).
//           One invocation per (c, k).

// Shared functions (src/gpu/wgsl-library.ts): featuresBilinear, layoutIndex, passScoresProbability and
// baseScoresProbability (the softmax of a row of logits).

const SKIPPED: u32 = 0xffffffffu;

// up(A_c) at input position (y, x), align_corners = true.
fn upsampled(c: u32, y: u32, x: u32) -> f32 {
  let base = p.imageIndex * p.featuresStride + p.featuresOffset + c * p.mapH * p.mapW;
  var sy = 0.0;
  var sx = 0.0;
  if (p.inH > 1u) {
    sy = f32(y) * f32(p.mapH - 1u) / f32(p.inH - 1u);
  }
  if (p.inW > 1u) {
    sx = f32(x) * f32(p.mapW - 1u) / f32(p.inW - 1u);
  }
  return featuresBilinear(base, p.mapH, p.mapW, sy, sx);
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn maskRange(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= p.channels) {
    return;
  }
  var lo = 3.402823e38;
  var hi = -3.402823e38;
  for (var y = 0u; y < p.inH; y++) {
    for (var x = 0u; x < p.inW; x++) {
      let v = upsampled(c, y, x);
      lo = min(lo, v);
      hi = max(hi, v);
    }
  }
  rangesOut[2u * c] = lo;
  rangesOut[2u * c + 1u] = hi;
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn mask(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  let s = gid.y;
  let hw = p.inH * p.inW;
  if (i >= hw || s >= p.batch) {
    return;
  }
  let pi = cursor[0] + s;
  var m = 0.0;
  if (pi < p.passCount) {
    let c = channelList[pi];
    let lo = ranges[2u * c];
    let hi = ranges[2u * c + 1u];
    m = (upsampled(c, i / p.inW, i % p.inW) - lo) / (hi - lo + 1e-8);
  }
  let srcBase = p.imageIndex * p.imageStride + p.imageOffset;
  let dstBase = s * p.passInputStride + p.passInputOffset;
  for (var ch = 0u; ch < p.inC; ch++) {
    let idx = layoutIndex(ch, i, p.inC, hw, p.nhwc == 1u);
    passInput[dstBase + idx] = image[srcBase + idx] * m;
  }
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn ablate(@builtin(global_invocation_id) gid: vec3<u32>) {
  let j = gid.x;
  let s = gid.y;
  let plane = p.mapH * p.mapW;
  if (j >= p.channels * plane || s >= p.batch) {
    return;
  }
  let pi = cursor[0] + s;
  var v = features[p.imageIndex * p.featuresStride + p.featuresOffset + j];
  if (pi < p.passCount && j / plane == channelList[pi]) {
    v = 0.0;
  }
  passFeatures[s * p.passFeaturesStride + p.passFeaturesOffset + j] = v;
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn gather(@builtin(global_invocation_id) gid: vec3<u32>) {
  let s = gid.x;
  let k = gid.y;
  let pi = cursor[0] + s;
  if (s >= p.batch || k >= p.classesPerImage || pi >= p.passCount) {
    return;
  }
  let cls = classes[p.imageIndex * p.classesPerImage + k];
  let base = s * p.passScoresStride + p.passScoresOffset;
  var v = passScores[base + cls];
  if (SOFTMAX) {
    v = passScoresProbability(base, cls, p.classCount);
  }
  scoresOut[k * p.passCount + pi] = v;
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn softmaxWeights(@builtin(global_invocation_id) gid: vec3<u32>) {
  let k = gid.x;
  if (k >= p.classesPerImage) {
    return;
  }
  let row = k * p.passCount;
  var mx = -3.402823e38;
  for (var c = 0u; c < p.channels; c++) {
    mx = max(mx, scores[row + c]);
  }
  var sum = 0.0;
  for (var c = 0u; c < p.channels; c++) {
    sum += exp(scores[row + c] - mx);
  }
  let outBase = (p.imageIndex * p.classesPerImage + k) * p.channels;
  for (var c = 0u; c < p.channels; c++) {
    weightsOut[outBase + c] = exp(scores[row + c] - mx) / sum;
  }
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn ablationWeights(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  let k = gid.y;
  if (c >= p.channels || k >= p.classesPerImage) {
    return;
  }
  let cls = classes[p.imageIndex * p.classesPerImage + k];
  let base = p.imageIndex * p.baseScoresStride + p.baseScoresOffset;
  var score = baseScores[base + cls];
  if (SOFTMAX) {
    score = baseScoresProbability(base, cls, p.classCount);
  }
  let slot = slotOf[c];
  var w = 0.0;
  if (slot != SKIPPED) {
    w = (score - scores[k * p.passCount + slot]) / score;
  }
  weightsOut[(p.imageIndex * p.classesPerImage + k) * p.channels + c] = w;
}

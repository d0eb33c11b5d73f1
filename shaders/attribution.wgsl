// Input attributions (src/gradcam/attributions.ts; the methods of kind 'input' and 'occlusion' in
// src/gradcam/methods.ts): maps at the input's resolution, from gradients of the score y with respect
// to the input x [C, H, W] (hw = H·W), or from the score under occlusion. Tensors shaped as the input (x,
// its gradients, their sum acc, the baseline, a pass's input) are in the input's layout: element (c, i)
// at e = c·hw + i (NCHW) or e = i·C + c (NHWC, nhwc = 1), inputAt below; out and maps are [C, H, W] and
// [H, W] either way.
//
// Items: b = n·K + k (image n, class slot k). G = inputGrad [C, hw] of item b, a view (item b at
// b·inputGradStride + inputGradOffset); x likewise (image n at n·xStride + xOffset; stride 0: one image).
//   saliency:  maps[b, i] = max_c |G[b, c, i]| (Simonyan et al. 2014). One invocation per (i, b).
//   attributeInput: out[b, c, i] = scale · G[k, c, i] · d for items b = classOffset + k, k < items (G: the
//              item's gradient, or a sum of them), d = 1, or when TIMES_INPUT d = x[n, c, i] − base,
//              base = baseline[c, i] when MINUS_BASELINE else 0 (input-x-gradient: x ⊙ G; integrated
//              gradients: (x − x') ⊙ mean of the path's gradients; smoothgrad: mean of the noisy gradients);
//              maps[b, i] = Σ_c |out[b, c, i]| (a plane for display). One invocation per (i, k).
//   range:     rangeOut[0] = max_e x[e] − min_e x[e] over the C·hw values of one image (at xOffset; smoothgrad's σ
//              is a fraction of it). One workgroup of RANGE_WG_X invocations; invocation t takes e = t, t + RANGE_WG_X, …
//   perturb:   input[s, e] for slot s of the pass engine (view `input`), pass j = first + s of `passes`, from
//              x = image n's input (at xOffset):
//              PERTURB 0 smoothgrad:  x[e] + sigma · rangeIn[0] · z(seed, j, c·hw + i) for e's (c, i), z
//                        approximately standard normal, exact in f32 (noise below; keyed by (c, i), so
//                        an NHWC input gets the noise of its NCHW twin);
//              PERTURB 1 integrated gradients: baseline[e] + α (x[e] − baseline[e]), α = j / (passes − 1): the
//                        m + 1 = passes points of the trapezoid rule, both ends included;
//              PERTURB 2 occlusion: `fill` inside window j, x[e] elsewhere; window j = (wy, wx), row-major over
//                        windowsX columns, covers rows wy·step … wy·step + patch − 1 and columns likewise,
//                        clipped to the input (Captum's Occlusion).
//              A slot past the last pass (j ≥ passes) gets x. One invocation per (e, s).
//   accumulate: acc[(classOffset + k)·C·hw + e] += Σ_{s < valid} w_j · G[s·K + k, e], in slot order (deterministic);
//              w_j = 1, or when TRAPEZOID ½ at the path's ends (j = 0, j = passes − 1). One invocation per (e, k).
//   passScores: scoresOut[(classOffset + k)·passes + first + s] = y(slot s, class classes[classOffset + k]) for
//              s < valid: the logit, or when SOFTMAX the probability exp(l_c − max l) / Σ_j exp(l_j − max l), of the
//              slot's row of `scores` (a view: slot s at s·scoresStride + scoresOffset). One invocation per (s, k).
//   occlusionMap: for the items b = classOffset + k of one image, maps[b, i] = scale · (y(image n, class classes[b]) − the mean of scoresIn[b·passes + j] over
//              the windows j covering position i): the mean score drop (Captum's Occlusion averages over
//              overlapping windows); y from `scores`, the first pass's logits (row n at n·scoresStride +
//              scoresOffset). One invocation per (i, k).

// Shared functions (src/gpu/wgsl-library.ts): layoutIndex, layoutChannelPixel, scoresProbability.

// Element (c, i) of a tensor shaped as the input, in its layout.
fn inputAt(c: u32, i: u32) -> u32 {
  return layoutIndex(c, i, p.channels, p.hw, p.nhwc == 1u);
}

// The PCG hash (Jarzynski & Olano 2020, "Hash Functions for GPU Rendering").
fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

// The noise of (seed, pass, element): approximately standard normal, the Irwin–Hall sum of 12
// uniforms minus 6 (mean 0, variance 1, tails cut at ±6). Each uniform is (k + ½)/2¹⁹ for 19 bits k of
// a hash, so every partial sum is exact in f32 (< 16 with 2⁻²⁰ steps: 24 bits): the noise is the same
// bit for bit on every GPU and in the float64 reference, which transcendental functions (Box–Muller's
// log and cos, whose WGSL accuracy is loose) would not give.
fn noise(seed: u32, passIndex: u32, e: u32) -> f32 {
  let key = pcg(seed ^ pcg(passIndex ^ pcg(e)));
  var sum = 0.0;
  for (var i = 0u; i < 12u; i++) {
    sum += (f32(pcg(key + i) >> 13u) + 0.5) / 524288.0;
  }
  return sum - 6.0;
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn saliency(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  let b = gid.y;
  if (i >= p.hw || b >= p.items) {
    return;
  }
  let g0 = b * p.inputGradStride + p.inputGradOffset;
  var m = 0.0;
  for (var c = 0u; c < p.channels; c++) {
    m = max(m, abs(inputGrad[g0 + inputAt(c, i)]));
  }
  maps[b * p.hw + i] = m;
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn attributeInput(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  let k = gid.y;
  if (i >= p.hw || k >= p.items) {
    return;
  }
  let b = p.classOffset + k;
  let g0 = k * p.inputGradStride + p.inputGradOffset;
  let x0 = (b / p.classesPerImage) * p.xStride + p.xOffset;
  var d = 0.0;
  for (var c = 0u; c < p.channels; c++) {
    let at = inputAt(c, i);
    var v = p.scale * inputGrad[g0 + at];
    if (TIMES_INPUT) {
      var base = 0.0;
      if (MINUS_BASELINE) {
        base = baseline[at];
      }
      v *= x[x0 + at] - base;
    }
    out[(b * p.channels + c) * p.hw + i] = v;
    d += abs(v);
  }
  maps[b * p.hw + i] = d;
}

var<workgroup> lows: array<f32, RANGE_WG_X>;
var<workgroup> highs: array<f32, RANGE_WG_X>;

@compute @workgroup_size(RANGE_WG_X, RANGE_WG_Y, RANGE_WG_Z)
fn range(@builtin(local_invocation_index) t: u32) {
  let n = p.channels * p.hw;
  var lo = 3.402823e38;
  var hi = -3.402823e38;
  for (var e = t; e < n; e += RANGE_WG_X) {
    let v = x[p.xOffset + e];
    lo = min(lo, v);
    hi = max(hi, v);
  }
  lows[t] = lo;
  highs[t] = hi;
  workgroupBarrier();
  for (var half = RANGE_WG_X / 2u; half > 0u; half /= 2u) {
    if (t < half) {
      lows[t] = min(lows[t], lows[t + half]);
      highs[t] = max(highs[t], highs[t + half]);
    }
    workgroupBarrier();
  }
  if (t == 0u) {
    rangeOut[0] = highs[0] - lows[0];
  }
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn perturb(@builtin(global_invocation_id) gid: vec3<u32>) {
  let e = gid.x;
  let s = gid.y;
  if (e >= p.channels * p.hw || s >= p.slots) {
    return;
  }
  let j = p.first + s;
  let v = x[p.xOffset + e];
  let ci = layoutChannelPixel(e, p.channels, p.hw, p.nhwc == 1u);
  var out_ = v;
  if (j < p.passes) {
    switch PERTURB {
      case 0u: {
        out_ = v + p.sigma * rangeIn[0] * noise(p.seed, j, ci.x * p.hw + ci.y);
      }
      case 1u: {
        let alpha = f32(j) / f32(p.passes - 1u);
        out_ = baseline[e] + alpha * (v - baseline[e]);
      }
      default: {
        let i = ci.y;
        let y = i / p.width;
        let xx = i % p.width;
        let wy = j / p.windowsX;
        let wx = j % p.windowsX;
        let inside = y >= wy * p.step && y < wy * p.step + p.patchSize && xx >= wx * p.step && xx < wx * p.step + p.patchSize;
        out_ = select(v, p.fill, inside);
      }
    }
  }
  input[s * p.inputStride + p.inputOffset + e] = out_;
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn accumulate(@builtin(global_invocation_id) gid: vec3<u32>) {
  let e = gid.x;
  let k = gid.y;
  let n = p.channels * p.hw;
  if (e >= n || k >= p.classesPerImage) {
    return;
  }
  let at = (p.classOffset + k) * n + e;
  var sum = acc[at];
  for (var s = 0u; s < p.valid; s++) {
    var w = 1.0;
    let j = p.first + s;
    if (TRAPEZOID && (j == 0u || j + 1u == p.passes)) {
      w = 0.5;
    }
    sum += w * inputGrad[(s * p.classesPerImage + k) * p.inputGradStride + p.inputGradOffset + e];
  }
  acc[at] = sum;
}

// The score of class c in the row of `scores` starting at `row`: the logit, or (SOFTMAX) the probability.
fn scoreOf(row: u32, c: u32) -> f32 {
  if (!SOFTMAX) {
    return scores[row + c];
  }
  return scoresProbability(row, c, p.classCount);
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn passScores(@builtin(global_invocation_id) gid: vec3<u32>) {
  let s = gid.x;
  let k = gid.y;
  if (s >= p.valid || k >= p.classesPerImage) {
    return;
  }
  let b = p.classOffset + k;
  scoresOut[b * p.passes + p.first + s] = scoreOf(s * p.scoresStride + p.scoresOffset, classes[b]);
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn occlusionMap(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  let k = gid.y;
  if (i >= p.hw || k >= p.classesPerImage) {
    return;
  }
  let b = p.classOffset + k;
  let y = i / p.width;
  let xx = i % p.width;
  let windowsY = p.passes / p.windowsX;
  // The windows covering row y: wy·step ≤ y < wy·step + patch; columns likewise.
  let wy0 = select(0u, (y + 1u - p.patchSize + p.step - 1u) / p.step, y + 1u > p.patchSize);
  let wy1 = min(y / p.step, windowsY - 1u);
  let wx0 = select(0u, (xx + 1u - p.patchSize + p.step - 1u) / p.step, xx + 1u > p.patchSize);
  let wx1 = min(xx / p.step, p.windowsX - 1u);
  var sum = 0.0;
  var count = 0u;
  for (var wy = wy0; wy <= wy1; wy++) {
    for (var wx = wx0; wx <= wx1; wx++) {
      sum += scoresIn[b * p.passes + wy * p.windowsX + wx];
      count++;
    }
  }
  let clean = scoreOf((b / p.classesPerImage) * p.scoresStride + p.scoresOffset, classes[b]);
  maps[b * p.hw + i] = select(0.0, p.scale * (clean - sum / f32(count)), count > 0u);
}

// Max and average pooling over KH×KW windows, forward and backward. Two kernels share this body
// (src/ops/pool.ts): maxpool (MAX = true) and avgpool (MAX = false).
//
// Window (oy, ox) covers input rows oy·SH − padT … + KH − 1 and columns ox·SW − padL … + KW − 1;
// with dilations (max only: DH, DW) its taps are rows oy·SH − padT + ky·DH, columns ox·SW − padL + kx·DW.
//   forward max:  y = max over the window's in-range inputs (padding never wins); GlobalMaxPool
//                 and ReduceMax over H, W are a window of the whole plane
//   forward avg:  y = Σ in-range inputs / count, count = the window clipped to the input (or, with
//                 COUNT_INCLUDE_PAD, to the padded input [−pad, size + pad)); GlobalAveragePool is
//                 a window of the whole plane.
//   argmax:       indicesOut = the in-plane index of the first maximal input of the window in row-major
//                 order (PyTorch's tie rule), −1 for a window with no input; recomputed from x at the
//                 start of the backward pass, once per image (not per class).
//   backward max: dx = Σ over the windows that cover this input and whose index (`indices`, the
//                 argmax entry's output) is it, of dy(window)
//   backward avg: dx = Σ over the windows that cover this input of dy(window) / count(window)
// The backward runs one invocation per *input* block: no two invocations write the same value, so
// it is deterministic without atomics.
//
// Threads: each invocation handles 4 neighbouring values of one row (the components of a vec4):
// gid.x = column block, gid.y = row, gid.z = item · channels + channel; the workgroup's shape
// follows the plane (small planes take several channels per workgroup). The kernel loops have
// constant trip counts (KH, KW are override constants); per-value work on a CPU (SwiftShader) is a
// handful of loads, so invocations are few and full. Views: item i of x, y, dy and dx starts at
// i·stride + offset; the backward reads the indices of image i / maskDiv.
//
// The workgroup shape (WG_X, WG_Y, WG_Z: overrides) is fitted to the plane: a 7×7 plane in an 8×8
// workgroup would leave most lanes idle.
// FOLD: more planes than a dispatch may have along z (K classes × channels) are folded into y: the
// dispatched y is (row groups) · f, and plane group = (wid.y / row groups) · num_workgroups.z + wid.z.

const LANES = vec4<i32>(0, 1, 2, 3);

// The invocation's (column block, row, plane), unfolding FOLD; `rows` is the plane height walked.
fn cell(gid: vec3<u32>, wid: vec3<u32>, lid: vec3<u32>, nwg: vec3<u32>, rows: u32) -> vec3<u32> {
  if (!FOLD) {
    return gid;
  }
  let rowGroups = (rows + WG_Y - 1u) / WG_Y;
  return vec3<u32>(gid.x, (wid.y % rowGroups) * WG_Y + lid.y, ((wid.y / rowGroups) * nwg.z + wid.z) * WG_Z + lid.z);
}

// Window counts for the average, for the windows (oy, ox).
fn avgCount(oy: i32, ox: vec4<i32>) -> vec4<f32> {
  var h0 = oy * i32(SH) - p.padT;
  var h1 = min(h0 + i32(KH), i32(p.inH) + p.padB);
  var w0 = ox * i32(SW) - p.padL;
  var w1 = min(w0 + i32(KW), vec4<i32>(i32(p.inW) + p.padR));
  if (!COUNT_INCLUDE_PAD) {
    h0 = max(h0, 0);
    h1 = min(h1, i32(p.inH));
    w0 = max(w0, vec4<i32>(0));
    w1 = min(w1, vec4<i32>(i32(p.inW)));
  }
  return vec4<f32>(max((h1 - h0) * (w1 - w0), vec4<i32>(1)));
}

// The 4 inputs of row `iy` at columns ix (0 where outside the input); `ok` says which are real.
fn row4(plane: u32, iy: i32, ix: vec4<i32>, ok: vec4<bool>) -> vec4<f32> {
  let at = plane + u32(iy) * p.inW;
  let c = vec4<u32>(clamp(ix, vec4<i32>(0), vec4<i32>(i32(p.inW) - 1)));
  return select(vec4<f32>(0.0), vec4<f32>(x[at + c.x], x[at + c.y], x[at + c.z], x[at + c.w]), ok);
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn forward(@builtin(global_invocation_id) g0: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let gid = cell(g0, wid, lid, nwg, p.outH);
  let ox0 = gid.x * 4u;
  if (ox0 >= p.outW || gid.y >= p.outH || gid.z >= p.items * p.channels) {
    return;
  }
  let item = gid.z / p.channels;
  let c = gid.z % p.channels;
  let plane = item * p.xStride + p.xOffset + c * p.inH * p.inW;
  let oy = i32(gid.y);
  let ox = vec4<i32>(i32(ox0)) + LANES;
  var best = vec4<f32>(-3.402823e38);
  var seen = vec4<bool>(false);
  var sum = vec4<f32>(0.0);
  for (var ky = 0u; ky < KH; ky++) {
    let iy = oy * i32(SH) - p.padT + i32(ky * DH);
    if (iy < 0 || iy >= i32(p.inH)) {
      continue;
    }
    for (var kx = 0u; kx < KW; kx++) {
      let ix = ox * i32(SW) - p.padL + i32(kx * DW);
      let ok = (ix >= vec4<i32>(0)) & (ix < vec4<i32>(i32(p.inW)));
      let v = row4(plane, iy, ix, ok);
      best = select(best, max(best, v), ok);
      seen = seen | ok;
      sum += v;
    }
  }
  let result = select(sum / avgCount(oy, ox), select(vec4<f32>(0.0), best, seen), MAX);
  let at = item * p.yStride + p.yOffset + (c * p.outH + gid.y) * p.outW + ox0;
  for (var j = 0u; j < 4u; j++) {
    if (ox0 + j < p.outW) {
      y[at + j] = result[j];
    }
  }
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn argmax(@builtin(global_invocation_id) g0: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let gid = cell(g0, wid, lid, nwg, p.outH);
  let ox0 = gid.x * 4u;
  let images = (p.items + p.maskDiv - 1u) / p.maskDiv;
  if (ox0 >= p.outW || gid.y >= p.outH || gid.z >= images * p.channels) {
    return;
  }
  let image = gid.z / p.channels;
  let c = gid.z % p.channels;
  let plane = image * p.xStride + p.xOffset + c * p.inH * p.inW;
  let oy = i32(gid.y);
  let ox = vec4<i32>(i32(ox0)) + LANES;
  var best = vec4<f32>(-3.402823e38);
  var at = vec4<i32>(-1);
  for (var ky = 0u; ky < KH; ky++) {
    let iy = oy * i32(SH) - p.padT + i32(ky * DH);
    if (iy < 0 || iy >= i32(p.inH)) {
      continue;
    }
    for (var kx = 0u; kx < KW; kx++) {
      let ix = ox * i32(SW) - p.padL + i32(kx * DW);
      let ok = (ix >= vec4<i32>(0)) & (ix < vec4<i32>(i32(p.inW)));
      let v = row4(plane, iy, ix, ok);
      // Strictly greater: the first maximal input in row-major order keeps the window.
      let better = ok & ((v > best) | (at < vec4<i32>(0)));
      best = select(best, v, better);
      at = select(at, vec4<i32>(iy * i32(p.inW)) + ix, better);
    }
  }
  let base = ((image * p.channels + c) * p.outH + gid.y) * p.outW + ox0;
  for (var j = 0u; j < 4u; j++) {
    if (ox0 + j < p.outW) {
      indicesOut[base + j] = at[j];
    }
  }
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn backward(@builtin(global_invocation_id) g0: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let gid = cell(g0, wid, lid, nwg, p.inH);
  let ix0 = gid.x * 4u;
  if (ix0 >= p.inW || gid.y >= p.inH || gid.z >= p.items * p.channels) {
    return;
  }
  let item = gid.z / p.channels;
  let c = gid.z % p.channels;
  let iy = i32(gid.y);
  let ix = vec4<i32>(i32(ix0)) + LANES;
  let me = vec4<i32>(iy * i32(p.inW)) + ix;
  let dyPlane = item * p.dyStride + p.dyOffset + c * p.outH * p.outW;
  let idxPlane = ((item / p.maskDiv) * p.channels + c) * p.outH * p.outW;
  // Windows spanning rows iy and columns ix0 … ix0 + 3: oy·SH − padT ≤ iy ≤ oy·SH − padT + (KH − 1)·DH
  // (a max window whose taps skip this input never has it as its index).
  let oy0 = max(0, (iy + p.padT - i32((KH - 1u) * DH + 1u) + i32(SH)) / i32(SH));
  let oy1 = min(i32(p.outH) - 1, (iy + p.padT) / i32(SH));
  let ox0 = max(0, (i32(ix0) + p.padL - i32((KW - 1u) * DW + 1u) + i32(SW)) / i32(SW));
  let ox1 = min(i32(p.outW) - 1, (i32(ix0) + 3 + p.padL) / i32(SW));
  var sum = vec4<f32>(0.0);
  for (var oy = oy0; oy <= oy1; oy++) {
    for (var ox = ox0; ox <= ox1; ox++) {
      let w = u32(oy) * p.outW + u32(ox);
      let g = dy[dyPlane + w];
      if (MAX) {
        sum += select(vec4<f32>(0.0), vec4<f32>(g), vec4<i32>(indices[idxPlane + w]) == me);
      } else {
        // This window covers the lanes whose column lies in it.
        let start = ox * i32(SW) - p.padL;
        let inside = (ix >= vec4<i32>(start)) & (ix < vec4<i32>(start + i32(KW)));
        sum += select(vec4<f32>(0.0), vec4<f32>(g) / avgCount(oy, vec4<i32>(ox)), inside);
      }
    }
  }
  let at = item * p.dxStride + p.dxOffset + (c * p.inH + gid.y) * p.inW + ix0;
  for (var j = 0u; j < 4u; j++) {
    if (ix0 + j < p.inW) {
      if (ACCUMULATE) {
        dx[at + j] += sum[j];
      } else {
        dx[at + j] = sum[j];
      }
    }
  }
}

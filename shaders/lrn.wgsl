// Local response normalisation across channels (ONNX LRN), forward and backward.
//
// With the window W(c) = [c − lo, c + hi] ∩ [0, C), lo = ⌊(size − 1)/2⌋, hi = ⌈(size − 1)/2⌉:
//   d_c = bias + (alpha / size) · Σ_{j ∈ W(c)} x_j²          (ONNX divides alpha by size)
//   y_c = x_c · d_c^(−beta)
// Backward (c ∈ W(j) ⟺ j ∈ [c − hi, c + lo]):
//   dx_c = dy_c · d_c^(−beta) − (2 · alpha · beta / size) · x_c · Σ_{j : c ∈ W(j)} dy_j · x_j · d_j^(−beta − 1)
// d is recomputed from x (size² reads per value) instead of being kept from the forward pass.
// One invocation per output value (forward) or per input value (backward), over items × C × H × W.

// d_c for channel c of the plane position starting at `base` (channel 0).
fn denom(base: u32, c: u32) -> f32 {
  let j0 = max(i32(c) - i32((SIZE - 1u) / 2u), 0);   // c − lo
  let j1 = min(c + SIZE / 2u, p.channels - 1u);      // c + hi
  var s = 0.0;
  for (var j = u32(j0); j <= j1; j++) {
    let v = x[base + j * p.hw];
    s += v * v;
  }
  return p.bias + p.alpha / f32(SIZE) * s;
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let id = linearIndex(gid, nwg);
  let per = p.channels * p.hw;
  if (id >= p.items * per) {
    return;
  }
  let item = id / per;
  let rem = id % per;
  let c = rem / p.hw;
  let base = item * p.xStride + p.xOffset + rem % p.hw;
  y[item * p.yStride + p.yOffset + rem] = x[base + c * p.hw] * pow(denom(base, c), -p.beta);
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let id = linearIndex(gid, nwg);
  let per = p.channels * p.hw;
  if (id >= p.items * per) {
    return;
  }
  let item = id / per;
  let rem = id % per;
  let c = rem / p.hw;
  let base = (item / p.maskDiv) * p.xStride + p.xOffset + rem % p.hw;
  let dyBase = item * p.dyStride + p.dyOffset + rem % p.hw;
  let xc = x[base + c * p.hw];
  var cross = 0.0;
  let j0 = max(i32(c) - i32(SIZE / 2u), 0);          // c − hi
  let j1 = min(c + (SIZE - 1u) / 2u, p.channels - 1u);  // c + lo
  for (var j = u32(j0); j <= j1; j++) {
    let dj = denom(base, j);
    cross += dy[dyBase + j * p.hw] * x[base + j * p.hw] * pow(dj, -p.beta - 1.0);
  }
  let v = dy[dyBase + c * p.hw] * pow(denom(base, c), -p.beta) - 2.0 * p.alpha * p.beta / f32(SIZE) * xc * cross;
  let addr = item * p.dxStride + p.dxOffset + rem;
  if (ACCUMULATE) {
    dx[addr] += v;
  } else {
    dx[addr] = v;
  }
}

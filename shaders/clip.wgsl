// Clip (ONNX Clip; ReLU6 is Clip(x, 0, 6)), forward and backward, one invocation per value over
// items × count.
//   forward:  y = min(max(x, lo), hi)          (lo > hi gives hi everywhere, as ONNX says)
//   backward: dx (+)= dy · [lo ≤ x ≤ hi]        (PyTorch's clamp: the gradient passes at the bounds
//             themselves), x the forward input read at image item / maskDiv
// Views: item i of x, y, dy and dx starts at i·stride + offset.

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let id = linearIndex(gid, nwg);
  if (id >= p.count * p.items) {
    return;
  }
  let item = id / p.count;
  let k = id % p.count;
  y[item * p.yStride + p.yOffset + k] = min(max(x[item * p.xStride + p.xOffset + k], p.lo), p.hi);
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let id = linearIndex(gid, nwg);
  if (id >= p.count * p.items) {
    return;
  }
  let item = id / p.count;
  let k = id % p.count;
  let v = x[(item / p.maskDiv) * p.xStride + p.xOffset + k];
  let g = dy[item * p.dyStride + p.dyOffset + k];
  let d = select(0.0, g, v >= p.lo && v <= p.hi);
  let addr = item * p.dxStride + p.dxOffset + k;
  if (ACCUMULATE) {
    dx[addr] += d;
  } else {
    dx[addr] = d;
  }
}

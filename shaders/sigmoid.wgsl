// The logistic sigmoid (ONNX Sigmoid), forward and backward, one invocation per value over items × count.
//   forward:  y = σ(x) = 1 / (1 + e^(−x)), evaluated as t = e^(−|x|), y = 1 / (1 + t) for x ≥ 0,
//             t / (1 + t) for x < 0 (no overflow of e^(−x) for very negative x)
//   backward: dx (+)= dy · σ'(x), σ'(x) = σ(x) · (1 − σ(x)) = t / (1 + t)², recomputed from the forward
//             input x (read at image item / maskDiv): no cancellation in 1 − σ(x) where σ(x) ≈ 1
// Views: item i of x, y, dy and dx starts at i·stride + offset.

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let id = linearIndex(gid, nwg);
  if (id >= p.count * p.items) {
    return;
  }
  let item = id / p.count;
  let k = id % p.count;
  let v = x[item * p.xStride + p.xOffset + k];
  let t = exp(-abs(v));
  y[item * p.yStride + p.yOffset + k] = select(t, 1.0, v >= 0.0) / (1.0 + t);
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let id = linearIndex(gid, nwg);
  if (id >= p.count * p.items) {
    return;
  }
  let item = id / p.count;
  let k = id % p.count;
  let t = exp(-abs(x[(item / p.maskDiv) * p.xStride + p.xOffset + k]));
  let s = 1.0 + t;
  let v = dy[item * p.dyStride + p.dyOffset + k] * (t / (s * s));
  let addr = item * p.dxStride + p.dxOffset + k;
  if (ACCUMULATE) {
    dx[addr] += v;
  } else {
    dx[addr] = v;
  }
}
